"""Worker processes that never inherit the caller's threads.

A process that has used OpenCV (or MXNet) runs thread pools; `fork` copies the process with
their locks in whatever state they were, and a forked worker that touches such a lock waits
forever (im2rec hung this way when its caller had resized images first). The workers here
are forked from a fresh forkserver process instead, which has imported only the modules named
in `preload`, once, so they still start in milliseconds.
"""
import multiprocessing

__all__ = ["worker_pool"]


def worker_pool(workers, initializer=None, initargs=(), preload=()):
    """A `multiprocessing.Pool` of `workers` processes from a forkserver that preloaded
    `preload` (module names); the initializer and tasks must be importable functions."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(preload))
    return ctx.Pool(workers, initializer=initializer, initargs=initargs)
