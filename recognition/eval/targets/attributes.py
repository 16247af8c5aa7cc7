"""Attribute networks' held-out `.rec` (FacialNet, Liu et al.): exact and 1-off accuracy per output.

Not addressed by name: training builds it from `val_rec` with the config's output names.
"""
from .base import Target

__all__ = ["AttributeTarget", "MEAN"]

MEAN = "mean"


class AttributeTarget(Target):
    """Every output of the whole network against its label column; `mean` picks the best."""

    kind = "attributes"

    def __init__(self, path, num_tasks, options, names=None):
        from ..attributes import output_names

        super().__init__(path, path, options)
        self.num_tasks, self.outputs = num_tasks, output_names(names, num_tasks)

    @property
    def keys(self):
        return [MEAN] + self.outputs

    def load(self):
        from ..attributes import AttributeEvaluator

        opt = self.options
        return AttributeEvaluator(self.path, self.num_tasks, opt.image_size, opt.ctx,
                                  self.outputs, opt.batch_size)

    def score(self, data, net):
        return {"outputs": data(net)}

    def metrics(self, result):
        accuracy = {r["name"]: r["acc"] for r in result["outputs"]}
        return {**accuracy, MEAN: sum(accuracy.values()) / len(accuracy)}

    def summary(self, result):
        from ..attributes import format_attribute_report

        return format_attribute_report(result["outputs"])
