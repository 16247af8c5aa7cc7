"""Config loading, the lr schedule and the loss checks (without a training loop; the
checkpoint files: test_checkpoint.py)."""
import os

import numpy as np
import pytest

from recognition.config import BASE_CONFIG, ConfigError, load_config, parse_overrides
from recognition.training.monitor import NonFiniteLoss, check_finite, format_eta
from recognition.training.schedules import (CosineSchedule, PolySchedule, StepSchedule,
                                             build_schedule, scaled_steps)
from tests.support import REPO


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
    folder = os.path.join(REPO, "configs")
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


def test_poly_and_cosine_follow_their_formulas_after_warm_up():
    """Checked against the closed forms in NumPy: warm-up ramps linearly, then poly falls as
    (1 - t) ** power and cosine as (1 + cos(pi t)) / 2, both reaching 0 at max_steps."""
    steps = np.arange(0, 1001)
    t = np.clip((steps - 100) / 900.0, 0, 1)
    warm = 0.1 * (steps + 1) / 100
    poly = PolySchedule(0.1, 1000, power=2.0, warmup_steps=100)
    cosine = CosineSchedule(0.1, 1000, warmup_steps=100)
    expected_poly = np.where(steps < 100, warm, 0.1 * (1 - t) ** 2)
    expected_cos = np.where(steps < 100, warm, 0.05 * (1 + np.cos(np.pi * t)))
    np.testing.assert_allclose([poly(s) for s in steps], expected_poly, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose([cosine(s) for s in steps], expected_cos, rtol=1e-12, atol=1e-15)
    assert poly(1000) == 0 and cosine(1000) == 0 and poly(100) == cosine(100) == 0.1
    assert poly(5000) == 0  # past max_steps (resumed with a larger budget): never negative


def test_lr_schedule_key_picks_the_schedule_and_unknown_names_are_refused():
    cfg = load_config(BASE_CONFIG, ["--lr_schedule", "cosine", "--max_steps", "400",
                             "--warmup_steps", "0"])
    sched = build_schedule(cfg, 64, 400)
    assert isinstance(sched, CosineSchedule) and np.isclose(sched(200), cfg.lr / 2)
    assert isinstance(build_schedule(load_config(BASE_CONFIG, []), 512, 200000), StepSchedule)
    with pytest.raises(ConfigError, match="lr_schedule.*one of.*step.*poly.*cosine"):
        load_config(BASE_CONFIG, ["--lr_schedule", "linear"])
    with pytest.raises(ConfigError, match="lr_power"):
        load_config(BASE_CONFIG, ["--lr_power", "0"])


def test_steps_scale_with_global_batch():
    assert scaled_steps([100000, 140000], 256, 512) == [200000, 280000]
    assert scaled_steps([100000], 1024, 512) == [50000]
    assert scaled_steps([100], 64, 0) == [100]


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
