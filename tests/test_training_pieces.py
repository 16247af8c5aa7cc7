"""Config loading, the lr schedule and atomic checkpoints (without a training loop)."""
import json
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

from recognition.config import ConfigError, load_config, parse_overrides
from recognition.fileio import atomic_write_text
from recognition.training.checkpoint import Checkpointer
from recognition.training.monitor import NonFiniteLoss, check_finite, format_eta
from recognition.training.schedule import StepSchedule, scaled_steps


def write_config(tmp_path, text):
    path = tmp_path / "exp.py"
    path.write_text(text)
    return str(path)


def test_experiment_overrides_base_and_command_line_overrides_both(tmp_path):
    path = write_config(tmp_path, "config = dict(network='r18', lr=0.2)\n")
    cfg = load_config(path, ["--lr", "0.05", "--lr_steps=10,20", "--tensorboard", "true"])
    assert cfg.network == "r18" and cfg.lr == 0.05 and cfg.lr_steps == [10, 20]
    assert cfg.tensorboard is True and cfg.momentum == 0.9
    assert cfg.output == os.path.join("work_dirs", "exp")


def test_unknown_key_names_it_and_lists_known(tmp_path):
    path = write_config(tmp_path, "config = dict(learning_rate=0.1)\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'learning_rate'.*known keys:.*lr"):
        load_config(path)
    with pytest.raises(ConfigError, match="unknown config key 'netwrk'"):
        load_config(write_config(tmp_path, "config = {}\n"), ["--netwrk", "r18"])


def test_wrong_type_is_an_error(tmp_path):
    path = write_config(tmp_path, "config = {}\n")
    with pytest.raises(ConfigError, match="'batch_size' expects int"):
        load_config(path, ["--batch_size", "big"])
    with pytest.raises(ConfigError, match="'lr_steps' expects list"):
        load_config(path, {"lr_steps": 5})
    assert load_config(path, ["--lr", "1"]).lr == 1.0  # an int where a float is expected is fine


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match="needs a value"):
        parse_overrides(["--lr"])
    with pytest.raises(ConfigError, match="unexpected argument"):
        parse_overrides(["lr", "0.1"])


def test_every_shipped_config_loads():
    folder = os.path.join(os.path.dirname(__file__), "..", "configs")
    names = [n for n in os.listdir(folder) if n.endswith(".py")]
    assert "base.py" in names
    for name in names:
        load_config(os.path.join(folder, name))


def test_schedule_matches_chen_and_ding():
    sched = StepSchedule(0.1, [100000, 140000, 160000], 0.1)
    assert sched(0) == 0.1 and sched(99999) == 0.1
    assert np.isclose(sched(100000), 0.01) and np.isclose(sched(150000), 0.001)
    assert np.isclose(sched(170000), 1e-4)
    warm = StepSchedule(0.1, [10], warmup_steps=4)
    assert [round(warm(s), 4) for s in range(5)] == [0.025, 0.05, 0.075, 0.1, 0.1]


def test_steps_scale_with_global_batch():
    assert scaled_steps([100000, 140000], 256, 512) == [200000, 280000]
    assert scaled_steps([100000], 1024, 512) == [50000]
    assert scaled_steps([100], 64, 0) == [100]


class FakeTrainer:
    def __init__(self, value):
        self.value = value

    def save_states(self, path):
        with open(path, "w") as f:
            f.write(str(self.value))

    def load_states(self, path):
        self.value = int(open(path).read())


def small_net():
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(3))
    net.initialize()
    net.hybridize()
    net(mx.nd.ones((1, 2)))
    return net


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


def test_non_finite_loss_message_names_step_and_remedy():
    check_finite(1.5, 3, None)
    with pytest.raises(NonFiniteLoss, match=r"nan at step 7; the last good checkpoint \(step 5\)"
                                            r".*softmax"):
        check_finite(float("nan"), 7, 5)


def test_eta_format():
    assert format_eta(3725) == "01:02:05" and format_eta(90000) == "1d 01:00:00"


def test_experiment_can_start_from_another(tmp_path):
    (tmp_path / "family.py").write_text("config = dict(network='incres_v2', lr=0.05)\n")
    (tmp_path / "variant.py").write_text("BASE = 'family.py'\nconfig = dict(lr=0.01)\n")
    cfg = load_config(str(tmp_path / "variant.py"))
    assert (cfg.network, cfg.lr, cfg.config_name) == ("incres_v2", 0.01, "variant")
    (tmp_path / "loop.py").write_text("BASE = 'loop.py'\nconfig = {}\n")
    with pytest.raises(ConfigError, match="loops"):
        load_config(str(tmp_path / "loop.py"))
