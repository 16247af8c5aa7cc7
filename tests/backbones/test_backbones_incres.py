"""Inception-ResNet v1/v2 against the structure Peng et al. 2020 (Inception-ResNet with TRSF)
describe.

Counts from the paper's text: 20 TRSF scalars in v1 and 40 in v2 (section 3.1), 131 PReLU layers
in v1 and 243 in v2 (Figures 9-10), TRSF initialised to 0.1 and PReLU/LeakyReLU slopes to 0.2
(section 4.4.1), about 22M and 55M parameters.
"""
import itertools

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd
from mxnet.gluon import nn

from recognition.backbones import get_model
from recognition.backbones.common import ChannelPReLU

PAPER_TRSF = {1: 20, 2: 40}
PAPER_ACT_LAYERS = {1: 131, 2: 243}
# Sum of the channels of every activation layer, added up by hand from the layer tables:
# v1: stem 656 + 5 x block35 448 + reduction A 1024 + 10 x block17 1408 + reduction B 1920
#     + 5 x block8 2560 + final block8 768 = 33488
# v2: stem 400 + Mixed_5b 528 + 10 x 560 + Mixed_6a 1280 + 20 x 1760 + Mixed_7a 2048
#     + 9 x 2944 + final block8 864 + Conv2d_7b 1536 = 73952
PRELU_SCALARS = {1: 33488, 2: 73952}
VARIANTS = list(itertools.product((1, 2), ("relu", "leaky", "prelu"), (False, True)))


def _blocks(net, cls):
    found = []

    def walk(block):
        if isinstance(block, cls):
            found.append(block)
        for child in block._children.values():
            walk(child)

    walk(net)
    return found


def _trsf(net):
    return [p for name, p in net.collect_params().items() if name.endswith("_trsf")]


@pytest.mark.parametrize("version,act,trsf", VARIANTS)
def test_structure_of_the_six_variants(version, act, trsf):
    net = get_model(f"incres_v{version}", act=act, trsf=trsf)
    net.initialize()  # TRSF and PReLU shapes are known without a forward pass
    scales = _trsf(net)
    assert len(scales) == (PAPER_TRSF[version] if trsf else 0)
    assert all(p.data().asscalar() == pytest.approx(0.1) for p in scales)
    prelus, leakies = _blocks(net, ChannelPReLU), _blocks(net, nn.LeakyReLU)
    relus = [b for b in _blocks(net, nn.Activation) if b._act_type == "relu"]
    counts = {"relu": len(relus), "leaky": len(leakies), "prelu": len(prelus)}
    assert counts == {a: PAPER_ACT_LAYERS[version] if a == act else 0 for a in counts}
    alphas = [p for name, p in net.collect_params().items() if name.endswith("_alpha")]
    assert sum(p.data().size for p in alphas) == (PRELU_SCALARS[version] if act == "prelu" else 0)
    assert all(np.allclose(p.data().asnumpy(), 0.2) for p in alphas)
    assert all(b._alpha == 0.2 for b in leakies)


def test_final_block_trsf_is_optional():
    assert len(_trsf(_init(get_model("incres_v1", trsf=True, final_trsf=True)))) == 21
    assert len(_trsf(_init(get_model("incres_v2", trsf=True, final_trsf=False)))) == 39


def _init(net):
    net.initialize()
    return net


@pytest.mark.parametrize("version,low,high", [(1, 21.5e6, 23.0e6), (2, 53.5e6, 55.5e6)])
def test_trunk_sizes_match_the_seed(version, low, high):
    """About 22M (v1) and 55M (v2) parameters before the 512-d head."""
    net = _init(get_model(f"incres_v{version}"))
    net(mx.nd.zeros((1, 3, 56, 56)))
    trunk = sum(p.data().size for name, p in net.collect_params().items()
                if p.grad_req != "null" and "_head_" not in name)
    assert low < trunk < high


@pytest.mark.parametrize("version", [1, 2])
def test_gradients_reach_every_trsf_and_prelu(version):
    mx.random.seed(3)
    net = get_model(f"incres_v{version}", act="prelu", trsf=True)
    net.initialize(mx.init.Xavier())
    x = mx.nd.array(np.random.RandomState(1).uniform(0, 255, (2, 3, 56, 56)))
    with autograd.record():
        loss = (net(x) ** 2).mean()
    loss.backward()
    for p in _trsf(net):
        assert p.grad().asscalar() != 0, p.name
    for name, p in net.collect_params().items():
        if name.endswith("_alpha"):
            assert np.abs(p.grad().asnumpy()).sum() > 0, name


def test_trsf_at_the_fixed_values_reproduces_the_fixed_network():
    """TRSF set to 0.17/0.10/0.20 must give exactly the original Inception-ResNet v1."""
    x = mx.nd.array(np.random.RandomState(2).uniform(0, 255, (2, 3, 56, 56)))
    fixed = _init(get_model("incres_v1"))
    fixed(x)
    learned = _init(get_model("incres_v1", trsf=True))
    learned(x)
    others = [p for n, p in learned.collect_params().items() if not n.endswith("_trsf")]
    for src, dst in zip(fixed.collect_params().values(), others):
        dst.set_data(src.data())
    for p, value in zip(_trsf(learned), [0.17] * 5 + [0.10] * 10 + [0.20] * 5):
        p.set_data(mx.nd.full((1, 1, 1, 1), value))
    np.testing.assert_allclose(learned(x).asnumpy(), fixed(x).asnumpy(), rtol=1e-5, atol=1e-5)


def test_stem_pool_restores_the_160_setting():
    """MaxPool_3a is dropped for 112x112 (5x5 final map) and kept for 160x160 (3x3, as FaceNet)."""
    small = _init(get_model("incres_v1"))
    big = _init(get_model("incres_v1", stem_pool=True))
    assert small.body(mx.nd.zeros((1, 3, 112, 112))).shape[2:] == (5, 5)
    assert big.body(mx.nd.zeros((1, 3, 160, 160))).shape[2:] == (3, 3)


def test_unknown_activation_is_rejected():
    with pytest.raises(ValueError, match="relu, leaky, prelu"):
        get_model("incres_v1", act="gelu")
