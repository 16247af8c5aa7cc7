"""Helpers shared by benchmark scripts: a machine description and a test-image folder."""
import os
import platform

import cv2
import numpy as np


def machine():
    """One line naming the CPU and core count, for the figures' records."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def textured_faces(root, identities, per_identity, size=112, seed=0):
    """Folders of smooth random 112x112 JPEGs (about the byte size of aligned face crops)."""
    rng = np.random.default_rng(seed)
    for i in range(identities):
        folder = os.path.join(root, f"id_{i:05d}")
        os.makedirs(folder, exist_ok=True)
        for k in range(per_identity):
            small = rng.integers(0, 255, (14, 14, 3), dtype=np.uint8)
            img = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
            noise = rng.normal(0, 6, img.shape)
            img = np.clip(img + noise, 0, 255).astype(np.uint8)
            cv2.imwrite(os.path.join(folder, f"{k}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
