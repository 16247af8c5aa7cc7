"""`.bin` pair sets (LFW, CFP-FP, AgeDB-30, the synthetic `verify.bin`): InsightFace's protocol.

Any target name not claimed by another kind is `<data_dir>/<name>.bin`.
"""
import os
import time

from ...errors import DataError
from .base import Target

__all__ = ["PairTarget"]


class PairTarget(Target):
    """Images of 2 * pairs faces with same/different labels; reports k-fold accuracy, VAL@FAR."""

    kind = "pairs"

    @classmethod
    def claims(cls, name):
        return True

    @classmethod
    def locate(cls, name, data_dir, where):
        path = os.path.join(data_dir, f"{name}.bin")
        if not os.path.isfile(path):
            raise DataError(f"{path}: pair set not found (target {name!r}, {where})")
        return path

    def load(self):
        """`(images NCHW uint8 after the test-time transform, issame)`."""
        from ...data.reading.pairs import decode_pair_images, load_pairs
        from ..transforms import apply_transform

        pairs = load_pairs(self.path)
        images = decode_pair_images(pairs, self.options.image_size, path=self.path)
        return apply_transform(self.options.transform, images), pairs.issame

    def input_size(self, data):
        return tuple(data[0].shape[2:])

    def score(self, data, net):
        from ..embed import Embedder
        from ..metrics import verification_report

        images, issame = data
        opt = self.options
        start = time.time()
        plain, flipped = Embedder(net, opt.batch_size, opt.ctx).embed_all(
            images, opt.flip, opt.progress, desc=self.name)
        seconds = time.time() - start
        res = verification_report(plain, flipped, issame, opt.nfolds, opt.far)
        res.update(pairs=len(issame), embed_seconds=seconds,
                   pairs_per_s=len(issame) / max(seconds, 1e-9),
                   labels=issame)
        return res

    def metrics(self, result):
        return {self.name: result["acc"]}

    def summary(self, result):
        return f"{self.name} {100 * result['acc']:.2f}% +- {100 * result['acc_std']:.2f}"

    def report(self, r):
        return (f"XNorm: {r['xnorm']:.6f}  Accuracy: {r['acc']:.5f}+-{r['acc_std']:.5f}  "
                f"Accuracy-NoFlip: {r['acc_noflip']:.5f}+-{r['acc_noflip_std']:.5f}  "
                f"Threshold: {r['threshold']:.3f}  VAL@FAR={r['far_target']:g}: "
                f"{r['val']:.5f}+-{r['val_std']:.5f} (FAR {r['far']:.5f})  "
                f"{r['pairs_per_s']:.1f} pairs/s")

    def plot_data(self, result):
        """ROC and precision-recall of the distances, their AUCs added to `result`."""
        from ..metrics import roc_pr_curves
        from ..plots import Hist, PlotData, Pr, roc_data

        labels = result["labels"]
        c = roc_pr_curves(result["dist"], labels)
        result.update(roc_auc=c["roc_auc"], pr_auc=c["pr_auc"])
        return PlotData(roc=roc_data(c["fpr"], c["tpr"], c["roc_auc"], int((~labels).sum())),
                        pr=Pr(c["recall"], c["precision"], c["pr_auc"]),
                        hist=Hist(result["dist"], labels, result["threshold"]))
