"""Bytes one worker sends per training step, for ring collectives.

A ring all-reduce of S bytes over W workers sends 2(W-1)/W * S bytes from each worker
(reduce-scatter, then all-gather). Horovod (NCCL on GPUs, Gloo on CPUs) uses rings or trees
with the same volume per worker for large tensors, so these are the bytes every worker's link
carries each step, in each direction. Per training step (heads/parallel_fc.py with the row
counts fixed, as training/objectives.py passes them; training/train.py):

- backbone gradients: all-reduce of P scalars in the backbone's dtype;
- the classifier gathers the features and labels by an all-reduce of zero-padded blocks
  (each worker fills its own rows of an N x D float32 block and an N-long int32 block; the
  all-reduce sums them), because Horovod's MXNet all-gather waits on the host. Then it
  all-reduces the softmax max, the softmax sum and the per-row loss (N float32 each) and the
  N x D float32 feature gradient. The classifier's own centres never travel.

A few more bytes go per step (error and stop flags): under 100 bytes, left out. Bytes divided
by a line rate (:func:`link_seconds`) give a lower bound on the time: no latency, protocol
overhead, congestion or sharing of the link.
"""
from collections import namedtuple

from .memory import DTYPE_BYTES

__all__ = ["Transfer", "step_traffic", "ring_allreduce", "link_seconds"]

Transfer = namedtuple("Transfer", "name bytes formula")


def ring_allreduce(size_bytes, workers):
    """Bytes each worker sends in a ring all-reduce of ``size_bytes``."""
    return 2 * (workers - 1) * size_bytes / workers


def step_traffic(setup, params=None):
    """:class:`Transfer` items of one step on one worker; ``params`` = P (None: no backbone)."""
    w, n, d = setup.workers, setup.global_batch, setup.embedding_size
    items = []
    if params is not None:
        s = DTYPE_BYTES[setup.dtype]
        items.append(Transfer("backbone gradient all-reduce", ring_allreduce(params * s, w),
                              "2(W-1)/W*P*s"))
    items += [
        Transfer("feature all-reduce (zero-padded blocks)", ring_allreduce(n * d * 4, w),
                 "2(W-1)/W*N*D*4"),
        Transfer("label all-reduce (zero-padded blocks)", ring_allreduce(n * 4, w),
                 "2(W-1)/W*N*4"),
        Transfer("softmax max, sum and loss all-reduces", 3 * ring_allreduce(n * 4, w),
                 "3*2(W-1)/W*N*4"),
        Transfer("feature-gradient all-reduce", ring_allreduce(n * d * 4, w), "2(W-1)/W*N*D*4"),
    ]
    return items


def link_seconds(num_bytes, gbit_per_s):
    """Seconds to push ``num_bytes`` through a link of ``gbit_per_s`` at line rate (1 Gb/s =
    1e9 bit/s): a lower bound on the time the bytes take."""
    return num_bytes * 8 / (gbit_per_s * 1e9)
