"""Damaged `.rec` files: refused at open naming file and record, found by tools/rec_check.py."""
import os
import shutil
import struct
import subprocess
import sys

import cv2
import mxnet as mx
import numpy as np
import pytest

from recognition.commands.rec_check import build_parser, main as rec_check_main
from recognition.data.integrity import check_stamp
from recognition.data.reading import recordio
from recognition.data.reading.iterator import FaceRecordIter
from recognition.data.reading.recordio import RecordDataset
from recognition.data.writing.packing import pack_image_folder, write_encoded_records
from recognition.errors import DataError

from tests.support import REPO
from tests.support.images import make_image_folder

PAYLOAD = 8 + 24  # record marker + length, then the 24-byte IRHeader


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """12 JPEGs of 32x32 (3 identities) in the plain layout, and `{key: offset}`."""
    base = tmp_path_factory.mktemp("rec")
    make_image_folder(str(base / "img"), identities=3, per_identity=4, size=(32, 32))
    pack_image_folder(str(base / "img"), str(base / "good"), progress=False, log=None)
    offsets = dict((int(k), int(o)) for k, o in
                   (line.split() for line in open(base / "good.idx")))
    return str(base / "good"), offsets


def damaged(packed, tmp_path, mutate, name="bad"):
    """A copy of the packed file, changed in place by `mutate(bytearray, offsets)`."""
    prefix, offsets = packed
    data = bytearray(open(prefix + ".rec", "rb").read())
    mutate(data, offsets)
    (tmp_path / f"{name}.rec").write_bytes(bytes(data))
    for ext in (".idx", ".lst"):
        shutil.copy(prefix + ext, tmp_path / f"{name}{ext}")
    return str(tmp_path / f"{name}.rec")


def zero_jpeg_header(data, offsets):
    data[offsets[5] + PAYLOAD:offsets[5] + PAYLOAD + 4] = bytes(4)


def overwrite_marker(data, offsets):
    data[offsets[5]:offsets[5] + 4] = bytes(4)


def garble_scan_data(data, offsets):
    """8 random bytes (no 0xFF) in record 4's compressed data: libjpeg warns, still decodes."""
    garbage = np.random.default_rng(2).integers(0, 255, 8, dtype=np.uint8).tobytes()
    at = offsets[5] - 120
    data[at:at + 8] = garbage.replace(b"\xff", b"\x00")


def run_python(code, timeout=120):
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ, PYTHONPATH=REPO))


def read_everything(rec, size):
    return ("from recognition.data.reading.iterator import FaceRecordIter\n"
            f"it = FaceRecordIter({rec!r}, 4, (3, {size}, {size}), shuffle=False, "
            "preprocess_threads=1)\n"
            "print('images', sum(4 - b.pad for b in it))\n")


def test_zeroed_jpeg_header_is_refused_at_open(packed, tmp_path):
    rec = damaged(packed, tmp_path, zero_jpeg_header)
    # Resizing (28 != 32) the undecodable image killed the process with SIGFPE, no message.
    proc = run_python(read_everything(rec, 28))
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "DataError" in proc.stderr and "bad.rec" in proc.stderr
    assert (f"record 5 at byte {packed[1][5]}: payload is not an image (starts with bytes "
            f"00 00 00 00") in proc.stderr


def test_overwritten_marker_is_refused_at_open(packed, tmp_path):
    rec = damaged(packed, tmp_path, overwrite_marker)
    # MXNet's prefetch thread aborted the process with a dmlc::Error naming no file.
    proc = run_python(read_everything(rec, 32))
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert (f"bad.rec: record 5 at byte {packed[1][5]}: no record marker (overwritten"
            in proc.stderr)
    with pytest.raises(DataError, match=rf"bad\.rec: record 5 at byte {packed[1][5]}: no "
                                        r"record marker"):
        RecordDataset(rec)


def test_garbage_in_jpeg_data_is_found_by_rec_check(packed, tmp_path, capsys):
    rec = damaged(packed, tmp_path, garble_scan_data)
    proc = run_python(read_everything(rec, 32))  # MXNet trains on the damaged image
    assert proc.returncode == 0 and "images 12" in proc.stdout
    assert "Corrupt JPEG data" in proc.stderr
    keys = tmp_path / "damaged.txt"
    assert rec_check_main([rec, "--quiet", "--workers", "2", "--damaged-keys", str(keys)]) == 1
    out = capsys.readouterr().out
    assert f"record 4 at byte {packed[1][4]}: libjpeg: Corrupt JPEG data" in out
    assert "12 checked (image records decoded), 1 damaged (1 corrupt JPEG data)" in out
    assert keys.read_text() == "4\n"


@pytest.mark.parametrize("case, expected", [
    ("stray_marker", "corrupt JPEG data: stray bytes ff 12 at byte"),
    ("no_eoi", "truncated JPEG (compressed data runs to the end of the file)"),
])
def test_jpeg_structure_damage_is_found(packed, tmp_path, capsys, case, expected):
    def mutate(data, offsets):
        if case == "stray_marker":  # decodes without any warning: only the structure shows it
            data[offsets[5] - 100:offsets[5] - 98] = b"\xff\x12"
        else:  # the end-of-image marker and the last bytes zeroed
            data[offsets[5] - 12:offsets[5]] = bytes(12)
    rec = damaged(packed, tmp_path, mutate)
    assert rec_check_main([rec, "--quiet", "--workers", "1"]) == 1
    assert f"record 4 at byte {packed[1][4]}: {expected}" in capsys.readouterr().out


def test_decode_failure_in_training_names_the_record(packed, tmp_path):
    def mutate(data, offsets):
        middle = (offsets[5] + offsets[6]) // 2
        data[middle:middle + 40] = bytes(range(40))
    rec = damaged(packed, tmp_path, mutate)
    it = FaceRecordIter(rec, 4, (3, 32, 32), shuffle=False, preprocess_threads=1)
    with pytest.raises(DataError) as info:
        list(it)
    message = str(info.value)
    assert f"bad.rec: reading failed on damaged data: record 5 at byte {packed[1][5]}" in message
    assert "corrupt JPEG data" in message and f"tools/rec_check.py {rec}" in message


def test_wrong_size_and_clean_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (h, h, 3), dtype=np.uint8) for h in (32, 32, 40, 32)]
    records = [([float(i)], cv2.imencode(".png", img)[1].tobytes())
               for i, img in enumerate(images)]
    rec = write_encoded_records(str(tmp_path / "sizes.rec"), records)
    assert rec_check_main([rec, "--quiet", "--workers", "1"]) == 1
    out = capsys.readouterr().out
    assert "record 2 at byte" in out and "image is 40x40, the dataset's images are 32x32" in out
    assert rec_check_main([rec, "--quiet", "--image-size", "any"]) == 0
    assert "4 checked (image records decoded), none damaged" in capsys.readouterr().out
    assert rec_check_main([rec, "--quiet", "--image-size", "40x40", "--framing-only"]) == 0


def test_rec_check_help_and_bad_input(tmp_path, capsys):
    text = build_parser().format_help()  # tools/rec_check.py --help: commands/test_tools_cli.py
    for flag in ("--workers", "--image-size", "--damaged-keys", "--framing-only", "--quiet"):
        assert flag in text
    assert rec_check_main([str(tmp_path / "nothing.rec")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    (tmp_path / "x.rec").write_bytes(b"")
    (tmp_path / "x.idx").write_text("0\t0\n")
    assert rec_check_main([str(tmp_path / "x.rec"), "--image-size", "big"]) == 2
    assert "--image-size must look like 112x112" in capsys.readouterr().err


def _set_length(key, delta):
    def mutate(data, offsets):
        length = struct.unpack_from("<I", data, offsets[key] + 4)[0]
        struct.pack_into("<I", data, offsets[key] + 4, length + delta)
    return mutate


@pytest.mark.parametrize("mutate, idx_extra, drop, expected", [
    (_set_length(3, 400), "", None, r"record 3 at byte \d+: its length \(\d+ bytes\) runs past "
                                    r"the next record"),
    (_set_length(3, -100), "", None, r"record 3 at byte \d+: its length .* before the next "
                                     r"record at byte \d+ \(damaged length field\?\)"),
    (lambda d, o: struct.pack_into("<I", d, o[7] + 8, 100000), "", None,
     r"record 7 at byte \d+: its header announces 100000 labels"),
    (lambda d, o: None, "", 2, r"record 1 at byte \d+: is followed by a record the \.idx does "
                               r"not list"),
    (lambda d, o: None, "99\t0\n", None, r"record 99 at byte 0: points to the same byte as "
                                         r"record 0"),
], ids=["length_long", "length_short", "label_count", "unlisted_record", "same_offset"])
def test_framing_damage_is_named(packed, tmp_path, mutate, idx_extra, drop, expected):
    rec = damaged(packed, tmp_path, mutate)
    idx = rec[:-4] + ".idx"
    lines = [line for line in open(idx) if drop is None or not line.startswith(f"{drop}\t")]
    open(idx, "w").write("".join(lines) + idx_extra)
    with pytest.raises(DataError, match=r"bad\.rec: " + expected):
        RecordDataset(rec)


def test_records_holding_the_marker_word_pass(tmp_path, capsys):
    """dmlc stores a record whose data holds the marker word in parts; that is not damage."""
    img = np.random.default_rng(1).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    jpeg = cv2.imencode(".jpg", img)[1].tobytes()
    tail = b"\0" * (-(24 + len(jpeg)) % 4) + struct.pack("<I", 0xCED7230A) * 2 + b"end"
    rec = write_encoded_records(str(tmp_path / "parts.rec"),
                                [([0.0], jpeg), ([1.0], jpeg + tail), ([2.0], jpeg)])
    dataset = RecordDataset(rec)
    assert dataset.read(1)[1] == jpeg + tail
    assert rec_check_main([rec, "--quiet", "--workers", "1"]) == 0
    assert "none damaged" in capsys.readouterr().out


def test_insightface_layout_checks_identity_records(tmp_path):
    make_image_folder(str(tmp_path / "img"), identities=2, per_identity=2, size=(24, 24))
    (tmp_path / "ins").mkdir()
    pack_image_folder(str(tmp_path / "img"), str(tmp_path / "ins" / "train"),
                      layout="insightface", progress=False, log=None)
    dataset = RecordDataset(str(tmp_path / "ins"))  # empty header/identity payloads pass
    assert dataset.layout == "insightface" and not dataset.problems
    last = dataset.index[dataset.identity_keys[-1]]
    data = bytearray((tmp_path / "ins" / "train.rec").read_bytes())
    data[last:last + 4] = b"junk"
    (tmp_path / "ins" / "train.rec").write_bytes(bytes(data))
    with pytest.raises(DataError, match=rf"train\.rec: record 6 at byte {last}: no record marker"):
        RecordDataset(str(tmp_path / "ins"))


def test_passed_check_is_stamped_once(packed, tmp_path, monkeypatch):
    monkeypatch.setattr(check_stamp, "STAMP_MIN_RECORDS", 0)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    rec = damaged(packed, tmp_path, lambda d, o: None, name="ok")
    RecordDataset(rec, cache_dir=str(tmp_path / "cache"))
    assert (tmp_path / "cache" / "ok.checked.json").is_file()

    def no_scan(*args):
        raise AssertionError("scanned again")
    monkeypatch.setattr(recordio, "scan_records", no_scan)
    RecordDataset(rec, cache_dir=str(tmp_path / "cache"))  # stamp matches: no scan
    stat = os.stat(rec)
    os.utime(rec, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file changed
    with pytest.raises(AssertionError, match="scanned again"):
        RecordDataset(rec, cache_dir=str(tmp_path / "cache"))


def test_unwritable_stamp_folder_falls_back(packed, tmp_path, monkeypatch):
    monkeypatch.setattr(check_stamp, "STAMP_MIN_RECORDS", 0)
    (tmp_path / "a_file").write_text("")
    unwritable = str(tmp_path / "a_file" / "cache")  # cannot be made, even as root
    rec = damaged(packed, tmp_path, lambda d, o: None, name="ok")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    RecordDataset(rec, cache_dir=unwritable)
    stamps = list((tmp_path / "xdg" / "face-recognition" / "rec-checks").iterdir())
    assert len(stamps) == 1 and stamps[0].name.endswith("-ok.checked.json")
    monkeypatch.setenv("XDG_CACHE_HOME", os.path.join(unwritable, "xdg"))
    rec2 = damaged(packed, tmp_path, lambda d, o: None, name="ok2")
    assert RecordDataset(rec2, cache_dir=unwritable).num_images == 12  # no stamp, still opens


def test_small_files_leave_no_stamp(packed, tmp_path):
    rec = damaged(packed, tmp_path, lambda d, o: None, name="small")
    RecordDataset(rec)
    assert not any(name.endswith(".checked.json") for name in os.listdir(tmp_path))
    assert mx.recordio.MXIndexedRecordIO(rec[:-4] + ".idx", rec, "r").keys
