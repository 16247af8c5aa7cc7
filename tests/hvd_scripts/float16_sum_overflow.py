"""Run under horovodrun by tests/training/test_precision.py: a float16 gradient that is finite
on each worker but overflows when Horovod sums it, then one that does not. Each worker writes
what it saw to OUTPUT/rank{r}.json. Argument: OUTPUT."""
import json
import os
import sys

import horovod.mxnet as hvd
import mxnet as mx
from mxnet import autograd, gluon

from recognition.training.precision import Precision, count_non_finite, step_backbone


class Product(gluon.HybridBlock):
    """y = x * w, element-wise: runs in float16 on the CPU (no GEMM)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.w = self.params.get("w", shape=(1, 4), init=mx.init.One())

    def hybrid_forward(self, F, x, w):
        return F.broadcast_mul(x, w)


def backward(net, precision, value):
    """Leave d y / d w = 200 * (value / 200) = `value` (float16) on each weight."""
    x = mx.nd.full((1, 4), 200.0).astype("float16")
    with autograd.record():
        y = net(x)
    y.backward(mx.nd.full((1, 4), value / 200.0).astype("float16"))


def weights(net):
    return [float(v) for v in net.w.data().astype("float32").asnumpy().ravel()]


def main(out):
    hvd.init()
    net = Product(prefix="product_")
    net.initialize()
    net.cast("float16")
    trainer = hvd.DistributedTrainer(net.collect_params(), "sgd",
                                     {"learning_rate": 0.01, "multi_precision": True})
    precision = Precision("float16", loss_scale=0.0)
    result = {"weights_before": weights(net), "scale_before": precision.scale}
    backward(net, precision, 40000.0)
    result["local_grads_finite"] = count_non_finite([net.w.grad()]) == 0
    result["overflow_step"] = step_backbone(trainer, net, precision, 0.01, hvd.size())
    result["weights_after_overflow"] = weights(net)
    result["scale_after_overflow"] = precision.scale
    backward(net, precision, 20000.0)
    result["clean_step"] = step_backbone(trainer, net, precision, 0.01, hvd.size())
    result["weights_after_clean"] = weights(net)
    with open(os.path.join(out, f"rank{hvd.rank()}.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1])
