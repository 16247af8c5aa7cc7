"""Find damage in a JPEG's marker structure that libjpeg decodes past without a word.

libjpeg turns a cut file into a grey-padded image and stray bytes in the compressed data into
a garbled one, at most printing "Corrupt JPEG data" on stderr; training then learns from the
damaged image. Walking the markers finds both: every segment must fit, the compressed data of
a scan may hold 0xFF only as a stuffed `FF 00` or a restart marker `FF D0`..`FF D7`, and the
file must reach its end-of-image marker (`FF D9`).
"""
import numpy as np

__all__ = ["jpeg_problem"]

_STANDALONE = {0x01} | set(range(0xD0, 0xD8))  # markers without a length field
_SOS, _EOI, _SOI = 0xDA, 0xD9, 0xD8


def jpeg_problem(data):
    """What is wrong with the structure of JPEG `data` (bytes), or None when it is sound."""
    if data[:2] != b"\xff\xd8":
        return "not a JPEG (no start-of-image marker)"
    buf = np.frombuffer(data, np.uint8)
    pos, n = 2, len(data)
    while True:
        if pos >= n:
            return "truncated JPEG (ends before its end-of-image marker)"
        if data[pos] != 0xFF:
            return f"corrupt JPEG data: byte {pos} should start a marker, found 0x{data[pos]:02x}"
        while pos < n and data[pos] == 0xFF:  # fill bytes may precede a marker
            pos += 1
        if pos >= n:
            return "truncated JPEG (ends before its end-of-image marker)"
        marker, pos = data[pos], pos + 1
        if marker == _EOI:
            return None
        if marker in _STANDALONE:
            continue
        if marker in (0x00, _SOI) or marker < 0xC0:
            return f"corrupt JPEG data: invalid marker 0xff{marker:02x} at byte {pos - 2}"
        if pos + 2 > n:
            return "truncated JPEG (ends inside a segment header)"
        size = (data[pos] << 8) | data[pos + 1]
        if size < 2:
            return (f"corrupt JPEG data: segment 0xff{marker:02x} at byte {pos - 2} has "
                    f"length {size}")
        pos += size
        if marker == _SOS:
            pos = _end_of_scan(buf, pos)
            if isinstance(pos, str):
                return pos


def _end_of_scan(buf, start):
    """Offset of the marker ending the compressed data that starts at `start`, or a problem."""
    ff = np.flatnonzero(buf[start:] == 0xFF) + start
    if not len(ff):
        return "truncated JPEG (compressed data runs to the end of the file)"
    ff = ff[ff + 1 < len(buf)]
    follower = buf[ff + 1]
    ends = np.flatnonzero((follower != 0x00) & ((follower < 0xD0) | (follower > 0xD7)))
    if not len(ends):
        return "truncated JPEG (compressed data runs to the end of the file)"
    at = int(ff[ends[0]])
    marker = int(buf[at + 1])
    if marker != 0xFF and marker < 0xC0:
        return (f"corrupt JPEG data: stray bytes ff {marker:02x} at byte {at} inside the "
                f"compressed image data")
    return at
