"""Classification heads: margin softmax, center loss, attribute heads, the sharded FC.

``get_head(name, **kw)`` builds a single-device head by name; ``list_heads()`` lists the names.
The multi-worker classifier is :class:`ParallelFC` (``margin=`` takes the same margin names).
"""
from recognition.heads.attribute import AttributeHead, AttributeLoss
from recognition.heads.center_loss import CenterLoss
from recognition.heads.comm import HorovodComm, LocalComm, default_comm
from recognition.heads.margin import PRESETS, MarginHead, MarginSpec, margin_spec
from recognition.heads.parallel_fc import ParallelFC


def _margin_factory(name):
    def build(num_classes, embedding_size, **kw):
        return MarginHead(num_classes, embedding_size, margin=name, **kw)

    build.__doc__ = f"MarginHead with the {name!r} margin preset."
    return build


HEADS = {name: _margin_factory(name) for name in PRESETS}
HEADS["center"] = CenterLoss
HEADS["attribute"] = AttributeHead


def list_heads():
    """Names accepted by :func:`get_head`."""
    return sorted(HEADS)


def get_head(name, **kw):
    """Build a head by name, e.g. ``get_head('arcface', num_classes=10, embedding_size=128)``."""
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r}; valid: {', '.join(list_heads())}")
    return HEADS[name](**kw)


__all__ = ["AttributeHead", "AttributeLoss", "CenterLoss", "HorovodComm", "LocalComm",
           "MarginHead", "MarginSpec", "ParallelFC", "default_comm", "get_head", "list_heads",
           "margin_spec"]
