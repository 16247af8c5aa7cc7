"""`rec_check`: find every damaged record of a `.rec`, decoding each image.

Opening a dataset checks the framing and image header of every record, which is cheap;
damage inside an image payload (a cut or garbled JPEG) only shows when it is decoded, and
MXNet's reader then trains on a garbled image, fails without naming the record, or dies of
SIGFPE. This decodes every image record with worker processes and names each damaged one by
key and byte offset, with the reason, so it can be dropped (e.g. from the `.lst`) and the
file repacked. The command line is `recognition.commands.rec_check` (`face-rec-check`).
"""
import os
from collections import Counter, namedtuple

import cv2
import numpy as np
from tqdm import tqdm

from ..reading.recordio import RecordDataset, read_property
from .decode_check import FRAMING, NOT_IMAGE, check_payloads

__all__ = ["check_records", "CheckReport", "Damage", "part_keys", "summary_line"]

Damage = namedtuple("Damage", "key offset kind reason")
CheckReport = namedtuple("CheckReport", "rec_path checked damaged image_size")


def _kind(reason):
    return NOT_IMAGE if "payload" in reason else FRAMING


def part_keys(keys, offsets, part_index, num_parts):
    """The keys MXNet's indexed reader gives part `part_index` of `num_parts` (by offset)."""
    ordered = [k for _, k in sorted(zip(offsets, keys))]
    step = (len(ordered) + num_parts - 1) // num_parts
    return ordered[part_index * step:(part_index + 1) * step]


def _tasks(table, keys):
    """`(key, offset, payload start or None when stored in parts, payload size)` per key."""
    rows = table.rows_of(keys)
    starts = np.where(table.split[rows], -1, table.payload_start(rows)).tolist()
    return [(k, off, None if start < 0 else start, size) for k, off, start, size in
            zip(list(keys), table.offsets[rows].tolist(), starts,
                table.payload_size(rows).tolist())]


def _expected_size(dataset, tasks):
    """The dataset's image size: its `property` file, else the first sound image's."""
    if os.path.isfile(os.path.join(dataset.folder, "property")):
        return tuple(read_property(dataset.folder)[1:])
    with open(dataset.rec_path, "rb") as f:
        for _, _, start, size in tasks[:20]:
            if start is None:
                continue
            f.seek(start)
            img = cv2.imdecode(np.frombuffer(f.read(size), np.uint8), cv2.IMREAD_COLOR)
            if img is not None:
                return tuple(img.shape[:2])
    return None


def check_records(path, keys=None, workers=1, image_size="auto", progress=True,
                  decode=True):
    """Check the framing of every record and decode each image record (or only `keys`).

    `image_size`: `(height, width)` every image must have, None for any, "auto" for the
    dataset's (`property` file, else the first image). `workers` 0 decodes in this process.
    """
    dataset = path if isinstance(path, RecordDataset) else RecordDataset(path, strict=False)
    if dataset.table is None:
        raise ValueError("check_records needs a dataset opened with strict=False")
    table = dataset.table
    wanted = set(dataset.image_keys if keys is None else keys)
    damaged = {k: Damage(k, off, _kind(why), why) for k, (off, why) in table.problems.items()
               if keys is None or k in wanted}
    tasks = _tasks(table, [k for k in (dataset.image_keys if keys is None else keys)
                           if k not in damaged])
    if image_size == "auto":
        image_size = _expected_size(dataset, tasks)
    if decode:
        bar = tqdm(total=len(tasks), unit="rec", disable=not progress,
                   desc=os.path.basename(dataset.rec_path))
        for key, offset, (kind, reason) in check_payloads(dataset.rec_path, tasks, image_size,
                                                          workers, on_chunk=bar.update):
            damaged[key] = Damage(key, offset, kind, reason)
        bar.close()
    checked = len(wanted | set(damaged))
    return CheckReport(dataset.rec_path, checked, sorted(damaged.values(), key=lambda d: d.offset),
                       image_size)


def summary_line(report, decode=True):
    what = "image records decoded" if decode else "records framed"
    if not report.damaged:
        return f"{report.rec_path}: {report.checked} checked ({what}), none damaged"
    counts = Counter(d.kind for d in report.damaged)
    detail = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items(),
                                                           key=lambda kv: (-kv[1], kv[0])))
    return f"{report.rec_path}: {report.checked} checked ({what}), {len(report.damaged)} " \
           f"damaged ({detail})"
