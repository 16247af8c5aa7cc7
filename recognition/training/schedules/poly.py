"""Polynomial decay (arcface_torch's default): lr falls as (1 - progress) ** power to 0 at the
last step, so every step of a short run is spent at a useful rate and none at a tiny one."""
from .warmup import DecayToZero

__all__ = ["PolySchedule"]


class PolySchedule(DecayToZero):
    """Warm-up, then `base_lr * (1 - t) ** power`, t going from 0 after warm-up to 1 at
    `max_steps`."""

    def __init__(self, base_lr, max_steps, power=2.0, warmup_steps=0):
        super().__init__(base_lr, max_steps, warmup_steps)
        self.power = power

    def decayed(self, step):
        return self.base_lr * (1.0 - self.progress(step)) ** self.power

    @classmethod
    def from_config(cls, cfg, global_batch, max_steps):
        return cls(cfg.lr, max_steps, cfg.lr_power, cfg.warmup_steps)

    def __repr__(self):
        return (f"PolySchedule(lr={self.base_lr}, power {self.power} to 0 at {self.max_steps}, "
                f"warm-up {self.warmup_steps})")
