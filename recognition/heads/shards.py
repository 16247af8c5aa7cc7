"""Classifier shards: which classes a worker holds, and their files.

Worker ``r`` of ``W`` holds the contiguous classes ``[r*ceil(C/W), ...)`` (the last slice may be
shorter). A shard file is a stock ``mx.nd.save`` dict with ``weight``, ``momentum`` and ``meta``
(num_classes, world_size, rank, class_start, num_local, embedding_size); a merged, full
classifier is simply the shard of a world of one, so ``split`` and ``merge`` are the same
operation with different world sizes, and a run can resume on any number of workers.

Re-cutting streams: each destination shard is built, written and dropped before the next, and
at most one source shard is loaded at a time, so a 10M-class classifier is never held whole in
one process (except by a merge, whose output is the whole classifier).
"""
import os
from dataclasses import dataclass

import mxnet as mx
import numpy as np

from recognition.errors import ConfigError, DataError
from recognition.fileio import atomic_write

_ZERO_COPY_DTYPES = ("float16", "float32", "float64")
_META_FIELDS = ("num_classes", "world_size", "rank", "class_start", "num_local",
                "embedding_size")


def shard_range(num_classes, world_size, rank):
    """``(class_start, num_local)`` of worker ``rank``; every worker must get >= 1 class."""
    if not 0 <= rank < world_size:
        raise ConfigError(f"rank {rank} is outside a world of {world_size}")
    per = -(-num_classes // world_size)
    if (world_size - 1) * per >= num_classes:
        raise ConfigError(f"{num_classes} classes cannot be split into {world_size} non-empty "
                         f"slices of ceil(C/W)={per}; use fewer workers")
    start = rank * per
    return start, min(per, num_classes - start)


def shard_path(prefix, rank, world_size):
    """File name of one worker's shard, e.g. ``work/fc-rank0of2.params``."""
    return f"{prefix}-rank{rank}of{world_size}.params"


@dataclass
class Shard:
    """One worker's slice of the classifier (NumPy arrays) and where it sits."""

    weight: np.ndarray
    momentum: np.ndarray
    num_classes: int
    world_size: int
    rank: int
    class_start: int

    @property
    def num_local(self):
        return self.weight.shape[0]

    @property
    def dim(self):
        return self.weight.shape[1]

    @property
    def dtype(self):
        return self.weight.dtype


@dataclass(frozen=True)
class ShardInfo:
    """What a shard file holds, without its arrays: enough to plan a re-cut."""

    path: str
    num_classes: int
    world_size: int
    rank: int
    class_start: int
    num_local: int
    dim: int
    dtype: np.dtype


def save_shard(path, shard):
    """Write ``shard`` atomically (temp file + rename) as an ``mx.nd.save`` dict."""
    meta = [shard.num_classes, shard.world_size, shard.rank, shard.class_start,
            shard.num_local, shard.weight.shape[1]]
    if shard.momentum.shape != shard.weight.shape:
        raise ValueError("momentum and weight shapes differ")
    arrays = {"weight": _shared_ndarray(shard.weight),
              "momentum": _shared_ndarray(shard.momentum),
              "meta": mx.nd.array(meta, dtype="int64")}
    atomic_write(path, lambda tmp: mx.nd.save(tmp, arrays))


def _shared_ndarray(array):
    """An NDArray over ``array``'s own memory, so saving a large shard does not copy it first.

    Zero-copy marks the array it is given read-only, so it gets a view (the caller's array
    stays writable); dtypes DLPack cannot carry are copied.
    """
    array = np.ascontiguousarray(array)
    if str(array.dtype) not in _ZERO_COPY_DTYPES:
        return mx.nd.array(array, dtype=array.dtype)
    return mx.nd.from_numpy(array.view(), zero_copy=True)


def _read(path):
    """``(arrays, meta)`` of a shard file, still as NDArrays; bad files raise DataError."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: shard file not found")
    try:
        arrays = mx.nd.load(path)
    except mx.base.MXNetError as err:
        raise DataError(f"{path}: not an MXNet NDArray file ({str(err).splitlines()[0]})")
    if not isinstance(arrays, dict) or set(arrays) != {"weight", "momentum", "meta"}:
        raise DataError(f"{path}: expected arrays weight, momentum, meta")
    meta = dict(zip(_META_FIELDS, (int(v) for v in arrays["meta"].asnumpy())))
    weight, momentum = arrays["weight"], arrays["momentum"]
    if weight.shape != (meta["num_local"], meta["embedding_size"]) or \
            momentum.shape != weight.shape:
        raise DataError(f"{path}: weight {weight.shape} / momentum {momentum.shape} do not "
                        f"match meta {meta}")
    return arrays, meta


def load_shard(path):
    """Read a shard file written by :func:`save_shard`; bad files raise DataError."""
    arrays, meta = _read(path)
    weight = arrays.pop("weight").asnumpy()  # pop: each NDArray is freed once copied
    momentum = arrays.pop("momentum").asnumpy()
    return Shard(weight, momentum, meta["num_classes"], meta["world_size"], meta["rank"],
                 meta["class_start"])


def read_shard_info(path):
    """The :class:`ShardInfo` of a shard file (its arrays are read, checked and dropped)."""
    arrays, meta = _read(path)
    return ShardInfo(path, meta["num_classes"], meta["world_size"], meta["rank"],
                     meta["class_start"], meta["num_local"], meta["embedding_size"],
                     np.dtype(arrays["weight"].dtype))


def _complete_set(shards):
    """``shards`` (Shard or ShardInfo) ordered by rank, after checking they form one run."""
    if not shards:
        raise ValueError("no shards to merge")
    first = shards[0]
    by_rank = {}
    for shard in shards:
        if (shard.num_classes, shard.world_size) != (first.num_classes, first.world_size):
            raise DataError(f"shards come from different runs: {shard.num_classes} classes/"
                            f"{shard.world_size} workers vs {first.num_classes}/"
                            f"{first.world_size}")
        if (shard.dim, shard.dtype) != (first.dim, first.dtype):
            raise DataError(f"shards come from different runs: dim {shard.dim} {shard.dtype} "
                            f"vs {first.dim} {first.dtype}")
        if shard.rank in by_rank:
            raise DataError(f"rank {shard.rank} given twice")
        start, count = shard_range(shard.num_classes, shard.world_size, shard.rank)
        if (shard.class_start, shard.num_local) != (start, count):
            raise DataError(f"rank {shard.rank} holds classes [{shard.class_start}, +"
                            f"{shard.num_local}) instead of [{start}, +{count})")
        by_rank[shard.rank] = shard
    missing = sorted(set(range(first.world_size)) - set(by_rank))
    if missing:
        raise DataError(f"missing shards of ranks {missing} (world size {first.world_size})")
    return [by_rank[r] for r in range(first.world_size)]


class _OneSource:
    """Loads source shards on demand, holding at most one: the peak of a re-cut."""

    def __init__(self, load):
        self.load, self.rank, self.shard = load, None, None

    def get(self, source):
        if self.rank != source.rank:
            self.rank, self.shard = None, None  # drop the old one before loading the next
            self.shard, self.rank = self.load(source), source.rank
        return self.shard


def _new_rows(count, dim, dtype):
    """An uninitialised ``count x dim`` array (every row is then copied from a source)."""
    return np.empty((count, dim), dtype=dtype)


def _build(sources, cache, world_size, rank):
    """Destination shard ``rank`` of ``world_size``, copied row block by row block."""
    first = sources[0]
    start, count = shard_range(first.num_classes, world_size, rank)
    weight = _new_rows(count, first.dim, first.dtype)
    momentum = _new_rows(count, first.dim, first.dtype)
    for source in sources:
        lo = max(start, source.class_start)
        hi = min(start + count, source.class_start + source.num_local)
        if lo < hi:  # no local name keeps the source alive once the cache moves on
            _copy_rows(cache.get(source), lo, hi, weight, momentum, start)
    return Shard(weight, momentum, first.num_classes, world_size, rank, start)


def _copy_rows(source, lo, hi, weight, momentum, start):
    """Copy classes ``[lo, hi)`` of ``source`` into arrays whose first class is ``start``."""
    rows = slice(lo - source.class_start, hi - source.class_start)
    weight[lo - start:hi - start] = source.weight[rows]
    momentum[lo - start:hi - start] = source.momentum[rows]


def recut(sources, world_size, load, emit):
    """Re-cut a complete shard set into ``world_size`` shards, passing each to ``emit``.

    ``sources`` are Shards or ShardInfos; ``load(source)`` returns its Shard. Destinations are
    built in rank order and dropped after ``emit``, so the peak is one source plus one
    destination (the whole classifier only when ``world_size`` is 1).
    """
    ordered = _complete_set(list(sources))
    shard_range(ordered[0].num_classes, world_size, 0)  # a bad world size fails before writing
    cache = _OneSource(load)
    for rank in range(world_size):
        emit(_build(ordered, cache, world_size, rank))


def merge_shards(shards):
    """One full classifier (a world-of-one Shard) from all shards of one run."""
    merged = []
    recut(shards, 1, lambda shard: shard, merged.append)
    return merged[0]


def split_classifier(shards, world_size):
    """Re-cut a full classifier or a complete shard set (in memory) into ``world_size`` shards."""
    result = []
    recut(shards, world_size, lambda shard: shard, result.append)
    return result


def recut_files(paths, world_size, write):
    """Re-cut the shard files ``paths`` into ``world_size`` shards, streaming.

    Each source file is read twice (once to check the set, once to copy its rows), one at a
    time; ``write(shard)`` gets each destination shard in rank order.
    """
    infos = [read_shard_info(path) for path in paths]
    recut(infos, world_size, _load_unchanged, write)


def _load_unchanged(info):
    """The shard ``info`` describes; DataError if its file changed since it was checked."""
    shard = load_shard(info.path)
    got = (shard.num_classes, shard.world_size, shard.rank, shard.class_start, shard.num_local,
           shard.dim, shard.dtype)
    if got != (info.num_classes, info.world_size, info.rank, info.class_start, info.num_local,
               info.dim, info.dtype):
        raise DataError(f"{info.path} changed while it was being re-cut")
    return shard
