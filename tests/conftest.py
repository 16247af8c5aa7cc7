"""Shared test helpers: running a script under `horovodrun` on the CPU (Gloo)."""
import os
import subprocess
import sys

import pytest

from recognition.parallel.launch import local_workers_command
from tests.support import REPO


@pytest.fixture
def run_horovod():
    """Run `python ARGS...` under `horovodrun -np N`; fails the test with its output on error."""

    def run(args, np=2, timeout=300, check=True, env=None):
        full_env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
        full_env.update(env or {})
        command = local_workers_command([sys.executable, *args], np)
        proc = subprocess.run(command, cwd=REPO, env=full_env, capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            pytest.fail(f"horovodrun exited {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}"
                        f"\nstderr:\n{proc.stderr[-4000:]}")
        return proc

    return run
