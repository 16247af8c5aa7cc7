"""Step schedule (Chen and Ding; InsightFace's default): x`lr_factor` at each of `lr_steps`."""
from .warmup import WarmupSchedule, scaled_steps

__all__ = ["StepSchedule"]


class StepSchedule(WarmupSchedule):
    """Warm-up, then `base_lr` times `factor` once for each of `steps` passed."""

    def __init__(self, base_lr, steps, factor=0.1, warmup_steps=0):
        if sorted(steps) != list(steps):
            raise ValueError(f"lr steps must be increasing, got {steps}")
        super().__init__(base_lr, warmup_steps)
        self.steps, self.factor = list(steps), factor

    def decayed(self, step):
        drops = sum(step >= s for s in self.steps)
        return self.base_lr * self.factor ** drops

    @classmethod
    def from_config(cls, cfg, global_batch, max_steps):
        return cls(cfg.lr, scaled_steps(cfg.lr_steps, global_batch, cfg.reference_batch_size),
                   cfg.lr_factor, cfg.warmup_steps)

    def __repr__(self):
        return (f"StepSchedule(lr={self.base_lr}, x{self.factor} at {self.steps}, "
                f"warm-up {self.warmup_steps})")
