"""The training reader's global shuffle (data_order='global'): ImageRecordIter's pixels, every
worker a slice of one order of all images that changes each epoch, exact resume, damage named."""
import shutil

import numpy as np
import pytest

from recognition.data.reading.iterator import FaceRecordIter, training_reader
from recognition.data.reading.shared_order import SharedOrderReader, epoch_slice
from recognition.data.writing.packing import pack_image_folder
from recognition.errors import ConfigError, DataError

from tests.support.images import garble, make_image_folder

IDENTITIES, PER_IDENTITY = 10, 6


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """60 JPEGs of 40x48 (10 identities, grouped as packed) in both layouts."""
    base = tmp_path_factory.mktemp("shared_order")
    make_image_folder(str(base / "img"), IDENTITIES, PER_IDENTITY, size=(40, 48))
    pack_image_folder(str(base / "img"), str(base / "plain"), progress=False, log=None)
    (base / "ins").mkdir()
    pack_image_folder(str(base / "img"), str(base / "ins" / "train"), layout="insightface",
                      progress=False, log=None)
    return {"plain": str(base / "plain.rec"), "insightface": str(base / "ins" / "train.rec")}


def read_epoch(reader, seed=0, epoch=0, skip=0):
    reader.start_epoch(seed, epoch, skip)
    return [(b.data[0].asnumpy(), b.label[0].asnumpy()) for b in reader]


@pytest.mark.parametrize("layout", ["plain", "insightface"])
@pytest.mark.parametrize("shape", [(3, 40, 48), (3, 24, 24)])
def test_pixels_and_labels_equal_mxnet_image_record_iter(packed, layout, shape):
    """In file order and without flips, the same batches as stock ImageRecordIter (through
    FaceRecordIter), at the stored size and resized by area averaging + centre crop."""
    ours = SharedOrderReader(packed[layout], 6, shape, shuffle=False)
    mxnet = FaceRecordIter(packed[layout], 6, shape, shuffle=False)
    for (data, label), batch in zip(read_epoch(ours), mxnet):
        np.testing.assert_array_equal(data, batch.data[0].asnumpy())
        np.testing.assert_array_equal(label, batch.label[0].asnumpy())
    assert data.shape == (6,) + shape and data.dtype == np.float32


def test_workers_share_one_order_that_changes_every_epoch(packed):
    """Three workers' slices of an epoch are disjoint, equal and cover all but N % W images;
    each sees nearly every identity (a contiguous part of an identity-grouped file sees 1/W);
    the next epoch deals the images out anew."""
    n, w = IDENTITIES * PER_IDENTITY, 3
    for epoch in (0, 1):
        slices = [epoch_slice(n, w, r, seed=5, epoch=epoch) for r in range(w)]
        union = np.concatenate(slices)
        assert len(set(union.tolist())) == len(union) == n - n % w
    assert not np.array_equal(epoch_slice(n, w, 0, 5, 0), epoch_slice(n, w, 0, 5, 1))
    seen = []
    for rank in range(2):
        reader = SharedOrderReader(packed["plain"], 5, (3, 40, 48), part_index=rank, num_parts=2)
        labels = np.concatenate([label for _, label in read_epoch(reader, seed=5)])
        assert len(labels) == 30
        seen.append(set(labels.astype(int).tolist()))
    assert len(seen[0]) >= IDENTITIES - 1 and len(seen[1]) >= IDENTITIES - 1
    part = FaceRecordIter(packed["plain"], 5, (3, 40, 48), part_index=0, num_parts=2)
    part_labels = np.concatenate([FaceRecordIter.identities(b).asnumpy() for b in part])
    assert len(set(part_labels.astype(int).tolist())) == IDENTITIES // 2  # the old way


def test_resume_mid_epoch_reads_the_uninterrupted_batches(packed):
    """start_epoch(seed, epoch, skip) gives batches skip.. of the uninterrupted epoch, flips
    included, without reading the skipped ones; flips are about half and are mirror images."""
    make = lambda: SharedOrderReader(packed["insightface"], 4, (3, 40, 48), part_index=1,  # noqa
                                     num_parts=2, rand_mirror=True, preprocess_threads=2)
    whole = read_epoch(make(), seed=3, epoch=2)
    resumed = read_epoch(make(), seed=3, epoch=2, skip=3)
    assert len(whole) == 30 // 4 and len(resumed) == len(whole) - 3
    for (a, la), (b, lb) in zip(whole[3:], resumed):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)
    plain = SharedOrderReader(packed["insightface"], 4, (3, 40, 48), part_index=1, num_parts=2)
    flipped = 0
    for (a, _), (b, _) in zip(whole, read_epoch(plain, seed=3, epoch=2)):
        for x, y in zip(a, b):
            if not np.array_equal(x, y):
                np.testing.assert_array_equal(x, y[:, :, ::-1])
                flipped += 1
    assert 0.25 * 28 < flipped < 0.75 * 28


def test_damaged_jpeg_is_named_once_and_training_goes_on(packed, tmp_path):
    rec, offset = garble(packed["plain"], tmp_path, key=7)
    reader = SharedOrderReader(rec, 6, (3, 40, 48))
    assert reader.damaged_count == 0
    for epoch in range(3):
        assert len(read_epoch(reader, epoch=epoch)) == 10  # every batch read
        named = reader.warnings()
        if epoch == 0:  # libjpeg only printed a warning naming nothing
            assert len(named) == 1 and named[0].startswith(
                f"record 7 at byte {offset}: libjpeg: Corrupt JPEG data"), named
        else:  # named once per run
            assert named == []
    assert reader.damaged_count == 1
    reader.start_epoch(0, 0)
    assert reader.warnings() == []


def test_undecodable_record_stops_with_its_key(packed, tmp_path):
    offsets = dict((int(k), int(o)) for k, o in
                   (l.split() for l in open(packed["plain"][:-4] + ".idx")))
    data = bytearray(open(packed["plain"], "rb").read())
    start = offsets[9] + 8 + 24 + 20  # keep the JPEG's first bytes: the framing check passes
    data[start:offsets[10] - 4] = bytes(offsets[10] - 4 - start)
    (tmp_path / "bad.rec").write_bytes(bytes(data))
    shutil.copy(packed["plain"][:-4] + ".idx", tmp_path / "bad.idx")
    reader = SharedOrderReader(str(tmp_path / "bad.rec"), 6, (3, 40, 48), shuffle=False)
    with pytest.raises(DataError, match=rf"bad\.rec: record 9 at byte {offsets[9]}: does not "
                                        r"decode \(Corrupt JPEG data.*\); list all damaged "
                                        r"records with: python tools/rec_check\.py"):
        read_epoch(reader)


def test_options_only_mxnet_offers_are_refused_by_name(packed):
    with pytest.raises(ConfigError, match=r"\['brightness'\] need data_order='part'"):
        SharedOrderReader(packed["plain"], 4, (3, 40, 48), brightness=0.2)
    with pytest.raises(ConfigError, match=r"data_order 'random' is not one of global, part"):
        training_reader("random", packed["plain"], 4)
    with pytest.raises(DataError, match=r"60 images make parts of 20 for 3 worker\(s\), fewer "
                                        r"than the batch size 21"):
        SharedOrderReader(packed["plain"], 21, (3, 40, 48), part_index=0, num_parts=3)
