"""Inception-ResNet v1 (FaceNet layout) and v2 with trainable residual scaling (TRSF).

Peng et al., "More Trainable Inception-ResNet for Face Recognition" (Neurocomputing, 2020):
every residual branch is scaled by a trainable scalar initialised to 0.1 instead of the fixed
0.17/0.10/0.20, and every activation of the network may be ReLU, LeakyReLU(0.2) or PReLU(init
0.2).

Structure, counted from the paper's own numbers: v1 = 5 block35 / 10 block17 / 5 block8 plus a
final block8 without activation (131 activation layers, as its Figure 9 counts); v2 = 10 / 20 / 9
plus the final block8 and Conv2d_7b_1x1 (243 layers, Figure 10). The paper counts 20 TRSF in v1 and
40 in v2: the only reading consistent with both is that v2's final block has a TRSF and v1's
keeps FaceNet's fixed scale 1.0, so `final_trsf=None` reproduces exactly that; pass True/False
to choose. For 112x112 input the paper removes one stem down-sampling layer: here MaxPool_3a (the
one whose removal changes no parameter or activation count); `stem_pool=True` restores it for
the paper's 160x160 setting.
"""
from mxnet import init
from mxnet.gluon import nn

from .common import EmbeddingHead, conv_bn, make_act, normalize
from ..errors import ConfigError

# A conv spec is (channels, kernel[, stride[, pad]]), pad 'same' unless given; 'max' is a 3x3/2
# max-pool, 'avg' a 3x3/1 average pool (padding not counted, as TF's SAME).
V1 = dict(
    stem=[(32, 3, 2, 0), (32, 3, 1, 0), (64, 3), "pool3a", (80, 1, 1, 0), (192, 3, 1, 0),
          (256, 3, 2, 0)],
    mixed_5b=None,
    block35=([[(32, 1)], [(32, 1), (32, 3)], [(32, 1), (32, 3), (32, 3)]], 256, 0.17, 5),
    reduction_a=[[(384, 3, 2, 0)], [(192, 1), (192, 3), (256, 3, 2, 0)], ["max"]],
    block17=([[(128, 1)], [(128, 1), (128, (1, 7)), (128, (7, 1))]], 896, 0.10, 10),
    reduction_b=[[(256, 1), (384, 3, 2, 0)], [(256, 1), (256, 3, 2, 0)],
                 [(256, 1), (256, 3), (256, 3, 2, 0)], ["max"]],
    block8=([[(192, 1)], [(192, 1), (192, (1, 3)), (192, (3, 1))]], 1792, 0.20, 5),
    final_conv=None, final_trsf=False)
V2 = dict(
    stem=[(32, 3, 2, 0), (32, 3, 1, 0), (64, 3), "pool3a", (80, 1, 1, 0), (192, 3, 1, 0), "max"],
    mixed_5b=[[(96, 1)], [(48, 1), (64, 5)], [(64, 1), (96, 3), (96, 3)], ["avg", (64, 1)]],
    block35=([[(32, 1)], [(32, 1), (32, 3)], [(32, 1), (48, 3), (64, 3)]], 320, 0.17, 10),
    reduction_a=[[(384, 3, 2, 0)], [(256, 1), (256, 3), (384, 3, 2, 0)], ["max"]],
    block17=([[(192, 1)], [(128, 1), (160, (1, 7)), (192, (7, 1))]], 1088, 0.10, 20),
    reduction_b=[[(256, 1), (384, 3, 2, 0)], [(256, 1), (288, 3, 2, 0)],
                 [(256, 1), (288, 3), (320, 3, 2, 0)], ["max"]],
    block8=([[(192, 1)], [(192, 1), (224, (1, 3)), (256, (3, 1))]], 2080, 0.20, 9),
    final_conv=1536, final_trsf=True)
VERSIONS = {1: V1, 2: V2}
TRSF_INIT = 0.1


def _layer(spec, act_kw):
    """One layer of a spec list: a conv-BN-activation or a pool."""
    if spec == "max":
        return nn.MaxPool2D(3, 2)
    if spec == "avg":
        return nn.AvgPool2D(3, 1, 1, count_include_pad=False)
    channels, kernel, stride, pad = (tuple(spec) + (1, None))[:4]
    return conv_bn(channels, kernel, stride, pad, bn_eps=1e-3, **act_kw)


def _sequence(specs, act_kw, prefix):
    seq = nn.HybridSequential(prefix=prefix)
    with seq.name_scope():
        for spec in specs:
            seq.add(_layer(spec, act_kw))
    return seq


class Mixed(nn.HybridBlock):
    """Parallel branches concatenated on channels (reductions, Mixed_5b, block interiors)."""

    def __init__(self, branches, act_kw, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.branches = nn.HybridSequential(prefix="")
            for i, specs in enumerate(branches):
                self.branches.add(_sequence(specs, act_kw, f"branch{i}_"))

    def hybrid_forward(self, F, x):
        return F.concat(*[branch(x) for branch in self.branches], dim=1)


class InceptionResBlock(nn.HybridBlock):
    """x + scale * up(branches(x)), then the activation unless `last` (the final block).

    The scale is a trainable (1,1,1,1) parameter `trsf` initialised to 0.1 when `trsf` is True,
    else the fixed constant `scale`. The up-projection is a biased 1x1 conv without BN or
    activation, as in the TF-slim/FaceNet reference.
    """

    def __init__(self, branches, channels, scale, trsf, act_kw, last=False, **kwargs):
        super().__init__(**kwargs)
        self._scale = scale
        with self.name_scope():
            self.mixed = Mixed(branches, act_kw, prefix="mixed_")
            self.up = nn.Conv2D(channels, 1, use_bias=True)
            self.trsf = (self.params.get("trsf", shape=(1, 1, 1, 1),
                                         init=init.Constant(TRSF_INIT)) if trsf else None)
            self.act = None if last else make_act(act_kw["act"], channels,
                                                  prelu_init=act_kw["prelu_init"])

    def hybrid_forward(self, F, x, trsf=None):
        res = self.up(self.mixed(x))
        res = F.broadcast_mul(res, trsf) if trsf is not None else res * self._scale
        out = x + res
        return out if self.act is None else self.act(out)


class InceptionResNet(nn.HybridBlock):
    """Inception-ResNet v1/v2 face backbone (GAP head, 512-d embedding by default).

    Parameters
    ----------
    version : 1 or 2.
    act : 'relu' | 'leaky' | 'prelu', used for every activation layer.
    trsf : bool, trainable residual scale (init 0.1) in every Inception-ResNet module.
    final_trsf : None (the paper's counts: v1 no, v2 yes) or bool, TRSF in the final block8.
    stem_pool : bool, keep MaxPool_3a (the 160x160 setting); False for 112x112.
    prelu_init : float, PReLU's initial negative slope (0.2 in the paper).
    """

    def __init__(self, version=1, act="relu", trsf=False, final_trsf=None, stem_pool=False,
                 embedding_size=512, dropout=0.0, prelu_init=0.2, **kwargs):
        super().__init__(**kwargs)
        if version not in VERSIONS:
            raise ConfigError(f"unknown Inception-ResNet version {version}; valid: 1, 2")
        if act not in ("relu", "leaky", "prelu"):
            raise ConfigError(f"unknown activation {act!r}; valid: relu, leaky, prelu")
        cfg = VERSIONS[version]
        final_trsf = cfg["final_trsf"] if final_trsf is None else final_trsf
        act_kw = dict(act=act, prelu_init=prelu_init)
        stem = [s for s in cfg["stem"] if s != "pool3a" or stem_pool]
        stem = ["max" if s == "pool3a" else s for s in stem]
        with self.name_scope():
            self.body = nn.HybridSequential(prefix="")
            self.body.add(_sequence(stem, act_kw, "stem_"))
            if cfg["mixed_5b"]:
                self.body.add(Mixed(cfg["mixed_5b"], act_kw, prefix="mixed5b_"))
            self._blocks(cfg["block35"], trsf, act_kw, "block35")
            self.body.add(Mixed(cfg["reduction_a"], act_kw, prefix="reduction_a_"))
            self._blocks(cfg["block17"], trsf, act_kw, "block17")
            self.body.add(Mixed(cfg["reduction_b"], act_kw, prefix="reduction_b_"))
            self._blocks(cfg["block8"], trsf, act_kw, "block8")
            branches, channels, _, _ = cfg["block8"]
            self.body.add(InceptionResBlock(branches, channels, 1.0, trsf and final_trsf,
                                            act_kw, last=True, prefix="block8_final_"))
            if cfg["final_conv"]:
                self.body.add(_layer((cfg["final_conv"], 1), act_kw))
            self.head = EmbeddingHead(embedding_size, dropout, pool="gap", prefix="head_")

    def _blocks(self, spec, trsf, act_kw, name):
        branches, channels, scale, repeats = spec
        for i in range(repeats):
            self.body.add(InceptionResBlock(branches, channels, scale, trsf, act_kw,
                                            prefix=f"{name}_{i}_"))

    def hybrid_forward(self, F, x):
        return self.head(self.body(normalize(F, x)))
