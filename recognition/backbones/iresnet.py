"""IResNet: InsightFace's improved ResNet for 112x112 faces, optionally with squeeze-excitation.

Unit: BN -> Conv3x3 -> BN -> PReLU -> Conv3x3(stride) -> BN (+ SE) + shortcut; the stride sits on
the second conv and the stem has no max-pool, so a 112x112 face leaves a 7x7 map for the
InsightFace 'E' head. Depths are built from the `units` table, not from copied factories.
"""
from mxnet.gluon import nn

from .common import EmbeddingHead, SqueezeExcite, batch_norm, make_act, normalize
from ..errors import ConfigError

UNITS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3)}
CHANNELS = (64, 128, 256, 512)
SE_REDUCTION = 16  # InsightFace's fresnet: SE squeezes C to C/16


class IBasicUnit(nn.HybridBlock):
    """One improved residual unit; the shortcut gets a 1x1 conv + BN when its shape changes."""

    def __init__(self, in_channels, channels, stride, se=False, act="prelu", **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.body = nn.HybridSequential(prefix="")
            self.body.add(batch_norm(in_channels),
                          nn.Conv2D(channels, 3, 1, 1, use_bias=False, in_channels=in_channels),
                          batch_norm(channels), make_act(act, channels),
                          nn.Conv2D(channels, 3, stride, 1, use_bias=False, in_channels=channels),
                          batch_norm(channels))
            if se:
                self.body.add(SqueezeExcite(channels, max(1, channels // SE_REDUCTION), act))
            self.shortcut = None
            if stride != 1 or in_channels != channels:
                self.shortcut = nn.HybridSequential(prefix="")
                self.shortcut.add(nn.Conv2D(channels, 1, stride, use_bias=False,
                                            in_channels=in_channels), batch_norm(channels))

    def hybrid_forward(self, F, x):
        short = x if self.shortcut is None else self.shortcut(x)
        return self.body(x) + short


class IResNet(nn.HybridBlock):
    """IResNet backbone with the InsightFace embedding head.

    Parameters
    ----------
    units : sequence of 4 ints, units per stage (see `UNITS`).
    embedding_size : int, output dimension (512 as in InsightFace).
    width : float, channel multiplier (1.0 = 64/128/256/512); small values make CPU-sized nets.
    se : bool, add squeeze-excitation to every unit (InsightFace's IR-SE).
    stem_stride : int, 1 as in InsightFace; 2 halves every map (4x fewer FLOPs) for tiny nets.
    dropout : float, dropout before the embedding FC (InsightFace uses 0 for MS1M, 0.4 small sets).
    act : 'prelu' (InsightFace) or 'relu' / 'leaky' (LeakyReLU(0.2) trains about 2x faster
        than PReLU on CPU).
    """

    def __init__(self, units, embedding_size=512, width=1.0, se=False, stem_stride=1,
                 dropout=0.0, act="prelu", **kwargs):
        super().__init__(**kwargs)
        if len(units) != 4:
            raise ConfigError(f"IResNet needs 4 stages of units, got {units!r}")
        channels = [max(1, int(round(c * width))) for c in CHANNELS]
        with self.name_scope():
            self.stem = nn.HybridSequential(prefix="stem_")
            with self.stem.name_scope():
                self.stem.add(nn.Conv2D(channels[0], 3, stem_stride, 1, use_bias=False),
                              batch_norm(channels[0]), make_act(act, channels[0]))
            self.stages = nn.HybridSequential(prefix="")
            in_ch = channels[0]
            for stage, (count, out_ch) in enumerate(zip(units, channels)):
                seq = nn.HybridSequential(prefix=f"stage{stage + 1}_")
                with seq.name_scope():
                    for i in range(count):
                        seq.add(IBasicUnit(in_ch, out_ch, 2 if i == 0 else 1, se=se, act=act))
                        in_ch = out_ch
                self.stages.add(seq)
            self.head = EmbeddingHead(embedding_size, dropout, pool="flatten",
                                      in_channels=in_ch, prefix="head_")

    def hybrid_forward(self, F, x):
        return self.head(self.stages(self.stem(normalize(F, x))))


def iresnet(depth=50, **kwargs):
    """IResNet-`depth` (18, 34, 50 or 100); other keyword arguments go to `IResNet`."""
    if depth not in UNITS:
        raise ConfigError(f"unknown IResNet depth {depth}; valid: {sorted(UNITS)}")
    return IResNet(UNITS[depth], **kwargs)


def iresnet_tiny(**kwargs):
    """A CPU-sized IResNet: one unit per stage, quarter width, stride-2 stem, LeakyReLU, 128-d.

    Meant for tests, demos and CPU training on 112x112 synthetic faces; any `IResNet` keyword
    overrides these defaults.
    """
    options = dict(units=(1, 1, 1, 1), width=0.25, stem_stride=2, embedding_size=128, act="leaky")
    options.update(kwargs)
    return IResNet(**options)
