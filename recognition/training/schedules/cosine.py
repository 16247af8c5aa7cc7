"""Cosine decay (Loshchilov and Hutter's SGDR without restarts): lr follows half a cosine from
base_lr to 0 at the last step."""
import math

from .poly import PolySchedule

__all__ = ["CosineSchedule"]


class CosineSchedule(PolySchedule):
    """Warm-up, then `base_lr * (1 + cos(pi * t)) / 2`, t as in :class:`PolySchedule`."""

    def __init__(self, base_lr, max_steps, warmup_steps=0):
        super().__init__(base_lr, max_steps, power=1.0, warmup_steps=warmup_steps)

    def decayed(self, step):
        return self.base_lr * 0.5 * (1.0 + math.cos(math.pi * self.progress(step)))

    @classmethod
    def from_config(cls, cfg, global_batch, max_steps):
        return cls(cfg.lr, max_steps, cfg.warmup_steps)

    def __repr__(self):
        return (f"CosineSchedule(lr={self.base_lr} to 0 at {self.max_steps}, "
                f"warm-up {self.warmup_steps})")
