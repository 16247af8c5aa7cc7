"""Tiny image folders for data tests (a folder per identity, random textures)."""
import os

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
