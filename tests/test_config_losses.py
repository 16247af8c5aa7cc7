"""Every shipped recipe trains the loss its file names (the papers' values), and the command line
parses each key as its declared type."""
import os

import pytest

from recognition.config import ConfigError, load_config
from recognition.parallel.distributed import init_workers
from recognition.training.task import task_for
from tests.support import REPO

CONFIGS = os.path.join(REPO, "configs")
ARCFACE = ("arcface", 64.0, 1.0, 0.5, 0.0)
SOFTMAX = ("softmax", 64.0, 1.0, 0.0, 0.0)
VGGFACE2 = [f"vggface2_incres_v{v}_{kind}" for v in (1, 2)
            for kind in ("plain", "trsf", "leaky", "prelu", "trsf_leaky", "trsf_prelu")]
# (loss, s, m1, m2, m3) each config must train; None: an attribute network (no margin loss).
EXPECTED = {
    "synthetic": ("arcface", 32.0, 1.0, 0.5, 0.0),            # the demo
    "small_cpu": ("arcface", 32.0, 1.0, 0.5, 0.0),            # small-CPU recipe (the demo's)
    "ms1mv2_r50": ARCFACE, "ms1mv2_r100": ARCFACE,              # Chen and Ding
    "ms1mv2_r50_softmax": SOFTMAX,                             # Chen and Ding, stage 1
    "ms1mv2_r50_arcface_finetune": ARCFACE,                    # Chen and Ding, stage 2
    "ms1mv2_incres_v2_prelu": ARCFACE, "ms1mv2_incres_v2_trsf_prelu": ARCFACE,  # Peng et al.
    "vggface2_incres": SOFTMAX, **{name: SOFTMAX for name in VGGFACE2},          # Peng et al.
    "casia_r50_arcface": ARCFACE, "casia_effb3": ARCFACE,       # Ponce
    "webface_mbv2_center": ("softmax", 30.0, 1.0, 0.0, 0.0),    # Kumar et al. (+ center loss)
    "adience_facialnet": None,                                  # Liu et al. (FacialNet)
}


def shipped_configs():
    return sorted(name[:-3] for name in os.listdir(CONFIGS)
                  if name.endswith(".py") and name != "base.py")


def test_every_shipped_config_has_an_expected_loss():
    missing = sorted(set(shipped_configs()) - set(EXPECTED))
    assert not missing, f"add the loss these configs must train to EXPECTED: {missing}"


@pytest.mark.parametrize("name", shipped_configs())
def test_config_trains_the_loss_it_names(name):
    cfg = load_config(os.path.join(CONFIGS, f"{name}.py"))
    expected = EXPECTED.get(name)
    if expected is None:
        assert cfg.network == "facialnet"
        return
    assert (cfg.loss, cfg.margin_s, cfg.margin_m1, cfg.margin_m2, cfg.margin_m3) == expected
    # and the objective the training loop builds uses exactly these values
    objective = task_for(cfg).objective(cfg, init_workers(), num_classes=8)
    spec = objective.fc.spec
    assert (spec.s, spec.m1, spec.m2, spec.m3) == expected[1:]


def test_kumar_mbv2_keeps_its_center_loss():
    cfg = load_config(os.path.join(CONFIGS, "webface_mbv2_center.py"))
    assert (cfg.center_loss_weight, cfg.center_loss_alpha) == (0.003, 0.95)


def test_loss_picks_the_preset_and_margin_keys_override_only_when_set():
    path = os.path.join(CONFIGS, "ms1mv2_r50.py")
    cfg = load_config(path, ["--loss", "cosface"])
    assert (cfg.margin_s, cfg.margin_m2, cfg.margin_m3) == (64.0, 0.0, 0.35)
    cfg = load_config(path, ["--margin_m2", "0.3"])
    assert (cfg.loss, cfg.margin_s, cfg.margin_m2) == ("arcface", 64.0, 0.3)
    with pytest.raises(ConfigError, match="'loss' is not one of|loss 'arcfce' is not one of"):
        load_config(path, ["--loss", "arcfce"])
    with pytest.raises(ConfigError, match="m2 must be in"):
        load_config(path, ["--margin_m2", "4"])


def test_prefix_epoch_keys_stay_strings_on_the_command_line():
    path = os.path.join(CONFIGS, "synthetic.py")
    cfg = load_config(path, ["--pretrained", "work_dirs/a,b/model,0",
                             "--network_checkpoint=models/r100/model,1"])
    assert cfg.pretrained == "work_dirs/a,b/model,0"
    assert cfg.network_checkpoint == "models/r100/model,1"
    assert load_config(path, ["--pretrained", "none"]).pretrained is None
    with pytest.raises(ConfigError, match="pretrained must be 'prefix,epoch'"):
        load_config(path, ["--pretrained", "work_dirs/a/model"])


def test_command_line_values_take_their_key_type():
    cfg = load_config(os.path.join(CONFIGS, "synthetic.py"), [
        "--val_targets", "lfw,cfp_fp", "--lr_steps", "[10, 20]", "--image_size", "96,96",
        "--network_kwargs", '{"act": "prelu", "trsf": true}', "--resume", "yes",
        "--num_classes", "12", "--attribute_weights", "1,2"])
    assert cfg.val_targets == ["lfw", "cfp_fp"] and cfg.lr_steps == [10, 20]
    assert cfg.image_size == [96, 96] and cfg.network_kwargs == {"act": "prelu", "trsf": True}
    assert cfg.resume is True and cfg.num_classes == 12 and cfg.attribute_weights == [1.0, 2.0]
    assert load_config(os.path.join(CONFIGS, "synthetic.py"), ["--lr_steps", ""]).lr_steps == []


@pytest.mark.parametrize("args, message", [
    (["--batch_size", "0"], "'batch_size' must be an integer >= 1"),
    (["--batch_size", "-4"], "'batch_size' must be an integer >= 1"),
    (["--image_size", "0,0"], "'image_size' must be"),
    (["--image_size", "112"], "'image_size' must be"),
    (["--lr", "-0.1"], "'lr' must be > 0"),
    (["--lr", "nan"], "'lr' must be > 0"),
    (["--max_steps", "0"], "'max_steps' must be an integer >= 1"),
    (["--lr_steps", "20,10"], "'lr_steps' must be increasing"),
    (["--momentum", "1.5"], "'momentum' must be in"),
    (["--sample_rate", "0"], "'sample_rate' must be in"),
    (["--num_classes", "ten"], "'num_classes' expects int"),
    (["--dtype", "bfloat16"], "'dtype' must be one of"),
])
def test_out_of_range_values_name_the_key(args, message):
    with pytest.raises(ConfigError, match=message):
        load_config(os.path.join(CONFIGS, "synthetic.py"), args)


def test_a_broken_config_file_is_named_with_its_line(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("config = dict(\n    lr=0.1,\n    network='r18'\n")
    with pytest.raises(ConfigError, match=r"bad\.py:\d+: syntax error"):
        load_config(str(bad))
    bad.write_text("config = dict(\n    lr=undefined_name,\n)\n")
    with pytest.raises(ConfigError, match=r"bad\.py:2: NameError"):
        load_config(str(bad))
