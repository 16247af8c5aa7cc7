"""Open and check `.rec`/`.idx` datasets in both layouts users bring.

- plain MXNet layout (`im2rec`): every record is an image, label = identity (or a label array
  whose first value is the identity when packed with `--pack-label`);
- InsightFace layout: record 0 is a header (`flag > 0`, `label = (first_identity_record, end)`),
  images at keys 1..N, then one record per identity with `label = (start, end)` and no payload;
  a `property` file beside it holds `num_classes,height,width`.

Files are checked when opened (missing, truncated, `.idx` pointing past the end, and the
framing and image header of every record, see `framing`) so that a bad file is reported by
name and record here instead of crashing MXNet's C++ reader later. A passed check of a big
file is remembered (`check_stamp`), so it costs once.
"""
import os

import cv2
import mxnet as mx
import numpy as np

from ...errors import DataError
from ..integrity.check_stamp import is_checked, mark_checked
from ..integrity.framing import payload_problems, read_record, scan_records

__all__ = ["RecordDataset", "open_dataset", "read_property", "write_property",
           "read_index", "record_paths", "damage_message", "describe_record"]

PLAIN, INSIGHTFACE = "plain", "insightface"


def record_paths(path):
    """`(rec, idx)` for a prefix, a `.rec` path or a folder holding `train.rec`."""
    if os.path.isdir(path):
        path = os.path.join(path, "train.rec")
    base = path[:-4] if path.endswith((".rec", ".idx")) else path
    return base + ".rec", base + ".idx"


def read_index(idx_path, rec_size=None):
    """Read an `.idx` (`key<TAB>offset` per line) into `{key: offset}`, checking every line."""
    if not os.path.isfile(idx_path):
        raise DataError(f"{idx_path}: index file not found (make it with tools/im2rec.py)")
    index = {}
    with open(idx_path) as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                key, offset = int(parts[0]), int(parts[1])
            except (ValueError, IndexError):
                raise DataError(f"{idx_path}:{lineno}: expected 'key<TAB>offset', "
                                f"got {line.strip()!r}") from None
            if rec_size is not None and not 0 <= offset < rec_size:
                raise DataError(f"{idx_path}:{lineno}: key {key} points to byte {offset}, past "
                                f"the end of the .rec ({rec_size} bytes): truncated .rec or an "
                                f".idx of another file")
            index[key] = offset
    if not index:
        raise DataError(f"{idx_path}: index is empty")
    return index


def read_property(folder):
    """`(num_classes, height, width)` from an InsightFace `property` file."""
    path = os.path.join(folder, "property")
    if not os.path.isfile(path):
        raise DataError(f"{path}: property file not found (it holds 'num_classes,112,112')")
    try:
        values = [int(v) for v in open(path).read().strip().split(",")]
        num_classes, height, width = values
    except ValueError:
        raise DataError(f"{path}: expected 'num_classes,height,width', "
                        f"got {open(path).read().strip()!r}") from None
    return num_classes, height, width


def write_property(folder, num_classes, height=112, width=112):
    with open(os.path.join(folder, "property"), "w") as f:
        f.write(f"{num_classes},{height},{width}\n")


class RecordDataset:
    """An indexed `.rec` of either layout: its image keys, labels and class count.

    Parameters
    ----------
    path : str
        A `.rec` path, its prefix, or a folder holding `train.rec`/`train.idx`.
    cache_dir : str, optional
        Where the stamp of a passed record check goes (default: beside the file).
    strict : bool
        Raise DataError naming the damaged records (default). With False the damaged records
        are listed in `problems` (`{key: (offset, reason)}`) and `table` keeps the scan.
    """

    def __init__(self, path, cache_dir=None, strict=True):
        self.rec_path, self.idx_path = record_paths(path)
        if not os.path.isfile(self.rec_path):
            raise DataError(f"{self.rec_path}: record file not found")
        self.folder = os.path.dirname(os.path.abspath(self.rec_path))
        self.rec_size = os.path.getsize(self.rec_path)
        self.index = read_index(self.idx_path, self.rec_size)
        self._file = None
        checked = strict and is_checked(self.rec_path, self.idx_path, cache_dir)
        self.table = None if checked else scan_records(self.rec_path, self.index, self.rec_size)
        self.problems = {} if checked else self.table.problems
        self.layout, self.image_keys, self.identity_keys = self._detect_layout()
        if checked:
            return
        payload_problems(self.table, self.image_keys)
        if strict:
            if self.problems:
                raise DataError(damage_message(self.rec_path, self.table.sorted_problems()))
            mark_checked(self.rec_path, self.idx_path, len(self.index), cache_dir)
            self.table = None

    def read(self, key):
        """`(IRHeader, payload bytes)` of one record.

        Read with plain file IO (MXNet's indexed reader would parse the whole `.idx` again,
        seconds for millions of records).
        """
        if key not in self.index:
            raise DataError(f"{self.idx_path}: no record with key {key}")
        if self._file is None:
            self._file = open(self.rec_path, "rb")
        offset = self.index[key]
        try:
            data = read_record(self._file, offset, self.rec_size)[0]
        except ValueError as exc:
            raise DataError(f"{self.rec_path}: record {key} at byte {offset}: {exc}") from None
        return mx.recordio.unpack(data)

    def _detect_layout(self):
        if 0 in self.index and 0 not in self.problems:
            header, payload = self.read(0)
            if header.flag > 0 and len(payload) == 0 and len(header.label) >= 2:
                first_id, end = int(header.label[0]), int(header.label[1])
                images = [k for k in range(1, first_id) if k in self.index]
                if len(images) != first_id - 1:
                    raise DataError(f"{self.idx_path}: InsightFace header says images are keys "
                                    f"1..{first_id - 1} but {first_id - 1 - len(images)} are "
                                    f"missing from the index")
                return INSIGHTFACE, images, list(range(first_id, end))
        return PLAIN, sorted(self.index), []

    @property
    def num_images(self):
        return len(self.image_keys)

    def image_size(self):
        """`(height, width)` of the first image record (the size the dataset was packed at)."""
        _, payload = self.read(self.image_keys[0])
        img = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise DataError(f"{self.rec_path}: image record {self.image_keys[0]} does not decode")
        return img.shape[:2]

    def label_width(self):
        """Number of label values per image record (1 unless packed with `--pack-label`)."""
        header, _ = self.read(self.image_keys[0])
        return max(1, int(header.flag))

    def num_classes(self, lst_path=None):
        """Class count: `property` if present, else identity records, else `.lst`, else a scan."""
        if os.path.isfile(os.path.join(self.folder, "property")):
            return read_property(self.folder)[0]
        if self.layout == INSIGHTFACE:
            return len(self.identity_keys)
        lst_path = lst_path or self.rec_path[:-4] + ".lst"
        if os.path.isfile(lst_path):
            return _classes_in_lst(lst_path)
        return 1 + max(int(_first(self.read(k)[0].label)) for k in self.image_keys)

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None


def _first(label):
    try:
        return label[0]
    except (TypeError, IndexError):
        return label


def _classes_in_lst(lst_path):
    top = -1
    with open(lst_path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 3:
                top = max(top, int(float(parts[1])))
    return top + 1


def describe_record(key, offset, reason):
    """How every message names a damaged record."""
    return f"record {key} at byte {offset}: {reason}"


def damage_message(rec_path, problems, shown=3):
    """One error message for damaged records `[(key, offset, reason)]` (file order)."""
    lines = "; ".join(describe_record(*problem) for problem in problems[:shown])
    if len(problems) == 1:
        return f"{rec_path}: {lines}"
    more = f", the first {shown}" if len(problems) > shown else ""
    return (f"{rec_path}: {len(problems)} damaged records{more}: {lines}. List them all with: "
            f"python tools/rec_check.py {rec_path}")


def open_dataset(path):
    """Open and check a dataset; see :class:`RecordDataset`."""
    return RecordDataset(path)
