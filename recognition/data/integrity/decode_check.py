"""Decode image payloads and say what is wrong with each damaged one.

Used by `rec_check` (worker processes, one pass over a whole `.rec`) and by the training
iterator (in-process, over its part of the file, once MXNet's reader has failed). libjpeg
reports some damage only as a "Corrupt JPEG data" warning on stderr and returns an image, so
worker processes send their stderr to a file and read back what each decode printed.
"""
import os
import tempfile

import cv2
import numpy as np

from ..reading.pool import worker_pool
from .framing import read_record
from .jpeg_check import jpeg_problem

__all__ = ["payload_problem", "check_payloads", "init_worker", "printed_warnings", "worker_file",
           "FRAMING", "NOT_IMAGE", "NO_DECODE",
           "TRUNCATED", "CORRUPT", "WRONG_SIZE"]

FRAMING, NOT_IMAGE, NO_DECODE = "framing", "not an image", "does not decode"
TRUNCATED, CORRUPT, WRONG_SIZE = "truncated JPEG", "corrupt JPEG data", "wrong image size"

_state = {}


def payload_problem(data, image_size=None, warnings=None):
    """`(kind, reason)` for a damaged encoded image, None for a sound one.

    `image_size` `(height, width)`: the size every image must have (None: any);
    `warnings()` returns what the last decode printed on stderr ('' if not captured).
    """
    if data[:3] == b"\xff\xd8\xff":
        problem = jpeg_problem(data)
        if problem:
            return (TRUNCATED if problem.startswith("truncated") else CORRUPT), problem
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:
        img = None
        printed = str(exc).strip().splitlines()[-1]
    else:
        printed = warnings() if warnings else ""
    if img is None or img.size == 0:
        return NO_DECODE, "does not decode" + (f" ({printed})" if printed else "")
    if printed:
        return CORRUPT, f"libjpeg: {printed}"
    if image_size is not None and tuple(img.shape[:2]) != tuple(image_size):
        return WRONG_SIZE, (f"image is {img.shape[1]}x{img.shape[0]}, the dataset's images are "
                            f"{image_size[1]}x{image_size[0]}")
    return None


def init_worker(rec_path, image_size, capture):
    """Open the `.rec` for this process; with `capture`, send stderr to a file (see
    `printed_warnings`)."""
    if capture:  # a worker process of ours: one OpenCV thread each
        cv2.setNumThreads(1)
    _state.update(f=open(rec_path, "rb"), size=os.path.getsize(rec_path), image_size=image_size)
    _state["log"] = None
    if capture:  # stderr to a file: what each decode adds to it is that decode's warnings
        log = tempfile.TemporaryFile()
        os.dup2(log.fileno(), 2)
        _state["log"], _state["seen"] = log, 0


def printed_warnings():
    """What this process printed on stderr since the last call ('' when not captured)."""
    log = _state["log"]
    if log is None:
        return ""
    end = os.lseek(log.fileno(), 0, os.SEEK_END)
    if end == _state["seen"]:
        return ""
    text = os.pread(log.fileno(), end - _state["seen"], _state["seen"])
    _state["seen"] = end
    return " ".join(text.decode("utf-8", "replace").split())


def worker_file():
    """`(open .rec file, its size)` of this process (see `init_worker`)."""
    return _state["f"], _state["size"]


def _check_chunk(tasks):
    """Worker task: `[(key, offset, problem or None)]` for `(key, offset, start, size)` tasks.

    `start` is None for a record stored in parts (read whole and cut after its header).
    """
    out = []
    for key, offset, start, size in tasks:
        if start is None:
            data = read_record(_state["f"], offset, _state["size"])[0][-size:]
        else:
            data = os.pread(_state["f"].fileno(), size, start)
        problem = payload_problem(data, _state["image_size"], printed_warnings)
        out.append((key, offset, problem))
    return out


def check_payloads(rec_path, tasks, image_size=None, workers=1, chunk=256, on_chunk=None):
    """Check every payload task; yields `(key, offset, (kind, reason))` for damaged ones.

    `workers` 0 decodes in this process (no capture of libjpeg warnings: used where stderr
    must stay untouched); `on_chunk(n)` is called as each chunk of n records is done.
    """
    chunks = [tasks[i:i + chunk] for i in range(0, len(tasks), chunk)]
    if workers <= 0:
        init_worker(rec_path, image_size, capture=False)
        results = map(_check_chunk, chunks)
    else:
        pool = worker_pool(workers, init_worker, (rec_path, image_size, True),
                           preload=[__name__])
        results = pool.imap_unordered(_check_chunk, chunks)
    try:
        for done in results:
            if on_chunk:
                on_chunk(len(done))
            yield from ((key, off, problem) for key, off, problem in done if problem)
    finally:
        if workers > 0:
            pool.terminate()
        else:
            _state.pop("f").close()
