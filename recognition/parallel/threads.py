"""How many CPU threads each training worker uses, chosen from the cores and the workers
sharing them, and set before MXNet starts (it reads them once, when it loads).

Three pools compete for the cores of a machine: OpenMP threads inside each operator
(`OMP_NUM_THREADS`, MXNet's default is every core), MXNet's engine threads that run
operators side by side (`MXNET_CPU_WORKER_NTHREADS`) and the JPEG decoding threads of the
reader (the `preprocess_threads` config key). With several Horovod workers on one machine,
the defaults give every worker every core. Here each worker gets `cores / local workers`
OpenMP threads (at least 1). A value the user set in the environment is kept.

This module does not import MXNet: the entry point calls `configure` before it does.
"""
import os

__all__ = ["local_workers", "usable_cores", "choose", "configure"]


def local_workers(environ=os.environ):
    """Workers on this machine: Horovod's (or Open MPI's) local size, 1 without a launcher."""
    for name in ("HOROVOD_LOCAL_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE"):
        if environ.get(name, "").isdigit():
            return max(1, int(environ[name]))
    return 1


def usable_cores():
    """Cores this process may run on (its affinity mask, e.g. under taskset or a cgroup)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def choose(cores, workers):
    """`{variable: value}` for one of `workers` workers sharing `cores` cores."""
    per_worker = max(1, cores // max(1, workers))
    return {"OMP_NUM_THREADS": str(per_worker), "MXNET_CPU_WORKER_NTHREADS": "1"}


def configure(environ=os.environ):
    """Set the thread counts not already set; returns `{variable: (value, 'chosen'|'set')}`,
    for the start-of-run log."""
    chosen = choose(usable_cores(), local_workers(environ))
    report = {}
    for name, value in chosen.items():
        if name in environ:
            report[name] = (environ[name], "set")
        else:
            environ[name] = value
            report[name] = (value, "chosen")
    return report
