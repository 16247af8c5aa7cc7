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
batch plus uniformly drawn negatives, ``max(round(sample_rate * num_local), positives)`` rows
in all, and the softmax runs over those only; ``update`` then touches the weight and momentum
of those rows only. The rows are drawn on the device as in Partial FC v2 (random scores,
positives lifted above every negative, top-k) into a fixed number of slots, so the host never
learns how many positives there were; slots past what the step uses are padding that the
softmax and the update ignore. The negatives come from the device's random generator, seeded
with ``seed + rank``.

On the training loop's path (``forward_backward_async`` with fixed row counts) nothing is read
back to the host: out-of-range labels are counted on the device (``label_errors``) and read
with the loss a step later.

Memory per worker: weight + gradient + momentum, each ``ceil(C/W) x D`` float32 (the backward
is written by hand: no normalised copy of the centres), plus exactly two ``N x K`` float32
arrays reused between steps (cosines; logits turned into probabilities and then into the
gradient in place), which is the Partial FC paper's 3 x MemW + 2 x MemLogits.
``update`` follows MXNet's SGD (``mom = momentum*mom - lr*(grad + wd*w); w += mom``).
"""
import mxnet as mx
import numpy as np
from mxnet import autograd, nd

from recognition.heads.margin import margin_spec, target_logit, target_logit_grad
from recognition.heads.shards import Shard, load_shard, save_shard, shard_path, shard_range
from recognition.parallel.comm import default_comm, gather_counts

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
        self._stores = None
        if self.sample_rate < 1.0:  # a spare row past the centres takes the padding's writes
            self._stores = [nd.zeros((self.num_local + 1, self.embedding_size), ctx=self.ctx)
                            for _ in range(2)]
            self.weight, self.momentum = (store[:self.num_local] for store in self._stores)
            nd.random.normal(0.0, init_std, shape=shape, ctx=self.ctx, out=self.weight)
        else:
            self.weight = nd.random.normal(0.0, init_std, shape=shape, ctx=self.ctx)
            self.momentum = nd.zeros(shape, ctx=self.ctx)
        if self.sample_rate < 1.0 and seed is not None:  # workers draw different negatives
            mx.random.seed(seed + self.comm.rank, ctx=self.ctx)
        self._full_grad = None
        self.weight_grad = None      # d loss / d centres of the last step (rows: _index)
        self.label_errors = None     # labels outside [0, C) in the last step's global batch
        self._index = None           # local rows used by the last step (device); None = all
        self._valid = None           # 1.0 for the rows of _index the step used, 0.0 padding
        self._rows = None            # the centres used by the last step (a copy when sampled)
        self._buffers = {}           # scratch rows for partial FC, kept between steps
        self._logits = None          # the two N x K arrays of the softmax, kept between steps

    # ------------------------------------------------------------------ one step
    def forward_backward(self, features, labels):
        """Loss (float, mean over the global batch) and d loss / d features (local rows).

        Call it outside ``autograd.record()``; every worker must call it each step. Bad input
        on any worker raises ValueError on all of them (no worker is left waiting).
        """
        loss, feat_grad = self.forward_backward_async(features, labels)
        return float(loss.asscalar()), feat_grad

    def forward_backward_async(self, features, labels, counts=None):
        """Like :meth:`forward_backward`, but the loss is a 1-element NDArray.

        ``counts`` (rows per worker, rank order) skips the per-step collective that learns
        them, and with it nothing is read back to the host, full or partial FC: labels outside
        [0, C) are counted on the device into ``label_errors`` (the training loop reads it with
        the loss, a step later), and a wrong shape raises on the worker that has it only (the
        launcher stops the others). Pass it only when every worker's batch size is fixed.
        """
        with autograd.pause():
            return self._step(features, labels, counts)

    def _step(self, features, labels, counts):
        ctx, fixed = self.ctx, counts is not None
        if fixed:  # the training loop's path: nothing is read back from the device
            y = self._device_labels(features, labels)
        else:
            labels_np, problem = self._check_inputs(features, labels)
            counts, bad = gather_counts(self.comm, features.shape[0], ctx, name="fc.counts",
                                        flag=problem is not None)
            problem = problem or ("bad features or labels on another worker" if bad else None)
            if problem:
                raise ValueError(problem)
            y = nd.array(labels_np, ctx=ctx, dtype="int32")
        x, y = self._gather(features.astype("float32").as_in_context(ctx), y, counts, fixed)
        self.label_errors = nd.sum((y < 0) + (y >= self.num_classes)).astype("float32")
        rows, mask, col, valid = self._columns(y)
        x_norm = nd.maximum(nd.norm(x, axis=1, keepdims=True), _EPS)
        x_hat = x / x_norm
        w_inv = 1.0 / nd.maximum(_row_norms(rows), _EPS)
        loss, scaled, radial = self._softmax(x_hat, rows, w_inv, mask, col, valid)
        self._rows = rows
        self.weight_grad = self._centre_grad(scaled, radial, x_hat, rows, w_inv)
        start = sum(counts[:self.comm.rank])
        feat_grad = self._feature_grad(scaled, x_hat, x_norm, rows, start, counts)
        return loss, feat_grad.astype(features.dtype).as_in_context(features.context)

    def _device_labels(self, features, labels):
        """Labels as int32 on the FC's device, checking shapes only (their range is counted
        on the device into ``label_errors``, which the training loop reads a step later)."""
        if features.ndim != 2 or features.shape[1] != self.embedding_size:
            raise ValueError(f"features must be (N, {self.embedding_size}), got "
                             f"{features.shape}")
        if not isinstance(labels, nd.NDArray):
            labels = nd.array(np.asarray(labels), ctx=self.ctx)
        labels = labels.reshape((-1,))
        if labels.shape[0] != features.shape[0]:
            raise ValueError(f"{labels.shape[0]} labels for {features.shape[0]} features")
        return labels.as_in_context(self.ctx).astype("int32")

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
        """The centres used this step; for each gathered row whether its class is held here
        (float mask) and at which of those centres (int32; 0 where not held); and which of
        the centres count (float, None: all of them).

        Everything is computed on the device: partial FC draws its negatives there too."""
        local = y - self.class_start
        held = (local >= 0) * (local < self.num_local)
        capacity = self._sample_capacity(y.shape[0])
        if capacity is None:
            self._index = self._valid = None
            return self.weight, held.astype("float32"), local * held, None
        index, valid = self._sample(local, held, capacity)
        self._index, self._valid = index, valid
        rows = nd.take(self.weight, index, out=self._buffer("rows", capacity))
        inverse = nd.scatter_nd(nd.arange(capacity, ctx=self.ctx, dtype="int32"),
                                index.reshape((1, -1)), shape=(self.num_local,))
        col = nd.take(inverse, local * held)
        return rows, held.astype("float32"), col, valid

    def _sample_capacity(self, n_total):
        """Rows gathered for a sampled step, or None for the full classifier.

        A step uses ``max(round(rate * num_local), positives)`` centres, and the positives
        are at most the global batch: a fixed capacity of the larger of the two lets the
        device sample without telling the host how many positives there were; the rows past
        what a step uses are padding that the softmax and the update ignore."""
        if self.sample_rate >= 1.0:
            return None
        wanted = int(round(self.sample_rate * self.num_local))
        if wanted >= self.num_local:
            return None
        return min(self.num_local, max(wanted, n_total, 1))

    def _sample(self, local, held, capacity):
        """Every positive plus uniformly drawn negatives, up to ``max(round(rate*num_local),
        positives)`` centres, as Partial FC v2 does: random scores, positives lifted above
        every negative, top-k. Returns the rows (sorted, padding last) and their validity."""
        num_local, ctx = self.num_local, self.ctx
        spill = nd.where(held, local, nd.full(local.shape, num_local, ctx=ctx, dtype="int32"))
        positive = nd.scatter_nd(nd.ones(local.shape, ctx=ctx), spill.reshape((1, -1)),
                                 shape=(num_local + 1,))[:num_local]
        scores = nd.random.uniform(0.0, 1.0, shape=(num_local,), ctx=ctx) + 2.0 * positive
        top = nd.topk(scores, k=capacity, ret_typ="indices", dtype="int32")
        wanted = int(round(self.sample_rate * num_local))
        used = nd.maximum(nd.sum(positive), wanted)  # on the device: never read back
        rank = nd.arange(capacity, ctx=ctx)
        padding = nd.broadcast_greater_equal(rank, used)
        shift = padding.astype("int32") * num_local
        # used rows ascending, then the padding rows: exactly `used` keys are below num_local
        index = nd.sort(top + shift) - shift
        return index, 1.0 - padding

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

    def _logit_buffers(self, n_total, k):
        """The two N x K float32 arrays of a step, reused between steps: the cosines (later
        their product with the gradient), and the logits, which become the probabilities
        and then the gradient in place. Nothing else of that size is made."""
        if self._logits is None or self._logits[0].shape != (n_total, k):
            self._logits = (nd.empty((n_total, k), ctx=self.ctx),
                            nd.empty((n_total, k), ctx=self.ctx))
        return self._logits

    def _softmax(self, x_hat, rows, w_inv, mask, col, valid):
        """Global softmax CE over all workers, in two N x K buffers.

        Returns the loss (NDArray), ``d loss / d (x^ . w_j)`` (N x K, the second buffer) and
        ``sum_i d loss / d cos_ij * cos_ij`` per centre (the radial part of the centre
        gradient)."""
        spec, n_total = self.spec, x_hat.shape[0]
        cos, grad = self._logit_buffers(n_total, rows.shape[0])
        nd.dot(x_hat, rows, transpose_b=True, out=cos)
        nd.broadcast_mul(cos, w_inv.reshape((1, -1)), out=cos)
        nd.clip(cos, -1.0, 1.0, out=cos)
        targets = nd.stack(nd.arange(n_total, ctx=self.ctx, dtype="int32"), col)
        cos_t = nd.pick(cos, col, axis=1)
        phi = target_logit(cos_t, spec)
        cos.copyto(grad)
        grad *= spec.s                                     # logits ...
        self._set_targets(grad, targets, mask, phi * spec.s, cos_t * spec.s)
        gmax = self.comm.allreduce(nd.max(grad, axis=1), op="max", name="fc.max")
        nd.broadcast_sub(grad, gmax.reshape((-1, 1)), out=grad)
        nd.exp(grad, out=grad)                             # ... exponentials ...
        if valid is not None:
            nd.broadcast_mul(grad, valid.reshape((1, -1)), out=grad)
        gsum = self.comm.allreduce(nd.sum(grad, axis=1), op="sum", name="fc.sum")
        row_loss = mask * (nd.log(gsum) + gmax - phi * spec.s)
        loss = self.comm.allreduce(row_loss, op="sum", name="fc.loss").mean()
        unit = spec.s / n_total
        nd.broadcast_mul(grad, (unit / gsum).reshape((-1, 1)), out=grad)  # ... p * s / N ...
        p_t = nd.pick(grad, col, axis=1)
        dphi = target_logit_grad(cos_t, spec)
        self._set_targets(grad, targets, mask, (p_t - unit) * dphi, p_t)  # ... d loss / d cos
        cos *= grad
        radial = nd.sum(cos, axis=0)
        nd.broadcast_mul(grad, w_inv.reshape((1, -1)), out=grad)
        return loss, grad, radial

    @staticmethod
    def _set_targets(matrix, targets, mask, value, unchanged):
        """``matrix[i, col_i] = value_i`` where row i's class is held here, in place."""
        chosen = mask * value + (1.0 - mask) * unchanged
        nd._internal._scatter_set_nd(lhs=matrix, rhs=chosen, indices=targets,
                                     shape=matrix.shape, out=matrix)

    def _centre_grad(self, scaled, radial, x_hat, rows, w_inv):
        """d loss / d w_j = (A_j - (w^_j . A_j) w^_j) / |w_j| with A = dcos^T x^.

        Written as ``scaled^T x^ - (w^_j . A_j) / |w_j|^2 * w_j``: two passes over the
        centres and no normalised copy of them.
        """
        if self._index is None:
            if self._full_grad is None:
                self._full_grad = nd.zeros(rows.shape, ctx=self.ctx)
            grad = self._full_grad
        else:
            grad = self._buffer("grad", rows.shape[0])
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
        if self._index is None:
            nd.sgd_mom_update(self.weight, self.weight_grad, self.momentum, out=self.weight, **kw)
        else:  # MXNet's fused update on the gathered rows; the padding's go to the spare row
            rows, mom = self._rows, self._buffer("momentum", self._index.shape[0])
            nd.take(self.momentum, self._index, out=mom)
            nd.sgd_mom_update(rows, self.weight_grad, mom, out=rows, **kw)
            spare = self.num_local * (1.0 - self._valid)
            target = (self._index * self._valid.astype("int32") + spare.astype("int32"))
            for store, values in zip(self._stores, (rows, mom)):
                nd._internal._scatter_set_nd(lhs=store, rhs=values, indices=target.reshape(
                    (1, -1)), shape=store.shape, out=store)
        self.weight_grad, self._rows = None, None

    @property
    def sampled_index(self):
        """Local rows the last step used, sorted (None: all rows). Reads the device; for
        inspection and tests, never in the training loop. ``weight_grad`` holds these rows
        first, then padding rows with a zero gradient."""
        if self._index is None:
            return None
        used = int(self._valid.sum().asscalar())
        return self._index[:used].asnumpy().astype(np.int64)

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
