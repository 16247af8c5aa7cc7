"""Counting the times Python waits for the device: a step that waits cannot queue the next.

`with HostReads() as reads:` counts every NDArray read back to the host inside the block:
`asnumpy` (which `asscalar`, `bool()` and NumPy conversions go through),
`wait_to_read` and `nd.waitall`. On a GPU each is a stall of the Python thread until the
engine has computed what was asked for; on the CPU they are the same calls, so counting them
here shows what a GPU would wait for. Used by the tests and benchmarks/bench_host_reads.py.
"""
from mxnet import nd

__all__ = ["HostReads"]


class HostReads:
    """Context manager; `count` is the number of host reads so far."""

    def __init__(self):
        self.count = 0
        self._saved = None

    def _counted(self, original):
        def read(*args, **kwargs):
            self.count += 1
            return original(*args, **kwargs)
        return read

    def __enter__(self):
        self._saved = (nd.NDArray.asnumpy, nd.NDArray.wait_to_read, nd.waitall)
        nd.NDArray.asnumpy = self._counted(self._saved[0])
        nd.NDArray.wait_to_read = self._counted(self._saved[1])
        nd.waitall = self._counted(self._saved[2])
        return self

    def __exit__(self, *exc):
        nd.NDArray.asnumpy, nd.NDArray.wait_to_read, nd.waitall = self._saved
        return False
