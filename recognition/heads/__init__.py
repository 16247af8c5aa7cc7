"""What training puts on top of the backbone: the sharded margin-softmax FC and the extra losses.

:class:`ParallelFC` is the margin-softmax classifier, on one process or many workers (``margin=``
takes a name of :data:`recognition.heads.margin.PRESETS` or a :class:`MarginSpec`);
:class:`CenterLoss` is the optional centre term beside it and :class:`AttributeLoss` the loss of
attribute networks such as FacialNet. The collectives the FC uses live in
:mod:`recognition.parallel.comm`.
"""
from recognition.heads.attribute import AttributeLoss
from recognition.heads.center_loss import CenterLoss
from recognition.heads.margin import MarginSpec, margin_spec
from recognition.heads.parallel_fc import ParallelFC

__all__ = ["AttributeLoss", "CenterLoss", "MarginSpec", "ParallelFC", "margin_spec"]
