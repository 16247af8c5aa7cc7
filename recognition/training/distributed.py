"""Who this worker is: Horovod under `horovodrun`, a world of one otherwise.

`init_workers()` is called by the entry point, never at import. Under `horovodrun` it calls
`hvd.init()` and returns a `HorovodComm`; a plain `python` run gets a `LocalComm` (both from
`comm.py`, the collectives this package and the sharded FC share).
"""
import os
from collections import namedtuple

import mxnet as mx
from mxnet import nd

from .comm import HorovodComm, LocalComm

__all__ = ["Workers", "init_workers", "launched_by_horovod", "StopVote"]

Workers = namedtuple("Workers", "comm rank size local_rank ctx barrier any_flag")


def launched_by_horovod():
    return "HOROVOD_RANK" in os.environ or "OMPI_COMM_WORLD_RANK" in os.environ


def _device(local_rank):
    """This worker's GPU when MXNet sees one, else the CPU."""
    try:
        gpus = mx.context.num_gpus()
    except mx.base.MXNetError:  # CPU-only build
        gpus = 0
    return mx.gpu(local_rank % gpus) if gpus else mx.cpu()


def init_workers():
    """Start Horovod when launched by it; return this worker's `Workers`."""
    if launched_by_horovod():
        import horovod.mxnet as hvd

        hvd.init()
        comm, local_rank = HorovodComm(), hvd.local_rank()
    else:
        comm, local_rank = LocalComm(), 0
    ctx = _device(local_rank)

    def any_flag(flag):
        """True on every worker when `flag` is true on any of them (one tiny all-reduce)."""
        total = comm.allreduce(nd.array([float(bool(flag))]), op="max", name="flag")
        return bool(total.asnumpy()[0] > 0)

    def barrier():
        any_flag(False)

    return Workers(comm, comm.rank, comm.size, local_rank, ctx, barrier, any_flag)


class StopVote:
    """`vote(stop)` once per step: True on every worker, at the same step, once any worker's
    `stop` was true. The all-reduce of step t is read at step t+1, by when it has long
    finished, so no step waits on the host for the others (a stop comes one step later;
    without Horovod at once)."""

    def __init__(self, comm):
        self.comm, self.pending = comm, None

    def __call__(self, stop):
        if self.comm.size == 1:  # a world of one needs no agreement: stop at once
            return bool(stop)
        vote = self.comm.allreduce(nd.array([float(bool(stop))]), op="max", name="stop")
        previous, self.pending = self.pending, vote
        return previous is not None and bool(previous.asnumpy()[0] > 0)
