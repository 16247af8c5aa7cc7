"""Every registry backbone: forward+backward, hybridized == imperative, exact export round trip.

Inputs are small squares (batch 2) to keep the CPU time low; the module-scoped fixture builds
one network at a time, and pytest runs all three checks on it before building the next.
"""
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from recognition.backbones import default_input_size, get_model, get_model_list
from recognition.backbones.common import ChannelPReLU, normalize

# Small inputs that still leave at least a 2x2 final map: MXNet 1.9.1's MKLDNN build crashes
# (SIGSEGV / terminate) on some hybridized graphs whose last map is 1x1, e.g. r18 at 16x16.
# MobileFaceNet's GDConv needs its 7x7 map (112 input); Inception-ResNet's valid-padded
# reductions need 55; FacialNet's final max-pool needs 41.
SMALL_INPUT = {"incres_v1": 56, "incres_v2": 56, "mobilefacenet": 112, "facialnet": 48,
               "r_tiny": 48, "mbv2": 64, "effb3": 64}
OUTPUT_SHAPES = {"facialnet": [(2, 2), (2, 8)], "mobilefacenet": [(2, 128)], "mbv2": [(2, 128)],
                 "r_tiny": [(2, 128)]}


def _outputs(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


@pytest.fixture(scope="module", params=get_model_list())
def backbone(request):
    name = request.param
    mx.random.seed(7)
    net = get_model(name)
    net.initialize(mx.init.Xavier())
    size = SMALL_INPUT.get(name, 32)
    x = mx.nd.array(np.random.RandomState(0).uniform(0, 255, (2, 3, size, size)))
    return name, net, x


def test_forward_backward(backbone):
    name, net, x = backbone
    with autograd.record():
        outs = _outputs(net(x))
        loss = mx.nd.add_n(*[(o * o).mean() for o in outs])
    loss.backward()
    assert [o.shape for o in outs] == OUTPUT_SHAPES.get(name, [(2, 512)])
    params = [p for p in net.collect_params().values() if p.grad_req != "null"]
    for p in params:
        assert np.isfinite(p.grad().asnumpy()).all(), p.name
    first_conv = next(p for p in params if p.name.endswith("weight") and len(p.shape) == 4)
    assert np.abs(first_conv.grad().asnumpy()).sum() > 0, "gradient did not reach the stem"


def test_hybridized_equals_imperative(backbone):
    name, net, x = backbone
    imperative = [o.asnumpy() for o in _outputs(net(x))]
    net.hybridize()
    hybrid = [o.asnumpy() for o in _outputs(net(x))]
    for a, b in zip(imperative, hybrid):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)


@pytest.mark.filterwarnings("ignore:Cannot decide type")  # SymbolBlock.imports, harmless
def test_export_import_round_trip_is_exact(backbone, tmp_path):
    name, net, x = backbone
    net.hybridize()
    expected = [o.asnumpy() for o in _outputs(net(x))]
    prefix = str(tmp_path / name)
    net.export(prefix)
    assert os.path.exists(prefix + "-symbol.json") and os.path.exists(prefix + "-0000.params")
    loaded = gluon.SymbolBlock.imports(prefix + "-symbol.json", ["data"], prefix + "-0000.params")
    got = [o.asnumpy() for o in _outputs(loaded(x))]
    assert len(got) == len(expected)
    for a, b in zip(expected, got):
        np.testing.assert_array_equal(b, a)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError) as err:
        get_model("resnet9000")
    assert "r50" in str(err.value) and "incres_v2" in str(err.value)


def test_default_input_sizes():
    assert default_input_size("r50") == 112 and default_input_size("facialnet") == 75


def test_normalisation_matches_insightface_convention():
    x = np.array([0.0, 127.5, 255.0], dtype=np.float32)
    got = normalize(mx.nd, mx.nd.array(x)).asnumpy()
    np.testing.assert_allclose(got, (x - 127.5) / 128.0)


def test_embedding_size_is_a_parameter():
    net = get_model("r_tiny", embedding_size=64)
    net.initialize()
    assert net(mx.nd.zeros((1, 3, 64, 64))).shape == (1, 64)


def _trainable(net, exclude=None):
    return sum(p.data().size for name, p in net.collect_params().items()
               if p.grad_req != "null" and (exclude is None or exclude not in name))


def test_parameter_counts_match_references():
    """IResNet-50 = seed 003's 43.59M; EfficientNet-B3's trunk = the reference 10,696,232."""
    r50 = get_model("r50")
    r50.initialize()
    r50(mx.nd.zeros((1, 3, 112, 112)))
    assert round(_trainable(r50) / 1e6, 2) == 43.59
    eff = get_model("effb3")
    eff.initialize()
    eff(mx.nd.zeros((1, 3, 64, 64)))
    assert _trainable(eff, exclude="_head_") == 10696232
    assert round(_trainable(eff) / 1e6, 1) == 11.5


def test_mobilenetv2_face_model_is_under_one_megabyte():
    net = get_model("mbv2")
    net.initialize()
    net(mx.nd.zeros((1, 3, 112, 112)))
    total = sum(p.data().size for p in net.collect_params().values())
    assert total * 4 < 1_000_000


def test_facialnet_head_sees_2048_features_at_75():
    net = get_model("facialnet")
    net.initialize()
    gender, age = net(mx.nd.zeros((1, 3, 75, 75)))
    assert net.gender[0].weight.shape == (512, 2048)
    assert gender.shape == (1, 2) and age.shape == (1, 8)


def test_channel_prelu_matches_mxnet_prelu():
    """The conv-based PReLU computes what MXNet's PReLU op computes, values and gradients."""
    x = mx.nd.array(np.random.RandomState(5).normal(size=(4, 6, 8, 8)))
    slopes = np.linspace(-0.3, 0.5, 6).astype(np.float32)
    ours, ref = ChannelPReLU(6), gluon.nn.PReLU(in_channels=6)
    ours.initialize()
    ref.initialize()
    ours.alpha.set_data(mx.nd.array(slopes.reshape(6, 1, 1, 1)))
    ref.alpha.set_data(mx.nd.array(slopes))
    head_grad = mx.nd.array(np.random.RandomState(6).normal(size=x.shape))
    results = []
    for block, param in ((ours, ours.alpha), (ref, ref.alpha)):
        x.attach_grad()
        with autograd.record():
            y = block(x)
        y.backward(head_grad)
        results.append((y.asnumpy(), x.grad.asnumpy(), param.grad().asnumpy().ravel()))
    expected = np.where(x.asnumpy() > 0, x.asnumpy(), x.asnumpy() * slopes[None, :, None, None])
    np.testing.assert_allclose(results[0][0], expected, rtol=1e-6)
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name,options", [("r_tiny", {"act": "prelu", "se": True}), ("mbv2", {})])
def test_pooling_and_prelu_export_to_onnx(name, options, tmp_path):
    """Global pooling (SE, pooled head) and ChannelPReLU pass stock MXNet's ONNX exporter."""
    import onnxruntime

    net = get_model(name, **options)
    net.initialize(mx.init.Xavier())
    net.hybridize()
    x = np.random.RandomState(3).uniform(0, 255, (1, 3, 112, 112)).astype(np.float32)
    expected = net(mx.nd.array(x)).asnumpy()
    prefix = str(tmp_path / "tiny")
    net.export(prefix)
    onnx_path = str(tmp_path / "tiny.onnx")
    mx.onnx.export_model(prefix + "-symbol.json", prefix + "-0000.params", [x.shape], np.float32,
                         onnx_path)
    session = onnxruntime.InferenceSession(onnx_path)
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
