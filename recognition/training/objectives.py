"""What a training step optimises, one class per kind of network.

- `FaceObjective`: an embedding network trained with margin softmax over the sharded FC
  (`heads.parallel_fc`), plus center loss (as Kumar et al. use it) when `center_loss_weight > 0`.
- `AttributeObjective`: a network with several logit outputs (FacialNet, Liu et al.) trained with
  one cross-entropy per output against the label columns after the identity.

`step(net, images, labels, precision)` runs the forward and backward passes and returns the
loss averaged over the global batch (a float or a 1-element NDArray the engine may still be
computing: the loop reads it when it logs); every gradient left on the network is the SUM over
workers' share of that mean times `precision.scale` (the training loop's trainer turns the
Horovod average back into that sum and divides the scale out).
"""
from mxnet import autograd, nd

from ..heads.attribute import AttributeLoss
from ..heads.center_loss import CenterLoss
from ..heads.parallel_fc import ParallelFC

__all__ = ["FaceObjective", "AttributeObjective"]


def _identities(labels):
    return labels if labels.ndim == 1 else labels[:, 0]


class FaceObjective:
    """Margin softmax over the sharded classifier, optionally with center loss."""

    has_shards = True

    def __init__(self, cfg, workers, num_classes):
        self.workers, self.global_batch = workers, cfg.batch_size * workers.size
        self.counts = [cfg.batch_size] * workers.size
        self.fc = ParallelFC(
            num_classes, cfg.embedding_size, margin=cfg.loss, sample_rate=cfg.sample_rate,
            comm=workers.comm, ctx=workers.ctx, seed=cfg.seed, s=cfg.margin_s,
            m1=cfg.margin_m1, m2=cfg.margin_m2, m3=cfg.margin_m3, easy_margin=cfg.easy_margin)
        self.center = None
        if cfg.center_loss_weight > 0:
            self.center = CenterLoss(num_classes, cfg.embedding_size, cfg.center_loss_alpha,
                                     cfg.center_loss_weight)
            self.center.initialize(ctx=workers.ctx)

    def step(self, net, images, labels, precision):
        ids = _identities(labels)
        with autograd.record():
            features = precision.output(net(images))
            center_loss = self.center(features, ids) if self.center else None
        # a plain copy: MKL-DNN may hand back its own memory layout, which Horovod cannot send
        plain = features.copyto(features.context)
        # every worker's batch is full (the reader rounds the last one up), so the FC need not
        # ask the others for their row counts each step
        loss, feature_grad = self.fc.forward_backward_async(plain, ids, self.counts)
        scale = precision.scale  # float16: keeps small gradients above underflow
        if center_loss is None:
            features.backward(feature_grad * scale)
            return loss
        autograd.backward([features, center_loss],
                          [feature_grad * scale,
                           nd.ones_like(center_loss) * (scale / self.global_batch)])
        comm = self.workers.comm
        total = comm.allreduce(center_loss.sum(), name="center_loss")
        loss = loss + total.as_in_context(loss.context) / self.global_batch
        # every worker moves the centres with the whole global batch, so they stay identical
        self.center.update_centers(comm.allgather(plain, name="center_feat"),
                                   comm.allgather(ids, name="center_ids"))
        return loss

    def update(self, lr, momentum, wd):
        self.fc.update(lr, momentum, wd)

    def label_errors(self):
        """Labels of the last global batch outside [0, num_classes), counted on the device
        (the training loop reads it with the loss, a step later)."""
        return self.fc.label_errors

    def weights(self):
        """What this objective learns outside the network: this worker's classifier shard
        (and the center-loss centres)."""
        extra = [p.data() for p in self.center.collect_params().values()] if self.center else []
        return [self.fc.weight] + extra

    def report(self):
        """Extra figures for the log line (none: the loss says it all)."""
        return ""

    def save(self, prefix):
        self.fc.save(prefix)

    def load(self, prefix):
        self.fc.load(prefix)


class AttributeObjective:
    """Cross-entropy per network output against label columns 1, 2, ... (after the identity)."""

    has_shards = False

    def __init__(self, cfg, workers):
        self.workers, self.global_batch = workers, cfg.batch_size * workers.size
        self.loss = AttributeLoss(tuple(cfg.attribute_weights))
        self.num_tasks = len(cfg.attribute_weights)
        self._correct, self._seen = nd.zeros(self.num_tasks), 0

    def step(self, net, images, labels, precision):
        if labels.ndim != 2 or labels.shape[1] < 1 + self.num_tasks:
            raise ValueError(f"attribute training needs {self.num_tasks} label columns after the "
                             f"identity (pack the .rec with --pack-label); got labels of shape "
                             f"{labels.shape}")
        with autograd.record():
            logits = precision.output(net(images))
            if len(logits) != self.num_tasks:
                raise ValueError(f"the network has {len(logits)} outputs but attribute_weights "
                                 f"has {self.num_tasks}")
            loss = self.loss(logits, labels[:, 1:1 + self.num_tasks])
        loss.backward(nd.ones_like(loss) * (precision.scale / self.global_batch))
        targets = labels[:, 1:1 + self.num_tasks]
        correct = nd.stack(*[nd.sum(nd.argmax(out, axis=1) == targets[:, i])
                             for i, out in enumerate(logits)]).reshape((-1,))
        self._correct += correct.as_in_context(self._correct.context)
        self._seen += labels.shape[0]
        total = self.workers.comm.allreduce(loss.sum(), name="attribute_loss")
        return total / self.global_batch

    def label_errors(self):
        """Attribute labels are checked by the loss itself: nothing to count."""
        return None

    def report(self):
        """Training accuracy of each output since the last report, over all workers."""
        comm = self.workers.comm
        correct = comm.allreduce(self._correct, name="attribute_correct").asnumpy()
        seen = comm.allreduce(nd.array([self._seen]), name="attribute_seen").asscalar()
        self._correct[:], self._seen = 0, 0
        return " ".join(f"acc[{i + 1}] {c / max(seen, 1):.3f}" for i, c in enumerate(correct))

    def update(self, lr, momentum, wd):
        """Nothing outside the network is learned."""

    def weights(self):
        """Nothing outside the network is learned."""
        return []

    def save(self, prefix):
        """No classifier shard: the heads are part of the network."""

    def load(self, prefix):
        """No classifier shard to load."""
