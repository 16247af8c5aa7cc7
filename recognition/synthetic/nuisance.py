"""How one synthetic image varies: pose, expression, occlusion and capture, under named settings.

The settings are data (`Nuisance`), so a second dataset with other conditions is one preset, not
a code change: `aligned` is the demo's (InsightFace-style 5-point aligned crops, so only the
alignment's residual error is left); `wild` is a harder capture (more yaw and roll, looser
crops, more occluders, stronger light, blur, noise and JPEG) for measuring a recipe on data it
was not tuned on. Image `image` of identity `index` draws from `default_rng([seed, index,
image])`, in the same order whatever the settings, so the images depend only on those four.
"""
from typing import NamedTuple, Tuple

import numpy as np

from ..errors import ConfigError

__all__ = ["Nuisance", "PRESETS", "nuisance_settings", "image_nuisance"]


class Nuisance(NamedTuple):
    """Ranges of the per-image variation (defaults: the `aligned` preset)."""
    max_yaw: float = 0.45                 # out-of-plane rotation, radians (about +-26 degrees)
    roll_deg: float = 3.0                 # residual in-plane rotation, std in degrees
    roll_clip_deg: float = 8.0            # ... clipped at this
    scale_jitter: float = 0.06            # residual scale error, +-
    shift_px: float = 2.5                 # residual translation in pixels, +-
    occlusion_p: float = 0.06             # chance of an occluder (block, bar, disc)
    light_gradient: float = 0.4           # brightness varies by up to +- this across the face
    gain: Tuple[float, float] = (0.75, 1.2)       # exposure
    colour_cast: float = 0.06             # per-channel white-balance error, std
    contrast: Tuple[float, float] = (0.7, 1.3)    # contrast stretch around the mean
    gamma: Tuple[float, float] = (0.85, 1.2)      # tone curve exponent
    blur_sigma: Tuple[float, float] = (0.4, 1.4)  # Gaussian blur (half the images), pixels
    noise_std: float = 8.0                # sensor noise std is uniform in [0, this)
    jpeg_quality: Tuple[int, int] = (25, 96)      # JPEG damage, quality in [lo, hi)


PRESETS = {
    "aligned": Nuisance(),
    "wild": Nuisance(max_yaw=0.65, roll_deg=6.0, roll_clip_deg=15.0, scale_jitter=0.1,
                     shift_px=5.0, occlusion_p=0.15, light_gradient=0.6, gain=(0.6, 1.35),
                     colour_cast=0.1, contrast=(0.6, 1.4), gamma=(0.75, 1.35),
                     blur_sigma=(0.4, 1.8), noise_std=12.0, jpeg_quality=(18, 90)),
}


def nuisance_settings(name):
    """The `Nuisance` preset called `name`."""
    if name not in PRESETS:
        raise ConfigError(f"unknown nuisance preset {name!r}; valid: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


def image_nuisance(seed, index, image, settings=PRESETS["aligned"]):
    """The variation of one image: pose, expression, and the rng that draws scene and capture."""
    s = settings
    rng = np.random.default_rng([seed, index, image])
    return dict(
        yaw=rng.uniform(-s.max_yaw, s.max_yaw),
        roll=np.deg2rad(np.clip(rng.normal(0, s.roll_deg), -s.roll_clip_deg, s.roll_clip_deg)),
        scale=rng.uniform(1 - s.scale_jitter, 1 + s.scale_jitter),
        tx=rng.uniform(-s.shift_px, s.shift_px), ty=rng.uniform(-s.shift_px, s.shift_px),
        mouth_open=rng.uniform(0, 1) ** 2 * 5, smile=rng.uniform(-0.6, 1.0),
        blink=rng.uniform() < 0.1, brow_raise=rng.uniform(-1, 2.5),
        gaze=rng.uniform(-1.5, 1.5, 2), rng=rng, settings=s)
