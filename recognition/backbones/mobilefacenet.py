"""MobileFaceNet (Chen et al. 2018): MobileNetV2 bottlenecks sized for 112x112 faces.

Differences from MobileNetV2 that matter for faces: PReLU instead of ReLU6, a fast 56x56
down-sampling stem, and a global depthwise conv (GDConv, a learned per-position weighting of
the 7x7 map) instead of average pooling, followed by a linear 1x1 conv to the 128-d embedding.
About 1M parameters.
"""
from mxnet.gluon import nn

from .common import batch_norm, conv_bn, normalize
from .mobilenetv2 import InvertedResidual

# (expansion t, channels c, repeats n, stride s) from the MobileFaceNet paper, Table 1.
TABLE = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


class MobileFaceNet(nn.HybridBlock):
    """MobileFaceNet; `width` scales every channel count (1.0 is the paper's network).

    The embedding is the BN of the linear 1x1 conv after GDConv (spatial size must be 7x7 at
    the GDConv, i.e. 112x112 input: GDConv's kernel is the whole map).
    """

    def __init__(self, embedding_size=128, width=1.0, feature_channels=512, **kwargs):
        super().__init__(**kwargs)
        ch = max(8, int(round(64 * width)))
        feat = max(8, int(round(feature_channels * width)))
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            self.features.add(conv_bn(ch, 3, 2, act="prelu"),
                              conv_bn(ch, 3, 1, groups=ch, act="prelu"))
            in_ch = ch
            for t, c, n, s in TABLE:
                out_ch = max(8, int(round(c * width)))
                for i in range(n):
                    self.features.add(InvertedResidual(in_ch, out_ch, t, s if i == 0 else 1,
                                                       act="prelu"))
                    in_ch = out_ch
            self.features.add(conv_bn(feat, 1, act="prelu"))
            self.gdconv = conv_bn(feat, 7, 1, pad=0, groups=feat)
            self.linear = nn.Conv2D(embedding_size, 1, use_bias=False)
            self.bn = batch_norm(embedding_size)

    def hybrid_forward(self, F, x):
        x = self.gdconv(self.features(normalize(F, x)))
        return F.flatten(self.bn(self.linear(x)))
