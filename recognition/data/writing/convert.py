"""Convert between the plain MXNet and the InsightFace `.rec` layouts, and make the image-only
view that `ImageRecordIter` needs for InsightFace files.

Why the view: MXNet 1.9.1's indexed reader (dmlc `IndexedRecordIOSplitter`) sizes the last
indexed record as "up to the end of the file", so with an index listing image keys only it
still parses the identity records that follow the images and crashes decoding their empty
payload. The view is the image byte range of the file (`copy_file_range`: a reflink on file
systems that share extents, a kernel copy elsewhere) and an `.idx` shifted to it; payloads are
never decoded or re-encoded.
"""
import fcntl
import json
import os

from tqdm import tqdm

from ...errors import DataError
from ...fileio import atomic_write_text
from ..reading.recordio import INSIGHTFACE, RecordDataset
from .rec_writer import atomic_pair, identity_of, write_rec

__all__ = ["convert_layout", "image_only_view"]


def _copy_range(src_path, dst_path, start, end):
    with open(src_path, "rb") as src, open(dst_path, "wb") as dst:
        remaining, offset = end - start, start
        while remaining > 0:
            try:
                n = os.copy_file_range(src.fileno(), dst.fileno(), remaining, offset)
            except OSError:  # e.g. across file systems on old kernels
                src.seek(offset)
                n = dst.write(src.read(min(remaining, 64 << 20)))
            if n == 0:
                raise DataError(f"{src_path}: ended at byte {offset}, expected {end} (truncated)")
            offset += n
            remaining -= n


def image_only_view(dataset, cache_dir=None):
    """`(rec, idx)` of a plain-readable view of an InsightFace-layout dataset (made once).

    The view lives beside the dataset (or in `cache_dir`) as `<name>.images.rec/.idx` and is
    rebuilt when the source changes. A file lock makes concurrent workers build it only once.
    """
    folder = cache_dir or dataset.folder
    os.makedirs(folder, exist_ok=True)
    base = os.path.join(folder, os.path.basename(dataset.rec_path)[:-4] + ".images")
    rec, idx, stamp = base + ".rec", base + ".idx", base + ".json"
    source = {"rec": os.path.abspath(dataset.rec_path), "size": dataset.rec_size,
              "mtime": os.path.getmtime(dataset.rec_path)}
    with open(base + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.isfile(stamp) and json.load(open(stamp)) == source and os.path.isfile(rec):
            return rec, idx
        offsets = [dataset.index[k] for k in dataset.image_keys]
        start = min(offsets)
        end = dataset.index[dataset.identity_keys[0]] if dataset.identity_keys else dataset.rec_size
        with atomic_pair(rec, idx) as (tmp_rec, tmp_idx):
            _copy_range(dataset.rec_path, tmp_rec, start, end)
            with open(tmp_idx, "w") as f:
                for key in dataset.image_keys:
                    f.write(f"{key}\t{dataset.index[key] - start}\n")
        atomic_write_text(stamp, json.dumps(source))  # a torn stamp would not parse next time
    return rec, idx


def convert_layout(src, dst_rec, layout, progress=True, log=print):
    """Rewrite dataset `src` as `dst_rec` in `layout`, copying image payloads unchanged."""
    dataset = src if isinstance(src, RecordDataset) else RecordDataset(src)
    if not dst_rec.endswith(".rec"):
        dst_rec += ".rec"
    if os.path.abspath(dst_rec) == os.path.abspath(dataset.rec_path):
        raise DataError(f"{dst_rec}: output would overwrite the input")
    records = [dataset.read(key) for key in tqdm(dataset.image_keys, disable=not progress,
                                                   desc="reading", unit="rec")]
    if not records:
        raise DataError(f"{dataset.rec_path}: no image records to convert")
    if layout == INSIGHTFACE:
        records.sort(key=lambda r: identity_of(r[0]))
    else:
        records = [(header._replace(id=key), payload) for key, (header, payload) in
                   enumerate(records)]
    os.makedirs(os.path.dirname(os.path.abspath(dst_rec)), exist_ok=True)
    # `property` gives the images' own size (read from the first one), as im2rec writes it
    count, num_classes = write_rec(dst_rec, records, layout)
    if log:
        log(f"converted {count} images of {num_classes} identities from "
            f"{dataset.rec_path} ({dataset.layout}) to {dst_rec} ({layout})")
    return dst_rec
