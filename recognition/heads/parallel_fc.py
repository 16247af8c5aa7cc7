"""The model-parallel margin-softmax classifier (the only cross-worker softmax of the toolkit).

Worker ``r`` of ``W`` holds the centres of classes ``[r*ceil(C/W), ...)`` (see
:func:`~recognition.heads.shards.shard_range`). One training step::

    features = backbone(x)                      # local batch, under autograd.record()
    loss, feat_grad = fc.forward_backward(features, labels)
    features.backward(feat_grad)
    trainer.step(1.0 / W)                       # backbone: hvd.DistributedTrainer (averages)
    fc.update(lr, momentum=0.9, wd=5e-4)        # the FC's own SGD for its centres

``forward_backward`` all-gathers features and labels, computes the normalised logits of the
local classes with the margin on the positives held here, all-reduces the softmax max and sum,
and returns the mean full-softmax loss over the global batch together with d(loss)/d(features)
for this worker's rows (all-reduced over workers, then sliced). The gradient of the local
centres stays on the object (``weight_grad``); centres are sharded, so it is never all-reduced.
``feat_grad`` is already the gradient of the loss averaged over the global batch, so the
backbone gradients must be SUMMED over workers: ``hvd.DistributedTrainer`` averages them and
divides by the ``step`` argument, hence ``trainer.step(1.0 / W)`` (``trainer.step(1)`` on one
process).

Partial FC (``sample_rate < 1``): each step keeps every centre that is a positive of the global
batch plus random negatives up to ``sample_rate * num_local`` rows, and the softmax runs over
those only; ``update`` then touches the weight and momentum of the sampled rows only.
The backward is written by hand so that no C-wide or normalised copy of the centres is made:
per worker the state is weight + gradient + momentum, each ``ceil(C/W) x D`` float32.
``update`` follows MXNet's SGD (``mom = momentum*mom - lr*(grad + wd*w); w += mom``).
"""
import mxnet as mx
import numpy as np
from mxnet import autograd, nd

from recognition.heads.margin import margin_spec, target_logit, target_logit_grad
from recognition.heads.shards import Shard, load_shard, save_shard, shard_path, shard_range
from recognition.training.comm import default_comm, gather_counts

_EPS = 1e-12


def _row_norms(matrix):
    """L2 norm of each row; batch_dot reads the centres once and is faster than nd.norm."""
    k, d = matrix.shape
    dots = nd.batch_dot(matrix.reshape((k, 1, d)), matrix.reshape((k, d, 1)))
    return nd.sqrt(dots.reshape((-1,)))


class ParallelFC:
    """Sharded margin-softmax FC; works identically with ``LocalComm`` (one process).

    Parameters: ``num_classes`` C (global), ``embedding_size`` D, ``margin`` a preset name or
    :class:`~recognition.heads.margin.MarginSpec` (keyword overrides s/m1/m2/m3/easy_margin go
    to ``margin_kw``), ``sample_rate`` in (0, 1], ``comm`` (default: Horovod if initialised),
    ``ctx`` for the centres, ``seed`` for negative sampling (offset by rank).
    """

    def __init__(self, num_classes, embedding_size, margin="arcface", sample_rate=1.0,
                 comm=None, ctx=None, seed=None, init_std=0.01, **margin_kw):
        if not 0.0 < sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}")
        self.spec = margin_spec(margin, **margin_kw)
        self.comm = comm if comm is not None else default_comm()
        self.num_classes = int(num_classes)
        self.embedding_size = int(embedding_size)
        self.sample_rate = float(sample_rate)
        self.ctx = ctx or mx.cpu()
        self.class_start, self.num_local = shard_range(self.num_classes, self.comm.size,
                                                       self.comm.rank)
        shape = (self.num_local, self.embedding_size)
        self.weight = nd.random.normal(0.0, init_std, shape=shape, ctx=self.ctx)
        self.momentum = nd.zeros(shape, ctx=self.ctx)
        self._rng = np.random.RandomState(None if seed is None else seed + self.comm.rank)
        self._full_grad = None
        self.weight_grad = None      # d loss / d centres of the last step (rows: sampled_index)
        self.sampled_index = None    # local rows used by the last step; None = all rows
        self._rows = None            # the centres used by the last step (a copy when sampled)
        self._buffers = {}           # scratch rows for partial FC, kept between steps

    # ------------------------------------------------------------------ one step
    def forward_backward(self, features, labels):
        """Loss (float, mean over the global batch) and d loss / d features (local rows).

        Call it outside ``autograd.record()``; every worker must call it each step. Bad input
        on any worker raises ValueError on all of them (no worker is left waiting).
        """
        loss, feat_grad = self.forward_backward_async(features, labels)
        return float(loss.asscalar()), feat_grad

    def forward_backward_async(self, features, labels, counts=None):
        """Like :meth:`forward_backward`, but the loss is a 1-element NDArray and, with the
        full classifier, no step waits on the host: the training loop reads the loss when it
        logs, while the engine computes.

        ``counts`` (rows per worker, rank order) skips the per-step collective that learns
        them; with it, bad input raises on the worker that has it only (the launcher stops
        the others), so pass it only when every worker's batch size is fixed.
        """
        with autograd.pause():
            return self._step(features, labels, counts)

    def _step(self, features, labels, counts):
        labels_np, problem = self._check_inputs(features, labels)
        ctx, fixed = self.ctx, counts is not None
        if counts is None:
            counts, bad = gather_counts(self.comm, features.shape[0], ctx, name="fc.counts",
                                        flag=problem is not None)
            problem = problem or ("bad features or labels on another worker" if bad else None)
        if problem:
            raise ValueError(problem)
        x, y = self._gather(features.astype("float32").as_in_context(ctx),
                            nd.array(labels_np, ctx=ctx, dtype="int32"), counts, fixed)
        rows, mask, col = self._columns(y)
        x_norm = nd.maximum(nd.norm(x, axis=1, keepdims=True), _EPS)
        x_hat = x / x_norm
        w_inv = 1.0 / nd.maximum(_row_norms(rows), _EPS)
        loss, dcos, cos = self._softmax(x_hat, rows, w_inv, mask, col)
        scaled = dcos * w_inv.reshape(1, -1)  # d loss / d (x^ . w) per centre
        self._rows = rows
        self.weight_grad = self._centre_grad(scaled, dcos, cos, x_hat, rows, w_inv)
        start = sum(counts[:self.comm.rank])
        feat_grad = self._feature_grad(scaled, x_hat, x_norm, rows, start, counts)
        return loss, feat_grad.astype(features.dtype).as_in_context(features.context)

    def _gather(self, x, y, counts, fixed):
        """Every worker's features and labels, in rank order.

        Horovod's MXNet all-gather waits on the host for its result (the output shape is not
        known in advance); with row counts fixed in advance the same result is an all-reduce
        of zero-padded blocks, which does not wait, at twice the bytes (small next to the
        backbone's gradients)."""
        if self.comm.size == 1:
            return x, y
        if not fixed:
            return (self.comm.allgather(x, name="fc.features"),
                    self.comm.allgather(y, name="fc.labels"))
        start, total = sum(counts[:self.comm.rank]), sum(counts)
        stop = start + counts[self.comm.rank]
        xs = nd.zeros((total, x.shape[1]), ctx=self.ctx)
        ys = nd.zeros((total,), ctx=self.ctx, dtype="int32")
        xs[start:stop] = x
        ys[start:stop] = y
        return (self.comm.allreduce(xs, op="sum", name="fc.features"),
                self.comm.allreduce(ys, op="sum", name="fc.labels"))

    def _columns(self, y):
        """The centres used this step, and for each gathered row whether its class is held
        here (float mask) and at which of those centres (int32; 0 where not held).

        The full classifier works it out on the device; partial FC needs the positives on the
        host to sample around them."""
        if self.sample_rate >= 1.0:
            self.sampled_index = None
            local = y - self.class_start
            held = (local >= 0) * (local < self.num_local)
            return self.weight, held.astype("float32"), local * held
        local = y.asnumpy().astype(np.int64) - self.class_start
        held = (local >= 0) & (local < self.num_local)
        self.sampled_index = self._sample(np.unique(local[held]))
        if self.sampled_index is None:
            rows, cols = self.weight, np.where(held, local, 0)
        else:
            index = nd.array(self.sampled_index, ctx=self.ctx, dtype="int64")
            rows = nd.take(self.weight, index, out=self._buffer("rows", index.shape[0]))
            cols = np.where(held, np.searchsorted(self.sampled_index, local), 0)
        return (rows, nd.array(held, ctx=self.ctx, dtype="float32"),
                nd.array(cols, ctx=self.ctx, dtype="int32"))

    def _check_inputs(self, features, labels):
        """Labels as int32 and a description of what is wrong (None when all is well)."""
        labels_np = np.asarray(labels.asnumpy() if isinstance(labels, nd.NDArray) else labels)
        labels_np = labels_np.reshape(-1)
        if features.ndim != 2 or features.shape[1] != self.embedding_size:
            return labels_np, (f"features must be (N, {self.embedding_size}), got "
                               f"{features.shape}")
        if labels_np.shape[0] != features.shape[0]:
            return labels_np, f"{labels_np.shape[0]} labels for {features.shape[0]} features"
        if labels_np.size and (labels_np.min() < 0 or labels_np.max() >= self.num_classes):
            return labels_np, (f"labels must be in [0, {self.num_classes}), got "
                               f"[{labels_np.min()}, {labels_np.max()}]")
        return labels_np.astype(np.int32), None

    def _sample(self, positives):
        """Sorted local rows to use this step (all positives kept), or None for all rows."""
        if self.sample_rate >= 1.0:
            return None
        num_sample = max(int(round(self.sample_rate * self.num_local)), positives.size)
        if num_sample >= self.num_local:
            return None
        keys = self._rng.random_sample(self.num_local)
        keys[positives] = 2.0
        return np.sort(np.argpartition(-keys, num_sample - 1)[:num_sample])

    def _softmax(self, x_hat, rows, w_inv, mask, col):
        """Global softmax CE over all workers; returns loss (NDArray), d loss / d cos, cos."""
        spec = self.spec
        n_total, k = x_hat.shape[0], rows.shape[0]
        cos = nd.clip(nd.dot(x_hat, rows, transpose_b=True) * w_inv.reshape(1, -1), -1.0, 1.0)
        cos_t = nd.pick(cos, col, axis=1)
        phi = target_logit(cos_t, spec)
        onehot = nd.one_hot(col, k) * mask.reshape(-1, 1)
        logits = (cos + onehot * (phi - cos_t).reshape(-1, 1)) * spec.s
        gmax = self.comm.allreduce(nd.max(logits, axis=1), op="max", name="fc.max")
        exp = nd.exp(logits - gmax.reshape(-1, 1))
        gsum = self.comm.allreduce(nd.sum(exp, axis=1), op="sum", name="fc.sum")
        row_loss = mask * (nd.log(gsum) + gmax - phi * spec.s)
        row_loss = self.comm.allreduce(row_loss, op="sum", name="fc.loss")
        loss = row_loss.mean()
        dcos = (exp / gsum.reshape(-1, 1) - onehot) * (spec.s / n_total)
        dphi = target_logit_grad(cos_t, spec)
        dcos_t = nd.pick(dcos, col, axis=1)
        dcos = dcos + onehot * (dcos_t * (dphi - 1.0)).reshape(-1, 1)
        return loss, dcos, cos

    def _centre_grad(self, scaled, dcos, cos, x_hat, rows, w_inv):
        """d loss / d w_j = (A_j - (w^_j . A_j) w^_j) / |w_j| with A = dcos^T x^.

        Written as ``scaled^T x^ - (w^_j . A_j) / |w_j|^2 * w_j``: two passes over the
        centres and no normalised copy of them.
        """
        if self.sampled_index is None:
            if self._full_grad is None:
                self._full_grad = nd.zeros(rows.shape, ctx=self.ctx)
            grad = self._full_grad
        else:
            grad = self._buffer("grad", rows.shape[0])
        radial = nd.sum(dcos * cos, axis=0)  # w^_j . A_j
        nd.broadcast_mul(rows, (-radial * w_inv * w_inv).reshape(-1, 1), out=grad)
        nd.linalg.gemm(scaled, x_hat, grad, transpose_a=True, alpha=1.0, beta=1.0, out=grad)
        return grad

    def _feature_grad(self, scaled, x_hat, x_norm, rows, start, counts):
        """All-reduced d loss / d x^, sliced to this worker, through the L2 normalisation."""
        total = self.comm.allreduce(nd.dot(scaled, rows), op="sum", name="fc.feature_grad")
        stop = start + counts[self.comm.rank]
        g, xh = total[start:stop], x_hat[start:stop]
        radial = nd.sum(g * xh, axis=1, keepdims=True)
        return (g - radial * xh) / x_norm[start:stop]

    # ------------------------------------------------------------------ optimiser
    def update(self, lr, momentum=0.9, wd=5e-4):
        """MXNet-style SGD with momentum on the centres used by the last step."""
        if self.weight_grad is None:
            raise RuntimeError("call forward_backward before update")
        kw = dict(lr=lr, momentum=momentum, wd=wd)
        if self.sampled_index is None:
            nd.sgd_mom_update(self.weight, self.weight_grad, self.momentum, out=self.weight, **kw)
        else:
            index = nd.array(self.sampled_index, ctx=self.ctx, dtype="int64")
            rows = self._rows
            mom = nd.take(self.momentum, index, out=self._buffer("momentum", index.shape[0]))
            nd.sgd_mom_update(rows, self.weight_grad, mom, out=rows, **kw)
            self.weight[index] = rows
            self.momentum[index] = mom
        self.weight_grad, self._rows = None, None

    def _buffer(self, name, num_rows):
        """A reused ``num_rows x D`` scratch array for sampled rows (fresh CPU memory is slow)."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape[0] < num_rows:
            buf = nd.empty((num_rows, self.embedding_size), ctx=self.ctx)
            self._buffers[name] = buf
        return buf[:num_rows]

    def state_bytes(self):
        """Bytes of persistent per-worker state: centres, momentum, gradient, scratch rows."""
        scratch = sum(buf.size for buf in self._buffers.values())
        grad = 0 if self._full_grad is None else self._full_grad.size
        return 4 * (2 * self.weight.size + grad + scratch)

    # ------------------------------------------------------------------ shards
    def shard(self):
        """This worker's centres and momentum as a :class:`~recognition.heads.shards.Shard`."""
        return Shard(self.weight.asnumpy(), self.momentum.asnumpy(), self.num_classes,
                     self.comm.size, self.comm.rank, self.class_start)

    def save(self, prefix):
        """Write this worker's shard to ``shard_path(prefix, rank, W)``; returns the path."""
        path = shard_path(prefix, self.comm.rank, self.comm.size)
        save_shard(path, self.shard())
        return path

    def load(self, prefix):
        """Load this worker's shard saved by :meth:`save` with the same world size."""
        path = shard_path(prefix, self.comm.rank, self.comm.size)
        shard = load_shard(path)
        expect = (self.num_classes, self.comm.size, self.comm.rank, self.embedding_size)
        got = (shard.num_classes, shard.world_size, shard.rank, shard.weight.shape[1])
        if got != expect:
            raise ValueError(f"{path}: shard is (classes, workers, rank, dim)={got}, this run "
                             f"needs {expect}; re-cut it with `face-shards split`")
        self.set_rows(shard.weight, shard.momentum)
        return path

    def set_rows(self, weight, momentum=None):
        """Replace the local centres (and momentum) with ``num_local x D`` arrays."""
        if tuple(weight.shape) != self.weight.shape:
            raise ValueError(f"weight must be {self.weight.shape}, got {tuple(weight.shape)}")
        self.weight[:] = nd.array(weight, ctx=self.ctx)
        self.momentum[:] = 0.0 if momentum is None else nd.array(momentum, ctx=self.ctx)

    def set_full_weight(self, weight, momentum=None):
        """Take this worker's slice of a full ``C x D`` classifier (e.g. a merged one)."""
        rows = slice(self.class_start, self.class_start + self.num_local)
        self.set_rows(weight[rows], None if momentum is None else momentum[rows])
