"""Training precision: float32, or float16 with float32 master weights and loss scaling.

float16 (`dtype="float16"`, GPU only): the backbone computes in float16 (Gluon keeps BatchNorm
parameters in float32), its output is cast to float32 before the classifier, whose weights and
margin maths stay float32 (the model-parallel FC is never cast). SGD runs with
`multi_precision`, so each float16 weight has a float32 master copy that receives the update:
steps smaller than float16's resolution are not lost. The gradient that enters the backbone is
multiplied by a loss scale so that small gradients do not underflow in float16, and the
optimizer divides it out again. With `loss_scale=0` the scale is dynamic (as in NVIDIA's AMP):
a step whose gradients overflow on any worker is skipped by every worker and the scale halved;
after `scale_window` clean steps it doubles. Checkpoints and verification use a float32 copy of
the network, so exported models are ordinary float32 MXNet checkpoints.
"""
import contextlib

import mxnet as mx
from mxnet import nd

from ..errors import ConfigError

__all__ = ["Precision", "DTYPES", "count_non_finite", "non_finite_groups", "step_backbone"]

DTYPES = ("float32", "float16")
INITIAL_DYNAMIC_SCALE = 2.0 ** 16
MAX_SCALE = 2.0 ** 24


# `multi_all_finite` takes at most this many arrays per call: MXNet 1.9.1 aborts the whole
# process (an uncatchable dmlc::Error) somewhere between 200 and 250; IResNet-100 has ~450.
MAX_ARRAYS_PER_CALL = 128


def non_finite_groups(arrays):
    """How many groups of `arrays` hold a NaN or inf, as a 1-element NDArray on the CPU
    (0: all finite), computed without reading anything back.

    `multi_all_finite` wants one dtype per call (float16 networks keep float32 BatchNorm
    parameters) and a bounded number of arrays; it tests the values themselves, so no sum can
    overflow on the way.
    """
    by_dtype = {}
    for array in arrays:
        by_dtype.setdefault(array.dtype, []).append(array)
    bad = nd.zeros((1,), ctx=mx.cpu())
    for same_dtype in by_dtype.values():
        for start in range(0, len(same_dtype), MAX_ARRAYS_PER_CALL):
            group = same_dtype[start:start + MAX_ARRAYS_PER_CALL]
            finite = nd.multi_all_finite(*group, num_arrays=len(group), init_output=True)
            bad += 1.0 - finite.as_in_context(bad.context)
    return bad


def count_non_finite(arrays):
    """:func:`non_finite_groups` read back as a float (one host read)."""
    return float(non_finite_groups(arrays).asscalar())


class Precision:
    """What the training loop asks about precision; float32 makes every call a no-op.

    Parameters
    ----------
    dtype : "float32" or "float16".
    loss_scale : float, > 0 a static scale, 0 a dynamic one (float16 only).
    scale_window : int, clean steps before a dynamic scale doubles.
    """

    def __init__(self, dtype="float32", loss_scale=0.0, scale_window=2000):
        if dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        if loss_scale < 0:
            raise ConfigError(f"loss_scale must be >= 0 (0: dynamic), got {loss_scale}")
        self.dtype, self.half = dtype, dtype == "float16"
        self.dynamic = self.half and loss_scale == 0
        if not self.half:
            self.scale = 1.0
        elif self.dynamic:
            self.scale = INITIAL_DYNAMIC_SCALE
        else:
            self.scale = float(loss_scale)
        self.scale_window, self.clean_steps, self.skipped = int(scale_window), 0, 0

    @staticmethod
    def check_context(dtype, ctx):
        """float16 training needs a GPU: MXNet 1.9 has no float16 matrix multiply on the CPU."""
        if dtype == "float16" and ctx.device_type != "gpu":
            raise ConfigError("dtype='float16' needs a GPU (MXNet has no float16 GEMM on the "
                             "CPU); train in float32 on the CPU")

    def optimizer_options(self):
        """Extra SGD options: float32 master weights for float16 parameters."""
        return {"multi_precision": True} if self.half else {}

    def cast_network(self, net):
        if self.half:
            net.cast("float16")
        return net

    def input(self, images):
        return images.astype(self.dtype, copy=False)

    def output(self, out):
        """The network's output(s) in float32 for the loss (recorded by autograd)."""
        if not self.half:
            return out
        if isinstance(out, (list, tuple)):
            return type(out)(o.astype("float32") for o in out)
        return out.astype("float32")

    def grads_finite(self, net):
        """Whether the backbone gradients are finite, checked AFTER the trainer's all-reduce
        (`trainer.allreduce_grads()`): Horovod sums the scaled float16 gradients, and a sum
        of many workers can overflow where every worker's own gradient was finite. Every
        worker then holds the same sums, so every worker gives the same answer without
        another collective; the gradients' communication is already queued when this waits
        for its one read."""
        if not self.half:
            return True
        return count_non_finite([grad for param in net.collect_params().values()
                                 if param.grad_req != "null" for grad in param.list_grad()]) == 0

    def after_step(self, finite):
        """Adjust a dynamic scale; returns a message when a step was skipped."""
        if finite:
            self.clean_steps += 1
            if self.dynamic and self.clean_steps >= self.scale_window:
                self.scale, self.clean_steps = min(self.scale * 2, MAX_SCALE), 0
            return None
        self.skipped += 1
        self.clean_steps = 0
        old = self.scale
        if self.dynamic:
            self.scale = max(self.scale / 2, 1.0)
        return (f"float16 gradients overflowed: step skipped on every worker, loss scale "
                f"{old:g} -> {self.scale:g}")

    @contextlib.contextmanager
    def float32(self, net, input_shape):
        """The network in float32 for export and verification, float16 again afterwards.

        Casting drops the hybridized graph; one pass of zeros of `input_shape` rebuilds it
        (export needs it)."""
        if not self.half:
            yield net
            return
        net.cast("float32")
        try:
            ctx = next(iter(net.collect_params().values())).list_ctx()[0]
            net(nd.zeros(input_shape, ctx=ctx))
            yield net
        finally:
            net.cast("float16")

    def state(self):
        return {"scale": self.scale, "clean_steps": self.clean_steps, "skipped": self.skipped}

    def load_state(self, state):
        if state and self.half:
            self.scale = float(state["scale"])
            self.clean_steps, self.skipped = int(state["clean_steps"]), int(state["skipped"])


def step_backbone(trainer, net, precision, lr, world_size):
    """Apply one step's backbone gradients; returns a message when float16 skipped it.

    The all-reduce is queued first, so the gradients travel while anything else still
    computes; the float16 overflow check then looks at the sums (see `grads_finite`).
    The gradients are of the global mean loss: the backbone gradient is the SUM over workers,
    and the Horovod trainer averages them, so scale back by the world size and divide out the
    float16 loss scale (Gluon multiplies gradients by 1 / the argument of `update`).
    """
    trainer.allreduce_grads()
    skipped = precision.after_step(precision.grads_finite(net))
    if skipped:  # every worker saw the same sums: all of them skip both optimisers
        return skipped
    trainer.set_learning_rate(lr)
    trainer.update(precision.scale / world_size)
    return None
