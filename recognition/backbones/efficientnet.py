"""EfficientNet (Tan & Le 2019) written for Gluon (GluonCV has none), B0-B3 by compound scaling.

MBConv blocks: 1x1 expand -> kxk depthwise(stride) -> squeeze-excitation -> 1x1 linear project,
swish activations, identity shortcut when shapes match. Widths and depths are the B0 table
scaled by (width, depth) per variant and rounded as in the reference implementation, so B3's
trunk has exactly the reference's 10,696,232 trainable parameters. Ponce's ArcFace report puts
a pooled 512-d FC on it (11.48M in all); here the InsightFace head does the same after global
pooling.
"""
import math

from mxnet.gluon import nn

from .common import EmbeddingHead, SqueezeExcite, conv_bn, normalize, scaled
from ..errors import ConfigError

# B0 stages: (expansion, kernel, stride, channels, repeats).
B0 = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
      (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
# name: (width multiplier, depth multiplier, native resolution)
VARIANTS = {"b0": (1.0, 1.0, 224), "b1": (1.0, 1.1, 240), "b2": (1.1, 1.2, 260),
            "b3": (1.2, 1.4, 300)}
BN = dict(bn_eps=1e-3, bn_momentum=0.99)  # TF's EfficientNet BatchNorm settings


def round_repeats(repeats, depth):
    return int(math.ceil(depth * repeats))


class MBConv(nn.HybridBlock):
    """Mobile inverted bottleneck with SE (ratio 0.25 of the block's input channels)."""

    def __init__(self, in_channels, channels, expansion, kernel, stride, se_ratio=0.25, **kw):
        super().__init__(**kw)
        self._residual = stride == 1 and in_channels == channels
        hidden = in_channels * expansion
        with self.name_scope():
            self.body = nn.HybridSequential(prefix="")
            if expansion != 1:
                self.body.add(conv_bn(hidden, 1, act="swish", **BN))
            self.body.add(conv_bn(hidden, kernel, stride, groups=hidden, act="swish", **BN))
            self.body.add(SqueezeExcite(hidden, max(1, int(in_channels * se_ratio)), "swish"))
            self.body.add(conv_bn(channels, 1, **BN))

    def hybrid_forward(self, F, x):
        out = self.body(x)
        return out + x if self._residual else out


class EfficientNet(nn.HybridBlock):
    """EfficientNet trunk + pooled InsightFace embedding head (512-d by default)."""

    def __init__(self, variant="b3", embedding_size=512, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if variant not in VARIANTS:
            raise ConfigError(f"unknown EfficientNet {variant!r}; valid: {', '.join(VARIANTS)}")
        width, depth, _ = VARIANTS[variant]
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            in_ch = scaled(32, width)
            self.features.add(conv_bn(in_ch, 3, 2, act="swish", **BN))
            for expansion, kernel, stride, channels, repeats in B0:
                out_ch = scaled(channels, width)
                for i in range(round_repeats(repeats, depth)):
                    self.features.add(MBConv(in_ch, out_ch, expansion, kernel,
                                             stride if i == 0 else 1))
                    in_ch = out_ch
            self.features.add(conv_bn(scaled(1280, width), 1, act="swish", **BN))
            self.head = EmbeddingHead(embedding_size, dropout, pool="gap", prefix="head_")

    def hybrid_forward(self, F, x):
        return self.head(self.features(normalize(F, x)))
