"""Checkpoint files (`Checkpointer`, without a training loop): round trip and pruning, and a
write that is interrupted or fails (full disk, failed export) keeps the previous checkpoint and
best network, with a message that says why."""
import errno
import json
import os

import mxnet as mx
import pytest

from recognition.fileio import atomic_write_text, write_failure_message
from recognition.training.checkpoint import CheckpointWriteError, Checkpointer
from tests.support.fakes import FakeTrainer, small_net


def test_checkpoint_round_trip_and_pruning(tmp_path):
    ckpt = Checkpointer(str(tmp_path), keep=2)
    net = small_net()
    for step in (10, 20, 30):
        ckpt.save(step, net, FakeTrainer(step),
                  lambda prefix, s=step: open(f"{prefix}-rank0of1.params", "w").write(str(s)),
                  {"lr": 0.1})
    step, state, world = ckpt.latest()
    assert (step, state["lr"], world) == (30, 0.1, 1)
    names = sorted(os.listdir(tmp_path))
    assert "model-0010.params" not in names and "model-0020.params" in names
    assert "fc-10-rank0of1.params" not in names and "fc-30-rank0of1.params" in names
    sym, args, aux = mx.model.load_checkpoint(str(tmp_path / "model"), 30)
    assert set(args) == {k for k in net.collect_params()}


def test_interrupted_write_keeps_previous_checkpoint(tmp_path):
    ckpt = Checkpointer(str(tmp_path), keep=2)
    net = small_net()
    ckpt.save(10, net, FakeTrainer(1), lambda prefix: open(f"{prefix}-rank0of1.params",
                                                            "w").write("1"), {})

    def crash(_path):
        raise KeyboardInterrupt  # killed while writing the shard of step 20

    with pytest.raises(KeyboardInterrupt):
        ckpt.save(20, net, FakeTrainer(2), crash, {})
    assert ckpt.latest()[0] == 10
    atomic_write_text(str(tmp_path / "x.txt"), "ok")
    assert not [n for n in os.listdir(tmp_path) if ".tmp" in n]
    assert json.load(open(tmp_path / "checkpoint.json"))["step"] == 10

def write_shard(prefix):
    open(f"{prefix}-rank0of1.params", "wb").write(b"shard")


def test_a_failed_write_keeps_the_previous_checkpoint_and_says_why(tmp_path, monkeypatch):
    ckpt, net = Checkpointer(str(tmp_path)), small_net()
    ckpt.save(10, net, FakeTrainer(), write_shard, {})

    def no_space(path):
        open(path, "wb").write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FakeTrainer, "save_states", lambda self, path: no_space(path))
    with pytest.raises(CheckpointWriteError, match=rf"no space left on device writing "
                                                   rf"{tmp_path} \(checkpoint step 20 not saved\)"
                                                   rf".*last complete checkpoint \(step 10\)"):
        ckpt.save(20, net, FakeTrainer(), write_shard, {})
    names = os.listdir(tmp_path)
    assert not [n for n in names if ".tmp" in n or "20" in n], names
    assert ckpt.latest()[0] == 10


def test_best_network_survives_a_failed_replacement(tmp_path, monkeypatch):
    ckpt, net = Checkpointer(str(tmp_path)), small_net()
    ckpt.save_best(net, 10)

    def fail_export(self, path, epoch=0, **kw):
        open(f"{path}-{epoch:04d}.params", "wb").write(b"half")
        raise mx.base.MXNetError("FileStream.Write incomplete")

    monkeypatch.setattr(type(net), "export", fail_export)
    with pytest.raises(CheckpointWriteError, match="previous best network is kept"):
        ckpt.save_best(net, 20)
    assert sorted(n for n in os.listdir(tmp_path) if n.startswith("best")) == [
        "best-0010.params", "best-symbol.json"]
    mx.model.load_checkpoint(str(tmp_path / "best"), 10)

def test_write_failure_message_for_other_errors(tmp_path):
    message = write_failure_message(
        PermissionError(errno.EACCES, "Permission denied"), str(tmp_path), "checkpoint step 3")
    assert message == (f"cannot write {tmp_path} (checkpoint step 3 not saved): "
                       f"[Errno 13] Permission denied")
