"""Check the framing of every record of a `.rec` against its `.idx`, vectorised with numpy.

MXNet's C++ reader trusts the file: a record whose marker was overwritten aborts with a
`dmlc::Error` naming no file, and a payload that is not an image can kill the process with
SIGFPE when images are resized. Checking every record up front turns both into an error naming
the file, the record and the byte offset. The check reads 16 bytes per record and 12 at each
image payload, so millions of records take seconds, not minutes.

dmlc RecordIO: each record is `magic (0xCED7230A) | lrec | data | zero padding to 4 bytes`,
`lrec` = 3-bit continuation flag << 29 | 29-bit length. A record whose data holds the magic
word at a 4-byte boundary is stored in parts (flags 1, 2.., 3) with the word left out. The
indexed reader reads each listed record up to the next listed offset (the last one up to the
end of the file), so records must follow each other with no unlisted bytes in between.
An image record's data is `IRHeader` (flag, label, id, id2: 24 bytes), `flag` float labels
when `flag > 0`, then the encoded image.
"""
import struct

import numpy as np

__all__ = ["RecordTable", "scan_records", "payload_problems", "looks_like_image", "read_record",
           "RECORD_MAGIC", "HEADER_SIZE"]

RECORD_MAGIC = 0xCED7230A
HEADER_SIZE = 24  # IRHeader: uint32 flag, float label, uint64 id, uint64 id2
_LENGTH_MASK = (1 << 29) - 1
_CHUNK = 1 << 18  # records gathered per numpy step (bounds the temporary arrays)
_NOT_THIS_REC = "the .idx does not belong to this .rec, or the file is corrupt"

# What the formats MXNet's OpenCV decodes start with: [(offset, bytes), ...] all must match.
IMAGE_SIGNATURES = [
    [(0, b"\xff\xd8\xff")],                  # JPEG
    [(0, b"\x89PNG")],                       # PNG
    [(0, b"BM")],                            # BMP
    [(0, b"RIFF"), (8, b"WEBP")],            # WebP
    [(0, b"II*\x00")], [(0, b"MM\x00*")],    # TIFF
    [(0, b"\xff\x4f\xff\x51")],              # JPEG 2000 codestream
    [(0, b"\x00\x00\x00\x0cjP  ")],          # JPEG 2000 file
    [(0, b"\x59\xa6\x6a\x95")],              # Sun raster
    [(0, b"\x76\x2f\x31\x01")],              # OpenEXR
    [(0, b"#?")],                            # Radiance HDR
] + [[(0, b"P" + bytes([c]))] for c in b"1234567"]  # PBM/PGM/PPM/PAM
_HEAD = 12  # payload bytes gathered for the signature test


class RecordTable:
    """Every listed record sorted by offset: where it is, its sizes, and what is wrong with it.

    `problems` maps a key to `(offset, reason)`.
    """

    def __init__(self, rec_path, keys, offsets, rec_size):
        self.rec_path, self.rec_size = rec_path, rec_size
        order = np.argsort(offsets, kind="stable")
        self.keys, self.offsets = keys[order], offsets[order]
        n = len(self.keys)
        self.length = np.zeros(n, np.int64)      # data length (all parts of a split record)
        self.label_flag = np.zeros(n, np.int64)  # IRHeader.flag: float labels after it
        self.split = np.zeros(n, bool)           # stored in parts (magic word in the data)
        self.bad = np.zeros(n, bool)
        self.split_end = {}  # row -> end offset of records stored in parts
        self.problems = {}

    def rows_of(self, keys):
        """Row of each key."""
        by_key = np.argsort(self.keys, kind="stable")
        return by_key[np.searchsorted(self.keys, np.asarray(keys, np.int64), sorter=by_key)]

    def payload_start(self, rows):
        """Offset of the payload (of single-part records)."""
        return self.offsets[rows] + 8 + HEADER_SIZE + 4 * self.label_flag[rows]

    def payload_size(self, rows):
        return self.length[rows] - HEADER_SIZE - 4 * self.label_flag[rows]

    def add(self, rows, reason):
        """Note `reason(row)` (or a fixed string) against rows not already found bad."""
        for row in np.atleast_1d(rows):
            if not self.bad[row]:
                self.bad[row] = True
                text = reason if isinstance(reason, str) else reason(int(row))
                self.problems[int(self.keys[row])] = (int(self.offsets[row]), text)

    def sorted_problems(self):
        """`[(key, offset, reason)]` in file order."""
        return sorted(((k, o, r) for k, (o, r) in self.problems.items()), key=lambda p: p[1])


def scan_records(rec_path, index, rec_size):
    """Check the framing of every record listed in `index` (`{key: offset}`)."""
    keys = np.fromiter(index.keys(), np.int64, len(index))
    offsets = np.fromiter(index.values(), np.int64, len(index))
    table = RecordTable(rec_path, keys, offsets, rec_size)
    off = table.offsets
    same = np.flatnonzero(off[1:] == off[:-1]) + 1
    table.add(same, lambda r: f"points to the same byte as record {table.keys[r - 1]}")
    table.add(np.flatnonzero(off % 4), f"not on a 4-byte record boundary: {_NOT_THIS_REC}")
    table.add(np.flatnonzero(off + 8 > rec_size), "cut short (truncated .rec)")
    if rec_size >= 8:
        words = np.memmap(rec_path, "<u4", "r", shape=(rec_size // 4,))
        for lo in range(0, len(off), _CHUNK):
            _check_heads(table, words, np.arange(lo, min(lo + _CHUNK, len(off))))
        _check_split(table)
    _check_tiling(table)
    return table


def _check_heads(table, words, rows):
    """Marker, length and label count of single-part records, from their first 16 bytes."""
    rows = rows[~table.bad[rows]]
    at = table.offsets[rows] // 4
    head = words[np.minimum(at[:, None] + np.arange(4), len(words) - 1)].astype(np.int64)
    table.add(rows[head[:, 0] != RECORD_MAGIC],
              f"no record marker (overwritten, or {_NOT_THIS_REC})")
    cflag, length = head[:, 1] >> 29, head[:, 1] & _LENGTH_MASK
    table.add(rows[cflag >= 2], f"starts inside a record stored in parts: {_NOT_THIS_REC}")
    table.split[rows[cflag == 1]] = True
    whole = rows[cflag == 0]
    length, flag = length[cflag == 0], head[cflag == 0, 2]
    table.length[whole], table.label_flag[whole] = length, flag
    start = table.offsets[whole] + 8
    cut = start + length > table.rec_size
    table.add(whole[cut], lambda r: (
        f"needs {table.length[r]} bytes from byte {table.offsets[r] + 8} but the file ends at "
        f"{table.rec_size} (truncated .rec)"))
    table.add(whole[length < HEADER_SIZE], lambda r: (
        f"holds {table.length[r]} bytes, less than the {HEADER_SIZE}-byte image record header"))
    table.add(whole[HEADER_SIZE + 4 * flag > length], lambda r: (
        f"its header announces {table.label_flag[r]} labels, more than its {table.length[r]} "
        f"bytes hold (damaged header?)"))


def _check_split(table):
    """Walk the (rare) records stored in parts one by one."""
    rows = np.flatnonzero(table.split & ~table.bad)
    if not len(rows):
        return
    with open(table.rec_path, "rb") as f:
        for row in rows:
            try:
                data, end = read_record(f, int(table.offsets[row]), table.rec_size)
            except ValueError as exc:
                table.add(row, str(exc))
                continue
            flag = struct.unpack_from("<I", data)[0] if len(data) >= 4 else 0
            table.length[row], table.label_flag[row] = len(data), flag
            table.split_end[int(row)] = end
            if len(data) < HEADER_SIZE + 4 * flag:
                table.add(row, "too short for its image record header (damaged header?)")


def _check_tiling(table):
    """Each record must end (padded to 4 bytes) where the next listed one begins."""
    rows = np.flatnonzero(~table.bad)
    end = table.offsets[rows] + 8 + (table.length[rows] + 3) // 4 * 4
    for row, split_end in table.split_end.items():
        if not table.bad[row]:
            end[np.searchsorted(rows, row)] = split_end
    after = _following(table)
    following = after[rows]
    table.add(rows[end > following], lambda r: (
        f"its length ({table.length[r]} bytes) runs past the next record at byte "
        f"{after[r]} (damaged length field?)"))
    gap = end < following
    unlisted = _marker_at(table, end[gap])
    ends = dict(zip(rows[gap].tolist(), end[gap].tolist()))
    table.add(rows[gap][unlisted], lambda r: (
        f"is followed by a record the .idx does not list (at byte {ends[r]}); MXNet's reader "
        f"would read it as part of this one: list every record in the .idx"))
    table.add(rows[gap][~unlisted], lambda r: (
        f"its length ({table.length[r]} bytes) ends at byte {ends[r]}, before the next record "
        f"at byte {after[r]} (damaged length field?)"))


def _marker_at(table, offsets):
    """Whether a record marker sits at each of `offsets` (4-byte aligned, inside the file)."""
    ok = np.zeros(len(offsets), bool)
    inside = offsets + 8 <= table.rec_size
    if inside.any():
        words = np.memmap(table.rec_path, "<u4", "r", shape=(table.rec_size // 4,))
        ok[inside] = words[offsets[inside] // 4] == RECORD_MAGIC
    return ok


def _following(table):
    """Offset of the next listed record after each row (skipping rows at the same offset)."""
    after = np.searchsorted(table.offsets, table.offsets, side="right")
    return np.append(table.offsets, table.rec_size)[after]


def payload_problems(table, keys):
    """Note image records (`keys`) whose payload is empty or does not start like an image."""
    rows = table.rows_of(keys)
    rows = rows[~table.bad[rows]]
    size = table.payload_size(rows)
    table.add(rows[size <= 0], "empty payload where an image should be")
    data = np.memmap(table.rec_path, np.uint8, "r") if table.rec_size else None
    single = rows[(size > 0) & ~table.split[rows]]
    for lo in range(0, len(single), _CHUNK):
        part = single[lo:lo + _CHUNK]
        at = table.payload_start(part)[:, None] + np.arange(_HEAD)
        head = data[np.minimum(at, table.rec_size - 1)]
        head[at >= at[:, :1] + table.payload_size(part)[:, None]] = 0
        table.add(part[~looks_like_image(head)], lambda r: _not_an_image(table, data, r))
    split = rows[(size > 0) & table.split[rows]]
    if len(split):
        with open(table.rec_path, "rb") as f:
            for row in split:
                record = read_record(f, int(table.offsets[row]), table.rec_size)[0]
                payload = record[HEADER_SIZE + 4 * int(table.label_flag[row]):][:_HEAD]
                head = np.frombuffer(payload.ljust(_HEAD, b"\0"), np.uint8)[None]
                if not looks_like_image(head)[0]:
                    table.add(row, "payload is not an image (damaged image header?)")
    return table.problems


def _not_an_image(table, data, row):
    start = int(table.payload_start(row))
    first = bytes(data[start:start + min(4, int(table.payload_size(row)))]).hex(" ")
    return (f"payload is not an image (starts with bytes {first}: zeroed or overwritten "
            f"image header?)")


def looks_like_image(head):
    """Which rows of `head` (N x 12 leading payload bytes) start like a decodable image."""
    ok = np.zeros(len(head), bool)
    todo = np.arange(len(head))
    for parts in IMAGE_SIGNATURES:  # JPEG first: most rows are settled by the first test
        match = np.ones(len(todo), bool)
        for start, sig in parts:
            match &= np.all(head[todo, start:start + len(sig)] == np.frombuffer(sig, np.uint8), 1)
        ok[todo[match]] = True
        todo = todo[~match]
        if not len(todo):
            break
    return ok


def read_record(f, offset, rec_size):
    """`(data, end offset)` of the record at `offset`, joining the parts of a split one.

    Raises ValueError saying what is wrong when the parts do not chain up.
    """
    parts = []
    while True:
        f.seek(offset)
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"part at byte {offset} is cut short (truncated .rec)")
        magic, lrec = struct.unpack("<II", head)
        if magic != RECORD_MAGIC:
            raise ValueError(f"no record marker at byte {offset} (overwritten?)")
        flag, length = lrec >> 29, lrec & _LENGTH_MASK
        if flag not in ((2, 3) if parts else (0, 1)):
            raise ValueError(f"part at byte {offset} has continuation flag {flag}: the parts "
                             f"of this record do not chain up")
        if offset + 8 + length > rec_size:
            raise ValueError(f"part at byte {offset} runs past the end of the file (truncated)")
        parts.append(f.read(length))
        offset += 8 + (length + 3) // 4 * 4
        if flag in (0, 3):
            return struct.pack("<I", RECORD_MAGIC).join(parts), offset
