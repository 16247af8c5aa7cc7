"""Classifier shards: class ranges, files, merge/split round trips and the face-shards CLI."""
import numpy as np
import pytest

from recognition.errors import DataError
from recognition.heads import ParallelFC
from recognition.heads.shards import (Shard, load_shard, merge_shards, save_shard, shard_path,
                                      shard_range, split_classifier)
from recognition.commands.shards import main
from recognition.parallel.comm import LocalComm


def full_classifier(num_classes=11, dim=4, seed=0):
    rng = np.random.RandomState(seed)
    return Shard(rng.randn(num_classes, dim).astype(np.float32),
                 rng.randn(num_classes, dim).astype(np.float32), num_classes, 1, 0, 0)


def test_shard_range_is_ceil_slices():
    assert [shard_range(11, 2, r) for r in range(2)] == [(0, 6), (6, 5)]
    assert [shard_range(10, 4, r) for r in range(4)] == [(0, 3), (3, 3), (6, 3), (9, 1)]
    assert shard_range(7, 1, 0) == (0, 7)
    with pytest.raises(ValueError, match="non-empty"):
        shard_range(5, 4, 0)  # ceil(5/4)=2 leaves the last worker nothing
    with pytest.raises(ValueError):
        shard_range(10, 2, 2)


def test_save_load_is_exact_and_atomic(tmp_path):
    full = full_classifier()
    path = str(tmp_path / "sub" / "fc.params")
    save_shard(path, full)
    back = load_shard(path)
    np.testing.assert_array_equal(back.weight, full.weight)
    np.testing.assert_array_equal(back.momentum, full.momentum)
    assert (back.num_classes, back.world_size, back.rank, back.class_start) == (11, 1, 0, 0)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["fc.params"]


@pytest.mark.parametrize("sizes", [(2, 3), (3, 2), (1, 4), (4, 1)])
def test_split_then_merge_round_trips_exactly(sizes):
    full = full_classifier(num_classes=13)
    first = split_classifier([full], sizes[0])
    second = split_classifier(first, sizes[1])
    assert sum(s.num_local for s in second) == 13
    for shard in second:
        start, count = shard_range(13, sizes[1], shard.rank)
        np.testing.assert_array_equal(shard.weight, full.weight[start:start + count])
    merged = merge_shards(list(reversed(second)))
    np.testing.assert_array_equal(merged.weight, full.weight)
    np.testing.assert_array_equal(merged.momentum, full.momentum)


def test_merge_rejects_incomplete_or_mixed_sets():
    shards = split_classifier([full_classifier()], 3)
    with pytest.raises(DataError, match="missing shards of ranks \\[1\\]"):
        merge_shards([shards[0], shards[2]])
    with pytest.raises(DataError, match="twice"):
        merge_shards([shards[0], shards[0], shards[1], shards[2]])
    other = split_classifier([full_classifier(num_classes=12)], 3)
    with pytest.raises(DataError, match="different runs"):
        merge_shards([shards[0], other[1], shards[2]])


def test_load_rejects_foreign_files(tmp_path):
    bad = tmp_path / "bad.params"
    bad.write_bytes(b"not an ndarray file")
    with pytest.raises(DataError, match="bad.params"):
        load_shard(str(bad))
    with pytest.raises(DataError, match="not found"):
        load_shard(str(tmp_path / "missing.params"))


def test_cli_merge_split_info_and_resume_on_other_world_size(tmp_path, capsys):
    full = full_classifier()
    for shard in split_classifier([full], 2):
        save_shard(shard_path(str(tmp_path / "run"), shard.rank, 2), shard)
    shards = [shard_path(str(tmp_path / "run"), r, 2) for r in (1, 0)]
    assert main(["info"] + shards) == 0
    assert "rank 1/2, classes [6, 11) of 11" in capsys.readouterr().out
    merged = str(tmp_path / "full.params")
    assert main(["merge"] + shards + ["-o", merged]) == 0
    np.testing.assert_array_equal(load_shard(merged).weight, full.weight)
    assert main(["split"] + shards + ["--world-size", "1", "--prefix",
                                      str(tmp_path / "one")]) == 0
    fc = ParallelFC(11, 4, comm=LocalComm())
    fc.load(str(tmp_path / "one"))  # resume the 2-worker run on one worker
    np.testing.assert_array_equal(fc.weight.asnumpy(), full.weight)
    np.testing.assert_array_equal(fc.momentum.asnumpy(), full.momentum)
    with pytest.raises(ValueError, match="face-shards split"):
        ParallelFC(12, 4, comm=LocalComm()).load(str(tmp_path / "one"))


def test_cli_errors_exit_2_with_message(tmp_path, capsys):
    shard = shard_path(str(tmp_path / "run"), 0, 2)
    save_shard(shard, split_classifier([full_classifier()], 2)[0])
    assert main(["merge", shard, "-o", str(tmp_path / "x.params")]) == 2
    assert "error: missing shards of ranks [1]" in capsys.readouterr().err
    assert main(["split", str(tmp_path / "nope.params"), "-n", "2", "--prefix", "p"]) == 2
    assert "nope.params: shard file not found" in capsys.readouterr().err


def test_fc_save_load_round_trip(tmp_path):
    fc = ParallelFC(11, 4, comm=LocalComm())
    path = fc.save(str(tmp_path / "fc"))
    assert path.endswith("fc-rank0of1.params")
    other = ParallelFC(11, 4, comm=LocalComm())
    other.load(str(tmp_path / "fc"))
    np.testing.assert_array_equal(other.weight.asnumpy(), fc.weight.asnumpy())
