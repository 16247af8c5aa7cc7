"""Starting local Horovod workers: the one place that builds a `horovodrun` command line."""
import os
import sys

__all__ = ["local_workers_command"]


def local_workers_command(command, workers):
    """`command` (an argv list) under `horovodrun -np W -H localhost:W --gloo` when W > 1.

    One worker runs the command as it is: no launcher, no Gloo rendezvous. `horovodrun` is
    the one beside this Python, so a venv's launcher is used even when the venv is not active.
    """
    if workers <= 1:
        return list(command)
    horovodrun = os.path.join(os.path.dirname(sys.executable), "horovodrun")
    return [horovodrun, "-np", str(workers), "-H", f"localhost:{workers}", "--gloo"] + list(command)
