"""Open and check `.rec`/`.idx` datasets in both layouts users bring.

- plain MXNet layout (`im2rec`): every record is an image, label = identity (or a label array
  whose first value is the identity when packed with `--pack-label`);
- InsightFace layout: record 0 is a header (`flag > 0`, `label = (first_identity_record, end)`),
  images at keys 1..N, then one record per identity with `label = (start, end)` and no payload;
  a `property` file beside it holds `num_classes,height,width`.

Files are checked when opened (missing, truncated, `.idx` pointing past the end) so that a bad
file is reported by name here instead of crashing MXNet's C++ reader later.
"""
import os
import struct

import cv2
import mxnet as mx
import numpy as np

from ..errors import DataError

__all__ = ["RecordDataset", "open_dataset", "read_property", "write_property",
           "read_index", "record_paths"]

RECORD_MAGIC = 0xCED7230A
_LENGTH_MASK = (1 << 29) - 1
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


def _check_record_at(rec_path, f, offset, rec_size, key):
    """Check the framing of the record at `offset` fits in the file."""
    f.seek(offset)
    head = f.read(8)
    if len(head) < 8:
        raise DataError(f"{rec_path}: record {key} at byte {offset} is cut short (truncated .rec)")
    magic, lrec = struct.unpack("<II", head)
    if magic != RECORD_MAGIC:
        raise DataError(f"{rec_path}: no record starts at byte {offset} (key {key}): the .idx "
                        f"does not belong to this .rec, or the file is corrupt")
    length = lrec & _LENGTH_MASK
    if offset + 8 + length > rec_size:
        raise DataError(f"{rec_path}: record {key} needs {length} bytes from byte {offset + 8} "
                        f"but the file ends at {rec_size} (truncated .rec)")


class RecordDataset:
    """An indexed `.rec` of either layout: its image keys, labels and class count.

    Parameters
    ----------
    path : str
        A `.rec` path, its prefix, or a folder holding `train.rec`/`train.idx`.
    """

    def __init__(self, path):
        self.rec_path, self.idx_path = record_paths(path)
        if not os.path.isfile(self.rec_path):
            raise DataError(f"{self.rec_path}: record file not found")
        self.folder = os.path.dirname(os.path.abspath(self.rec_path))
        self.rec_size = os.path.getsize(self.rec_path)
        self.index = read_index(self.idx_path, self.rec_size)
        self._check_framing()
        self._reader = None
        self.layout, self.image_keys, self.identity_keys = self._detect_layout()

    def _check_framing(self):
        keys_by_offset = sorted(self.index, key=self.index.get)
        with open(self.rec_path, "rb") as f:
            for key in (keys_by_offset[0], keys_by_offset[-1]):
                _check_record_at(self.rec_path, f, self.index[key], self.rec_size, key)

    @property
    def reader(self):
        if self._reader is None:
            self._reader = mx.recordio.MXIndexedRecordIO(self.idx_path, self.rec_path, "r")
        return self._reader

    def read(self, key):
        """`(IRHeader, payload bytes)` of one record."""
        if key not in self.index:
            raise DataError(f"{self.idx_path}: no record with key {key}")
        return mx.recordio.unpack(self.reader.read_idx(key))

    def _detect_layout(self):
        if 0 in self.index:
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
        if self._reader is not None:
            self._reader.close()
            self._reader = None


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


def open_dataset(path):
    """Open and check a dataset; see :class:`RecordDataset`."""
    return RecordDataset(path)
