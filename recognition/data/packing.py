"""Encode images and write `.rec`/`.idx` in the plain MXNet or the InsightFace layout.

Images are decoded, optionally cropped/resized and re-encoded by a pool of worker processes;
one writer keeps record order. A corrupt, empty or unreadable image is reported by path and
skipped, and the summary counts the skipped images per reason. Output goes to temporary files
renamed at the end (and removed on any failure), so an interrupted run never leaves a
half-written `.rec` in place of a good one.
"""
import multiprocessing
import os
import time
from collections import namedtuple

import cv2
import mxnet as mx
import numpy as np
from tqdm import tqdm

from ..errors import DataError
from .recordio import INSIGHTFACE, PLAIN, write_property
from .skips import (EMPTY, FAILED, NOT_ENCODED, TRUNCATED, UNDECODABLE, UNREADABLE, Skip,
                    SkipLog, printable_path)

__all__ = ["EncodeOptions", "encode_image", "write_records", "PackSummary",
           "insightface_header", "append_identity_records", "write_encoded_records"]

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
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(num_workers, initializer=_init_worker, initargs=(root, opts)) as pool:
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
    if layout not in (PLAIN, INSIGHTFACE):
        raise ValueError(f"unknown layout {layout!r}: use {PLAIN!r} or {INSIGHTFACE!r}")
    if layout == INSIGHTFACE:
        items = sorted(items, key=lambda it: int(it[2][0]))
    idx_path = rec_path[:-4] + ".idx"
    tmp_rec, tmp_idx = rec_path + ".partial", idx_path + ".partial"
    start = time.time()
    bar = tqdm(total=len(items), unit="img", disable=not progress, desc=os.path.basename(rec_path))
    skips = skips if skips is not None else SkipLog(bar.write)
    skips.write = bar.write
    writer = None
    try:
        writer = mx.recordio.MXIndexedRecordIO(tmp_idx, tmp_rec, "w")
        count, ranges = _write_all(writer, _encoded(items, root, opts, num_workers), layout,
                                   pack_label, skips, bar.update)
        bar.close()
        num_classes = (max(ranges) + 1) if ranges else 0
        if layout == INSIGHTFACE:
            append_identity_records(writer, count, num_classes, ranges)
        writer.close()
        if count == 0:
            raise DataError(f"{root}: none of the {len(items)} images could be packed "
                            f"({skips.summary()})")
        if layout == INSIGHTFACE:
            _rewrite_header(tmp_rec, count, num_classes)
        os.replace(tmp_rec, rec_path)
        os.replace(tmp_idx, idx_path)
    finally:
        bar.close()
        _discard(writer, tmp_rec, tmp_idx)
    if layout == INSIGHTFACE:
        height, width = _first_image_size(rec_path)
        write_property(os.path.dirname(os.path.abspath(rec_path)), num_classes, height, width)
    summary = PackSummary(rec_path, count, list(skips.messages), time.time() - start, layout,
                          num_classes, dict(skips.counts))
    if log:
        log(f"packed {count} images of {num_classes} identities into {rec_path} "
            f"({layout} layout), {skips.summary()}, {summary.seconds:.1f} s, "
            f"{count / max(summary.seconds, 1e-9):.0f} img/s")
    return summary


def _discard(writer, *paths):
    """Close `writer` and remove what is left of its temporary files (after a failure)."""
    if writer is not None:
        writer.close()
    for path in paths:
        if os.path.exists(path):
            os.remove(path)


def _write_all(writer, encoded, layout, pack_label, skips, tick):
    """Write the encoded images in order; returns `(count, {identity: (first, end) key})`."""
    count, ranges = 0, {}
    if layout == INSIGHTFACE:  # placeholder, rewritten at the end with the real ranges
        writer.write_idx(0, insightface_header(0, 0))
    for item, payload, error in encoded:
        tick()
        if error:
            skips.add(*error)
            continue
        key = count + 1 if layout == INSIGHTFACE else item[0]
        writer.write_idx(key, mx.recordio.pack(_header(key, item[2], pack_label), payload))
        identity = int(item[2][0])
        lo, _ = ranges.get(identity, (key, key))
        ranges[identity] = (lo, key + 1)
        count += 1
    return count, ranges


def write_encoded_records(rec_path, records):
    """Write already-encoded images `[(labels, payload bytes)]` as a plain `.rec`/`.idx`.

    Keys are 0..N-1 and every label is packed as an array (like `--pack-label`); both files
    replace the old ones only once complete.
    """
    idx_path = rec_path[:-4] + ".idx"
    tmp_rec, tmp_idx = rec_path + ".partial", idx_path + ".partial"
    writer = mx.recordio.MXIndexedRecordIO(tmp_idx, tmp_rec, "w")
    try:
        for key, (labels, payload) in enumerate(records):
            writer.write_idx(key, mx.recordio.pack(_header(key, labels, True), payload))
        writer.close()
        os.replace(tmp_rec, rec_path)
        os.replace(tmp_idx, idx_path)
    finally:
        _discard(writer, tmp_rec, tmp_idx)
    return rec_path


def insightface_header(count, num_classes):
    """Record 0 of the InsightFace layout: `label = (first identity record, end)`.

    Its size does not depend on the values, so a placeholder can be rewritten in place.
    """
    first_id = count + 1
    return mx.recordio.pack(mx.recordio.IRHeader(2, [first_id, first_id + num_classes], 0, 0),
                            b"")


def append_identity_records(writer, count, num_classes, ranges):
    """One record per identity after the images: `label = (first key, end key)`."""
    first_id = count + 1
    for identity in range(num_classes):
        lo, hi = ranges.get(identity, (first_id, first_id))
        key = first_id + identity
        writer.write_idx(key, mx.recordio.pack(mx.recordio.IRHeader(2, [lo, hi], key, 0), b""))


def _rewrite_header(rec_path, count, num_classes):
    """Point record 0 at the identity records; same size as the placeholder, no offset moves."""
    with open(rec_path, "r+b") as f:
        f.seek(8)  # past the record's magic and length words
        f.write(insightface_header(count, num_classes))


def _first_image_size(rec_path):
    from .recordio import RecordDataset

    dataset = RecordDataset(rec_path)
    size = dataset.image_size()
    dataset.close()
    return size
