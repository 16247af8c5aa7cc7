"""The few collectives training needs (the sharded FC, stop votes, logs), behind one interface.

``LocalComm`` (one process) and ``HorovodComm`` share ``rank``, ``size``, ``allgather`` and
``allreduce``, so :class:`~recognition.heads.parallel_fc.ParallelFC` and the training loop run
unchanged with or without Horovod. Neither initialises Horovod: entry points call ``hvd.init()``
themselves (``train.py`` through :func:`recognition.parallel.distributed.init_workers`). This
module imports only MXNet.
"""
from mxnet import nd

_OPS = ("sum", "max")


def _check_op(op):
    if op not in _OPS:
        raise ValueError(f"unknown reduction {op!r}; valid: {', '.join(_OPS)}")


class LocalComm:
    """A world of one: every collective returns its input."""

    rank = 0
    size = 1

    def allgather(self, tensor, name=None):
        """Concatenation over workers along axis 0 (here: the tensor itself)."""
        return tensor

    def allreduce(self, tensor, op="sum", name=None):
        """Element-wise reduction over workers (here: the tensor itself)."""
        _check_op(op)
        return tensor


class HorovodComm:
    """Collectives over the Horovod world; ``hvd.init()`` must have been called.

    Horovod refuses a collective whose name is still in flight, and a training step that
    does not wait on the host can ask for step t+1's ``fc.loss`` before step t's is done.
    Each call of a name therefore gets a suffix cycling through ``IN_FLIGHT`` values; every
    worker calls the same collectives in the same order, so the names agree across workers,
    and Horovod's response cache still sees a few fixed names.
    """

    IN_FLIGHT = 4

    def __init__(self):
        import horovod.mxnet as hvd

        if not hvd.is_initialized():
            raise RuntimeError("HorovodComm needs hvd.init() to be called by the entry point")
        self._hvd = hvd
        self.rank = hvd.rank()
        self.size = hvd.size()
        self._calls = {}

    def _name(self, name):
        if name is None:
            return None
        count = self._calls.get(name, 0)
        self._calls[name] = count + 1
        return f"{name}.{count % self.IN_FLIGHT}"

    def allgather(self, tensor, name=None):
        return self._hvd.allgather(tensor, name=self._name(name))

    def allreduce(self, tensor, op="sum", name=None):
        _check_op(op)
        hvd_op = self._hvd.Sum if op == "sum" else self._hvd.Max
        return self._hvd.allreduce(tensor, op=hvd_op, name=self._name(name))


def default_comm():
    """HorovodComm when Horovod is importable and initialised, else LocalComm."""
    try:
        import horovod.mxnet as hvd
    except ImportError:
        return LocalComm()
    return HorovodComm() if hvd.is_initialized() else LocalComm()


def gather_counts(comm, n_local, ctx, name="counts", flag=False):
    """Per-worker row counts (rank order) and whether any worker raised ``flag``.

    The counts split all-gathered batches; the flag lets every worker stop together when one
    of them got bad input, instead of leaving the others blocked in the next collective.
    """
    mine = nd.array([[n_local, int(flag)]], ctx=ctx, dtype="int32")
    table = comm.allgather(mine, name=name).asnumpy()
    return [int(c) for c in table[:, 0]], bool(table[:, 1].any())
