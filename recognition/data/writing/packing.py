"""Encode images and write `.rec`/`.idx` in the plain MXNet or the InsightFace layout.

Images are decoded, optionally cropped/resized and re-encoded by a pool of worker processes;
one writer keeps record order. A corrupt, empty or unreadable image is reported by path and
skipped, and the summary counts the skipped images per reason. The files are written by
`rec_writer` (temporary files renamed at the end, removed on any failure), so an interrupted
run never leaves a half-written `.rec` in place of a good one. `pack_image_folder` lists a
folder per identity and packs it in one call (`face-im2rec`'s two steps).
"""
import os
import time
from collections import namedtuple

import cv2
import mxnet as mx
import numpy as np
from tqdm import tqdm

from ...errors import DataError
from ..reading.pool import worker_pool
from ..reading.recordio import INSIGHTFACE, PLAIN
from .image_list import list_images, write_lst
from .rec_writer import write_rec
from .skips import (EMPTY, FAILED, NOT_ENCODED, TRUNCATED, UNDECODABLE, UNREADABLE, Skip,
                    SkipLog, printable_path)

__all__ = ["EncodeOptions", "encode_image", "write_records", "PackSummary",
           "write_encoded_records", "pack_image_folder"]

EncodeOptions = namedtuple("EncodeOptions", "resize center_crop quality encoding color pass_through")
EncodeOptions.__new__.__defaults__ = (0, False, 95, ".jpg", 1, False)
PackSummary = namedtuple("PackSummary",
                         "rec_path packed skipped seconds layout num_classes skip_counts")
PackSummary.__new__.__defaults__ = (None,)


def _looks_truncated(data):
    """A JPEG must end with its EOI marker; libjpeg decodes cut files with only a warning."""
    if data[:2] != b"\xff\xd8":
        return False
    return b"\xff\xd9" not in data[-64:]


def encode_image(path, opts):
    """Return the record payload for one image file, or raise Skip (a DataError) saying why."""
    shown = printable_path(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise Skip(UNREADABLE, f"{shown}: cannot read ({exc.strerror})") from None
    if not data:
        raise Skip(EMPTY, f"{shown}: empty file (0 bytes)")
    if _looks_truncated(data):
        raise Skip(TRUNCATED, f"{shown}: truncated JPEG (no end-of-image marker)")
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), opts.color)
    except cv2.error:
        img = None
    if img is None or img.size == 0:
        raise Skip(UNDECODABLE, f"{shown}: not a decodable image")
    if opts.pass_through:
        return data
    try:
        return _reencode(img, opts)
    except cv2.error as exc:
        raise Skip(NOT_ENCODED, f"{shown}: could not be re-encoded as {opts.encoding} "
                                f"({str(exc).strip().splitlines()[-1]})") from None


def _reencode(img, opts):
    if opts.center_crop:
        h, w = img.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        img = img[top:top + side, left:left + side]
    if opts.resize:
        h, w = img.shape[:2]
        scale = opts.resize / min(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    params = ([cv2.IMWRITE_JPEG_QUALITY, opts.quality] if opts.encoding == ".jpg"
              else [cv2.IMWRITE_PNG_COMPRESSION, opts.quality])
    ok, buf = cv2.imencode(opts.encoding, img, params)
    if not ok:
        raise cv2.error("imencode returned no data")
    return buf.tobytes()


_worker_state = {}


def _init_worker(root, opts):
    cv2.setNumThreads(1)
    _worker_state.update(root=root, opts=opts)


def _encode_item(item):
    """Worker task: `(item, payload or None, (reason, message) or None)`.

    Any exception is turned into a skip: one odd image must not take the whole pack down.
    """
    path = os.path.join(_worker_state["root"], item[1])
    try:
        return item, encode_image(path, _worker_state["opts"]), None
    except Skip as exc:
        return item, None, (exc.reason, str(exc))
    except Exception as exc:  # noqa: BLE001 (reported by path, never a traceback)
        return item, None, (FAILED, f"{printable_path(path)}: {type(exc).__name__}: {exc}")


def _encoded(items, root, opts, num_workers):
    if num_workers <= 1:
        _init_worker(root, opts)
        yield from map(_encode_item, items)
        return
    with worker_pool(num_workers, _init_worker, (root, opts), preload=[__name__]) as pool:
        yield from pool.imap(_encode_item, items, chunksize=16)


def _header(key, labels, pack_label):
    label = labels[0] if len(labels) == 1 or not pack_label else np.asarray(labels, np.float32)
    return mx.recordio.IRHeader(0, label, key, 0)


def write_records(items, root, rec_path, layout=PLAIN, opts=EncodeOptions(), num_workers=1,
                  pack_label=False, progress=True, log=print, skips=None):
    """Pack `items` `[(index, relpath, [labels])]` under `root` into `rec_path` (+ `.idx`).

    In the InsightFace layout images are grouped by identity (label[0]) and numbered 1..N, a
    header record 0 and one record per identity are added, and a `property` file is written.
    `skips` (a SkipLog, e.g. from listing the images) collects the images left out.
    """
    if layout == INSIGHTFACE:
        items = sorted(items, key=lambda it: int(it[2][0]))
    start = time.time()
    bar = tqdm(total=len(items), unit="img", disable=not progress, desc=os.path.basename(rec_path))
    skips = skips if skips is not None else SkipLog(bar.write)
    skips.write = bar.write
    try:
        encoded = _encoded(items, root, opts, num_workers)
        count, num_classes = write_rec(
            rec_path, _packed(encoded, len(items), root, pack_label, skips, bar), layout)
    finally:
        bar.close()
    summary = PackSummary(rec_path, count, list(skips.messages), time.time() - start, layout,
                          num_classes, dict(skips.counts))
    if log:
        log(f"packed {count} images of {num_classes} identities into {rec_path} "
            f"({layout} layout), {skips.summary()}, {summary.seconds:.1f} s, "
            f"{count / max(summary.seconds, 1e-9):.0f} img/s")
    return summary


def _packed(encoded, total, root, pack_label, skips, bar):
    """The `(header, payload)` of each image that encoded, in order; the others go to `skips`.

    Raises DataError (so nothing is written) when no image encoded.
    """
    count = 0
    for item, payload, error in encoded:
        bar.update()
        if error:
            skips.add(*error)
            continue
        count += 1
        yield _header(item[0], item[2], pack_label), payload
    if count == 0:
        raise DataError(f"{root}: none of the {total} images could be packed "
                        f"({skips.summary()})")


def write_encoded_records(rec_path, records):
    """Write already-encoded images `[(labels, payload bytes)]` as a plain `.rec`/`.idx`.

    Keys are 0..N-1 and every label is packed as an array (like `--pack-label`); both files
    replace the old ones only once complete.
    """
    write_rec(rec_path, ((_header(key, labels, True), payload)
                         for key, (labels, payload) in enumerate(records)))
    return rec_path


def pack_image_folder(root, prefix, layout=PLAIN, num_workers=1, extra_labels=None, quality=95,
                      pass_through=False, progress=True, log=print):
    """List `root` (a folder per identity) and pack it into `prefix.rec/.idx/.lst` in one call.

    `extra_labels` maps an identity folder name to values appended after the identity label
    (packed as a label array, like `--pack-label`); `pass_through` stores the files' bytes
    (checked to decode) instead of re-encoding them at `quality`.
    """
    skips = SkipLog(print)
    items = list_images(root, recursive=True, skips=skips)
    if extra_labels is not None:
        items = [(i, rel, [label] + list(extra_labels[rel.split(os.sep)[0]]))
                 for i, rel, label in items]
    else:
        items = [(i, rel, [label]) for i, rel, label in items]
    write_lst(prefix + ".lst", items)
    opts = EncodeOptions(quality=quality, pass_through=pass_through)
    return write_records(items, root, prefix + ".rec", layout, opts,
                         num_workers, pack_label=extra_labels is not None, progress=progress,
                         log=log, skips=skips)
