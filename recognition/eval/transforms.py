"""Test-time image transforms by name, to measure robustness (`--transform NAME[:VALUE]`).

Each takes and returns uint8 RGB NCHW images. `low_light` is Ponce's brightness change on
0..255 pixels, `x = uint8(clip(sqrt(x) * 2))`: 255 becomes 31, a very dark image. Random ones
use a fixed seed so that two runs (or two models) see the same corrupted images.
"""
import numpy as np

__all__ = ["TRANSFORMS", "get_transform", "apply_transform"]


def identity(images, _value=None):
    """No change."""
    return images


def low_light(images, _value=None):
    """Ponce's low light: sqrt(x) * 2, clipped to 0..255 and cast (truncated) to uint8."""
    return np.clip(np.sqrt(images.astype(np.float32)) * 2.0, 0, 255).astype(np.uint8)


def _per_image(images, fn):
    import cv2  # noqa: F401  (fn uses it; imported here so a missing cv2 fails clearly)

    out = np.empty_like(images)
    for i, img in enumerate(images):
        out[i] = fn(np.ascontiguousarray(img.transpose(1, 2, 0))).reshape(
            img.shape[1], img.shape[2], -1).transpose(2, 0, 1)
    return out


def blur(images, sigma=1.5):
    """Gaussian blur with standard deviation `sigma` pixels (kernel size from sigma)."""
    import cv2

    return _per_image(images, lambda im: cv2.GaussianBlur(im, (0, 0), float(sigma)))


def noise(images, sigma=10.0):
    """Additive Gaussian noise of `sigma` grey levels (seed 0), clipped to 0..255."""
    rng = np.random.default_rng(0)
    noisy = images.astype(np.float32) + rng.normal(0.0, float(sigma), images.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def grayscale(images, _value=None):
    """ITU-R BT.601 luma copied to the three channels."""
    luma = images.astype(np.float32).transpose(0, 2, 3, 1) @ np.array([0.299, 0.587, 0.114])
    return np.repeat(np.rint(luma)[:, None].astype(np.uint8), 3, axis=1)


def downscale(images, factor=4.0):
    """Shrink by `factor` (area) and scale back up (bilinear): a low-resolution face."""
    import cv2

    h, w = images.shape[2:]
    small = (max(1, int(round(w / float(factor)))), max(1, int(round(h / float(factor)))))
    return _per_image(images, lambda im: cv2.resize(
        cv2.resize(im, small, interpolation=cv2.INTER_AREA), (w, h),
        interpolation=cv2.INTER_LINEAR))


TRANSFORMS = {"none": identity, "low_light": low_light, "blur": blur, "noise": noise,
              "grayscale": grayscale, "downscale": downscale}


def get_transform(spec):
    """`NAME` or `NAME:VALUE` -> a function of uint8 NCHW images; unknown names list the valid."""
    name, _, value = (spec or "none").partition(":")
    if name not in TRANSFORMS:
        raise ValueError(f"unknown transform {name!r}; valid: {', '.join(sorted(TRANSFORMS))}")
    fn = TRANSFORMS[name]
    if not value:
        return fn
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"transform {spec!r}: the value after ':' must be a number") from None
    return lambda images: fn(images, number)


def apply_transform(spec, images):
    """Apply the named transform to uint8 RGB NCHW images."""
    return get_transform(spec)(images)
