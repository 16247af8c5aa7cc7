"""Who this worker is: Horovod under `horovodrun`, a world of one otherwise.

`init_workers()` is called by the entry point, never at import. Under `horovodrun` it calls
`hvd.init()` and returns a `HorovodComm`; a plain `python` run gets a `LocalComm` (both from
`comm.py`, the collectives the training loop and the sharded FC share).
"""
import os
import socket
from collections import namedtuple

import mxnet as mx
from mxnet import nd

from ..errors import ConfigError
from .comm import HorovodComm, LocalComm

__all__ = ["Workers", "init_workers", "launched_by_horovod", "StopVote", "worker_device",
           "DEVICES"]

Workers = namedtuple("Workers", "comm rank size local_rank ctx barrier any_flag")


def launched_by_horovod():
    return "HOROVOD_RANK" in os.environ or "OMPI_COMM_WORLD_RANK" in os.environ


DEVICES = "auto | cpu | gpu | cpu:N"


def _num_gpus():
    try:
        return mx.context.num_gpus()
    except mx.base.MXNetError:  # CPU-only build
        return 0


def worker_device(device, local_rank, local_size, num_gpus=None):
    """This worker's context from the `device` setting.

    - `auto`: GPU `local_rank` when MXNet sees a GPU, else the CPU;
    - `gpu`: GPU `local_rank`, an error without one;
    - `cpu`: the CPU; `cpu:N`: CPU context N, the same memory under another name, which makes
      any array left on the default context fail as it would on a GPU (a test stand-in).

    Two workers never share a GPU: more local workers than GPUs is an error naming the host,
    where it would otherwise put two of them on one GPU.
    """
    kind, _, number = str(device).partition(":")
    if kind == "cpu" and (not number or number.isdigit()):
        return mx.cpu(int(number or 0))
    if kind not in ("auto", "gpu") or number:
        raise ConfigError(f"device must be one of {DEVICES}, got {device!r}")
    gpus = _num_gpus() if num_gpus is None else num_gpus
    if not gpus:
        if kind == "gpu":
            raise ConfigError("device='gpu' but MXNet sees no GPU (a CPU build of MXNet, or "
                              "no CUDA device visible); use device='auto' or 'cpu'")
        return mx.cpu()
    if local_size > gpus:
        raise ConfigError(f"{local_size} workers on host {socket.gethostname()} but it has "
                          f"{gpus} GPU(s): two workers would share a GPU; start at most {gpus} "
                          f"per host (horovodrun -H {socket.gethostname()}:{gpus})")
    return mx.gpu(local_rank)


def init_workers(device="auto"):
    """Start Horovod when launched by it; return this worker's `Workers` on `device`."""
    if launched_by_horovod():
        import horovod.mxnet as hvd

        hvd.init()
        comm, local_rank, local_size = HorovodComm(), hvd.local_rank(), hvd.local_size()
    else:
        comm, local_rank, local_size = LocalComm(), 0, 1
    ctx = worker_device(device, local_rank, local_size)

    def any_flag(flag):
        """True on every worker when `flag` is true on any of them (one tiny all-reduce)."""
        total = comm.allreduce(nd.array([float(bool(flag))]), op="max", name="flag")
        return bool(total.asnumpy()[0] > 0)

    def barrier():
        any_flag(False)

    return Workers(comm, comm.rank, comm.size, local_rank, ctx, barrier, any_flag)


class StopVote:
    """`vote(stop)` once per step, by every worker, in step order.

    One process stops at once (`vote` returns the flag itself). Under Horovod it returns the
    step's all-reduced vote, a 1-element NDArray that nobody waits for: the loop reads it
    with the step's loss one step later (monitor.LossWindow), so every worker learns of a
    stop at the same step without a host read of its own."""

    def __init__(self, comm):
        self.comm = comm

    def __call__(self, stop):
        if self.comm.size == 1:  # a world of one needs no agreement: stop at once
            return bool(stop)
        return self.comm.allreduce(nd.array([float(bool(stop))]), op="max", name="stop")
