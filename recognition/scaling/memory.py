"""Per-worker memory of one training run: backbone (data parallel) + classifier shard.

Notation: W workers, b images per worker, N = W*b the global batch, C classes, D the
embedding size, c = ceil(C/W) the classes of the largest shard (worker 0), P the backbone's
trained scalars, A the activation scalars of one image (see :mod:`.backbone_stats`; they depend
on the PReLU form the device builds), s the bytes of the backbone's dtype (4 for float32, 2
for float16). The classifier is float32 whatever the backbone's dtype (heads/parallel_fc.py).

Backbone: weights P*s (+ BatchNorm statistics, float32); float16 adds float32 master weights
P*4 (``multi_precision`` SGD); gradients P*s; SGD momentum P*4 (float32 in both cases);
activations b*A*s*``activation_factor`` (``ACTIVATION_FACTORS`` per PReLU form); under Horovod
a fusion buffer (128 MiB by default).

Classifier (heads/parallel_fc.py): weight and momentum c*D*4 each, plus the gradient c*D*4
(full FC) or, with partial FC, three reused scratch arrays of the k rows a step gathers
(rows, gradient, momentum). ParallelFC sizes them for the worst case, every row of the global
batch a positive held here: k = min(c, max(round(rate*c), N)); the rows past the ones a step
uses are padding. round(rate*c) >= c runs the full FC. The softmax keeps exactly
``LOGIT_TEMPORARIES`` float32 arrays of N x K (K = c, or k when sampled): the cosines, and
the logits that become the probabilities and then the logit gradient in place, with no
one-hot; ParallelFC keeps them between steps. Partial FC adds, per step, c float32 random
scores and a c-long int32 inverse map (``SAMPLING_TEMPORARIES`` arrays of c). Per step there
are also ``FEATURE_TEMPORARIES`` N x D float32 arrays (gathered features, normalised
features, the feature gradient before and after its all-reduce) and the N gathered labels.
"""
import math
from collections import namedtuple
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["Setup", "Item", "DTYPE_BYTES", "ACTIVATION_FACTOR", "ACTIVATION_FACTORS",
           "LOGIT_TEMPORARIES", "SAMPLING_TEMPORARIES", "FEATURE_TEMPORARIES", "FUSION_BYTES",
           "backbone_memory", "classifier_memory", "worker_memory", "total"]

MIB, GIB = 2 ** 20, 2 ** 30
DTYPE_BYTES = {"float32": 4, "float16": 2}
FC_BYTES = 4  # the classifier and its temporaries are float32
# Peak bytes of forward + backward of a hybridized (static_alloc) backbone over
# batch x (sum of layer outputs) x dtype bytes, by PReLU form (benchmarks/bench_plan.py
# --activations, on the CPU): the four-op conv form 1.01-1.21 (r18 at batch 8, 16, 32; r50 at
# 8), covered by 1.25; the one-op form 1.29-1.57 (the same points), covered by 1.6: its sum is
# smaller (31.8M vs 48.1M for r100) but its real memory only 14-20 % lower. Not measured on a
# GPU; GPU workspaces are not in it (--reserve-gb).
ACTIVATION_FACTORS = {"conv": 1.25, "op": 1.6}
ACTIVATION_FACTOR = ACTIVATION_FACTORS["conv"]
# N x K float32 arrays of one ParallelFC step: the cosines, and the logits that become the
# probabilities and the logit gradient in place; both are kept and reused between steps.
LOGIT_TEMPORARIES = 2
# Partial FC, per step: c float32 random scores and a c-long int32 inverse map.
SAMPLING_TEMPORARIES = 2
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
        """Rows a partial-FC step gathers on worker 0 (k), or None when the full FC runs.

        As ParallelFC sizes them: room for round(rate*c) rows or for every row of the global
        batch being a positive held here, whichever is more, at most c."""
        per = self.num_local
        wanted = int(round(self.sample_rate * per))
        if wanted >= per:
            return None
        return min(per, max(wanted, self.global_batch, 1))

    @property
    def logit_columns(self):
        """K: the columns of this worker's logits (its classes, or its sampled rows)."""
        rows = self.sampled_rows
        return self.num_local if rows is None else rows


def classifier_memory(setup):
    """Items of worker 0's classifier shard: its state, the softmax arrays it keeps between
    steps, then the per-step temporaries."""
    c, d, n, k = setup.num_local, setup.embedding_size, setup.global_batch, setup.logit_columns
    centres = c * d * FC_BYTES
    items = [Item("classifier", "centres (weight)", centres, "c*D*4", True),
             Item("classifier", "momentum", centres, "c*D*4", True)]
    if setup.sampled_rows is None:
        items.append(Item("classifier", "centre gradient", centres, "c*D*4", True))
    else:
        items.append(Item("classifier", "sampled rows: weight, gradient, momentum",
                          3 * k * d * FC_BYTES, "3*k*D*4", True))
    items.append(Item("classifier", "softmax: cosines, logits -> logit gradient",
                      LOGIT_TEMPORARIES * n * k * FC_BYTES, f"{LOGIT_TEMPORARIES}*N*K*4", True))
    if setup.sampled_rows is not None:
        items.append(Item("classifier", "sampling: random scores, inverse map",
                          SAMPLING_TEMPORARIES * c * 4, f"{SAMPLING_TEMPORARIES}*c*4", False))
    features = FEATURE_TEMPORARIES * n * d * FC_BYTES + n * 4
    items.append(Item("classifier", "gathered features and labels, feature gradient", features,
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
