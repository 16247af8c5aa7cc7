"""Backbone registry: `get_model(name, **kwargs)` builds any face backbone by its short name.

Every backbone is a Gluon HybridBlock taking raw RGB 0..255 float32 NCHW (normalised inside)
and returning the embedding (FacialNet: gender and age logits). Keyword arguments go to the
family's constructor (e.g. `embedding_size=256`, `act='prelu'`, `trsf=True`, `width=0.5`).
"""
from collections import namedtuple
from functools import partial

from .efficientnet import EfficientNet
from .facialnet import FacialNet
from .inception_resnet import InceptionResNet
from .iresnet import iresnet, iresnet_tiny
from .mobilefacenet import MobileFaceNet
from .mobilenetv2 import MobileNetV2Face
from .resnet_v1b import resnet_v1b
from ..errors import ConfigError

Entry = namedtuple("Entry", "factory input_size description")

MODELS = {
    "r18": Entry(partial(iresnet, 18), 112, "IResNet-18 (InsightFace), 512-d"),
    "r34": Entry(partial(iresnet, 34), 112, "IResNet-34, 512-d"),
    "r50": Entry(partial(iresnet, 50), 112, "IResNet-50, 512-d"),
    "r100": Entry(partial(iresnet, 100), 112, "IResNet-100, 512-d"),
    "r50_se": Entry(partial(iresnet, 50, se=True), 112, "IResNet-50 with squeeze-excitation"),
    "r_tiny": Entry(iresnet_tiny, 112, "tiny IResNet for CPU tests and demos, 128-d"),
    "resnet50_v1b": Entry(partial(resnet_v1b, 50), 112,
                          "GluonCV ResNet-50 v1b without stem max-pool, pooled 512-d head"),
    "incres_v1": Entry(partial(InceptionResNet, version=1), 112,
                       "Inception-ResNet v1 (FaceNet); act=, trsf= options"),
    "incres_v2": Entry(partial(InceptionResNet, version=2), 112,
                       "Inception-ResNet v2; act=, trsf= options"),
    "mobilefacenet": Entry(MobileFaceNet, 112, "MobileFaceNet, 128-d"),
    "mbv2": Entry(MobileNetV2Face, 112, "MobileNetV2 x0.25 for faces (<1 MB), 128-d"),
    "effb3": Entry(partial(EfficientNet, "b3"), 112, "EfficientNet-B3, pooled 512-d head"),
    "facialnet": Entry(FacialNet, 75, "FacialNet: (gender logits, age logits)"),
}


# Networks whose outputs are classification logits (attribute tasks), not an embedding.
ATTRIBUTE_MODELS = frozenset({"facialnet"})


def is_attribute_model(name):
    """True when `name` returns attribute logits (e.g. gender, age) instead of an embedding."""
    _entry(name)
    return name in ATTRIBUTE_MODELS


def get_model_list():
    """Names accepted by `get_model`, sorted."""
    return sorted(MODELS)


def _entry(name):
    if name not in MODELS:
        raise ConfigError(f"unknown backbone {name!r}; valid: {', '.join(get_model_list())}")
    return MODELS[name]


def get_model(name, **kwargs):
    """Build backbone `name` (uninitialised); `kwargs` go to its constructor."""
    return _entry(name).factory(**kwargs)


def default_input_size(name):
    """The square input side the backbone is meant for (112, or the size its paper uses)."""
    return _entry(name).input_size


def describe(name):
    """One line saying what `name` is."""
    return _entry(name).description


__all__ = ["get_model", "get_model_list", "default_input_size", "describe", "MODELS",
           "is_attribute_model"]
