"""The classic bottleneck ResNet (Chen and Ding) taken from GluonCV's model zoo, adapted to 112x112.

GluonCV's `resnet50_v1b` is an ImageNet network: a 7x7/2 stem conv, a 3x3/2 max-pool, four
stages and a 1000-way classifier. For 112x112 faces the max-pool is skipped, so the stages see
the same map sizes as at 224x224 on ImageNet and the last map is 7x7 like IResNet's; the
classifier is replaced by the embedding head (global pooling first, since a flattened
7x7x2048 map would need a 51M-parameter FC). This lets the plain ResNet be compared with IResNet.
"""
from gluoncv.model_zoo import get_model as gluoncv_get_model
from mxnet.gluon import nn

from .common import EmbeddingHead, normalize
from ..errors import ConfigError

GLUONCV_NAMES = ("resnet18_v1b", "resnet34_v1b", "resnet50_v1b", "resnet101_v1b")


class ResNetV1bFace(nn.HybridBlock):
    """A GluonCV ResNet-v1b trunk (no max-pool, no classifier) with the face embedding head.

    Parameters
    ----------
    gluoncv_name : one of `GLUONCV_NAMES`.
    embedding_size : int, output dimension.
    dropout : float, dropout before the embedding FC.
    keep_maxpool : bool, keep GluonCV's stem max-pool (the ImageNet layout; 4x4 map at 112).
    """

    def __init__(self, gluoncv_name="resnet50_v1b", embedding_size=512, dropout=0.0,
                 keep_maxpool=False, **kwargs):
        super().__init__(**kwargs)
        if gluoncv_name not in GLUONCV_NAMES:
            raise ConfigError(f"unknown GluonCV ResNet {gluoncv_name!r}; "
                             f"valid: {', '.join(GLUONCV_NAMES)}")
        with self.name_scope():
            # Take GluonCV's layers but not its classifier, so its weights are never created.
            trunk = gluoncv_get_model(gluoncv_name, pretrained=False)
            self.stem = nn.HybridSequential(prefix="")
            self.stem.add(trunk.conv1, trunk.bn1, trunk.relu)
            if keep_maxpool:
                self.stem.add(trunk.maxpool)
            self.stages = nn.HybridSequential(prefix="")
            self.stages.add(trunk.layer1, trunk.layer2, trunk.layer3, trunk.layer4)
            self.head = EmbeddingHead(embedding_size, dropout, pool="gap", prefix="head_")

    def hybrid_forward(self, F, x):
        return self.head(self.stages(self.stem(normalize(F, x))))


def resnet_v1b(depth=50, **kwargs):
    """GluonCV's ResNet-`depth` v1b (18, 34, 50 or 101) as a 112x112 face backbone."""
    return ResNetV1bFace(f"resnet{depth}_v1b", **kwargs)
