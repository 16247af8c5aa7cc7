"""Bytes one worker sends per training step, for ring collectives.

A ring all-reduce of S bytes over W workers sends 2(W-1)/W * S bytes from each worker
(reduce-scatter, then all-gather); a ring all-gather of W blocks of S/W bytes sends
(W-1)/W * S. Horovod (NCCL on GPUs, Gloo on CPUs) uses rings or trees with the same volume per
worker for large tensors, so these are the bytes every worker's link carries each step, in each
direction. Per step (heads/parallel_fc.py, training/train.py):

- backbone gradients: all-reduce of P scalars in the backbone's dtype;
- the classifier: all-gather of the N x D float32 features and the N int32 labels, all-reduce
  of the softmax max, the softmax sum and the per-row loss (N float32 each), and all-reduce of
  the N x D float32 feature gradient. The classifier's own centres never travel.

A few more bytes go per step (batch sizes and error flags, a stop flag): under 100 bytes, left out.
"""
from collections import namedtuple

from .memory import DTYPE_BYTES

__all__ = ["Transfer", "step_traffic", "ring_allreduce", "ring_allgather", "link_seconds"]

Transfer = namedtuple("Transfer", "name bytes formula")


def ring_allreduce(size_bytes, workers):
    """Bytes each worker sends in a ring all-reduce of ``size_bytes``."""
    return 2 * (workers - 1) * size_bytes / workers


def ring_allgather(total_bytes, workers):
    """Bytes each worker sends in a ring all-gather whose result is ``total_bytes``."""
    return (workers - 1) * total_bytes / workers


def step_traffic(setup, params=None):
    """:class:`Transfer` items of one step on one worker; ``params`` = P (None: no backbone)."""
    w, n, d = setup.workers, setup.global_batch, setup.embedding_size
    items = []
    if params is not None:
        s = DTYPE_BYTES[setup.dtype]
        items.append(Transfer("backbone gradient all-reduce", ring_allreduce(params * s, w),
                              "2(W-1)/W*P*s"))
    items += [
        Transfer("feature all-gather", ring_allgather(n * d * 4, w), "(W-1)/W*N*D*4"),
        Transfer("label all-gather", ring_allgather(n * 4, w), "(W-1)/W*N*4"),
        Transfer("softmax max, sum and loss all-reduces", 3 * ring_allreduce(n * 4, w),
                 "3*2(W-1)/W*N*4"),
        Transfer("feature-gradient all-reduce", ring_allreduce(n * d * 4, w), "2(W-1)/W*N*D*4"),
    ]
    return items


def link_seconds(num_bytes, gbit_per_s):
    """Seconds to push ``num_bytes`` through a link of ``gbit_per_s`` (1 Gb/s = 1e9 bit/s)."""
    return num_bytes * 8 / (gbit_per_s * 1e9)
