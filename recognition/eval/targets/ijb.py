"""IJB-B / IJB-C 1:1 template verification (`ijbb`, `ijbc` under an IJB root): TAR at FAR."""
from .base import Target

__all__ = ["IJBTarget"]

HEADLINE_FAR = "1e-04"  # the TAR the IJB-B/C papers and InsightFace quote first


class IJBTarget(Target):
    """Meta files read once; images stream through alignment for every model."""

    kind = "ijb"
    NAMES = ("ijbb", "ijbc")

    @classmethod
    def claims(cls, name):
        return name in cls.NAMES

    @classmethod
    def locate(cls, name, data_dir, where):
        return data_dir  # the IJB root; `load` names what is missing

    def load(self):
        from ..ijb import read_ijb_meta

        return read_ijb_meta(self.path, self.name)

    def score(self, data, net):
        from ..embed import Embedder
        from ..ijb import score_ijb

        opt = self.options
        return score_ijb(Embedder(net, opt.batch_size, opt.ctx), data, opt.flip, opt.progress,
                         opt.workers)

    def metrics(self, result):
        return {self.name: result["tar_at_far"][HEADLINE_FAR]}

    def summary(self, result):
        tar = result["tar_at_far"][HEADLINE_FAR]
        return f"{self.name} TAR@FAR={HEADLINE_FAR} {100 * tar:.2f}%"

    def report(self, result):
        return "TAR@FAR " + "  ".join(
            f"{far}: {100 * tar:.2f}" for far, tar in result["tar_at_far"].items()) + \
            f"  ({result['images_per_s']:.1f} images/s)"

    def plot_data(self, result):
        from ..plots import PlotData, roc_data

        negatives = int((~result["labels"]).sum())
        return PlotData(roc=roc_data(result["fpr"], result["tpr"], result["auc"], negatives))
