"""Classifier shards: which classes a worker holds, and their files.

Worker ``r`` of ``W`` holds the contiguous classes ``[r*ceil(C/W), ...)`` (the last slice may be
shorter). A shard file is a stock ``mx.nd.save`` dict with ``weight``, ``momentum`` and ``meta``
(num_classes, world_size, rank, class_start, num_local, embedding_size); a merged, full
classifier is simply the shard of a world of one, so ``split`` and ``merge`` are the same
operation with different world sizes, and a run can resume on any number of workers.
"""
import os
from dataclasses import dataclass

import mxnet as mx
import numpy as np

from recognition.errors import ConfigError, DataError
from recognition.fileio import atomic_write

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


def save_shard(path, shard):
    """Write ``shard`` atomically (temp file + rename) as an ``mx.nd.save`` dict."""
    meta = [shard.num_classes, shard.world_size, shard.rank, shard.class_start,
            shard.num_local, shard.weight.shape[1]]
    if shard.momentum.shape != shard.weight.shape:
        raise ValueError("momentum and weight shapes differ")
    arrays = {"weight": mx.nd.array(shard.weight, dtype=shard.weight.dtype),
              "momentum": mx.nd.array(shard.momentum, dtype=shard.momentum.dtype),
              "meta": mx.nd.array(meta, dtype="int64")}
    atomic_write(path, lambda tmp: mx.nd.save(tmp, arrays))


def load_shard(path):
    """Read a shard file written by :func:`save_shard`; bad files raise DataError."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: shard file not found")
    try:
        arrays = mx.nd.load(path)
    except mx.base.MXNetError as err:
        raise DataError(f"{path}: not an MXNet NDArray file ({str(err).splitlines()[0]})")
    if not isinstance(arrays, dict) or set(arrays) != {"weight", "momentum", "meta"}:
        raise DataError(f"{path}: expected arrays weight, momentum, meta")
    meta = dict(zip(_META_FIELDS, (int(v) for v in arrays["meta"].asnumpy())))
    weight, momentum = arrays["weight"].asnumpy(), arrays["momentum"].asnumpy()
    if weight.shape != (meta["num_local"], meta["embedding_size"]) or \
            momentum.shape != weight.shape:
        raise DataError(f"{path}: weight {weight.shape} / momentum {momentum.shape} do not "
                        f"match meta {meta}")
    return Shard(weight, momentum, meta["num_classes"], meta["world_size"], meta["rank"],
                 meta["class_start"])


def merge_shards(shards):
    """One full classifier (a world-of-one Shard) from all shards of one run."""
    if not shards:
        raise ValueError("no shards to merge")
    first = shards[0]
    by_rank = {}
    for shard in shards:
        if (shard.num_classes, shard.world_size) != (first.num_classes, first.world_size):
            raise DataError(f"shards come from different runs: {shard.num_classes} classes/"
                            f"{shard.world_size} workers vs {first.num_classes}/"
                            f"{first.world_size}")
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
    ordered = [by_rank[r] for r in range(first.world_size)]
    return Shard(np.concatenate([s.weight for s in ordered]),
                 np.concatenate([s.momentum for s in ordered]), first.num_classes, 1, 0, 0)


def split_classifier(shards, world_size):
    """Re-cut a full classifier or a complete shard set into ``world_size`` shards."""
    full = merge_shards(shards)
    result = []
    for rank in range(world_size):
        start, count = shard_range(full.num_classes, world_size, rank)
        rows = slice(start, start + count)
        result.append(Shard(full.weight[rows].copy(), full.momentum[rows].copy(),
                            full.num_classes, world_size, rank, start))
    return result
