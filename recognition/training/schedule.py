"""Step learning-rate schedule with warm-up, scaled to the global batch size.

Chen and Ding's schedule (lr 0.1, x0.1 at 100k/140k/160k) was set for a global batch of 512: a run
with a global batch B takes `512 / B` times as many steps to see the same number of images, so
the steps are stretched by that ratio (the base lr is kept, as InsightFace does).
"""

__all__ = ["StepSchedule", "scaled_steps"]


def scaled_steps(steps, global_batch, reference_batch):
    """Steps counted for `reference_batch` images, re-counted for `global_batch`."""
    if not reference_batch or global_batch == reference_batch:
        return [int(s) for s in steps]
    return [max(1, round(s * reference_batch / global_batch)) for s in steps]


class StepSchedule:
    """`lr(step)`: linear warm-up to `base_lr`, then x`factor` at each of `steps`."""

    def __init__(self, base_lr, steps, factor=0.1, warmup_steps=0):
        if sorted(steps) != list(steps):
            raise ValueError(f"lr steps must be increasing, got {steps}")
        self.base_lr, self.steps = base_lr, list(steps)
        self.factor, self.warmup_steps = factor, warmup_steps

    def __call__(self, step):
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        drops = sum(step >= s for s in self.steps)
        return self.base_lr * self.factor ** drops

    def __repr__(self):
        return (f"StepSchedule(lr={self.base_lr}, x{self.factor} at {self.steps}, "
                f"warm-up {self.warmup_steps})")
