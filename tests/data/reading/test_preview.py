"""`tools/preview.py`: a contact sheet of a `.rec` showing the real images in the right places,
in both layouts; damaged records skipped and named; bad input refused naming the file."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from recognition.commands.preview import main
from recognition.data.reading.preview import LAYOUT, make_sheet
from recognition.data.reading.recordio import RecordDataset
from recognition.data.writing.packing import pack_image_folder
from recognition.errors import DataError

from tests.support import REPO
from tests.support.images import make_image_folder

H, W = 40, 48  # make_image_folder's image size


@pytest.fixture(scope="module", params=["plain", "insightface"])
def rec(request, tmp_path_factory):
    """3 identities x 4 JPEGs packed in one layout; the `.rec` path."""
    base = tmp_path_factory.mktemp(request.param)
    make_image_folder(str(base / "images"), identities=3, per_identity=4, size=(H, W))
    os.makedirs(base / "data")
    pack_image_folder(str(base / "images"), str(base / "data" / "train"), layout=request.param,
                      progress=False, log=None, pass_through=True)
    return str(base / "data" / "train.rec")


def _decoded(path, key):
    """`(identity label, BGR image)` of record `key`, read independently of the sheet."""
    dataset = RecordDataset(path)
    header, payload = dataset.read(key)
    dataset.close()
    label = header.label[0] if np.ndim(header.label) else header.label
    return int(label), cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)


def _tile(png, row, col):
    y = LAYOUT.pad + row * (H + LAYOUT.caption + LAYOUT.pad)
    x = LAYOUT.margin + col * (W + LAYOUT.pad)
    return png[y:y + H, x:x + W]


def test_sheet_shows_each_record_in_its_row_and_column(rec, tmp_path, capsys):
    out = tmp_path / "sheet.png"
    assert main([rec, "-o", str(out), "--identities", "2", "--per-identity", "3",
                 "--seed", "5"]) == 0
    assert "2 identities x 3 images (48x40 each), 0 damaged" in capsys.readouterr().out
    assert out.stat().st_size > 0
    png = cv2.imread(str(out), cv2.IMREAD_COLOR)
    assert png.shape == (LAYOUT.pad + 2 * (H + LAYOUT.caption + LAYOUT.pad),
                         LAYOUT.margin + 3 * (W + LAYOUT.pad), 3)
    sheet = make_sheet(rec, 2, 3, seed=5)  # the same draw: which records went where
    assert len(sheet.rows) == 2 and all(len(keys) == 3 for _, keys in sheet.rows)
    assert len({k for _, keys in sheet.rows for k in keys}) == 6
    for row, (identity, keys) in enumerate(sheet.rows):
        for col, key in enumerate(keys):
            label, image = _decoded(rec, key)
            assert label == identity  # the row's number is the records' label
            np.testing.assert_array_equal(_tile(png, row, col), image)  # PNG is lossless
        y = LAYOUT.pad + row * (H + LAYOUT.caption + LAYOUT.pad)
        assert (png[y:y + H, :LAYOUT.margin] < 128).any()  # its number is written beside it
    # another seed draws other images (of 4 per identity, 3 are shown)
    assert make_sheet(rec, 2, 3, seed=6).rows != sheet.rows


def test_damaged_record_is_skipped_named_and_replaced(rec, tmp_path, capsys):
    folder = tmp_path / "copy"
    os.makedirs(folder)
    for ext in (".rec", ".idx", ".lst"):
        src = rec[:-4] + ext
        with open(src, "rb") as f, open(folder / ("train" + ext), "wb") as g:
            g.write(f.read())
    if os.path.isfile(os.path.join(os.path.dirname(rec), "property")):
        with open(os.path.join(os.path.dirname(rec), "property")) as f:
            (folder / "property").write_text(f.read())
    path = str(folder / "train.rec")
    sheet = make_sheet(path, 1, 2, seed=0)
    victim = sheet.rows[0][1][0]
    offset = RecordDataset(path).index[victim]
    with open(path, "r+b") as f:  # the JPEG's first bytes: no longer an image
        f.seek(offset + 8 + 24)
        f.write(b"XXXX")
    out = tmp_path / "damaged.png"
    assert main([path, "-o", str(out), "--identities", "1", "--per-identity", "2",
                 "--seed", "0"]) == 0
    err = capsys.readouterr().err
    assert f"skipped record {victim} at byte {offset}:" in err
    after = make_sheet(path, 1, 2, seed=0)
    assert after.rows[0][0] == sheet.rows[0][0]  # same identity
    assert victim not in after.rows[0][1] and len(after.rows[0][1]) == 2  # another image of it
    assert [k for k, _, _ in after.skipped] == [victim]


def test_bad_input_is_refused_naming_the_file(tmp_path, capsys):
    missing = str(tmp_path / "nope.rec")
    assert main([missing, "-o", str(tmp_path / "a.png")]) == 2
    assert missing in capsys.readouterr().err
    text = tmp_path / "list.txt"
    text.write_text("not a record file\n")
    assert main([str(text), "-o", str(tmp_path / "a.png")]) == 2
    assert f"{text}: not a .rec" in capsys.readouterr().err
    garbage = tmp_path / "junk.rec"
    garbage.write_bytes(b"\0" * 64)
    (tmp_path / "junk.idx").write_text("0\t0\n")
    with pytest.raises(DataError, match="junk.rec"):
        make_sheet(str(garbage))
    assert not (tmp_path / "a.png").exists()


def test_tool_runs_as_a_script(rec, tmp_path):
    out = tmp_path / "s.png"
    proc = subprocess.run([sys.executable, os.path.join(REPO, "tools", "preview.py"), rec,
                           "-o", str(out), "--identities", "3", "--per-identity", "4"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert cv2.imread(str(out)).shape[:2] == (LAYOUT.pad + 3 * (H + LAYOUT.caption + LAYOUT.pad),
                                              LAYOUT.margin + 4 * (W + LAYOUT.pad))
