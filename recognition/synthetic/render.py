"""Drawing of synthetic faces: one identity (`identity`) under one image's nuisance
(`nuisance`) becomes an RGB image.

Every shape is a polygon in *face coordinates* (pixels of a frontal face, origin at the face
centre, y down) with a depth, so one pseudo-3D transform gives yaw (features shift, the outline
narrows, the far ear hides behind the head), roll, scale and translation. Scene clutter,
occluders and capture damage draw from the image's own rng, so any image can be regenerated on
its own and results do not depend on the number of workers.
"""
import cv2
import numpy as np

from .identity import AGE_GROUPS, identity_params, random_rgb as _rgb
from .nuisance import PRESETS, image_nuisance

SIZE = 112
CENTER = (56.0, 58.0)
SHIFT = 4                      # cv2 sub-pixel bits: coordinates are drawn in 1/16 pixel
AA = cv2.LINE_AA

__all__ = ["render", "render_image", "SIZE", "AGE_GROUPS"]


def _pose(p, n):
    c, s = np.cos(n["roll"]), np.sin(n["roll"])
    return dict(cy=np.cos(n["yaw"]), sy=np.sin(n["yaw"]), rot=np.array([[c, -s], [s, c]]),
                scale=n["scale"], off=np.array([CENTER[0] + n["tx"], CENTER[1] + n["ty"]]))


def _surface(p, pts):
    """Depth of the head surface under face points (a flattened ellipsoid)."""
    q = 1 - (pts[:, 0] / p["ax"]) ** 2 - (pts[:, 1] / (1.2 * p["ay"])) ** 2
    return p["depth"] * np.sqrt(np.clip(q, 0, 1))


def _project(pose, pts, z):
    x = pts[:, 0] * pose["cy"] + z * pose["sy"]
    xy = np.stack([x, pts[:, 1]], 1) @ pose["rot"].T * pose["scale"] + pose["off"]
    return np.round(xy * (1 << SHIFT)).astype(np.int32)


def _arc(cx, cy, rx, ry, t0=0.0, t1=2 * np.pi, n=28):
    t = np.linspace(t0, t1, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


class _Canvas:
    """Draws face-coordinate polygons through one pose onto an RGB float image."""

    def __init__(self, img, p, pose):
        self.img, self.p, self.pose = img, p, pose

    def pts(self, pts, z=None):
        z = _surface(self.p, pts) if z is None else np.broadcast_to(z, (len(pts),))
        return _project(self.pose, pts, z)

    def fill(self, pts, rgb, z=None):
        cv2.fillPoly(self.img, [self.pts(pts, z)], rgb, AA, SHIFT)

    def line(self, pts, rgb, width, z=None):
        w = max(1, int(round(width * self.pose["scale"])))
        cv2.polylines(self.img, [self.pts(pts, z)], False, rgb, w, AA, SHIFT)

    def dot(self, x, y, r, rgb, z=None):
        self.fill(_arc(x, y, r, r, n=12), rgb, z)

_GY, _GX = np.mgrid[-1:1:SIZE * 1j, -1:1:SIZE * 1j].astype(np.float32)


def _shade(rgb, k, add=0.0):
    return tuple(float(min(255.0, c * k + add)) for c in rgb)


def _rot(pts, cx, cy, ang):
    c, s = np.cos(ang), np.sin(ang)
    d = pts - (cx, cy)
    return np.stack([cx + c * d[:, 0] - s * d[:, 1], cy + s * d[:, 0] + c * d[:, 1]], 1)


def _background(rng):
    """A colour gradient with random clutter (boxes, discs, lines), different in every image."""
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    a = rng.uniform(0, 2 * np.pi)
    t = (np.cos(a) * _GX + np.sin(a) * _GY + 1) * 0.5
    img = np.ascontiguousarray((c0 + (c1 - c0) * t[..., None]).astype(np.uint8))
    for _ in range(int(rng.integers(2, 9))):
        kind, col = rng.integers(3), _rgb(rng, 0, 255)
        x0, y0, x1, y1 = (int(v) for v in rng.uniform(-10, SIZE + 10, 4))
        if kind == 0:
            cv2.rectangle(img, (x0, y0), (x1, y1), col, -1)
        elif kind == 1:
            cv2.circle(img, (x0, y0), int(rng.integers(4, 30)), col, -1, AA)
        else:
            cv2.line(img, (x0, y0), (x1, y1), col, int(rng.integers(1, 7)), AA)
    return img


def _head_back(cv, rng):
    """Shoulders (clothes change per image), neck, hair behind the head, ears."""
    p = cv.p
    ax, ay, v, hair, skin = p["ax"], p["ay"], p["volume"], p["hair"], p["skin"]
    cv.fill(_arc(0, ay + 46, ax * 2.2, 32), _rgb(rng, 0, 255), 0)
    neck = np.array([[-0.5 * ax, 0.3 * ay], [0.5 * ax, 0.3 * ay], [0.55 * ax, ay + 20],
                     [0, ay + 26], [-0.55 * ax, ay + 20]])
    cv.fill(neck, _shade(skin, 0.8), 0)
    back = -0.4 * p["depth"]
    if p["style"] == 2:
        cv.fill(np.vstack([_arc(0, 0, ax + v, ay + v, np.pi, 2 * np.pi),
                           [[ax + v, 1.1 * ay], [-ax - v, 1.1 * ay]]]), hair, back)
    elif p["style"] == 5:
        for q in _arc(0, -2, ax + v * 0.5, ay + v * 0.5, 0.85 * np.pi, 2.15 * np.pi, 9):
            cv.dot(q[0], q[1], v + 4, hair, back)
    elif p["style"]:
        cv.fill(_arc(0, 0, ax + 0.6 * v, ay + v, np.pi, 2 * np.pi), hair, back)
    for s in (-1, 1):
        cv.fill(_arc(s * (ax + 0.5), p["ear_y"], 0.45 * p["ear"], p["ear"], n=16),
                _shade(skin, 0.93), -0.3 * p["depth"])


def _face(cv):
    """Face outline (jaw and chin), marks, wrinkles and beard."""
    p = cv.p
    ax, ay, skin = p["ax"], p["ay"], p["skin"]
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    s = np.sin(t)
    low = s > 0
    w = np.where(low, 1 - (1 - p["jaw"]) * s ** 2, 1.0)
    y = ay * s * np.where(low, 1 + 0.1 * p["chin"] * s ** 6, 1.0)
    cv.fill(np.stack([ax * np.cos(t) * w, y], 1), skin, 0)
    for x, yy, r in p["moles"]:
        cv.dot(x, yy, r, _shade(skin, 0.45))
    if p["scar"] is not None:
        cv.line(p["scar"].reshape(2, 2), _shade(skin, 1.0, 45), 1.5)
    dark = _shade(skin, 0.78)
    for k in range(min(3, p["wrinkles"])):
        cv.line(_arc(0, -0.42 * ay + 3.2 * k + 12, 0.4 * ax, 12, 1.3 * np.pi, 1.7 * np.pi, 8),
                dark, 1)
    tip, my = p["eye_y"] + p["nose_len"], p["eye_y"] + p["nose_len"] + p["mouth_gap"]
    if p["wrinkles"] >= 2:
        for sd in (-1, 1):
            cv.line(np.array([[sd * p["nose_w"] * 1.3, tip], [sd * (p["mouth_w"] + 2), my + 2]]),
                    dark, 1)
    _beard(cv, my)


def _beard(cv, my):
    p = cv.p
    kind, ax, ay, mw, hair = p["beard"], p["ax"], p["ay"], p["mouth_w"], p["hair"]
    if kind == 1 or kind == 2:
        cv.fill(np.array([[-mw - 1.5, my], [-mw * 0.8, my - 4.5], [mw * 0.8, my - 4.5],
                          [mw + 1.5, my]]), hair)
    if kind == 2:
        t = np.linspace(0.03 * np.pi, 0.97 * np.pi, 20)
        w = 1 - (1 - p["jaw"]) * np.sin(t) ** 2
        jaw = np.stack([ax * np.cos(t) * w, ay * np.sin(t) * (1 + 0.1 * p["chin"])], 1)
        cv.fill(np.vstack([jaw, [[-0.95 * ax, my - 8], [0.95 * ax, my - 8]]]), hair)
    if kind == 3:
        cv.fill(_arc(0, (my + ay) / 2 + 2, 0.6 * mw, (ay - my) / 2 + 1), hair)


def _eyes(cv, n):
    """Almond eyes: white, iris clipped to the lids, pupil, upper lid line; blinks and gaze."""
    p = cv.p
    ew = p["eye_w"]
    eh = p["eye_h"] * (0.12 if n["blink"] else 1.0) * (1 - 0.25 * max(n["smile"], 0))
    u = np.linspace(-1, 1, 13)
    r = np.sqrt(1 - u ** 2)
    for s in (-1, 1):
        cx, cy, ang = s * p["eye_dx"], p["eye_y"], s * p["eye_tilt"]
        upper = np.stack([cx + ew * u, cy - eh * r], 1)
        shape = np.vstack([upper, np.stack([cx - ew * u, cy + 0.75 * eh * r], 1)])
        if not n["blink"]:
            cv.fill(_rot(shape, cx, cy, ang), (236, 232, 226))
            for rad, col in ((min(1.05 * eh, 0.55 * ew), p["iris"]), (0.45 * eh, (15, 12, 12))):
                c = _arc(cx + n["gaze"][0], cy + 0.3 * n["gaze"][1], rad, rad, n=14)
                ux = np.clip((c[:, 0] - cx) / ew, -1, 1)
                lid = np.sqrt(1 - ux ** 2)
                c[:, 1] = np.clip(c[:, 1], cy - eh * lid, cy + 0.75 * eh * lid)
                cv.fill(_rot(c, cx, cy, ang), col)
        cv.line(_rot(upper, cx, cy, ang), (45, 32, 30), 1.2)


def _brows(cv, n):
    p = cv.p
    u = np.linspace(0, 1, 10)
    th = p["brow_thick"] * (1 - 0.45 * u) / 2
    col = _shade(p["hair"], 0.6, 10)
    for s in (-1, 1):
        x = s * (p["eye_dx"] - 0.35 * p["brow_len"] + u * p["brow_len"])
        y = (p["eye_y"] - p["eye_h"] - p["brow_gap"] - p["brow_arch"] * np.sin(np.pi * u)
             + p["brow_tilt"] * (u - 0.5) - n["brow_raise"])
        cv.fill(np.vstack([np.stack([x, y - th], 1), np.stack([x, y + th], 1)[::-1]]), col)


def _nose(cv):
    p = cv.p
    y0, tip, nw, skin = p["eye_y"], p["eye_y"] + p["nose_len"], p["nose_w"], p["skin"]
    bump = lambda pts, k: _surface(p, pts) + k * p["depth"]  # noqa: E731  nose stands out
    if p["nose_style"]:
        side = np.array([[0, y0 + 3], [-0.9 * nw, tip - 1], [0, tip]])
        cv.fill(side, _shade(skin, 0.9), bump(side, 0.25))
    bridge = np.array([[0.5, y0 + 2], [0.8, tip - 2]])
    cv.line(bridge, _shade(skin, 0.85), 1, bump(bridge, 0.3))
    wing = np.array([[-nw, tip - 2], [-0.6 * nw, tip + 1.5], [0, tip + 2.3],
                     [0.6 * nw, tip + 1.5], [nw, tip - 2]])
    cv.line(wing, _shade(skin, 0.72), 1, bump(wing, 0.3))
    for s in (-1, 1):
        nos = _arc(s * 0.45 * nw, tip + 0.8, 1.1, 0.8, n=10)
        cv.fill(nos, _shade(skin, 0.45), bump(nos, 0.3))


def _mouth(cv, n):
    """Lips with smile (corners up) and opening (dark interior, teeth)."""
    p = cv.p
    my, mw, lip = p["eye_y"] + p["nose_len"] + p["mouth_gap"], p["mouth_w"], p["lip"]
    u = np.linspace(-1, 1, 15)
    r = np.sqrt(1 - u ** 2)
    x, mid = mw * u, my - n["smile"] * 3 * u ** 2
    o = n["mouth_open"] * r

    def band(top, bottom, col):
        cv.fill(np.vstack([np.stack([x, top], 1), np.stack([x, bottom], 1)[::-1]]), col)

    band(mid - 0.8 * lip * r - 0.3, mid, p["lip_rgb"])
    if n["mouth_open"] > 0.5:
        band(mid, mid + o, (70, 20, 25))
        if n["mouth_open"] > 1.5:
            band(mid, mid + 0.35 * o, (235, 230, 220))
    band(mid + o, mid + o + 1.1 * lip * r + 0.3, _shade(p["lip_rgb"], 1.05))
    cv.line(np.stack([x, mid + 0.5 * o], 1), _shade(p["lip_rgb"], 0.5), 1)


def _hair_front(cv):
    """The hair cap with its hairline (style: short, long with side locks, fringe, part, curls)."""
    p = cv.p
    style, ax, ay, v, hair = p["style"], p["ax"], p["ay"], p["volume"], p["hair"]
    if style == 0:
        return
    hl = -0.25 * ay if style == 3 else p["hairline"]
    temple = -0.15 * ay
    x = np.linspace(ax, -ax, 17)
    y = hl + (temple - hl) * (x / ax) ** 2 + (1.2 * p["part"] * ay * x / ax if style == 4 else 0)
    if style == 3:
        y = y + 1.5 * (np.arange(17) % 2)
    cap = np.vstack([_arc(0, 0, ax + 0.5 * v, ay + v, np.pi, 2 * np.pi),
                     [[ax, 0]], np.stack([x, np.minimum(y, 0)], 1), [[-ax, 0]]])
    cv.fill(cap, hair)
    if style == 2:
        for s in (-1, 1):
            cv.fill(np.array([[s * ax, temple], [s * 0.88 * ax, 0.5 * ay],
                              [s * (ax + v), 0.95 * ay], [s * (ax + v), temple]]), hair, 0)
    if style == 5:
        for q in _arc(0, -2, ax + 0.3 * v, ay + 0.3 * v, 1.05 * np.pi, 1.95 * np.pi, 7):
            cv.dot(q[0], q[1], 0.5 * v + 3, _shade(hair, 1.1), 0)


def _glasses(cv):
    g = cv.p["glasses"]
    if g is None:
        return
    p = cv.p
    rx, ry, y = p["eye_w"] + 2.5, p["eye_h"] + 3.5, p["eye_y"]
    for s in (-1, 1):
        cx = s * p["eye_dx"]
        if g["round"]:
            rim = _arc(cx, y, rx, max(rx * 0.85, ry), n=20)
        else:
            rim = np.array([[-rx, -ry], [rx, -ry], [rx, ry], [-rx, ry], [-rx, -ry]]) + (cx, y)
        if g["dark"]:
            cv.fill(rim, (28, 28, 34))
        cv.line(rim, g["rgb"], g["thick"])
        cv.line(np.array([[cx + s * rx, y - 1], [s * p["ax"], y - 2]]), g["rgb"], g["thick"])
    cv.line(np.array([[-p["eye_dx"] + rx, y - 1], [0, y - 2.5], [p["eye_dx"] - rx, y - 1]]),
            g["rgb"], g["thick"])


def _occlude(img, rng, s):
    """Sometimes hide part of the face: a block, a bar across the face or a disc (a hand)."""
    if rng.uniform() >= s.occlusion_p:
        return
    kind, col = rng.integers(3), _rgb(rng, 0, 255)
    cx, cy = rng.uniform(30, 82, 2).astype(int).tolist()
    if kind == 0:
        w, h = (int(v) for v in rng.uniform(12, 34, 2))
        cv2.rectangle(img, (cx - w // 2, cy - h // 2), (cx + w // 2, cy + h // 2), col, -1)
    elif kind == 1:
        h = int(rng.integers(5, 14))
        cv2.rectangle(img, (0, cy - h // 2), (SIZE, cy + h // 2), col, -1)
    else:
        cv2.circle(img, (cx, cy), int(rng.integers(8, 18)), col, -1, AA)


def _degrade(img, rng, s):
    """Lighting (direction, brightness, contrast, colour cast, gamma), blur, noise, JPEG."""
    a = rng.uniform(0, 2 * np.pi)
    light = 1 + rng.uniform(0, s.light_gradient) * (np.cos(a) * _GX + np.sin(a) * _GY)
    gain = rng.uniform(*s.gain) * (1 + rng.normal(0, s.colour_cast, 3))
    x = img.astype(np.float32) * light[..., None] * gain.astype(np.float32)
    m = x.mean()
    x = np.clip((x - m) * rng.uniform(*s.contrast) + m, 0, 255)
    x = 255 * (x / 255) ** rng.uniform(*s.gamma)
    if rng.uniform() < 0.5:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(*s.blur_sigma))
    elif rng.uniform() < 0.2:
        k = np.zeros((7, 7), np.float32)
        cv2.line(k, (0, int(rng.integers(7))), (6, int(rng.integers(7))), 1.0, 1)
        x = cv2.filter2D(x, -1, k / k.sum())
    x = x + rng.normal(0, rng.uniform(0, s.noise_std), x.shape).astype(np.float32)
    out = np.clip(x, 0, 255).astype(np.uint8)
    q = int(rng.integers(*s.jpeg_quality))
    ok, buf = cv2.imencode(".jpg", out[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])


def render(p, n):
    """Draw one image (RGB uint8, SIZE x SIZE) of identity `p` under nuisance `n`."""
    rng = n["rng"]
    img = _background(rng)
    cv = _Canvas(img, p, _pose(p, n))
    _head_back(cv, rng)
    _face(cv)
    _eyes(cv, n)
    _brows(cv, n)
    _nose(cv)
    _mouth(cv, n)
    _hair_front(cv)
    _glasses(cv)
    _occlude(img, rng, n["settings"])
    return _degrade(img, rng, n["settings"])


def render_image(seed, index, image, settings=PRESETS["aligned"]):
    """Regenerate image `image` of identity `index` alone (RGB uint8 HWC) under `settings`."""
    return render(identity_params(seed, index), image_nuisance(seed, index, image, settings))
