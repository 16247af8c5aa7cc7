"""MobileNetV2 for faces (Kumar et al.): inverted residuals, linear bottlenecks, 128-d embedding.

Kumar et al.'s face model keeps MobileNetV2's layer table and fits in under 1 MB of float32 weights;
here that is `width=0.25` with the last 1x1 conv scaled by the same multiplier (the ImageNet
model keeps 1280 channels, 1.2 MB of weights on its own) and a pooled 128-d embedding head.
`InvertedResidual` is shared with MobileFaceNet.
"""
from mxnet.gluon import nn

from .common import EmbeddingHead, conv_bn, normalize, scaled

# (expansion t, channels c, repeats n, stride s) from the MobileNetV2 paper, Table 2.
TABLE = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
         (6, 160, 3, 2), (6, 320, 1, 1))


class InvertedResidual(nn.HybridBlock):
    """1x1 expand -> 3x3 depthwise(stride) -> 1x1 linear projection, + input when shapes match."""

    def __init__(self, in_channels, channels, expansion, stride, act="relu6", **kwargs):
        super().__init__(**kwargs)
        self._residual = stride == 1 and in_channels == channels
        hidden = in_channels * expansion
        with self.name_scope():
            self.body = nn.HybridSequential(prefix="")
            if expansion != 1:
                self.body.add(conv_bn(hidden, 1, act=act))
            self.body.add(conv_bn(hidden, 3, stride, groups=hidden, act=act))
            self.body.add(conv_bn(channels, 1))

    def hybrid_forward(self, F, x):
        out = self.body(x)
        return out + x if self._residual else out


class MobileNetV2Face(nn.HybridBlock):
    """MobileNetV2 trunk + pooled embedding head.

    Parameters
    ----------
    width : float, channel multiplier of every layer (0.25 keeps the model under 1 MB).
    last_channels : int or None, channels of the final 1x1 conv; None scales 1280 by `width`.
    embedding_size : int, 128 as in Kumar et al.
    first_stride : int, 2 as in MobileNetV2; 1 keeps more resolution for 112x112 input.
    dropout : float, dropout before the embedding FC.
    """

    def __init__(self, width=0.25, last_channels=None, embedding_size=128, first_stride=2,
                 dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        last = last_channels or scaled(1280, width)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            in_ch = scaled(32, width)
            self.features.add(conv_bn(in_ch, 3, first_stride, act="relu6"))
            for t, c, n, s in TABLE:
                out_ch = scaled(c, width)
                for i in range(n):
                    self.features.add(InvertedResidual(in_ch, out_ch, t, s if i == 0 else 1))
                    in_ch = out_ch
            self.features.add(conv_bn(last, 1, act="relu6"))
            self.head = EmbeddingHead(embedding_size, dropout, pool="gap", prefix="head_")

    def hybrid_forward(self, F, x):
        return self.head(self.features(normalize(F, x)))
