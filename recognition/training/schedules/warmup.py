"""What every schedule shares: a linear warm-up, and step counts re-counted for the global batch.

Chen and Ding's steps (lr 0.1, x0.1 at 100k/140k/160k) were set for a global batch of 512: a run
with a global batch B takes `512 / B` times as many steps to see the same number of images, so
step counts are stretched by that ratio (the base lr is kept, as InsightFace does).
"""

__all__ = ["WarmupSchedule", "DecayToZero", "scaled_steps"]


def scaled_steps(steps, global_batch, reference_batch):
    """Steps counted for `reference_batch` images, re-counted for `global_batch`."""
    if not reference_batch or global_batch == reference_batch:
        return [int(s) for s in steps]
    return [max(1, round(s * reference_batch / global_batch)) for s in steps]


class WarmupSchedule:
    """`lr(step)`: linear warm-up from base_lr / warmup_steps to base_lr, then `decayed(step)`."""

    def __init__(self, base_lr, warmup_steps=0):
        self.base_lr, self.warmup_steps = base_lr, warmup_steps

    def __call__(self, step):
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        return self.decayed(step)

    def decayed(self, step):
        raise NotImplementedError

    @classmethod
    def from_config(cls, cfg, global_batch, max_steps):
        """The schedule `cfg` describes for a run of `max_steps` (already re-counted)."""
        raise NotImplementedError


class DecayToZero(WarmupSchedule):
    """A schedule that decays from base_lr after warm-up to 0 at `max_steps`; `progress(step)`
    is t, going from 0 at the end of warm-up to 1 at `max_steps` (and staying 1 after)."""

    def __init__(self, base_lr, max_steps, warmup_steps=0):
        super().__init__(base_lr, warmup_steps)
        self.max_steps = max_steps

    def progress(self, step):
        span = max(1, self.max_steps - self.warmup_steps)
        return min(1.0, (step - self.warmup_steps) / span)
