"""Worker processes that decode the records of training batches and say which are damaged.

Processes, not threads: libjpeg reports garbage in a JPEG's compressed data only as a
"Corrupt JPEG data" line on stderr and returns an image; a worker process sends its stderr
to a file (as `rec_check`'s workers do, see `decode_check`) and so knows which record printed
it. They also decode without the GIL. They load no MXNet: neither this module nor the main
module they import (`recognition/train.py`, `face-train`: MXNet loads in `main`) imports it.
"""
import struct
from multiprocessing import shared_memory

import cv2
import numpy as np

from ..integrity.decode_check import init_worker, printed_warnings, worker_file
from ..integrity.framing import HEADER_SIZE, read_record
from ..integrity.jpeg_check import jpeg_problem

__all__ = ["start_worker", "decode_chunk", "fit_to_shape", "split_record"]

_rings = {}  # shared memory name -> (block, array view)


def start_worker(rec_path):
    """Pool initializer: one OpenCV thread, stderr captured, the `.rec` opened (all three by
    `decode_check.init_worker`)."""
    init_worker(rec_path, None, capture=True)


def split_record(data):
    """`(label, payload)` of an image record: the float label, or the label array of a record
    packed with `--pack-label` (as `mx.recordio.unpack` reads them)."""
    flag, label = struct.unpack_from("<If", data)
    if flag == 0:
        return label, data[HEADER_SIZE:]
    labels = np.frombuffer(data, np.float32, flag, HEADER_SIZE)
    return labels, data[HEADER_SIZE + 4 * flag:]


def fit_to_shape(image, height, width):
    """Scale the shorter edge to min(height, width) by area averaging (as ImageRecordIter's
    `resize` with `inter_method=3`, and the verifier), then crop the centre."""
    if image.shape[:2] == (height, width):
        return image
    short, (rows, cols) = min(height, width), image.shape[:2]
    # the long edge rounded down, as ImageRecordIter does
    size = (short, short * rows // cols) if rows > cols else (short * cols // rows, short)
    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return image[top:top + height, left:left + width]


def ring_view(name, shape):
    """The uint8 array `shape` over the shared memory block `name` (attached once)."""
    if name not in _rings:
        block = shared_memory.SharedMemory(name=name)
        _rings[name] = block, np.ndarray(shape, np.uint8, block.buf)
    return _rings[name][1]


def decode_chunk(ring, shape, slot, start, tasks):
    """Worker task: decode `(offset, flip, walk)` tasks into images `start..` of batch `slot`
    of the shared ring (`ring`, `shape`: slots x batch x 3 x H x W, RGB); returns `(labels,
    problems)`, small, so nothing big crosses a pipe. `problems[i]` is None, `(False, reason)`
    for an image decoded despite damage, or `(True, reason)` for one that does not decode.
    `walk`: also check the JPEG's marker structure (once per record and run: it costs half a
    decode)."""
    f, size = worker_file()
    height, width = shape[-2:]
    images = ring_view(ring, shape)[slot, start:start + len(tasks)]
    labels, problems = [], []
    for i, (offset, flip, walk) in enumerate(tasks):
        label, payload = split_record(read_record(f, offset, size)[0])
        labels.append(label)
        structure = jpeg_problem(payload) if walk and payload[:2] == b"\xff\xd8" else None
        image = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
        printed = printed_warnings()
        if image is None or image.size == 0:
            problems.append((True, "does not decode" + (f" ({printed})" if printed else "")))
            continue
        problems.append((False, structure or f"libjpeg: {printed}") if structure or printed
                        else None)
        image = fit_to_shape(image, height, width)
        if flip:
            image = cv2.flip(image, 1)
        np.copyto(images[i], image[:, :, ::-1].transpose(2, 0, 1))  # BGR HWC -> RGB CHW
    return labels, problems
