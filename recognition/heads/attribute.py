"""Attribute loss (FacialNet, Liu et al.): the weighted per-task softmax cross-entropy.

The attribute network (e.g. FacialNet's gender and age heads) returns one logits array per task;
:class:`AttributeLoss` sums their cross-entropies against the matching label columns.
"""
from mxnet import gluon


class AttributeLoss(gluon.HybridBlock):
    """Weighted sum of the per-task softmax cross-entropies, ``(N,)`` per sample."""

    def __init__(self, weights=(1.0, 1.0)):
        super().__init__()
        self.weights = tuple(weights)
        self._ce = gluon.loss.SoftmaxCrossEntropyLoss()

    def hybrid_forward(self, F, logits, labels):
        """``logits``: one (N, k_t) array per task; ``labels``: (N, tasks) class ids."""
        total = 0
        for i, (task_logits, weight) in enumerate(zip(logits, self.weights)):
            task_labels = F.slice_axis(labels, axis=1, begin=i, end=i + 1).reshape((-1,))
            total = total + weight * self._ce(task_logits, task_labels)
        return total
