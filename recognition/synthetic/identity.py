"""Who a synthetic face is: the parameters that stay the same across one identity's images.

Identity `index` under `seed` comes from `default_rng([seed, index])` alone, so any identity can
be rebuilt on its own. Geometry is in *face coordinates* (pixels of a frontal 112x112 face, origin
at the face centre, y down); `render` draws it, `nuisance` varies each image.
"""
import numpy as np

AGE_GROUPS = 8                 # Adience-like: 0-2, 4-6, 8-13, 15-20, 25-32, 38-43, 48-53, 60+
HAIR_STYLES = 6                # bald, short, long, fringe, side part, curly
# Identity spread: how far apart two people's colours are (std of the noise around the base
# skin line and the hair palette); the geometry ranges are in `identity_params`.
SKIN_SPREAD = 14.0
HAIR_SPREAD = 22.0

__all__ = ["identity_params", "random_rgb", "AGE_GROUPS", "HAIR_STYLES"]


def random_rgb(rng, lo, hi):
    """An RGB colour with each channel uniform in [lo, hi) (cv2 takes float tuples)."""
    return tuple(float(v) for v in rng.uniform(lo, hi, 3))


def _skin(rng):
    """A tone along the light-to-dark skin line, with a little hue jitter."""
    t = rng.uniform(0.0, 1.0)
    base = np.array([238, 200, 172]) * (1 - t) + np.array([92, 58, 38]) * t
    return tuple(float(v) for v in np.clip(base + rng.normal(0, SKIN_SPREAD, 3), 0, 255))


def _hair(rng, age):
    palette = np.array([[22, 18, 16], [60, 38, 24], [105, 70, 40], [196, 160, 96],
                        [150, 62, 30], [40, 30, 28]])
    if rng.uniform() < max(0.0, (age - 4) * 0.18):
        grey = rng.uniform(110, 225) + rng.normal(0, HAIR_SPREAD / 2, 3)  # ash, silver, yellowed
        return tuple(float(v) for v in np.clip(grey, 0, 255))
    c = palette[rng.integers(len(palette))] + rng.normal(0, HAIR_SPREAD, 3)
    return tuple(float(v) for v in np.clip(c, 0, 255))


def identity_params(seed, index):
    """Everything that stays the same across the images of one identity (a dict)."""
    rng = np.random.default_rng([seed, index])
    g, age = int(rng.integers(2)), int(rng.integers(AGE_GROUPS))
    child = age <= 2
    ax = rng.uniform(25, 35) + 1.5 * g - (1.5 if child else 0)
    ay = rng.uniform(34, 43) - (3 if child else 0)
    p = dict(gender=g, age=age, ax=ax, ay=ay, depth=0.8 * ax,
             jaw=rng.uniform(0.68, 0.92) + 0.1 * g, chin=rng.uniform(0, 1),
             skin=_skin(rng), hair=_hair(rng, age),
             style=int(rng.choice(HAIR_STYLES, p=[.1, .35, .05, .15, .2, .15] if g else
                                  [.02, .08, .45, .2, .1, .15])),
             hairline=-ay * rng.uniform(0.42, 0.62), volume=rng.uniform(2, 9),
             part=rng.uniform(-0.25, 0.25),
             eye_y=-ay * rng.uniform(0.05, 0.2) + (4 if child else 0),
             eye_dx=rng.uniform(9.5, 15), eye_w=rng.uniform(4.5, 7.5) + (0.8 if child else 0),
             eye_h=rng.uniform(1.8, 3.8), eye_tilt=rng.uniform(-0.2, 0.2),
             iris=random_rgb(rng, 20, 150), brow_gap=rng.uniform(4, 8),
             brow_len=rng.uniform(9, 15), brow_thick=rng.uniform(1.2, 2.4) + 0.8 * g,
             brow_arch=rng.uniform(-1, 3.5), brow_tilt=rng.uniform(-3, 3),
             nose_len=rng.uniform(10, 19), nose_w=rng.uniform(3.5, 7.5),
             nose_style=int(rng.integers(2)), mouth_gap=rng.uniform(6, 12),
             mouth_w=rng.uniform(7.5, 15), lip=rng.uniform(1.5, 3.5) + (1 - g),
             ear=rng.uniform(6, 10), ear_y=rng.uniform(-6, 2))
    p["lip_rgb"] = tuple(np.clip(np.array(p["skin"]) * [0.85, 0.55, 0.55] +
                                 [40 * (1 - g), 0, 5], 0, 255))
    p["moles"] = [(rng.uniform(-0.7, 0.7) * ax, rng.uniform(-0.5, 0.7) * ay, rng.uniform(0.8, 2))
                  for _ in range(int(rng.integers(0, 4)))]
    p["scar"] = rng.uniform(-0.6, 0.6, 4) * [ax, ay, ax, ay] if rng.uniform() < 0.15 else None
    p["beard"] = int(rng.choice(4, p=[.45, .2, .2, .15])) if g and age >= 3 else 0
    p["wrinkles"] = max(0, age - 4)
    p["glasses"] = (dict(round=bool(rng.integers(2)), rgb=random_rgb(rng, 0, 200),
                         thick=int(rng.integers(1, 3)), dark=rng.uniform() < 0.15)
                    if rng.uniform() < 0.3 else None)
    return p
