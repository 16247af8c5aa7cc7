"""The largest per-worker batch, and the largest class count, that fit a device.

Memory grows with the batch and with the class count (never shrinks), so both are found by
bisection on :func:`~recognition.scaling.memory.worker_memory`.
"""
from dataclasses import replace

from ..errors import ConfigError
from .memory import total, worker_memory

__all__ = ["largest_batch", "largest_classes"]

_MAX_BATCH = 1 << 24
_MAX_CLASSES = 1 << 40


def _fits(setup, stats, capacity):
    return total(worker_memory(setup, stats)) <= capacity


def _bisect(fits, low, high):
    """Largest v in [low, high] with fits(v), or low - 1 when none (fits is monotone)."""
    if not fits(low):
        return low - 1
    if fits(high):
        return high
    while high - low > 1:  # fits(low) and not fits(high)
        mid = (low + high) // 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low


def largest_batch(setup, stats, capacity):
    """Largest images per worker that fit ``capacity`` bytes with ``setup.classes`` (0: none)."""
    return _bisect(lambda b: _fits(replace(setup, batch_size=b), stats, capacity), 1, _MAX_BATCH)


def largest_classes(setup, stats, capacity):
    """Largest class count that fits ``capacity`` bytes at ``setup.batch_size`` (0: none).

    Counts that cannot be split into W non-empty shards are skipped upwards: the search starts
    at W classes (one per worker).
    """
    def fits(classes):
        try:
            return _fits(replace(setup, classes=classes), stats, capacity)
        except ConfigError:  # too few classes for W shards: treat as fitting (monotone)
            return True

    found = _bisect(fits, setup.workers, _MAX_CLASSES)
    return max(found, 0)
