"""A run folder cannot be corrupted: no NaN checkpoint named good, a full disk keeps the last
good checkpoint, two runs cannot share a folder, a fresh run never replaces an existing one, step
0 writes nothing. (The checkpoint files themselves: test_checkpoint.py.)"""
import errno
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from recognition.commands.train import main
from recognition.config import load_config
from recognition.parallel.distributed import init_workers
from recognition.training import runlock
from recognition.training.monitor import NonFiniteLoss
from recognition.training.run import Run
from recognition.training.runlock import RunFolderBusy, RunLock, RunLockError, hold_run_folder
from tests.support import REPO
from tests.support.tiny_faces import tiny_faces, write_config

TINY = dict(network="r_tiny", embedding_size=16, batch_size=8, loss="cosface", margin_s=16.0,
            margin_m3=0.1, lr=0.05, warmup_steps=0, reference_batch_size=0, log_every=1,
            verify_every=0, augment={}, preprocess_threads=1, lr_steps=[])


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    return write_config(tiny_faces(str(tmp_path_factory.mktemp("safety")), seed=3), TINY)


def make_run(config, **overrides):
    return Run(load_config(config, overrides), init_workers())


def assert_checkpoint_is_finite(folder, step):
    _, args, auxs = mx.model.load_checkpoint(os.path.join(folder, "model"), step)
    for name, value in {**args, **auxs}.items():
        assert np.all(np.isfinite(value.asnumpy())), name


@pytest.mark.parametrize("where", ["classifier", "backbone"])
def test_a_step_that_breaks_the_weights_is_never_saved(tiny_config, tmp_path, where):
    """save_every 1: the update of step 3 makes the weights NaN while its loss (computed
    before the update) is finite; checkpoint 3 must not be written nor named good."""
    run = make_run(tiny_config, output=str(tmp_path), max_steps=6, save_every=1)
    update, trainer_update = run.objective.update, run.trainer.update

    def poisoned_update(*args):
        update(*args)
        if run.step == 2 and where == "classifier":  # run.step counts from 0 inside the step
            run.objective.fc.weight[0] = float("nan")

    def poisoned_trainer_update(*args):
        trainer_update(*args)
        if run.step == 2 and where == "backbone":
            param = next(iter(run.net.collect_params().values()))
            param.set_data(param.data() * float("inf"))

    run.objective.update, run.trainer.update = poisoned_update, poisoned_trainer_update
    with pytest.raises(NonFiniteLoss, match=r"weights became NaN or inf at step 3; "
                                            r"the last good checkpoint \(step 2\) is kept"):
        run.train(stop=False)
    assert json.load(open(tmp_path / "checkpoint.json"))["step"] == 2
    assert not os.path.exists(tmp_path / "model-0003.params")
    assert_checkpoint_is_finite(str(tmp_path), 2)


def test_max_steps_zero_is_refused_and_stop_before_step_one_saves_nothing(tiny_config,
                                                                          tmp_path, capsys):
    assert main([tiny_config, "--max_steps", "0", "--output", str(tmp_path)]) == 2
    assert "'max_steps' must be an integer >= 1" in capsys.readouterr().err
    run = make_run(tiny_config, output=str(tmp_path), max_steps=5)
    run.train(stop=True)  # SIGTERM before the first step
    assert not [n for n in os.listdir(tmp_path) if n.startswith(("model-", "checkpoint"))]


@pytest.fixture
def small_disk(tmp_path):
    """A 32 MB tmpfs (real ENOSPC from the kernel); skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def fill(folder):
    with open(os.path.join(folder, "filler"), "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_disk_full_during_training_is_a_clear_error(tiny_config, small_disk, capsys,
                                                    monkeypatch):
    """A real full disk: training stops with `error: no space left on device writing DIR`,
    exit status 2, the pointer on the last complete checkpoint, no temporaries left."""
    saves = []
    real_save = Run.save

    def save_then_fill(run):
        real_save(run)
        saves.append(run.step)
        fill(run.cfg.output)

    monkeypatch.setattr(Run, "save", save_then_fill)
    output = str(small_disk / "run")
    assert main([tiny_config, "--max_steps", "6", "--save_every", "2",
                 "--output", output]) == 2
    err = capsys.readouterr().err
    assert f"error: no space left on device writing {output} (checkpoint step 4 not saved)" \
        in err and "last complete checkpoint (step 2) is kept" in err
    assert saves == [2]
    assert json.load(open(os.path.join(output, "checkpoint.json")))["step"] == 2
    assert not [n for n in os.listdir(output) if ".tmp" in n or "-0004" in n]
    assert_checkpoint_is_finite(output, 2)


def test_a_second_run_in_the_same_folder_is_refused(tiny_config, tmp_path, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from recognition.training.runlock import "
         "RunLock; RunLock(sys.argv[1]).acquire(); print('locked', flush=True); "
         "time.sleep(60)", str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=REPO))
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main([tiny_config, "--max_steps", "2", "--output", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert f"error: {tmp_path} is in use by another training run (PID {holder.pid}" in err
        assert not os.path.exists(tmp_path / "train.log")
    finally:
        holder.kill()
        holder.wait()
    # the holder died without unlocking: its lock is taken over, with a message
    assert main([tiny_config, "--max_steps", "2", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"taking over the lock of a run that is no longer running (PID {holder.pid}" in out
    assert json.load(open(tmp_path / "checkpoint.json"))["step"] == 2


def test_lock_is_exclusive_within_one_process_too(tmp_path):
    with RunLock(str(tmp_path), log=None):
        with pytest.raises(RunFolderBusy, match=f"PID {os.getpid()}"):
            RunLock(str(tmp_path)).acquire()
    RunLock(str(tmp_path)).acquire().release()


def _flock_failing_with(monkeypatch, code):
    def flock(fd, operation):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(runlock.fcntl, "flock", flock)


@pytest.mark.parametrize("code", [errno.EWOULDBLOCK, errno.EAGAIN], ids=errno.errorcode.get)
def test_only_ewouldblock_means_busy(tmp_path, monkeypatch, code):
    _flock_failing_with(monkeypatch, code)
    with pytest.raises(RunFolderBusy, match="in use by another training run"):
        RunLock(str(tmp_path)).acquire()


@pytest.mark.parametrize("code", [errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL],
                         ids=errno.errorcode.get)
def test_a_file_system_without_flock_is_named_not_called_busy(tmp_path, monkeypatch, code):
    """NFS/FUSE mounts without flock fail with these; no other run is involved."""
    _flock_failing_with(monkeypatch, code)
    with pytest.raises(RunLockError) as info:
        RunLock(str(tmp_path)).acquire()
    message = str(info.value)
    assert not isinstance(info.value, RunFolderBusy)
    assert "in use" not in message
    assert errno.errorcode[code] in message and "does not support flock" in message
    assert "local disk or another lock-capable file system" in message


def test_other_flock_errors_name_their_cause(tmp_path, monkeypatch):
    _flock_failing_with(monkeypatch, errno.EIO)
    with pytest.raises(RunLockError, match="EIO") as info:
        RunLock(str(tmp_path)).acquire()
    assert not isinstance(info.value, RunFolderBusy) and "in use" not in str(info.value)


def test_every_worker_stops_when_the_folder_cannot_be_locked(tmp_path, monkeypatch):
    """Rank 0's lock error reaches all workers through the flag, as a busy folder does."""
    _flock_failing_with(monkeypatch, errno.ENOLCK)
    flags = []

    def any_flag(flag):
        flags.append(flag)
        return flag
    with pytest.raises(RunLockError, match="ENOLCK"):
        with hold_run_folder(str(tmp_path), 0, any_flag, log=None):
            pass
    assert flags == [True]


def test_stale_temporaries_are_removed_at_start(tiny_config, tmp_path, capsys):
    for name in ("model-0004.params.tmp123", ".model.tmp99-symbol.json", "state-4.json.tmp7"):
        (tmp_path / name).write_bytes(b"junk")
    assert main([tiny_config, "--max_steps", "1", "--output", str(tmp_path)]) == 0
    assert "removed 3 temporary file(s)" in capsys.readouterr().out
    assert not [n for n in os.listdir(tmp_path) if ".tmp" in n]


def test_a_fresh_run_never_replaces_an_existing_one(tiny_config, tmp_path, capsys):
    """Without --resume, a folder that holds a run is refused (a fresh run would prune its
    checkpoints, and a later resume could mix the two runs' classifier shards)."""
    assert main([tiny_config, "--max_steps", "2", "--save_every", "2",
                 "--output", str(tmp_path)]) == 0
    before = sorted(os.listdir(tmp_path))
    assert main([tiny_config, "--max_steps", "2", "--output", str(tmp_path)]) == 2
    assert (f"error: {tmp_path} already holds a run (checkpoint step 2); continue it with "
            f"--resume true") in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == before
    assert main([tiny_config, "--max_steps", "3", "--output", str(tmp_path),
                 "--resume", "true"]) == 0
