"""Tiny image folders for data tests (a folder per identity, random textures)."""
import os
import shutil

import cv2
import numpy as np


def make_image_folder(root, identities=3, per_identity=4, size=(40, 48), seed=0):
    """Write `identities` folders of `per_identity` JPEGs; returns `{relpath: decoded RGB}`."""
    rng = np.random.default_rng(seed)
    written = {}
    for i in range(identities):
        folder = os.path.join(root, f"id_{i:03d}")
        os.makedirs(folder, exist_ok=True)
        for k in range(per_identity):
            img = rng.integers(0, 255, size + (3,), dtype=np.uint8)
            img = cv2.GaussianBlur(img, (5, 5), 0)
            rel = os.path.join(f"id_{i:03d}", f"{k}.jpg")
            cv2.imwrite(os.path.join(root, rel), img)
            written[rel] = cv2.imread(os.path.join(root, rel))[:, :, ::-1]
    return written


def garble(rec, tmp_path, key, name="bad"):
    """A copy of `rec` with 64 bytes in the middle of record `key`'s compressed data replaced
    (no 0xFF: the marker structure stays sound): libjpeg decodes it with a warning that names
    nothing."""
    offsets = dict((int(k), int(o)) for k, o in (l.split() for l in open(rec[:-4] + ".idx")))
    data = bytearray(open(rec, "rb").read())
    at = (offsets[key] + offsets[key + 1]) // 2
    garbage = np.random.default_rng(2).integers(0, 255, 64, dtype=np.uint8).tobytes()
    data[at:at + len(garbage)] = garbage.replace(b"\xff", b"\x00")
    (tmp_path / f"{name}.rec").write_bytes(bytes(data))
    for ext in (".idx", ".lst"):
        shutil.copy(rec[:-4] + ext, tmp_path / f"{name}{ext}")
    return str(tmp_path / f"{name}.rec"), offsets[key]
