"""Attribute heads (seed 001, FacialNet): a binary and an 8-way classifier on any backbone.

Each branch is the seed's MLP ``Dense(512) -> Dropout -> Dense(64) -> Dropout -> Dense(k)``
with ReLU; the input is flattened, so it takes an embedding or a feature map alike.
"""
from mxnet import gluon

_DEFAULT_TASKS = (("gender", 2, (0.5, 0.3)), ("age", 8, (0.4, 0.2)))


class _Branch(gluon.HybridBlock):
    def __init__(self, num_outputs, dropouts, hidden=(512, 64)):
        super().__init__()
        with self.name_scope():
            self.body = gluon.nn.HybridSequential()
            self.body.add(gluon.nn.Flatten())
            for units, rate in zip(hidden, dropouts):
                self.body.add(gluon.nn.Dense(units, activation="relu"))
                self.body.add(gluon.nn.Dropout(rate))
            self.body.add(gluon.nn.Dense(num_outputs))

    def hybrid_forward(self, F, x):
        return self.body(x)


class AttributeHead(gluon.HybridBlock):
    """``forward(features) -> (gender_logits (N, 2), age_logits (N, 8))`` by default.

    ``tasks`` is a sequence of ``(name, num_outputs, (dropout1, dropout2))``.
    """

    def __init__(self, tasks=_DEFAULT_TASKS, hidden=(512, 64)):
        super().__init__()
        self.task_names = tuple(name for name, _, _ in tasks)
        with self.name_scope():
            self.branches = gluon.nn.HybridSequential()
            for _name, outputs, dropouts in tasks:
                self.branches.add(_Branch(outputs, dropouts, hidden))

    def hybrid_forward(self, F, x):
        return tuple(branch(x) for branch in self.branches)


class AttributeLoss(gluon.HybridBlock):
    """Weighted sum of the per-task softmax cross-entropies, ``(N,)`` per sample."""

    def __init__(self, weights=(1.0, 1.0)):
        super().__init__()
        self.weights = tuple(weights)
        self._ce = gluon.loss.SoftmaxCrossEntropyLoss()

    def hybrid_forward(self, F, logits, labels):
        """``logits``: tuple from AttributeHead; ``labels``: (N, tasks) class ids."""
        total = 0
        for i, (task_logits, weight) in enumerate(zip(logits, self.weights)):
            task_labels = F.slice_axis(labels, axis=1, begin=i, end=i + 1).reshape((-1,))
            total = total + weight * self._ce(task_logits, task_labels)
        return total
