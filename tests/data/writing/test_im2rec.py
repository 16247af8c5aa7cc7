"""im2rec: MXNet-compatible lists and records, both directions, and bad input."""
import os
import subprocess
import sys

import cv2
import mxnet as mx
import numpy as np
import pytest

from recognition.commands.im2rec import main as im2rec_main
from recognition.data.reading.recordio import RecordDataset
from recognition.data.writing.image_list import read_lst
from recognition.data.writing.packing import pack_image_folder

from tests.support import REPO
from tests.support.images import make_image_folder


STOCK_IM2REC = os.path.join(os.path.dirname(mx.__file__), "tools", "im2rec.py")


def stock_im2rec(*args):
    subprocess.run([sys.executable, STOCK_IM2REC] + [str(a) for a in args], check=True,
                   capture_output=True)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "images"
    images = make_image_folder(str(root))
    return root, images


def test_list_matches_stock_im2rec(folder, tmp_path):
    root, _ = folder
    stock_im2rec(tmp_path / "stock", root, "--list", "--recursive", "--no-shuffle")
    assert im2rec_main([str(tmp_path / "ours"), str(root), "--list", "--recursive",
                        "--no-shuffle"]) == 0
    assert (tmp_path / "ours.lst").read_text() == (tmp_path / "stock.lst").read_text()


def test_our_rec_read_by_stock_mxnet(folder, tmp_path):
    root, images = folder
    prefix = str(tmp_path / "ours")
    im2rec_main([prefix, str(root), "--list", "--recursive"])
    im2rec_main([prefix, str(root), "--quality", "100", "--encoding", ".png", "--quiet"])
    items = {index: (rel, labels) for index, rel, labels in read_lst(prefix + ".lst")}
    reader = mx.recordio.MXIndexedRecordIO(prefix + ".idx", prefix + ".rec", "r")
    for key in reader.keys:
        header, img = mx.recordio.unpack_img(reader.read_idx(key))
        rel, labels = items[key]
        assert header.label == labels[0]
        np.testing.assert_array_equal(img[:, :, ::-1], images[rel])  # PNG: lossless
    it = mx.io.ImageRecordIter(path_imgrec=prefix + ".rec", path_imgidx=prefix + ".idx",
                               data_shape=(3, 40, 48), batch_size=12, shuffle=False)
    batch = next(it)
    for n, key in enumerate(reader.keys):  # file order
        rel, labels = items[key]
        assert batch.label[0][n].asscalar() == labels[0]
        np.testing.assert_array_equal(batch.data[0][n].asnumpy().transpose(1, 2, 0), images[rel])


def test_stock_rec_read_by_us(folder, tmp_path):
    root, images = folder
    prefix = tmp_path / "stock"
    stock_im2rec(prefix, root, "--list", "--recursive")
    stock_im2rec(prefix, root, "--encoding", ".png")
    dataset = RecordDataset(str(prefix) + ".rec")
    assert dataset.layout == "plain" and dataset.num_images == 12
    assert dataset.num_classes() == 3
    items = {index: (rel, labels) for index, rel, labels in read_lst(str(prefix) + ".lst")}
    for key in dataset.image_keys:
        header, payload = dataset.read(key)
        rel, labels = items[key]
        img = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
        np.testing.assert_array_equal(img, images[rel])
        assert header.label == labels[0]


def test_pass_through_is_byte_identical(folder, tmp_path):
    root, _ = folder
    prefix = str(tmp_path / "raw")
    im2rec_main([prefix, str(root), "--list", "--recursive"])
    im2rec_main([prefix, str(root), "--pass-through", "--num-thread", "2", "--quiet"])
    dataset = RecordDataset(prefix)
    items = {index: rel for index, rel, _ in read_lst(prefix + ".lst")}
    for key in dataset.image_keys:
        assert dataset.read(key)[1] == (root / items[key]).read_bytes()


def test_resize_center_crop_and_pack_label(tmp_path):
    root = tmp_path / "img"
    make_image_folder(str(root), identities=2, per_identity=2, size=(60, 90))
    prefix = str(tmp_path / "p")
    im2rec_main([prefix, str(root), "--list", "--recursive"])
    lines = open(prefix + ".lst").read().splitlines()
    with open(prefix + ".lst", "w") as f:  # add two attribute columns
        for line in lines:
            index, label, rel = line.split("\t")
            f.write(f"{index}\t{label}\t1.000000\t7.000000\t{rel}\n")
    im2rec_main([prefix, str(root), "--resize", "32", "--center-crop", "--pack-label", "--quiet"])
    reader = mx.recordio.MXIndexedRecordIO(prefix + ".idx", prefix + ".rec", "r")
    header, img = mx.recordio.unpack_img(reader.read_idx(reader.keys[0]))
    assert img.shape == (32, 32, 3)
    assert header.flag == 3 and list(header.label[1:]) == [1.0, 7.0]


def test_corrupt_images_are_reported_and_skipped(folder, tmp_path, capsys):
    root, _ = folder
    (root / "id_001" / "broken.jpg").write_bytes(b"not an image at all")
    good = (root / "id_000" / "0.jpg").read_bytes()
    (root / "id_002" / "cut.jpg").write_bytes(good[: len(good) // 2])
    prefix = str(tmp_path / "c")
    im2rec_main([prefix, str(root), "--list", "--recursive"])
    assert im2rec_main([prefix, str(root), "--num-thread", "2", "--quiet"]) == 0
    out = capsys.readouterr()
    assert "broken.jpg" in out.out + out.err and "cut.jpg" in out.out + out.err
    assert "packed 12 images" in out.out and "skipped 2" in out.out
    assert RecordDataset(prefix).num_images == 12


@pytest.mark.parametrize("case", ["missing_root", "empty_root", "unknown_ext", "no_list"])
def test_bad_input_gives_clear_error(case, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "sub").mkdir()
    args = {
        "missing_root": [str(tmp_path / "p"), str(tmp_path / "nowhere"), "--list"],
        "empty_root": [str(tmp_path / "p"), str(empty), "--list", "--recursive"],
        "unknown_ext": [str(tmp_path / "p"), str(empty), "--list", "--exts", ".xyz"],
        "no_list": [str(tmp_path / "p"), str(empty)],
    }[case]
    assert im2rec_main(args) == 2
    err = capsys.readouterr().err
    expected = {"missing_root": "nowhere", "empty_root": "no images", "unknown_ext": ".xyz",
                "no_list": "--list"}[case]
    assert err.startswith("error: ") and expected in err


def test_train_val_split_and_chunks(folder, tmp_path):
    root, _ = folder
    prefix = str(tmp_path / "s")
    im2rec_main([prefix, str(root), "--list", "--recursive", "--train-ratio", "0.5",
                 "--test-ratio", "0.25", "--chunks", "2"])
    sizes = {name: len(read_lst(os.path.join(tmp_path, name)))
             for name in os.listdir(tmp_path) if name.endswith(".lst")}
    assert sizes == {"s_0_train.lst": 3, "s_0_test.lst": 1, "s_0_val.lst": 2,
                     "s_1_train.lst": 3, "s_1_test.lst": 1, "s_1_val.lst": 2}


def _no_temporaries(folder):
    return not [name for name in os.listdir(folder)
                if ".tmp" in name or name.endswith(".partial")]


def test_empty_image_is_skipped_not_a_crash(folder, tmp_path, capsys):
    root, _ = folder
    (root / "id_001" / "empty.jpg").write_bytes(b"")  # cv2.imdecode raises on an empty buffer
    prefix = str(tmp_path / "e")
    im2rec_main([prefix, str(root), "--list", "--recursive"])
    assert im2rec_main([prefix, str(root), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"skipped: {root / 'id_001' / 'empty.jpg'}: empty file (0 bytes)" in out
    assert "packed 12 images" in out and "skipped 1 (1 empty file)" in out
    assert _no_temporaries(tmp_path) and RecordDataset(prefix).num_images == 12


def test_skip_summary_counts_each_reason(folder, tmp_path, capsys):
    root, _ = folder
    good = (root / "id_000" / "0.jpg").read_bytes()
    (root / "id_000" / "a.jpg").write_bytes(b"")
    (root / "id_001" / "b.jpg").write_bytes(b"")
    (root / "id_002" / "c.jpg").write_bytes(good[: len(good) // 2])
    (root / "id_002" / "d.jpg").write_bytes(b"junk")
    prefix = str(tmp_path / "s")
    im2rec_main([prefix, str(root), "--list", "--recursive"])
    assert im2rec_main([prefix, str(root), "--quiet", "--num-thread", "2"]) == 0
    assert ("skipped 4 (2 empty file, 1 not decodable, 1 truncated JPEG)"
            in capsys.readouterr().out)


def test_any_failure_while_packing_removes_temporaries(folder, tmp_path, monkeypatch, capsys):
    from recognition.data.writing import packing

    root, _ = folder
    prefix = str(tmp_path / "f")
    im2rec_main([prefix, str(root), "--list", "--recursive"])
    calls = []

    def failing_header(*args):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("disk went away")
        return original(*args)
    original = packing._header
    monkeypatch.setattr(packing, "_header", failing_header)
    with pytest.raises(RuntimeError, match="disk went away"):
        im2rec_main([prefix, str(root), "--quiet"])
    assert _no_temporaries(tmp_path) and not os.path.exists(prefix + ".rec")
    monkeypatch.undo()
    for name in os.listdir(root / "id_000"):  # nothing packable: an error, no leftovers
        (root / "id_000" / name).write_bytes(b"")
    lst = tmp_path / "only0.lst"
    lst.write_text("".join(line for line in open(prefix + ".lst") if "id_000" in line))
    assert im2rec_main([str(tmp_path / "only0"), str(root), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "none of the 4 images could be packed (skipped 4 (4 empty file))" in err
    assert _no_temporaries(tmp_path)


def _unreadable(path):
    """`os.scandir` that refuses `path` as a chmod-000 folder would (also when run as root)."""
    real = os.scandir

    def scandir(top="."):
        if os.path.normpath(os.fspath(top)) == os.path.normpath(str(path)):
            raise PermissionError(13, "Permission denied", os.fspath(top))
        return real(top)
    return scandir


def test_unreadable_folder_is_reported_and_counted(folder, tmp_path, monkeypatch, capsys):
    root, _ = folder
    monkeypatch.setattr(os, "scandir", _unreadable(root / "id_001"))
    prefix = str(tmp_path / "u")
    assert im2rec_main([prefix, str(root), "--list", "--recursive", "--no-shuffle"]) == 0
    captured = capsys.readouterr()
    assert (f"skipped: {root / 'id_001'}: cannot read folder (Permission denied); its images "
            f"are left out") in captured.err
    assert "listed 8 images of 2 labels" in captured.out
    assert "skipped 1 (1 unreadable folder)" in captured.out
    assert {labels[0] for _, _, labels in read_lst(prefix + ".lst")} == {0.0, 1.0}


def test_unreadable_root_is_an_error(folder, tmp_path, monkeypatch, capsys):
    root, _ = folder
    monkeypatch.setattr(os, "scandir", _unreadable(root))
    assert im2rec_main([str(tmp_path / "r"), str(root), "--list", "--recursive"]) == 2
    assert "cannot read the image root (Permission denied)" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads chmod-000 folders anyway")
def test_chmod_000_folder_is_reported(folder, tmp_path, capsys):
    root, _ = folder
    os.chmod(root / "id_002", 0)
    try:
        assert im2rec_main([str(tmp_path / "c"), str(root), "--list", "--recursive"]) == 0
    finally:
        os.chmod(root / "id_002", 0o755)
    captured = capsys.readouterr()
    assert "id_002: cannot read folder" in captured.err
    assert "skipped 1 (1 unreadable folder)" in captured.out


def test_non_utf8_file_name_is_reported_and_skipped(folder, tmp_path, capsys):
    root, _ = folder
    good = (root / "id_000" / "0.jpg").read_bytes()
    with open(os.path.join(os.fsencode(root / "id_000"), b"caf\xe9.jpg"), "wb") as f:
        f.write(good)  # a Latin-1 name: not UTF-8
    prefix = str(tmp_path / "n")
    assert im2rec_main([prefix, str(root), "--list", "--recursive"]) == 0
    captured = capsys.readouterr()
    assert "id_000/caf\\xe9.jpg: file name is not valid UTF-8 (rename it)" in captured.err
    assert "listed 12 images of 3 labels" in captured.out
    assert "skipped 1 (1 name not UTF-8)" in captured.out
    open(prefix + ".lst", "rb").read().decode("utf-8")  # the list stays valid UTF-8
    assert im2rec_main([prefix, str(root), "--quiet"]) == 0
    assert RecordDataset(prefix).num_images == 12


def test_workers_are_not_forked_from_a_caller_that_used_opencv(tmp_path):
    """A caller that ran OpenCV's thread pool, then packs with 2 workers: the workers come
    from a forkserver (a fork of this process could copy a held OpenCV lock and hang), and the
    pack finishes and equals a one-process pack byte for byte."""
    make_image_folder(str(tmp_path / "img"), identities=3, per_identity=4)
    script = f"""
import multiprocessing, sys
import cv2, numpy as np
cv2.setNumThreads(4)
for _ in range(20):  # keep OpenCV's worker threads busy right before the pool starts
    cv2.resize(np.zeros((2000, 2000, 3), np.uint8), (1000, 1000))
methods = []
real = multiprocessing.get_context
multiprocessing.get_context = lambda method=None: methods.append(method) or real(method)
from recognition.data.writing.packing import pack_image_folder
pack_image_folder({str(tmp_path / 'img')!r}, {str(tmp_path / 'two')!r}, num_workers=2,
                  progress=False, log=None)
print("methods", methods)
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.returncode == 0, proc.stderr
    assert "methods ['forkserver']" in proc.stdout
    pack_image_folder(str(tmp_path / "img"), str(tmp_path / "one"), num_workers=1,
                      progress=False, log=None)
    assert (tmp_path / "two.rec").read_bytes() == (tmp_path / "one.rec").read_bytes()
