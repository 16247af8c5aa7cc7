"""float16 training machinery, on the CPU with an element-wise network (MXNet has no float16
GEMM on the CPU, so convolutional backbones in float16 need a GPU; these pieces do not).

What a user relies on: updates smaller than float16's resolution still accumulate (float32
master weights), the loss scale is divided out of the update, an overflowing step is skipped
and the scale halved, and checkpoints come out float32."""
import json
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from recognition.training.checkpoint import export_network
from recognition.training.precision import Precision, count_non_finite, step_backbone
from tests.support import REPO


class Scale(gluon.HybridBlock):
    """y = x * w + BN(x): element-wise ops only, so it runs in float16 on the CPU."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.w = self.params.get("w", shape=(1, 8), init=mx.init.One())
            self.bn = gluon.nn.BatchNorm(in_channels=8)

    def hybrid_forward(self, F, x, w):
        return F.broadcast_mul(x, w) + self.bn(x)


def _setup(precision, lr=1e-4):
    net = Scale(prefix="scale_")
    net.initialize()
    precision.cast_network(net)
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "sgd",
                            {"learning_rate": lr, "momentum": 0.0, "wd": 0.0,
                             **precision.optimizer_options()}, kvstore=None)
    return net, trainer


def _step(net, trainer, precision, x, coef):
    """One loop step as train.py does it: scaled backward, then the backbone step (all-reduce,
    overflow check of the sums, unscaled update)."""
    with autograd.record():
        y = precision.output(net(precision.input(x)))
    y.backward(coef * precision.scale)
    return step_backbone(trainer, net, precision, trainer.learning_rate, world_size=1)


X = mx.nd.array(np.linspace(0.5, 1.5, 32).reshape(4, 8))
COEF = mx.nd.array(np.linspace(-1, 1, 32).reshape(4, 8) / 4)


def test_float32_is_a_no_op():
    p = Precision("float32")
    assert p.scale == 1.0 and p.optimizer_options() == {} and p.grads_finite(None)
    x = mx.nd.ones((2, 2))
    assert p.input(x).dtype == np.float32 and p.output(x) is x


@pytest.mark.filterwarnings("ignore:Accumulating with float16")  # the float16-only contrast
def test_small_updates_accumulate_in_float32_master_weights():
    """Each step moves w by ~3e-5, under float16's spacing at 1.0 (~1e-3): with master
    weights 100 steps move the float16 weight as float32 training does; without, it stays."""
    reference, _ = _setup(Precision("float32"))
    half, half_trainer = _setup(Precision("float16", loss_scale=1.0))
    ref_trainer = gluon.Trainer(reference.collect_params(), "sgd",
                                {"learning_rate": 1e-4, "momentum": 0.0, "wd": 0.0},
                                kvstore=None)
    plain = Scale(prefix="plain_")
    plain.initialize()
    plain.cast("float16")
    plain_trainer = gluon.Trainer(plain.collect_params(), "sgd", {"learning_rate": 1e-4},
                                  kvstore=None)
    for _ in range(100):
        _step(reference, ref_trainer, Precision("float32"), X, COEF)
        _step(half, half_trainer, Precision("float16", loss_scale=1.0), X, COEF)
        _step(plain, plain_trainer, Precision("float16", loss_scale=1.0), X, COEF)
    w32 = reference.w.data().asnumpy()
    assert half.w.data().dtype == np.float16
    assert half.bn.gamma.data().dtype == np.float32          # BatchNorm stays float32
    assert np.abs(w32 - 1).max() > 2e-3                       # training did move the weight
    np.testing.assert_allclose(half.w.data().asnumpy(), w32, atol=1e-3)
    assert np.all(plain.w.data().asnumpy() == 1)              # float16 alone loses every step


@pytest.mark.parametrize("scale", [1.0, 1024.0])
def test_the_loss_scale_is_divided_out_of_the_update(scale):
    ref, ref_trainer = _setup(Precision("float32"), lr=0.1)
    net, trainer = _setup(Precision("float16", loss_scale=scale), lr=0.1)
    p = Precision("float16", loss_scale=scale)
    _step(ref, ref_trainer, Precision("float32"), X, COEF)
    _step(net, trainer, p, X, COEF)
    np.testing.assert_allclose(net.w.data().asnumpy(), ref.w.data().asnumpy(), atol=1e-3)


def test_overflow_skips_the_step_and_halves_a_dynamic_scale():
    p = Precision("float16", loss_scale=0.0, scale_window=3)
    assert p.dynamic and p.scale == 2.0 ** 16
    net, trainer = _setup(p, lr=0.1)
    before = net.w.data().asnumpy().copy()
    huge = COEF * 1e4                                         # x 65536 overflows float16
    message = _step(net, trainer, p, X, huge)
    assert "overflowed" in message and p.scale == 2.0 ** 15 and p.skipped == 1
    assert np.array_equal(net.w.data().asnumpy(), before)     # no update at all
    for _ in range(3):
        assert _step(net, trainer, p, X, COEF * 1e-2) is None
    assert p.scale == 2.0 ** 16                               # doubled after the window
    assert not np.array_equal(net.w.data().asnumpy(), before)
    restored = Precision("float16", loss_scale=0.0)
    restored.load_state(p.state())
    assert restored.state() == p.state()


def test_checkpoints_are_float32_and_training_goes_on_in_float16(tmp_path):
    p = Precision("float16", loss_scale=8.0)
    net, trainer = _setup(p)
    _step(net, trainer, p, X, COEF)
    with p.float32(net, (1, 8)) as full:
        assert full.w.data().dtype == np.float32
        export_network(full, str(tmp_path / "model"), 1)
        out = full(X)                                         # verification feeds float32
        assert out.dtype == np.float32
    saved = mx.nd.load(str(tmp_path / "model-0001.params"))
    assert saved and all(v.dtype == np.float32 for v in saved.values())
    assert net.w.data().dtype == np.float16
    assert _step(net, trainer, p, X, COEF) is None


def test_float16_needs_a_gpu_and_known_dtypes():
    with pytest.raises(ValueError, match="needs a GPU"):
        Precision.check_context("float16", mx.cpu())
    Precision.check_context("float32", mx.cpu())
    with pytest.raises(ValueError, match="dtype must be one of"):
        Precision("bfloat16")
    with pytest.raises(ValueError, match="loss_scale must be >= 0"):
        Precision("float16", loss_scale=-1)


def test_finiteness_of_many_arrays_of_two_dtypes():
    """IResNet-100 has ~450 parameter arrays; MXNet's multi_all_finite aborts the process when
    given more than about 200 at once, so they are tested in groups."""
    arrays = [mx.nd.ones((3,)) for _ in range(450)] + [mx.nd.ones((2,), dtype="float16")]
    assert count_non_finite(arrays) == 0
    arrays[-2][1] = float("nan")  # in the last float32 group
    arrays[-1][0] = float("inf")  # and the float16 one
    assert count_non_finite(arrays) == 2


def test_an_overflow_of_the_workers_sum_skips_the_step_on_every_worker(run_horovod, tmp_path):
    """Each worker's float16 gradient is finite (40,000 < 65,504); Horovod's sum of two is not.
    Checked before the all-reduce (as before), the sum's inf reached the weights."""
    script = os.path.join(REPO, "tests", "hvd_scripts", "float16_sum_overflow.py")
    run_horovod([script, str(tmp_path)])
    for rank in (0, 1):
        result = json.load(open(tmp_path / f"rank{rank}.json"))
        assert result["local_grads_finite"] is True           # what a local check saw
        assert "overflowed" in result["overflow_step"]         # skipped on every worker
        assert result["weights_after_overflow"] == result["weights_before"]
        assert result["scale_after_overflow"] == result["scale_before"] / 2
        assert result["clean_step"] is None                    # 2 x 20,000 fits: applied
        assert result["weights_after_clean"] != result["weights_before"]
        assert all(np.isfinite(result["weights_after_clean"]))
