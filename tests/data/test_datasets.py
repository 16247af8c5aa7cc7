"""Dataset reading: both layouts through ImageRecordIter, conversion, parts, bad files, and
writing (`rec_writer`: the layouts record by record, atomic replacement)."""
import os

import cv2
import mxnet as mx
import numpy as np
import pytest

from recognition.data.reading.iterator import FaceRecordIter
from recognition.data.reading.recordio import RecordDataset, read_property
from recognition.data.writing.convert import convert_layout
from recognition.data.writing.packing import pack_image_folder
from recognition.data.writing.rec_writer import write_rec
from recognition.errors import DataError

from tests.support.images import make_image_folder


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    base = tmp_path_factory.mktemp("packed")
    root = base / "images"
    make_image_folder(str(root), identities=4, per_identity=5, size=(32, 32))
    plain = pack_image_folder(str(root), str(base / "plain"), progress=False, log=None)
    ins_dir = base / "ins"
    ins_dir.mkdir()
    ins = pack_image_folder(str(root), str(ins_dir / "train"), layout="insightface",
                            progress=False, log=None)
    return base, plain, ins


def read_all(path, **kw):
    it = FaceRecordIter(path, batch_size=3, data_shape=(3, 32, 32), shuffle=False,
                        preprocess_threads=1, **kw)
    images, labels = [], []
    for batch in it:
        keep = 3 - batch.pad
        images.append(batch.data[0].asnumpy()[:keep])
        labels.append(FaceRecordIter.identities(batch).asnumpy()[:keep])
    return it, np.concatenate(images), np.concatenate(labels)


def test_insightface_layout_structure(packed):
    base, _, ins = packed
    reader = mx.recordio.MXIndexedRecordIO(str(base / "ins/train.idx"),
                                           str(base / "ins/train.rec"), "r")
    header, payload = mx.recordio.unpack(reader.read_idx(0))
    assert header.flag > 0 and payload == b"" and list(header.label) == [21, 25]
    for identity in range(4):
        h, p = mx.recordio.unpack(reader.read_idx(21 + identity))
        lo, hi = int(h.label[0]), int(h.label[1])
        assert p == b"" and hi - lo == 5
        assert {mx.recordio.unpack(reader.read_idx(k))[0].label for k in range(lo, hi)} == {identity}
    assert read_property(str(base / "ins")) == (4, 32, 32)


def test_both_layouts_give_the_same_images(packed):
    base, _, _ = packed
    it_plain, x_plain, y_plain = read_all(str(base / "plain.rec"))
    it_ins, x_ins, y_ins = read_all(str(base / "ins"))
    assert it_plain.num_classes == it_ins.num_classes == 4
    assert len(y_plain) == len(y_ins) == 20
    order_plain = np.lexsort((x_plain.reshape(20, -1).sum(1), y_plain))
    order_ins = np.lexsort((x_ins.reshape(20, -1).sum(1), y_ins))
    np.testing.assert_array_equal(x_plain[order_plain], x_ins[order_ins])
    np.testing.assert_array_equal(y_plain[order_plain], y_ins[order_ins])
    assert x_plain.dtype == np.float32 and x_plain.max() > 1.0  # raw 0..255, not normalised


def test_parts_split_the_dataset_disjointly(packed):
    base, _, _ = packed
    seen = []
    for part in range(2):
        _, x, _ = read_all(str(base / "ins"), part_index=part, num_parts=2)
        seen.append({arr.tobytes() for arr in x})
    assert not seen[0] & seen[1]
    assert len(seen[0]) + len(seen[1]) == 20


def test_convert_round_trip_is_byte_identical(packed, tmp_path):
    base, _, _ = packed
    ins = RecordDataset(str(base / "ins"))
    plain_rec = convert_layout(ins, str(tmp_path / "p.rec"), "plain", progress=False, log=None)
    back_dir = tmp_path / "back"
    back_dir.mkdir()
    back = convert_layout(plain_rec, str(back_dir / "train.rec"), "insightface", progress=False,
                          log=None)
    assert open(back, "rb").read() == open(base / "ins/train.rec", "rb").read()
    assert RecordDataset(plain_rec).layout == "plain"
    # `property` names the images' own size (32x32 here), as im2rec's does: not 112x112
    assert open(back_dir / "property").read() == open(base / "ins/property").read()
    assert read_property(str(back_dir)) == (4, 32, 32)


def test_truncated_rec_is_reported(packed, tmp_path):
    base, _, _ = packed
    data = open(base / "plain.rec", "rb").read()
    (tmp_path / "t.rec").write_bytes(data[: len(data) - 100])
    (tmp_path / "t.idx").write_bytes(open(base / "plain.idx", "rb").read())
    with pytest.raises(DataError, match=r"t\.rec.*truncated"):
        RecordDataset(str(tmp_path / "t.rec"))


def test_idx_past_the_end_is_reported(packed, tmp_path):
    base, _, _ = packed
    (tmp_path / "t.rec").write_bytes(open(base / "plain.rec", "rb").read())
    (tmp_path / "t.idx").write_text(open(base / "plain.idx").read() + "999\t99999999\n")
    with pytest.raises(DataError, match=r"t\.idx:\d+: key 999 .*past the end"):
        RecordDataset(str(tmp_path / "t.rec"))


def test_idx_of_another_file_is_reported(packed, tmp_path):
    base, _, _ = packed
    (tmp_path / "t.rec").write_bytes(open(base / "plain.rec", "rb").read())
    (tmp_path / "t.idx").write_text("0\t5\n1\t20\n")
    with pytest.raises(DataError, match="does not belong"):
        RecordDataset(str(tmp_path / "t.rec"))


def test_missing_files_and_bad_property(tmp_path, packed):
    with pytest.raises(DataError, match="record file not found"):
        RecordDataset(str(tmp_path / "nothing.rec"))
    (tmp_path / "x.rec").write_bytes(b"")
    with pytest.raises(DataError, match=r"x\.idx: index file not found"):
        RecordDataset(str(tmp_path / "x.rec"))
    with pytest.raises(DataError, match="property file not found"):
        read_property(str(tmp_path))
    (tmp_path / "property").write_text("lots\n")
    with pytest.raises(DataError, match="num_classes,height,width"):
        read_property(str(tmp_path))


def test_unknown_augmentation_is_an_error(packed):
    base, _, _ = packed
    with pytest.raises(ValueError, match="rand_mirror"):
        FaceRecordIter(str(base / "plain.rec"), 2, rand_flip=True)


def test_mirror_augmentation_flips(packed):
    base, _, _ = packed
    _, x, _ = read_all(str(base / "plain.rec"))
    _, x_aug, _ = read_all(str(base / "plain.rec"), rand_mirror=True, seed=3)
    flipped = sum(np.array_equal(a, b[:, :, ::-1]) and not np.array_equal(a, b)
                  for a, b in zip(x, x_aug))
    assert 2 <= flipped <= 18


def test_other_sizes_are_scaled_then_centre_cropped(tmp_path):
    root = tmp_path / "img"
    make_image_folder(str(root), identities=1, per_identity=2, size=(40, 60))
    summary = pack_image_folder(str(root), str(tmp_path / "wide"), progress=False, log=None)
    dataset = RecordDataset(summary.rec_path)
    assert dataset.image_size() == (40, 60)
    it = FaceRecordIter(summary.rec_path, 2, data_shape=(3, 20, 20), shuffle=False,
                        preprocess_threads=1)
    batch = next(it)
    assert batch.data[0].shape == (2, 3, 20, 20)
    payload = dataset.read(dataset.image_keys[0])[1]
    full = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    expected = cv2.resize(np.ascontiguousarray(full), (30, 20), interpolation=cv2.INTER_LINEAR)
    centre = expected[:, 5:25].transpose(2, 0, 1).astype(np.float32)
    assert np.abs(batch.data[0][0].asnumpy() - centre).mean() < 8  # same content, not a corner


def _records(labels):
    """`(IRHeader, payload)` per label; payloads are copied as given, so any bytes do."""
    return [(mx.recordio.IRHeader(0, label, key, 0), b"payload %d" % key)
            for key, label in enumerate(labels)]


def _temporaries(folder):
    return [name for name in os.listdir(folder) if ".tmp" in name or name.endswith(".partial")]


def _stock_write(prefix, records):
    """Write `[(key, IRHeader, payload)]` one by one with stock MXNet, as a reference."""
    writer = mx.recordio.MXIndexedRecordIO(prefix + ".idx", prefix + ".rec", "w")
    for key, header, payload in records:
        writer.write_idx(key, mx.recordio.pack(header, payload))
    writer.close()
    return open(prefix + ".rec", "rb").read(), open(prefix + ".idx", "rb").read()


def _read_stock(prefix):
    reader = mx.recordio.MXIndexedRecordIO(prefix + ".idx", prefix + ".rec", "r")
    out = {k: mx.recordio.unpack(reader.read_idx(k)) for k in reader.keys}
    reader.close()
    return out


def test_write_rec_plain_is_stock_mxnet_record_by_record(tmp_path):
    records = _records([0.0, 1.0, 1.0, np.array([2, 5, 6], np.float32)])
    assert write_rec(str(tmp_path / "ours.rec"), records) == (4, 3)
    want = _stock_write(str(tmp_path / "stock"), [(h.id, h, p) for h, p in records])
    assert (open(tmp_path / "ours.rec", "rb").read(), open(tmp_path / "ours.idx", "rb").read()) \
        == want
    back = _read_stock(str(tmp_path / "ours"))
    assert sorted(back) == [0, 1, 2, 3] and back[3][1] == b"payload 3"
    assert list(back[3][0].label) == [2, 5, 6] and back[1][0].label == 1.0
    assert _temporaries(tmp_path) == []


def test_write_rec_insightface_is_stock_mxnet_record_by_record(tmp_path):
    (tmp_path / "ours").mkdir()
    records = _records([0.0, 0.0, 2.0, 2.0, 2.0])  # identity 1 has no images
    assert write_rec(str(tmp_path / "ours/train.rec"), records, "insightface", (12, 34)) == (5, 3)
    IR = mx.recordio.IRHeader
    want = _stock_write(str(tmp_path / "stock"), (
        [(0, IR(2, [6, 9], 0, 0), b"")]
        + [(k + 1, h._replace(id=k + 1), p) for k, (h, p) in enumerate(records)]
        + [(6, IR(2, [1, 3], 6, 0), b""), (7, IR(2, [6, 6], 7, 0), b""),
           (8, IR(2, [3, 6], 8, 0), b"")]))
    assert (open(tmp_path / "ours/train.rec", "rb").read(),
            open(tmp_path / "ours/train.idx", "rb").read()) == want
    assert read_property(str(tmp_path / "ours")) == (3, 12, 34)
    assert list(_read_stock(str(tmp_path / "ours/train"))[0][0].label) == [6, 9]


@pytest.mark.parametrize("layout", ["plain", "insightface"])
def test_failed_write_keeps_the_old_pair(layout, tmp_path):
    rec = str(tmp_path / "train.rec")
    write_rec(rec, _records([0.0, 1.0]), layout, (8, 8))
    before = {name: open(tmp_path / name, "rb").read() for name in os.listdir(tmp_path)}

    def failing():
        yield from _records([0.0, 0.0, 1.0])
        raise RuntimeError("disk went away")
    with pytest.raises(RuntimeError, match="disk went away"):
        write_rec(rec, failing(), layout, (8, 8))
    after = {name: open(tmp_path / name, "rb").read() for name in os.listdir(tmp_path)}
    assert after == before and _temporaries(tmp_path) == []


def test_failed_convert_keeps_the_old_pair(packed, tmp_path, monkeypatch):
    base, _, _ = packed
    for ext in (".rec", ".idx"):  # an older pair under the output name
        (tmp_path / f"train{ext}").write_bytes((base / f"plain{ext}").read_bytes())
    before = {name: open(tmp_path / name, "rb").read() for name in os.listdir(tmp_path)}
    calls, pack = [], mx.recordio.pack

    def failing_pack(*args):
        calls.append(1)
        if len(calls) == 10:
            raise OSError(28, "No space left on device")
        return pack(*args)
    monkeypatch.setattr(mx.recordio, "pack", failing_pack)
    with pytest.raises(OSError, match="No space"):
        convert_layout(str(base / "ins"), str(tmp_path / "train.rec"), "plain", progress=False,
                       log=None)
    after = {name: open(tmp_path / name, "rb").read() for name in os.listdir(tmp_path)}
    assert after == before and _temporaries(tmp_path) == []
