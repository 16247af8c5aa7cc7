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
        """Moving-average update of the centres of the classes in this batch, on the device
        (no host read, so the step never waits): each sample's class mean of ``c - x`` comes
        from an N x N same-class matrix, and every sample of a class writes the same new
        centre. Labels outside [0, num_classes) are clipped here; the classifier counts them
        and training stops on them (`ParallelFC.label_errors`)."""
        labels = labels.reshape(-1).astype("int64")
        same = nd.broadcast_equal(labels.reshape((-1, 1)), labels.reshape((1, -1)))
        for ctx_centers in self.centers.list_data():
            ctx = ctx_centers.context
            index = nd.clip(labels.as_in_context(ctx), 0, self.num_classes - 1)
            share = same.as_in_context(ctx).astype(ctx_centers.dtype)
            share = share / share.sum(axis=1, keepdims=True)
            old = nd.take(ctx_centers, index)
            new = old - (1.0 - self.alpha) * nd.dot(share, old - features.as_in_context(ctx))
            ctx_centers[index] = new
