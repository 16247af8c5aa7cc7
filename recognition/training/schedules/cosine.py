"""Cosine decay (Loshchilov and Hutter's SGDR without restarts): lr follows half a cosine from
base_lr to 0 at the last step."""
import math

from .warmup import DecayToZero

__all__ = ["CosineSchedule"]


class CosineSchedule(DecayToZero):
    """Warm-up, then `base_lr * (1 + cos(pi * t)) / 2`, t as in :class:`DecayToZero`."""

    def decayed(self, step):
        return self.base_lr * 0.5 * (1.0 + math.cos(math.pi * self.progress(step)))

    @classmethod
    def from_config(cls, cfg, global_batch, max_steps):
        return cls(cfg.lr, max_steps, cfg.warmup_steps)

    def __repr__(self):
        return (f"CosineSchedule(lr={self.base_lr} to 0 at {self.max_steps}, "
                f"warm-up {self.warmup_steps})")
