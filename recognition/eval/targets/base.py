"""What every evaluation target provides, so `face-verify` and training score any of them alike.

A target is a benchmark (a `.bin` pair set, IJB-B/C, a labelled `.rec`): `load` decodes its data
once, `score` runs one network over that data, and `metrics` picks the numbers training records
(one of them chooses the best checkpoint). Kinds that draw figures return `plot_data`.
"""
import os
from dataclasses import dataclass

__all__ = ["Options", "Target"]


@dataclass
class Options:
    """How to score: training keeps the defaults (the published protocol, no progress bars)."""

    ctx: object = None
    batch_size: int = 64
    flip: bool = True
    nfolds: int = 10
    far: float = 1e-3
    progress: bool = False
    workers: int = 4
    image_size: tuple = None
    transform: str = "none"


class Target:
    """One benchmark named `name`, its data at `path`. Subclasses set `kind`, `load`, `score`,
    `metrics` and `summary`; the rest is optional."""

    kind = None

    def __init__(self, name, path, options):
        self.name, self.path, self.options = name, path, options

    @classmethod
    def claims(cls, name):
        """Whether a `--target` / `val_targets` entry called `name` is of this kind."""
        return False

    @classmethod
    def locate(cls, name, data_dir, where):
        """The path of `name`'s data under `data_dir`; DataError (saying `where`) if absent."""
        return os.path.join(data_dir, name)

    @property
    def keys(self):
        """Names of the numbers `metrics` returns; the first picks the best checkpoint."""
        return [self.name]

    def load(self):
        """Decode the data once; what `score` takes."""
        raise NotImplementedError

    def score(self, data, net):
        """Score `net` (a Gluon block or `embed.EmbeddingModel`): a JSON-ready dict (NumPy
        arrays are dropped from reports)."""
        raise NotImplementedError

    def metrics(self, result):
        """`{key: number}` for each of `keys` (higher is better)."""
        raise NotImplementedError

    def summary(self, result):
        """A short log fragment, e.g. `lfw 99.50% +- 0.30`."""
        raise NotImplementedError

    def report(self, result):
        """The line `face-verify` prints after `[target][model]`."""
        return self.summary(result)

    def input_size(self, data):
        """(H, W) of the images a network receives, to check a checkpoint against; None when
        the target fixes its own (aligned crops)."""
        return None

    def plot_data(self, result):
        """`plots.PlotData` for this result, or None (no figures)."""
        return None
