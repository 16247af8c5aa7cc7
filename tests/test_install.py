"""The installed environment: pinned versions and a real two-worker Horovod all-reduce; the
Makefile's CPU and GPU (cu112) install paths."""
import os
import re
import subprocess
import sys
import textwrap
import time

import mxnet as mx
import numpy as np
import pytest

from tests.support import REPO


def test_pinned_versions():
    assert np.__version__ == "1.23.5"
    assert mx.__version__ == "1.9.1"


def test_horovodrun_allreduce_sums_two_ranks(run_horovod, tmp_path):
    script = tmp_path / "allreduce.py"
    script.write_text(textwrap.dedent("""
        import horovod.mxnet as hvd
        import mxnet as mx
        hvd.init()
        total = hvd.allreduce(mx.nd.array([hvd.rank() + 1.0, 10.0]), average=False, name="x")
        print(f"rank={hvd.rank()} size={hvd.size()} total={total.asnumpy().tolist()}")
    """))
    out = run_horovod([str(script)], np=2).stdout
    assert "rank=0 size=2 total=[3.0, 20.0]" in out
    assert "rank=1 size=2 total=[3.0, 20.0]" in out


# `make install GPU=cu112` cannot be run here (a 499 MB wheel, CUDA and NCCL): these check what
# make would run (`make -n`) in a throwaway venv folder, and setup.py's metadata.

def make_dry_run(venv, *args):
    """`make -n VENV=venv ARGS` in the repository; returns (exit status, stdout + stderr)."""
    env = {k: v for k, v in os.environ.items() if k not in ("GPU", "MAKEFLAGS", "MAKELEVEL")}
    proc = subprocess.run(["make", "-n", f"VENV={venv}", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr


def installed_venv(path, variant=None, stale=False):
    """A fake venv whose stamps say it is installed; `stale`: older than setup.py."""
    for name in ("bin/python", ".installed", ".horovod"):
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).touch()
    if variant:
        (path / ".mxnet-variant").write_text(variant + "\n")
    when = 1_000_000_000 if stale else time.time() + 3600
    for name in ("bin/python", ".installed", ".horovod"):
        os.utime(path / name, (when, when))
    return path


CPU_MXNET = re.compile(r"\bmxnet==|version\('mxnet'\)|,cpu\]")


def test_gpu_install_uses_cuda_mxnet_and_builds_horovod_with_nccl(tmp_path):
    status, out = make_dry_run(tmp_path / "venv", "install", "GPU=cu112")
    assert status == 0, out
    assert '-e ".[test,export,tensorboard,cu112]"' in out
    assert "version('mxnet-cu112') == '1.9.1'" in out
    horovod = next(line for line in out.splitlines() if "horovod==0.28.1" in line)
    assert "HOROVOD_GPU_OPERATIONS=NCCL" in horovod and "HOROVOD_WITH_GLOO=1" in horovod
    assert "--no-cache-dir" in horovod  # a cached CPU wheel would come back otherwise
    assert "hvd.nccl_built()" in out and "hvd.gloo_built()" in out  # horovodrun --gloo
    assert not CPU_MXNET.search(out), out
    assert "echo cu112 >" in out


def test_cpu_install_is_the_same_gloo_build(tmp_path):
    status, out = make_dry_run(tmp_path / "venv", "install")
    assert status == 0, out
    assert '-e ".[test,export,tensorboard,cpu]"' in out
    assert "HOROVOD_WITH_MXNET=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 " \
        "HOROVOD_WITHOUT_MPI=1 HOROVOD_WITH_GLOO=1 " in out
    assert "hvd.gloo_built()" in out
    assert "cu112" not in out and "nccl" not in out.lower() and "uninstall" not in out


def test_a_later_plain_make_keeps_the_gpu_build(tmp_path):
    """After `make install GPU=cu112`, a plain `make` / `make test` that reinstalls (setup.py
    changed) installs the cu112 extra again, never the CPU `mxnet` over it."""
    venv = installed_venv(tmp_path / "venv", "cu112", stale=True)
    for target in ("install", "test"):
        status, out = make_dry_run(venv, target)
        assert status == 0, out
        assert '-e ".[test,export,tensorboard,cu112]"' in out and "nccl_built" in out
        assert not CPU_MXNET.search(out), out
        assert "uninstall" not in out
    status, out = make_dry_run(installed_venv(tmp_path / "fresh", "cu112"), "install")
    assert status == 0 and "Nothing to be done" in out, out


@pytest.mark.parametrize("old,new", [("cpu", "cu112"), ("cu112", "cpu")])
def test_switching_variant_uninstalls_first_and_rebuilds_horovod(tmp_path, old, new):
    venv = installed_venv(tmp_path / "venv", old)  # up to date for `old`
    status, out = make_dry_run(venv, "install", f"GPU={new}")
    assert status == 0, out
    lines = out.splitlines()
    removed = lines.index(f"rm -f {venv}/.installed {venv}/.horovod {venv}/.mxnet-variant")
    uninstall = next(i for i, line in enumerate(lines)
                     if "uninstall -y -q mxnet mxnet-cu112 horovod" in line)
    install = next(i for i, line in enumerate(lines) if f"tensorboard,{new}]" in line)
    rebuild = next(i for i, line in enumerate(lines) if "horovod==0.28.1" in line)
    assert removed < uninstall < install < rebuild


def test_a_venv_from_before_variants_is_left_as_it_is(tmp_path):
    """Venvs made by the old Makefile have no variant file: CPU unless mxnet-cu112 is there."""
    status, out = make_dry_run(installed_venv(tmp_path / "cpu"), "install")
    assert status == 0 and "Nothing to be done" in out, out
    venv = installed_venv(tmp_path / "gpu", stale=True)
    (venv / "lib/python3.11/site-packages/mxnet_cu112-1.9.1.dist-info").mkdir(parents=True)
    status, out = make_dry_run(venv, "install")
    assert status == 0 and "cu112]" in out and not CPU_MXNET.search(out), out


def test_an_unknown_gpu_build_is_refused(tmp_path):
    status, out = make_dry_run(tmp_path / "venv", "install", "GPU=cu118")
    assert status != 0 and "GPU=cu118" in out and "GPU=cu112 or GPU=cpu" in out


def test_gpu_check_target_runs_the_smoke_script(tmp_path):
    status, out = make_dry_run(installed_venv(tmp_path / "venv", "cpu"), "gpu-check")
    assert status == 0 and "benchmarks/gpu_smoke.py" in out, out


def test_setup_requires_no_mxnet_build_but_offers_both_as_extras(tmp_path):
    """Requiring `mxnet` would make every reinstall put the CPU wheel over mxnet-cu112."""
    subprocess.run([sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(tmp_path)],
                   cwd=REPO, check=True, capture_output=True, timeout=120)
    requires = (tmp_path / "recognition.egg-info" / "requires.txt").read_text()
    sections, name = {"": []}, ""
    for line in filter(None, map(str.strip, requires.splitlines())):
        if line.startswith("["):
            name = line.strip("[]")
            sections[name] = []
        else:
            sections[name].append(line)
    assert not [r for r in sections[""] if re.match(r"mxnet\b", r)], sections[""]
    assert sections["cpu"] == ["mxnet==1.9.1"]
    assert sections["cu112"] == ["mxnet-cu112==1.9.1"]
