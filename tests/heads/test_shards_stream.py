"""`face-shards split` streams: a re-cut never holds the whole classifier in one process.

A 10M-class classifier (weight and momentum) is ~40 GB; splitting it must cost about one source
shard plus one destination shard. tracemalloc sees every NumPy buffer, so its peak bounds what
the re-cut held at once on the Python side; a spy on `mx.nd.load` bounds the MXNet side.
"""
import tracemalloc

import mxnet as mx
import numpy as np
import pytest

from recognition.heads.shards import (Shard, load_shard, save_shard, shard_path, shard_range,
                                      split_classifier)
from recognition.commands.shards import main

CLASSES, DIM = 1200, 256  # big enough that array bytes dwarf Python's own small allocations


def full_classifier(dtype=np.float32):
    rng = np.random.RandomState(5)
    return Shard(rng.randn(CLASSES, DIM).astype(dtype), rng.randn(CLASSES, DIM).astype(dtype),
                 CLASSES, 1, 0, 0)


def write_run(prefix, world_size, dtype=np.float32):
    """Save a `world_size`-worker shard set; returns the full classifier and the paths."""
    full = full_classifier(dtype)
    paths = []
    for shard in split_classifier([full], world_size):
        paths.append(shard_path(prefix, shard.rank, world_size))
        save_shard(paths[-1], shard)
    return full, paths


def shard_bytes(world_size, dtype=np.float32):
    """Bytes of the largest shard (weight + momentum) of a `world_size`-worker run."""
    return 2 * shard_range(CLASSES, world_size, 0)[1] * DIM * np.dtype(dtype).itemsize


@pytest.fixture
def loads(monkeypatch):
    """Paths and row counts of every shard file `mx.nd.load` reads."""
    seen, load = [], mx.nd.load

    def spy(path):
        arrays = load(path)
        seen.append((path, arrays["weight"].shape[0]))
        return arrays
    monkeypatch.setattr(mx.nd, "load", spy)
    return seen


def test_split_4_to_3_holds_one_source_and_one_destination(tmp_path, loads):
    _, paths = write_run(str(tmp_path / "four"), 4)
    tracemalloc.start()
    try:
        assert main(["split"] + paths + ["-n", "3", "--prefix", str(tmp_path / "three")]) == 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    whole = 2 * CLASSES * DIM * 4
    one_and_one = shard_bytes(4) + shard_bytes(3)  # 300 + 400 rows: 1.43 MB of 2.46 MB
    assert peak < 1.1 * one_and_one < whole, (peak, one_and_one, whole)
    assert max(rows for _, rows in loads) == 300  # MXNet never reads more than one source


def test_each_source_file_is_read_twice_at_most(tmp_path, loads):
    """Once to check the set, once to copy: sources are visited in order, not per output."""
    _, paths = write_run(str(tmp_path / "four"), 4)
    assert main(["split"] + paths + ["-n", "3", "--prefix", str(tmp_path / "three")]) == 0
    assert sorted(path for path, _ in loads) == sorted(paths * 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_split_then_merge_files_is_byte_exact(tmp_path, dtype):
    full, paths = write_run(str(tmp_path / "four"), 4, dtype)
    assert main(["split"] + paths[::-1] + ["-n", "3", "--prefix", str(tmp_path / "three")]) == 0
    three = [shard_path(str(tmp_path / "three"), r, 3) for r in range(3)]
    for rank, path in enumerate(three):
        start, count = shard_range(CLASSES, 3, rank)
        shard = load_shard(path)
        assert (shard.rank, shard.world_size, shard.class_start) == (rank, 3, start)
        assert shard.weight.tobytes() == full.weight[start:start + count].tobytes()
    merged = str(tmp_path / "full.params")
    assert main(["merge"] + three + ["-o", merged]) == 0
    back = load_shard(merged)
    assert back.weight.dtype == dtype
    assert back.weight.tobytes() == full.weight.tobytes()
    assert back.momentum.tobytes() == full.momentum.tobytes()


def test_saving_leaves_the_callers_arrays_writable(tmp_path):
    """save_shard hands MXNet a view of the rows instead of a copy; the caller's arrays are
    untouched and stay writable."""
    full = full_classifier()
    before = full.weight.copy()
    save_shard(str(tmp_path / "fc.params"), full)
    assert full.weight.flags.writeable and full.momentum.flags.writeable
    full.weight[0] = 0.0
    np.testing.assert_array_equal(load_shard(str(tmp_path / "fc.params")).weight, before)


def test_a_bad_world_size_writes_nothing(tmp_path, capsys):
    _, paths = write_run(str(tmp_path / "four"), 4)
    assert main(["split"] + paths + ["-n", "1199", "--prefix", str(tmp_path / "many")]) == 2
    assert "non-empty" in capsys.readouterr().err
    assert not list(tmp_path.glob("many*"))


def test_shards_of_another_dim_or_dtype_are_not_mixed(tmp_path, capsys):
    _, paths = write_run(str(tmp_path / "a"), 2)
    _, halves = write_run(str(tmp_path / "b"), 2, np.float16)
    assert main(["merge", paths[0], halves[1], "-o", str(tmp_path / "x.params")]) == 2
    assert "different runs: dim 256 float16 vs 256 float32" in capsys.readouterr().err
    assert not (tmp_path / "x.params").exists()
