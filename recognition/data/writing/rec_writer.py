"""The one writer of `.rec`/`.idx` pairs, in the plain MXNet or the InsightFace layout.

Both files are written as `<name>.partial` beside the targets, flushed to disk (fsync) and
only then renamed over the targets, the `.rec` first. On any exception the temporaries are
removed and a pair already there is left untouched; what a killed run leaves is overwritten by
the next one.

InsightFace layout: record 0 is a header (`label = (first identity record, end)`), the images
are keys 1..N grouped by identity, then one record per identity with `label = (start, end)` of
its images and no payload, and a `property` file (`num_classes,height,width`) beside them.
"""
import numbers
import os
from contextlib import contextmanager

import mxnet as mx

from ..reading.recordio import INSIGHTFACE, PLAIN, RecordDataset, write_property

__all__ = ["atomic_pair", "write_rec", "identity_of"]


@contextmanager
def atomic_pair(rec_path, idx_path=None):
    """Yield temporary `(rec, idx)` paths to write; they replace the pair when the block ends.

    `idx_path` defaults to `rec_path` with `.idx` for `.rec`.
    """
    idx_path = idx_path or rec_path[:-4] + ".idx"
    tmp_rec, tmp_idx = rec_path + ".partial", idx_path + ".partial"
    try:
        yield tmp_rec, tmp_idx
        for path in (tmp_rec, tmp_idx):
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp_rec, rec_path)
        os.replace(tmp_idx, idx_path)
    finally:
        for path in (tmp_rec, tmp_idx):
            if os.path.exists(path):
                os.remove(path)


def identity_of(header):
    """The identity of an image record: its label, or the first value of a label array."""
    label = header.label
    return int(label if isinstance(label, numbers.Number) else label[0])


def write_rec(rec_path, records, layout=PLAIN, image_size=None):
    """Write `records`, `(IRHeader, payload bytes)` pairs, as `rec_path` and its `.idx`.

    Plain layout: each record under the key `header.id`. InsightFace layout: the records must
    come grouped by identity; they are numbered 1..N and the header record 0, the identity
    records and the `property` file are added, with `image_size` `(height, width)` (default:
    the size of the first image). Returns `(records written, 1 + the largest identity)`.
    """
    if layout not in (PLAIN, INSIGHTFACE):
        raise ValueError(f"unknown layout {layout!r}: use {PLAIN!r} or {INSIGHTFACE!r}")
    with atomic_pair(rec_path) as (tmp_rec, tmp_idx):
        writer = mx.recordio.MXIndexedRecordIO(tmp_idx, tmp_rec, "w")
        try:
            count, ranges = _write_images(writer, records, layout)
            num_classes = (max(ranges) + 1) if ranges else 0
            if layout == INSIGHTFACE:
                _write_identities(writer, count, num_classes, ranges)
        finally:
            writer.close()
        if layout == INSIGHTFACE:
            _rewrite_header(tmp_rec, count, num_classes)
    if layout == INSIGHTFACE:
        height, width = image_size or _first_image_size(rec_path)
        write_property(os.path.dirname(os.path.abspath(rec_path)), num_classes, height, width)
    return count, num_classes


def _write_images(writer, records, layout):
    """Write the image records in order; returns `(count, {identity: (first, end) key})`."""
    count, ranges = 0, {}
    if layout == INSIGHTFACE:  # placeholder, rewritten at the end with the real ranges
        writer.write_idx(0, _insightface_header(0, 0))
    for header, payload in records:
        key = count + 1 if layout == INSIGHTFACE else header.id
        writer.write_idx(key, mx.recordio.pack(header._replace(id=key, flag=0), payload))
        identity = identity_of(header)
        ranges[identity] = (ranges.get(identity, (key,))[0], key + 1)
        count += 1
    return count, ranges


def _insightface_header(count, num_classes):
    """Record 0 of the InsightFace layout: `label = (first identity record, end)`.

    Its size does not depend on the values, so a placeholder can be rewritten in place.
    """
    first_id = count + 1
    return mx.recordio.pack(mx.recordio.IRHeader(2, [first_id, first_id + num_classes], 0, 0),
                            b"")


def _write_identities(writer, count, num_classes, ranges):
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
        f.write(_insightface_header(count, num_classes))


def _first_image_size(rec_path):
    dataset = RecordDataset(rec_path)
    size = dataset.image_size()
    dataset.close()
    return size
