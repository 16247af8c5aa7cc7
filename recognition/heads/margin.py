"""Combined margin softmax: target logit ``s * (cos(m1*theta + m2) - m3)``.

One formula covers normalised softmax (1, 0, 0), SphereFace (m1), ArcFace (m2), CosFace (m3)
and their combinations. The forward value and its derivative w.r.t. cos(theta) are written
once here, for the sharded :class:`~recognition.heads.parallel_fc.ParallelFC` (hand-written
backward), the only margin-softmax classifier.

All margin arithmetic runs in float32 with cos clipped to [-1, 1], so float16 inputs are safe.
"""
import math
from dataclasses import dataclass

from mxnet import nd

# Below this sin(theta) the derivative of cos(m1*theta + m2) w.r.t. cos(theta) is capped.
_SIN_EPS = 1e-6

PRESETS = {
    "softmax": dict(s=64.0, m1=1.0, m2=0.0, m3=0.0),
    "sphereface": dict(s=64.0, m1=1.35, m2=0.0, m3=0.0),
    "arcface": dict(s=64.0, m1=1.0, m2=0.5, m3=0.0),
    "cosface": dict(s=64.0, m1=1.0, m2=0.0, m3=0.35),
    "combined": dict(s=64.0, m1=1.0, m2=0.3, m3=0.2),
}


@dataclass(frozen=True)
class MarginSpec:
    """Parameters of the combined margin; ``margin_spec(name)`` builds the presets.

    Past ``theta_limit`` (where ``m1*theta + m2`` reaches pi) the target logit would rise
    again; there it becomes ``cos(theta) - m3 - fallback_shift`` so it keeps decreasing.
    For ArcFace-like margins (m1 == 1) the shift is InsightFace's ``m2*sin(m2)``; otherwise it
    makes the curve continuous at the limit. ``easy_margin`` (InsightFace's option) applies the
    margin only where cos(theta) > 0 and uses ``cos(theta) - m3`` elsewhere.
    """

    s: float = 64.0
    m1: float = 1.0
    m2: float = 0.0
    m3: float = 0.0
    easy_margin: bool = False

    def __post_init__(self):
        if not self.s > 0:
            raise ValueError(f"margin scale s must be > 0, got {self.s}")
        if not self.m1 >= 1.0:
            raise ValueError(f"margin m1 must be >= 1, got {self.m1}")
        if not 0.0 <= self.m2 < math.pi:
            raise ValueError(f"margin m2 must be in [0, pi), got {self.m2}")
        if not self.m3 >= 0.0:
            raise ValueError(f"margin m3 must be >= 0, got {self.m3}")

    @property
    def is_plain(self):
        """True when the target logit is just s*cos(theta) (normalised softmax)."""
        return self.m1 == 1.0 and self.m2 == 0.0 and self.m3 == 0.0

    @property
    def theta_limit(self):
        """Angle beyond which the angular margin would make the logit non-monotonic."""
        return min(math.pi, (math.pi - self.m2) / self.m1)

    @property
    def fallback_shift(self):
        """Shift of the ``cos(theta) - m3 - shift`` branch used past ``theta_limit``."""
        if self.m1 == 1.0:
            return self.m2 * math.sin(self.m2)
        return 1.0 + math.cos(self.theta_limit)


def margin_spec(name="arcface", **overrides):
    """A :class:`MarginSpec` from a preset name, with keyword overrides (s, m1, m2, m3, ...)."""
    if isinstance(name, MarginSpec):
        return MarginSpec(**{**name.__dict__, **overrides})
    if name not in PRESETS:
        raise ValueError(f"unknown margin {name!r}; valid: {', '.join(sorted(PRESETS))}")
    return MarginSpec(**{**PRESETS[name], **overrides})


def _angular_branch(cos, spec):
    """Masks of the rows on the margin branch (else the monotonic/easy fallback)."""
    if spec.easy_margin:
        return cos > 0
    return cos > math.cos(spec.theta_limit)


def target_logit(cos, spec):
    """Target logit divided by s: ``cos(m1*theta + m2) - m3`` with the fallbacks (float32)."""
    cos = nd.clip(cos.astype("float32"), -1.0, 1.0)
    if spec.m1 == 1.0 and spec.m2 == 0.0:
        return cos - spec.m3
    theta = nd.arccos(cos)
    margin = nd.cos(theta * spec.m1 + spec.m2) - spec.m3
    shift = 0.0 if spec.easy_margin else spec.fallback_shift
    fallback = cos - spec.m3 - shift
    return nd.where(_angular_branch(cos, spec), margin, fallback)


def target_logit_grad(cos, spec):
    """d target_logit / d cos (float32); capped where sin(theta) ~ 0 and m2 > 0."""
    cos = nd.clip(cos.astype("float32"), -1.0, 1.0)
    if spec.m1 == 1.0 and spec.m2 == 0.0:
        return nd.ones_like(cos)
    theta = nd.arccos(cos)
    sin_theta = nd.sin(theta)
    safe_sin = nd.maximum(sin_theta, _SIN_EPS)
    ratio = nd.sin(theta * spec.m1 + spec.m2) / safe_sin
    if spec.m2 == 0.0:
        # sin(m1*theta)/sin(theta) -> m1 as theta -> 0.
        ratio = nd.where(sin_theta > _SIN_EPS, ratio, nd.ones_like(cos) * spec.m1)
    margin_grad = ratio * spec.m1
    return nd.where(_angular_branch(cos, spec), margin_grad, nd.ones_like(cos))
