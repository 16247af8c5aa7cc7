"""Center loss (Wen et al. 2016; Kumar et al. use it): pulls each embedding to its class centre.

The loss ``lambda/2 * |x_i - c_{y_i}|^2`` (averaged over the batch so it does not depend on the
batch size) is added to a softmax loss. Centres are not learned by backpropagation: after each
step :meth:`CenterLoss.update_centers` moves them by a moving average with rate ``alpha``,
``c <- c - (1 - alpha) * mean_i(c - x_i)`` over the batch samples of that class (Kumar et al.'s
``d = (1 - alpha)(c - x); c = c - d``, averaged when a class appears several times), so
``alpha`` is the share of the old centre that is kept. ``alpha`` has no default here: training
passes the config's ``center_loss_alpha`` (configs/base.py), the one place its default lives.
"""
import mxnet as mx
import numpy as np
from mxnet import gluon, nd

from ..errors import ConfigError


class CenterLoss(gluon.Block):
    """``forward(features, labels) -> (N,)`` per-sample loss; gradients reach features only.

    ``alpha`` in [0, 1) is the moving-average rate of :meth:`update_centers`
    (``c <- c - (1 - alpha) * (c - x)``), ``loss_weight`` the loss's lambda. Both come from
    the config (`center_loss_alpha`, `center_loss_weight`); neither has a second default here.
    """

    def __init__(self, num_classes, embedding_size, alpha, loss_weight):
        super().__init__()
        if not 0.0 <= alpha < 1.0:
            raise ConfigError(f"center loss alpha must be in [0, 1), got {alpha}")
        self.alpha = alpha
        self.loss_weight = loss_weight
        self.num_classes = num_classes
        with self.name_scope():
            self.centers = self.params.get("centers", shape=(num_classes, embedding_size),
                                           init=mx.init.Zero(), grad_req="null")

    def forward(self, features, labels):
        centers = nd.take(self.centers.data(features.context), labels.astype("int32"))
        diff = features - centers
        return nd.sum(diff * diff, axis=1) * (self.loss_weight / 2.0)

    def update_centers(self, features, labels):
        """Moving-average update of the centres of the classes in this batch."""
        feats = features.asnumpy().astype(np.float64)
        labels = labels.asnumpy().astype(np.int64).reshape(-1)
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"labels must be in [0, {self.num_classes})")
        classes, inverse = np.unique(labels, return_inverse=True)
        sums = np.zeros((classes.size, feats.shape[1]))
        np.add.at(sums, inverse, feats)
        means = sums / np.bincount(inverse)[:, None]
        for ctx_centers in self.centers.list_data():
            index = nd.array(classes, ctx=ctx_centers.context, dtype="int64")
            old = nd.take(ctx_centers, index).asnumpy().astype(np.float64)
            new = old - (1.0 - self.alpha) * (old - means)
            ctx_centers[index] = nd.array(new, ctx=ctx_centers.context, dtype=ctx_centers.dtype)
