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
    """IResNet-50 = Ponce's 43.59M; EfficientNet-B3's trunk = the reference 10,696,232."""
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


def _prelu_reference(x, slopes, head_grad):
    """NumPy PReLU: output, d/dx and d/dslope for a head gradient."""
    c = slopes[None, :, None, None]
    y = np.where(x > 0, x, c * x)
    dx = np.where(x > 0, 1.0, c) * head_grad
    dslope = np.where(x > 0, 0.0, x * head_grad).sum(axis=(0, 2, 3))
    return y, dx, dslope


def _close(got, want, rtol=1e-5):
    """Relative comparison; the absolute floor scales with the reference's size."""
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


@pytest.mark.parametrize("hybrid", [False, True])
@pytest.mark.parametrize("form", ["conv", "op"])
def test_channel_prelu_forms_match_numpy(form, hybrid):
    """Both PReLU forms compute the NumPy reference, values and gradients, with the same
    (C,1,1,1) `alpha`."""
    rng = np.random.RandomState(11)
    x_np = rng.normal(size=(3, 5, 6, 7)).astype(np.float32)
    slopes = np.linspace(-0.3, 0.6, 5).astype(np.float32)
    head = rng.normal(size=x_np.shape).astype(np.float32)
    block = ChannelPReLU(5, form=form)
    block.initialize()
    assert block.alpha.shape == (5, 1, 1, 1) and block.alpha.name.endswith("alpha")
    block.alpha.set_data(mx.nd.array(slopes.reshape(5, 1, 1, 1)))
    if hybrid:
        block.hybridize()
    x = mx.nd.array(x_np)
    x.attach_grad()
    with autograd.record():
        y = block(x)
    y.backward(mx.nd.array(head))
    want = _prelu_reference(x_np, slopes, head)
    got = (y.asnumpy(), x.grad.asnumpy(), block.alpha.grad().asnumpy().ravel())
    for g, w in zip(got, want):
        _close(g, w)


def _prelu_net(form, ctx=None, hybrid=True):
    """r_tiny with PReLU (and SE) built in `form`, names independent of earlier networks."""
    from recognition.backbones.common import prelu_form

    with mx.name.NameManager(), prelu_form(form):
        net = get_model("r_tiny", act="prelu", se=True)
    net.initialize(mx.init.Xavier(), ctx=ctx or mx.cpu())
    if hybrid:
        net.hybridize(static_alloc=True)
    return net


def _symbol_ops(prefix):
    import json

    with open(prefix + "-symbol.json") as f:
        nodes = json.load(f)["nodes"]
    return {(n["op"], n.get("attrs", {}).get("act_type")) for n in nodes}


@pytest.mark.filterwarnings("ignore:Cannot decide type")
@pytest.mark.parametrize("saved,loaded", [("conv", "op"), ("op", "conv")])
def test_prelu_checkpoint_loads_into_the_other_form(saved, loaded, tmp_path):
    """A checkpoint exported with one PReLU form loads, by name, into a network built with the
    other and gives the same embeddings; the exported file itself runs on the CPU too."""
    from recognition.training.network import load_exported_params

    x = mx.nd.array(np.random.RandomState(4).uniform(0, 255, (2, 3, 48, 48)))
    source = _prelu_net(saved)
    expected = source(x).asnumpy()
    prefix = str(tmp_path / saved)
    source.export(prefix, epoch=3)
    target = _prelu_net(loaded)
    assert sorted(target.collect_params()) == sorted(source.collect_params())
    assert load_exported_params(target, prefix + "-0003.params", mx.cpu()) == \
        len(list(target.collect_params().keys()))
    _close(target(x).asnumpy(), expected)
    imported = gluon.SymbolBlock.imports(prefix + "-symbol.json", ["data"],
                                         prefix + "-0003.params")
    _close(imported(x).asnumpy(), expected)


@pytest.mark.filterwarnings("ignore")
def test_prelu_form_of_exports_the_conv_form_to_onnx(tmp_path):
    """A network built with the one-op PReLU (as on a GPU) exports the conv form inside
    `prelu_form_of(net, 'conv')`, which ONNX runs correctly, and is back in its own form
    after."""
    import onnxruntime

    from recognition.backbones.common import prelu_form_of

    net = _prelu_net("op")
    x = np.random.RandomState(9).uniform(0, 255, (1, 3, 112, 112)).astype(np.float32)
    expected = net(mx.nd.array(x)).asnumpy()
    prelu_op = ("LeakyReLU", "prelu")
    with prelu_form_of(net, "conv", x.shape):
        net.export(str(tmp_path / "conv"))
    assert prelu_op not in _symbol_ops(str(tmp_path / "conv"))
    _close(net(mx.nd.array(x)).asnumpy(), expected)
    net.export(str(tmp_path / "op"))
    assert prelu_op in _symbol_ops(str(tmp_path / "op"))
    onnx_path = str(tmp_path / "conv.onnx")
    mx.onnx.export_model(str(tmp_path / "conv-symbol.json"), str(tmp_path / "conv-0000.params"),
                         [x.shape], np.float32, onnx_path)
    session = onnxruntime.InferenceSession(onnx_path)
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    _close(got, expected, rtol=1e-4)


def test_prelu_form_follows_the_context():
    from recognition.backbones.common import prelu_form, prelu_form_for
    from recognition.errors import ConfigError

    # the one-op form waits for MXNet's slope gradient (see the defect test below)
    assert prelu_form_for(mx.gpu(0)) == "conv" and prelu_form_for([mx.gpu(0)]) == "conv"
    assert prelu_form_for(mx.cpu()) == "conv"
    assert ChannelPReLU(4).form == "conv"  # the default: what a CPU builds
    with prelu_form("op"):
        assert ChannelPReLU(4).form == "op"
        assert ChannelPReLU(4, form="conv").form == "conv"
    assert ChannelPReLU(4).form == "conv"
    with pytest.raises(ConfigError, match="unknown PReLU form"):
        ChannelPReLU(4, form="fast")


def _network_grads(form, x, params_file, ctx, hybrid):
    """Loss and every parameter gradient of one step of r_tiny + PReLU + SE in ``form``."""
    from recognition.training.network import load_exported_params

    net = _prelu_net(form, ctx, hybrid)
    load_exported_params(net, params_file, ctx)
    with autograd.record():
        loss = (net(x.as_in_context(ctx)) ** 2).sum()
    loss.backward()
    grads = {name.split("_", 1)[1]: p.grad(ctx).asnumpy()
             for name, p in net.collect_params().items() if p.grad_req != "null"}
    grads["loss"] = loss.asnumpy()
    return grads


def _same_grads(got, want, rtol=1e-4):
    """Every gradient within rtol of the largest gradient of the network (some, such as a
    bias before a BatchNorm, are zero up to rounding)."""
    scale = max(np.abs(g).max() for g in want.values())
    assert got.keys() == want.keys()
    for name, w in want.items():
        np.testing.assert_allclose(got[name], w, rtol=rtol, atol=rtol * scale, err_msg=name)


def _saved_params(tmp_path, x):
    """A params file of an initialised r_tiny + PReLU + SE, shared by the forms compared."""
    mx.random.seed(7)
    net = _prelu_net("conv")
    with autograd.record():  # materialise the parameters (training mode: no MKL-DNN reorder)
        net(x)
    net.export(str(tmp_path / "start"))
    return str(tmp_path / "start-0000.params")


def test_prelu_forms_give_the_same_network_gradients(tmp_path):
    """Imperatively, one training step of a PReLU + SE network from the same checkpoint gives
    the same loss and parameter gradients in both forms."""
    x = mx.nd.array(np.random.RandomState(8).uniform(0, 255, (2, 3, 48, 48)))
    params = _saved_params(tmp_path, x)
    want = _network_grads("conv", x, params, mx.cpu(), hybrid=False)
    _same_grads(_network_grads("op", x, params, mx.cpu(), hybrid=False), want)


def test_one_op_prelu_slope_gradient_defect_of_mxnet_graphs():
    """Pins a defect of MXNet 1.9.1 that keeps the one-op form out of training for now.

    Inside a hybridized graph, when both its input and its output gradient are intermediate
    arrays, LeakyReLU(act_type='prelu') returns the slope gradient times the slope (the data
    gradient stays right): here a conv -> PReLU -> conv chain, as in the squeeze-excitation
    block. The four-op conv form is right in the same graph. If this test fails, MXNet
    computes it right: re-check the 'op' form in training (see the GPU test below).
    """
    rng = np.random.RandomState(2)
    x = mx.nd.array(rng.normal(size=(2, 4, 3, 3)))
    slopes = np.array([0.25, 0.5, -0.2, 0.8], dtype=np.float32)
    weight = rng.uniform(-1, 1, (4, 4, 1, 1))
    grads = {}
    for form in ("conv", "op"):
        with mx.name.NameManager():
            chain = gluon.nn.HybridSequential()
            chain.add(gluon.nn.Conv2D(4, 1, in_channels=4), ChannelPReLU(4, form=form),
                      gluon.nn.Conv2D(4, 1, in_channels=4))
        chain.initialize(mx.init.Constant(0.3))
        chain[0].weight.set_data(mx.nd.array(weight))
        chain[1].alpha.set_data(mx.nd.array(slopes.reshape(4, 1, 1, 1)))
        chain.hybridize(static_alloc=True)
        x.attach_grad()
        with autograd.record():
            y = chain(x)
        y.backward(mx.nd.ones_like(y))
        grads[form] = chain[1].alpha.grad().asnumpy().ravel(), x.grad.asnumpy()
    _close(grads["op"][1], grads["conv"][1])  # the data gradient is right
    _close(grads["op"][0], slopes * grads["conv"][0])  # the slope gradient is scaled


@pytest.mark.skipif(mx.context.num_gpus() == 0, reason="needs a GPU")
def test_prelu_forms_give_the_same_network_gradients_on_a_gpu(tmp_path):
    """The check to pass before training on GPUs with the one-op form: one hybridized step on
    the GPU gives the same gradients in both forms (never run: no GPU so far)."""
    x = mx.nd.array(np.random.RandomState(8).uniform(0, 255, (2, 3, 48, 48)))
    params = _saved_params(tmp_path, x)
    want = _network_grads("conv", x, params, mx.gpu(0), hybrid=True)
    _same_grads(_network_grads("op", x, params, mx.gpu(0), hybrid=True), want, rtol=1e-3)
