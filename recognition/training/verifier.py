"""Scoring during training, with the code of the evaluation tools. Rank 0 only.

`Verifier`: the configured `.bin` pair sets, decoded once; each call embeds them with the live
network (image + mirror) and runs the published protocol (`tools/verify.py`'s code).
`AttributeVerifier`: a held-out labelled `.rec` for attribute networks (seed 001).
Both return `({name: accuracy}, log line)` from `score(net)` and name the `target` whose
accuracy picks the best checkpoint.
"""
import os

from ..data.pairs import decode_pair_images, load_pairs
from ..errors import DataError
from ..eval.attributes import AttributeEvaluator, format_attribute_report, output_names
from ..eval.embed import Embedder
from ..eval.metrics import verification_report

__all__ = ["Verifier", "AttributeVerifier"]

MEAN = "mean"


class Verifier:
    """Scores a Gluon network on `<data_dir>/<target>.bin` for each target."""

    def __init__(self, data_dir, targets, image_size, ctx, batch_size=64, best_target=None):
        if best_target is not None and best_target not in targets:
            raise DataError(f"best_target={best_target!r} is not one of val_targets="
                            f"{list(targets)}")
        self.target = best_target or targets[0]
        self.sets = {}
        for target in targets:
            path = os.path.join(data_dir, f"{target}.bin")
            if not os.path.isfile(path):
                raise DataError(f"{path}: verification set {target!r} not found "
                                f"(val_data_dir={data_dir!r}, val_targets={list(targets)})")
            pairs = load_pairs(path)
            self.sets[target] = (decode_pair_images(pairs, tuple(image_size), path=path),
                                 pairs.issame)
        self.ctx, self.batch_size = ctx, batch_size

    def __call__(self, net):
        """`{target: verification report}` (accuracy, std, VAL@FAR, ...)."""
        embedder = Embedder(net, batch_size=self.batch_size, ctx=self.ctx)
        results = {}
        for target, (images, issame) in self.sets.items():
            plain, flipped = embedder.embed_all(images, flip=True, progress=False, desc=target)
            results[target] = verification_report(plain, flipped, issame)
        return results

    def score(self, net):
        results = self(net)
        line = ", ".join(f"{t} {100 * r['acc']:.2f}% +- {100 * r['acc_std']:.2f}"
                         for t, r in results.items())
        return {t: r["acc"] for t, r in results.items()}, line


class AttributeVerifier:
    """Scores an attribute network's outputs on a held-out `.rec` packed with `--pack-label`.

    The best checkpoint follows `best_target` (an output name) or, by default, the mean of the
    outputs' exact accuracies.
    """

    def __init__(self, rec, num_tasks, image_size, ctx, names=None, best_target=None):
        known = output_names(names, num_tasks)
        if best_target is not None and best_target not in known + [MEAN]:
            raise DataError(f"best_target={best_target!r} is not one of the attribute outputs "
                            f"{known} or {MEAN!r}")
        self.evaluator = AttributeEvaluator(rec, num_tasks, tuple(image_size), ctx, known)
        self.target = best_target or MEAN

    def score(self, net):
        report = self.evaluator(net)
        accuracy = {r["name"]: r["acc"] for r in report}
        accuracy[MEAN] = sum(accuracy.values()) / len(accuracy)
        return accuracy, format_attribute_report(report)
