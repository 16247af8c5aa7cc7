"""Per-worker memory of one training run: backbone (data parallel) + classifier shard.

Notation: W workers, b images per worker, N = W*b the global batch, C classes, D the
embedding size, c = ceil(C/W) the classes of the largest shard (worker 0), P the backbone's
trained scalars, A the activation scalars of one image (see :mod:`.backbone_stats`), s the
bytes of the backbone's dtype (4 for float32, 2 for float16). The classifier is float32
whatever the backbone's dtype (heads/parallel_fc.py).

Backbone: weights P*s (+ BatchNorm statistics, float32); float16 adds float32 master weights
P*4 (``multi_precision`` SGD); gradients P*s; SGD momentum P*4 (float32 in both cases);
activations b*A*s*``activation_factor``; under Horovod a fusion buffer (128 MiB by default).

Classifier (heads/parallel_fc.py): weight and momentum c*D*4 each, plus the gradient c*D*4
(full FC) or, with partial FC, three reused scratch arrays of the k sampled rows (rows,
gradient, momentum) with k = max(round(rate*c), min(c, ceil(N/W))): every positive of the
global batch is kept, and with shuffled data about N/W of them fall on each worker (a batch
whose labels crowd into one shard needs up to min(N, c)); k >= c means the full FC runs.
Per step the temporaries peak at ``LOGIT_TEMPORARIES`` float32 arrays of N x K (K = c, or k
when sampled: cosines, one-hot, logits, exponentials, their gradient) plus
``FEATURE_TEMPORARIES`` N x D float32 arrays (gathered features, normalised features, the
feature gradient before and after its all-reduce) and the N gathered labels.
"""
import math
from collections import namedtuple
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["Setup", "Item", "DTYPE_BYTES", "ACTIVATION_FACTOR", "LOGIT_TEMPORARIES",
           "FEATURE_TEMPORARIES", "FUSION_BYTES", "backbone_memory", "classifier_memory",
           "worker_memory", "total"]

MIB, GIB = 2 ** 20, 2 ** 30
DTYPE_BYTES = {"float32": 4, "float16": 2}
FC_BYTES = 4  # the classifier and its temporaries are float32
# Peak bytes of forward + backward of a hybridized (static_alloc) backbone over
# batch x (sum of layer outputs) x dtype bytes: 1.06-1.23 measured on the CPU for r18 (batch 8,
# 16, 32) and r50 (batch 8) by benchmarks/bench_plan.py --activations; 1.25 covers them. GPU
# workspaces are not in it (--reserve-gb).
ACTIVATION_FACTOR = 1.25
# Peak number of live N x K float32 arrays in one ParallelFC step: 4.51-4.58 measured on the
# CPU (VmHWM) at N x K = 51M for the full and the partial FC; the code holds 4-6 at a time.
LOGIT_TEMPORARIES = 4.5
FEATURE_TEMPORARIES = 4
FUSION_BYTES = 128 * MIB  # horovodrun --fusion-threshold-mb default

Item = namedtuple("Item", "part name bytes formula persistent")


@dataclass(frozen=True)
class Setup:
    """One training run as the model sees it (per-worker batch, global class count)."""

    classes: int
    workers: int = 1
    batch_size: int = 128
    embedding_size: int = 512
    dtype: str = "float32"
    sample_rate: float = 1.0
    activation_factor: float = ACTIVATION_FACTOR
    fusion_bytes: int = FUSION_BYTES
    reserve_bytes: int = 0

    def __post_init__(self):
        for key in ("classes", "workers", "batch_size", "embedding_size"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{key} must be a positive integer, got {value!r}")
        if self.dtype not in DTYPE_BYTES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPE_BYTES)}, got {self.dtype!r}")
        if not 0.0 < self.sample_rate <= 1.0:
            raise ConfigError(f"sample_rate must be in (0, 1], got {self.sample_rate}")
        if self.activation_factor <= 0 or self.fusion_bytes < 0 or self.reserve_bytes < 0:
            raise ConfigError("activation_factor must be > 0, fusion and reserve bytes >= 0")
        per = self.num_local
        if (self.workers - 1) * per >= self.classes:
            raise ConfigError(f"{self.classes} classes cannot be split into {self.workers} "
                              f"non-empty slices of ceil(C/W)={per}; use fewer workers")

    @property
    def global_batch(self):
        return self.workers * self.batch_size

    @property
    def num_local(self):
        """Classes of the largest shard (worker 0): ceil(C/W)."""
        return -(-self.classes // self.workers)

    @property
    def sampled_rows(self):
        """Rows a partial-FC step uses on worker 0, or None when the full FC runs."""
        if self.sample_rate >= 1.0:
            return None
        per = self.num_local
        positives = min(per, -(-self.global_batch // self.workers))
        rows = max(int(round(self.sample_rate * per)), positives)
        return None if rows >= per else rows

    @property
    def logit_columns(self):
        """K: the columns of this worker's logits (its classes, or its sampled rows)."""
        rows = self.sampled_rows
        return self.num_local if rows is None else rows


def classifier_memory(setup):
    """Items of worker 0's classifier shard: persistent state, then per-step temporaries."""
    c, d, n, k = setup.num_local, setup.embedding_size, setup.global_batch, setup.logit_columns
    centres = c * d * FC_BYTES
    items = [Item("classifier", "centres (weight)", centres, "c*D*4", True),
             Item("classifier", "momentum", centres, "c*D*4", True)]
    if setup.sampled_rows is None:
        items.append(Item("classifier", "centre gradient", centres, "c*D*4", True))
    else:
        items.append(Item("classifier", "sampled rows: weight, gradient, momentum",
                          3 * k * d * FC_BYTES, "3*k*D*4", True))
    logits = math.ceil(LOGIT_TEMPORARIES * n * k * FC_BYTES)
    items.append(Item("classifier", "logits and softmax temporaries", logits,
                      f"{LOGIT_TEMPORARIES:g}*N*K*4", False))
    features = FEATURE_TEMPORARIES * n * d * FC_BYTES + n * 4
    items.append(Item("classifier", "all-gathered features, labels, feature gradient", features,
                      f"{FEATURE_TEMPORARIES}*N*D*4+N*4", False))
    return items


def backbone_memory(setup, stats):
    """Items of the data-parallel backbone on one worker (``stats``: BackboneStats)."""
    s, p = DTYPE_BYTES[setup.dtype], stats.params
    half = setup.dtype == "float16"
    items = [Item("backbone", "weights (+ BatchNorm statistics)", p * s + stats.aux * 4,
                  "P*s+aux*4", True)]
    if half:
        items.append(Item("backbone", "float32 master weights", p * 4, "P*4", True))
    items += [Item("backbone", "gradients", p * s, "P*s", True),
              Item("backbone", "SGD momentum (float32)", p * 4, "P*4", True)]
    acts = math.ceil(setup.batch_size * stats.activations * s * setup.activation_factor)
    items.append(Item("backbone", "activations kept for backward", acts,
                      f"b*A*s*{setup.activation_factor:g}", False))
    return items


def worker_memory(setup, stats=None):
    """Every item of worker 0: the backbone's (when ``stats`` is given), the classifier's,
    the Horovod fusion buffer (W > 1) and the reserve (``reserve_bytes``)."""
    items = backbone_memory(setup, stats) if stats is not None else []
    items += classifier_memory(setup)
    if setup.workers > 1 and setup.fusion_bytes:
        items.append(Item("runtime", "Horovod fusion buffer", setup.fusion_bytes,
                          "--fusion-mb", True))
    if setup.reserve_bytes:
        items.append(Item("runtime", "reserve (CUDA context, workspaces)", setup.reserve_bytes,
                          "--reserve-gb", True))
    return items


def total(items, persistent_only=False):
    """Bytes of ``items`` (only the persistent ones if asked)."""
    return sum(item.bytes for item in items if item.persistent or not persistent_only)
