"""Verification pair sets in the `.bin` format used by LFW / CFP-FP / AgeDB releases.

A `.bin` is `pickle.dump((bins, issame_list))`: `bins` holds encoded images (JPEG/PNG bytes),
pair i is `bins[2i]`, `bins[2i+1]`, and `issame_list[i]` says whether they are one identity.
Files written by Python 2 hold `str` bytes and need `encoding='bytes'` to load. Images come
as `bytes` or as numpy uint8 arrays of shape (N, 1) (both occur in InsightFace's files).
Files are unpickled by `safe_pickle`, which refuses anything else a pickle could ask for, so
a crafted `.bin` cannot run code.
"""
import os
import pickle

import numpy as np

from ...errors import DataError
from ...fileio import atomic_write
from . import safe_pickle

__all__ = ["PairSet", "load_pairs", "save_pairs", "decode_pair_images", "decode_images"]


class PairSet:
    """Encoded images and the same/different flag of each consecutive pair."""

    def __init__(self, bins, issame):
        self.bins = [bytes(b) for b in bins]
        self.issame = np.asarray([bool(x) for x in issame], dtype=bool)
        validate(self.bins, self.issame, "<in memory>")

    def __len__(self):
        return len(self.issame)


def validate(bins, issame, path):
    if len(bins) % 2:
        raise DataError(f"{path}: pair set has an odd number of images ({len(bins)})")
    if len(bins) != 2 * len(issame):
        raise DataError(
            f"{path}: {len(bins)} images make {len(bins) // 2} pairs but the file has "
            f"{len(issame)} same/different labels")


def load_pairs(path):
    """Read a `.bin` pair set (Python 2 or 3 pickle) and check its shape."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: pair set not found")
    with open(path, "rb") as f:
        try:
            obj = safe_pickle.load(f)
        except safe_pickle.RefusedGlobal as exc:
            raise DataError(f"{path}: refused to load: the pickle asks for {exc.name}, which a "
                            f"pair set never holds (a crafted file could run code this way)") \
                from None
        except Exception as exc:  # pickle raises many types for garbage input
            raise DataError(f"{path}: not a pair set (pickle load failed: {exc})") from None
    if not (isinstance(obj, (tuple, list)) and len(obj) == 2):
        raise DataError(f"{path}: not a pair set: expected a (bins, issame_list) tuple, "
                        f"got {type(obj).__name__}")
    bins, issame = obj
    if not (isinstance(bins, (list, tuple)) and isinstance(issame, (list, tuple, np.ndarray))):
        raise DataError(f"{path}: not a pair set: expected lists of images and of "
                        f"same/different flags, got {type(bins).__name__} and "
                        f"{type(issame).__name__}")
    if not all(isinstance(b, (bytes, bytearray)) or _is_uint8_array(b) for b in bins):
        raise DataError(f"{path}: not a pair set: images must be encoded bytes "
                        f"(or numpy uint8 arrays)")
    if not all(isinstance(x, (bool, np.bool_, int, np.integer)) for x in issame):
        raise DataError(f"{path}: not a pair set: issame_list must hold booleans")
    validate(bins, issame, path)
    return PairSet([b.tobytes() if isinstance(b, np.ndarray) else b for b in bins], issame)


def _is_uint8_array(b):
    return isinstance(b, np.ndarray) and b.dtype == np.uint8


def save_pairs(path, bins, issame, protocol=pickle.HIGHEST_PROTOCOL):
    """Write a pair set atomically (a partial file never replaces a good one)."""
    pairs = PairSet(bins, issame)

    def write(tmp):
        with open(tmp, "wb") as f:
            pickle.dump((pairs.bins, [bool(x) for x in pairs.issame]), f, protocol=protocol)
    atomic_write(path, write)
    return pairs


def decode_pair_images(pairs, image_size=None, path="<pairs>"):
    """Decode every image to an RGB uint8 NCHW array (N = 2 * pairs).

    A image that does not decode is an error naming its index, not a silent black image.
    """
    return decode_images(pairs.bins, image_size, path,
                         where=lambda i: f"image {i} (pair {i // 2})")


def decode_images(payloads, image_size=None, path="<images>", where=lambda i: f"image {i}"):
    """Decode encoded images to one RGB uint8 NCHW array, resized to `image_size` if given."""
    import cv2

    out = None
    for i, data in enumerate(payloads):
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise DataError(f"{path}: {where(i)} does not decode")
        if image_size is not None and img.shape[:2] != tuple(image_size):
            img = cv2.resize(img, (image_size[1], image_size[0]), interpolation=cv2.INTER_AREA)
        if out is None:
            out = np.empty((len(payloads), 3) + img.shape[:2], dtype=np.uint8)
        elif img.shape[:2] != out.shape[2:]:
            raise DataError(f"{path}: {where(i)} is {img.shape[1]}x{img.shape[0]}, the first "
                            f"was {out.shape[3]}x{out.shape[2]}; pass image_size to resize")
        out[i] = img[:, :, ::-1].transpose(2, 0, 1)
    if out is None:
        raise DataError(f"{path}: holds no images")
    return out
