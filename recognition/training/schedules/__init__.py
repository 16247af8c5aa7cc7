"""Learning-rate schedules by name. The config key `lr_schedule` picks one; a new schedule is
one file here (a :class:`WarmupSchedule` with `decayed` and `from_config`) plus one line in
:data:`SCHEDULES`."""
from .cosine import CosineSchedule
from .poly import PolySchedule
from .step import StepSchedule
from .warmup import WarmupSchedule, scaled_steps

__all__ = ["SCHEDULES", "build_schedule", "scaled_steps", "StepSchedule", "PolySchedule",
           "CosineSchedule", "WarmupSchedule"]

SCHEDULES = {
    "step": StepSchedule,
    "poly": PolySchedule,
    "cosine": CosineSchedule,
}


def build_schedule(cfg, global_batch, max_steps):
    """The schedule `cfg.lr_schedule` names (checked when the config loads), for
    `global_batch` and `max_steps` (re-counted)."""
    return SCHEDULES[cfg.lr_schedule].from_config(cfg, global_batch, max_steps)
