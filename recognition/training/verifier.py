"""Scoring during training, with the evaluation tools' targets (`eval.targets`). Rank 0 only.

`Verifier`: the `val_targets` in `val_data_dir` (`.bin` pair sets, or any registered kind),
decoded once; each call scores the live network with `tools/verify.py`'s protocol.
`AttributeVerifier`: a held-out labelled `.rec` for attribute networks (FacialNet, Liu et al.).
Both return `({name: accuracy}, log line)` from `score(net)` and name the `target` whose
accuracy picks the best checkpoint.
"""
from ..errors import DataError
from ..eval.targets import AttributeTarget, Options, open_target

__all__ = ["Verifier", "AttributeVerifier"]


class Verifier:
    """Scores a Gluon network on `val_targets` named in `data_dir`."""

    def __init__(self, data_dir, targets, image_size, ctx, batch_size=64, best_target=None):
        options = Options(ctx=ctx, batch_size=batch_size, image_size=tuple(image_size))
        where = f"val_data_dir={data_dir!r}, val_targets={list(targets)}"
        self._load([open_target(t, data_dir, options, where) for t in targets], best_target)

    def _load(self, targets, best_target):
        """Check `best_target` against the scores the targets give, then decode their data."""
        keys = [k for t in targets for k in t.keys]
        if best_target is not None and best_target not in keys:
            raise DataError(f"best_target={best_target!r} is not one of the verification "
                            f"scores {keys}")
        self.target = best_target or keys[0]
        self.sets = [(t, t.load()) for t in targets]

    def score(self, net):
        """`({score name: value}, log line)` of `net` on every target."""
        results = [(t, t.score(data, net)) for t, data in self.sets]
        accuracy = {k: v for t, r in results for k, v in t.metrics(r).items()}
        return accuracy, ", ".join(t.summary(r) for t, r in results)


class AttributeVerifier(Verifier):
    """Scores an attribute network's outputs on a held-out `.rec` packed with `--pack-label`.

    The best checkpoint follows `best_target` (an output name) or, by default, the mean of the
    outputs' exact accuracies.
    """

    def __init__(self, rec, num_tasks, image_size, ctx, names=None, best_target=None):
        options = Options(ctx=ctx, image_size=tuple(image_size))
        self._load([AttributeTarget(rec, num_tasks, options, names)], best_target)
