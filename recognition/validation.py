"""Range checks of config values, so a bad value stops the run at start with the key named
instead of failing deep in MXNet (or training garbage) hours later."""
import math

from .errors import ConfigError
from .model_spec import parse_prefix_epoch

__all__ = ["check_values"]


def _require(ok, key, value, rule):
    if not ok:
        raise ConfigError(f"key {key!r} must be {rule}, got {value!r}")


def _positive_int(config, *keys, minimum=1):
    for key in keys:
        value = config[key]
        _require(isinstance(value, int) and value >= minimum, key, value,
                 f"an integer >= {minimum}")


def _finite(value):
    return isinstance(value, (int, float)) and math.isfinite(value)


def _check_optimisation(config):
    _positive_int(config, "batch_size", "max_steps", "log_every", "keep_checkpoints",
                  "preprocess_threads", "embedding_size")
    _positive_int(config, "warmup_steps", "reference_batch_size", "verify_every", "save_every",
                  "seed", minimum=0)
    _require(_finite(config["lr"]) and config["lr"] > 0, "lr", config["lr"], "> 0")
    _require(_finite(config["lr_factor"]) and config["lr_factor"] > 0, "lr_factor",
             config["lr_factor"], "> 0")
    _require(_finite(config["momentum"]) and 0 <= config["momentum"] < 1, "momentum",
             config["momentum"], "in [0, 1)")
    _require(_finite(config["weight_decay"]) and config["weight_decay"] >= 0, "weight_decay",
             config["weight_decay"], ">= 0")
    steps = config["lr_steps"]
    _require(all(isinstance(s, int) and s > 0 for s in steps) and steps == sorted(steps),
             "lr_steps", steps, "increasing positive integers")
    from .training.schedules import SCHEDULES

    _require(config["lr_schedule"] in SCHEDULES, "lr_schedule", config["lr_schedule"],
             f"one of {tuple(SCHEDULES)}")
    _require(_finite(config["lr_power"]) and config["lr_power"] > 0, "lr_power",
             config["lr_power"], "> 0")
    from .training.precision import DTYPES

    _require(config["dtype"] in DTYPES, "dtype", config["dtype"], f"one of {DTYPES}")
    from .parallel.distributed import DEVICES, worker_device

    try:  # the form only: which GPUs exist is the worker's business
        worker_device(config["device"], 0, 1, num_gpus=1)
    except ConfigError:
        _require(False, "device", config["device"], DEVICES)
    _require(_finite(config["loss_scale"]) and config["loss_scale"] >= 0, "loss_scale",
             config["loss_scale"], ">= 0 (0: dynamic)")


def _check_data(config):
    size = config["image_size"]
    _require(len(size) == 2 and all(isinstance(v, int) and v >= 8 for v in size),
             "image_size", size, "[height, width], two integers >= 8")
    if config["num_classes"] is not None:
        _positive_int(config, "num_classes")
    _require(isinstance(config["augment"], dict), "augment", config["augment"], "a dict")


def _check_loss(config):
    from .heads.margin import MarginSpec

    try:
        MarginSpec(config["margin_s"], config["margin_m1"], config["margin_m2"],
                   config["margin_m3"], config["easy_margin"])
    except ValueError as exc:
        raise ConfigError(f"loss {config['loss']!r}: {exc}") from None
    rate = config["sample_rate"]
    _require(_finite(rate) and 0 < rate <= 1, "sample_rate", rate, "in (0, 1]")
    _require(_finite(config["center_loss_weight"]) and config["center_loss_weight"] >= 0,
             "center_loss_weight", config["center_loss_weight"], ">= 0")
    alpha = config["center_loss_alpha"]
    _require(_finite(alpha) and 0 <= alpha < 1, "center_loss_alpha", alpha, "in [0, 1)")
    weights = config["attribute_weights"]
    _require(weights and all(_finite(w) and w >= 0 for w in weights), "attribute_weights",
             weights, "a non-empty list of numbers >= 0")


def _check_network(config):
    from .backbones import get_model_list

    if config["network_checkpoint"] is None and config["network"] not in get_model_list():
        raise ConfigError(f"unknown backbone {config['network']!r}; valid: "
                          f"{', '.join(get_model_list())}")


def check_values(config):
    """Raise ConfigError naming the first key whose value is out of range."""
    _check_network(config)
    _check_data(config)
    _check_optimisation(config)
    _check_loss(config)
    for key in ("network_checkpoint", "pretrained"):
        if config[key] is not None:
            parse_prefix_epoch(config[key], key)
