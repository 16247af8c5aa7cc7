"""Face alignment: 5 landmarks onto the ArcFace template by a least-squares similarity.

`similarity_transform` is the one estimate used everywhere (IJB evaluation and `face-align`).
It follows InsightFace bit for bit: float32 landmarks and a float32 template (built, as
InsightFace builds it, from the 96x112 points shifted by 8 in x) go into Umeyama's
least-squares similarity with skimage's `SimilarityTransform.estimate` order of operations,
and the float64 2x3 matrix warps with `cv2.warpAffine` (black border).

`align_folder` (behind `tools/align.py`, `face-align`: `recognition.commands.align`) aligns a
folder of photos from a landmark file: a TSV `path x1 y1 ... x5 y5`, or InsightFace's face2rec
`.lst` with landmarks.
"""
import os
import sys
import time

import numpy as np

from ...errors import DataError
from ..reading.pool import worker_pool
from .skips import SkipLog, printable_path

__all__ = ["ARCFACE_TEMPLATE", "arcface_template", "similarity_transform", "landmark_problem",
           "align_face", "read_landmark_file", "align_folder", "LANDMARK_NAMES"]

# InsightFace's float32 template: the 96x112 points, then += 8 in x (float32 arithmetic, which
# differs by one ulp from float32(70.7299) in the last x). Order: left eye, right eye, nose,
# left mouth corner, right mouth corner, as (x, y) in the 112x112 output.
ARCFACE_TEMPLATE = np.array([[30.2946, 51.6963], [65.5318, 51.5014], [48.0252, 71.7366],
                             [33.5493, 92.3655], [62.7299, 92.2041]], dtype=np.float32)
ARCFACE_TEMPLATE[:, 0] += 8.0
ARCFACE_TEMPLATE.flags.writeable = False

MISSING, UNREADABLE, BAD_ROW = "missing file", "unreadable image", "bad row"
DEGENERATE, NOT_WRITTEN = "degenerate landmarks", "not written"
LANDMARK_NAMES = "left eye, right eye, nose, left mouth corner, right mouth corner"


def arcface_template(size=112):
    """The template for a size x size output: every coordinate times size / 112 (float32)."""
    if size == 112:
        return ARCFACE_TEMPLATE.copy()
    return ARCFACE_TEMPLATE * np.float32(size / 112.0)


def similarity_transform(src, dst=ARCFACE_TEMPLATE):
    """Float64 2x3 matrix of the least-squares similarity (rotation, scale, shift) src -> dst.

    Both point sets are taken as float32 and the estimate runs in float32 up to the SVD, as
    skimage's `SimilarityTransform.estimate` does on InsightFace's float32 arrays, so the
    matrix is InsightFace's to the last bit. All-equal points give NaN.
    """
    src, dst = np.asarray(src, np.float32), np.asarray(dst, np.float32)
    n, dim = src.shape
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / n
    signs = np.ones(dim, dtype=np.float64)
    if np.linalg.det(cov) < 0:
        signs[-1] = -1
    u, s, vt = np.linalg.svd(cov)
    rank = np.linalg.matrix_rank(cov)
    out = np.eye(dim + 1, dtype=np.float64)
    if rank == 0:
        return (np.nan * out)[:2]
    if rank == dim - 1 and np.linalg.det(u) * np.linalg.det(vt) <= 0:
        flip = signs.copy()
        flip[-1] = -1
        out[:dim, :dim] = u @ np.diag(flip) @ vt
    elif rank == dim - 1:
        out[:dim, :dim] = u @ vt
    else:
        out[:dim, :dim] = u @ np.diag(signs) @ vt
    scale = 1.0 / src_c.var(axis=0).sum() * (s @ signs)
    out[:dim, dim] = dst_mean - scale * (out[:dim, :dim] @ src_mean.T)
    out[:dim, :dim] *= scale
    return out[:2]


def landmark_problem(landmarks, dst=ARCFACE_TEMPLATE):
    """Why these 5 landmarks cannot be aligned (a short text), or None when they can.

    Refused: NaN/inf; all points within a pixel of each other; collinear points (the second
    principal spread under 1% of the first); and a fit whose scale is under half the ratio of the
    template's spread to the landmarks' (left and right swapped, or mirrored: about 0.23 of it;
    any real face, even in full profile, fits with over 0.78 of it).
    """
    pts = np.asarray(landmarks, np.float64)
    if pts.shape != (5, 2):
        return f"expected 5 (x, y) landmarks, got shape {pts.shape}"
    if not np.isfinite(pts).all():
        return "landmarks are not all finite numbers"
    spread = np.linalg.svd(pts - pts.mean(0), compute_uv=False)
    if spread[0] < 1.0:
        return "landmarks all at one point"
    if spread[1] < 0.01 * spread[0]:
        return "landmarks are collinear"
    matrix = similarity_transform(pts, dst)
    scale = np.hypot(matrix[0, 0], matrix[1, 0])
    dst64 = np.asarray(dst, np.float64)
    natural = np.sqrt(((dst64 - dst64.mean(0)) ** 2).sum() / ((pts - pts.mean(0)) ** 2).sum())
    if not np.isfinite(matrix).all() or scale < 0.5 * natural:
        return (f"similarity fit has scale {scale:.3g}, under half the {natural:.3g} their "
                "spread implies (left and right swapped, or points out of order?)")
    return None


def align_face(image, landmarks, size=112):
    """Warp an HWC image so its 5 landmarks land on the size x size ArcFace template (black
    outside the photo), as InsightFace's IJB evaluation and face2rec do."""
    import cv2

    matrix = similarity_transform(landmarks, arcface_template(size))
    return cv2.warpAffine(image, matrix, (size, size), borderValue=0.0)


def _numbers(fields):
    values = [float(v) for v in fields]  # ValueError on a non-number
    return np.array(values, dtype=np.float32)


def _parse_tsv(fields):
    if len(fields) != 11:
        raise ValueError(f"{len(fields)} fields, expected 11 (path and x y of 5 landmarks)")
    return fields[0], _numbers(fields[1:]).reshape(5, 2)


def _parse_lst(fields):
    if len(fields) not in (3, 7, 17):
        raise ValueError(f"{len(fields)} fields, expected 17 (flag path label, bbox x1 y1 x2 "
                         "y2, 5 landmark x then 5 landmark y)")
    if fields[0] != "0":
        raise ValueError(f"aligned flag is {fields[0]!r}: only 0 (not yet aligned) rows are "
                         "aligned here")
    if len(fields) < 17:
        raise ValueError("row has no landmarks")
    int(fields[2])  # the label must be an integer, as face2rec reads it
    _numbers(fields[3:7])
    return fields[1], _numbers(fields[7:17]).reshape(2, 5).T.copy()


def read_landmark_file(path, skips, size=112):
    """`[(relpath, (5, 2) float32 landmarks)]` from a TSV or a face2rec `.lst` (by extension).

    Rows that are malformed, name a path outside the source folder, repeat a path, or hold
    degenerate landmarks go to `skips` (a SkipLog) with the file and line number.
    """
    if not os.path.isfile(path):
        raise DataError(f"{path}: landmark file not found")
    parse = _parse_lst if path.lower().endswith(".lst") else _parse_tsv
    dst = arcface_template(size)
    rows, seen = [], set()
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t") if "\t" in line else line.split()
            where = f"{printable_path(path)} line {number}"
            try:
                rel, landmarks = parse([v.strip() for v in fields])
            except ValueError as exc:
                skips.add(BAD_ROW, f"{where}: {exc}")
                continue
            norm = os.path.normpath(rel)
            if os.path.isabs(rel) or norm == os.curdir or norm.split(os.sep)[0] == os.pardir:
                skips.add(BAD_ROW, f"{where}: {printable_path(rel)} is not a path inside SRC")
                continue
            if norm in seen:
                skips.add(BAD_ROW, f"{where}: {printable_path(rel)} repeats an earlier row")
                continue
            problem = landmark_problem(landmarks, dst)
            if problem:
                skips.add(DEGENERATE, f"{where}: {printable_path(rel)}: {problem}")
                continue
            seen.add(norm)
            rows.append((norm, landmarks))
    return rows


_state = {}


def _init_worker(src, dst, size):
    _state.update(src=src, dst=dst, size=size)


def _align_one(row):
    """(relpath, None) when written, else (relpath, (reason, message)); never raises."""
    import cv2

    rel, landmarks = row
    src = os.path.join(_state["src"], rel)
    shown = printable_path(src)
    try:
        with open(src, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return rel, (MISSING, f"{shown}: no such file")
    except OSError as exc:
        return rel, (UNREADABLE, f"{shown}: {exc.strerror or exc}")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if img is None:
        return rel, (UNREADABLE, f"{shown}: does not decode as an image")
    face = align_face(img, landmarks, _state["size"])
    out = os.path.join(_state["dst"], rel)
    ext = os.path.splitext(rel)[1].lower() or ".png"
    try:
        params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in (".jpg", ".jpeg") else []
        ok, buf = cv2.imencode(ext, face, params)
        if not ok:
            raise cv2.error("imencode returned no data")
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
        tmp = out + ".part"
        with open(tmp, "wb") as f:
            f.write(buf.tobytes())
        os.replace(tmp, out)
    except (cv2.error, OSError) as exc:
        return rel, (NOT_WRITTEN, f"{printable_path(out)}: {type(exc).__name__}: {exc}")
    return rel, None


def _aligned(rows, src, dst, size, workers):
    if workers <= 1:
        _init_worker(src, dst, size)
        yield from map(_align_one, rows)
        return
    with worker_pool(workers, _init_worker, (src, dst, size), preload=[__name__]) as pool:
        yield from pool.imap(_align_one, rows, chunksize=16)


def align_folder(src, dst, landmark_file, size=112, workers=1, progress=True, log=print):
    """Align every face the landmark file names under `src` into `dst` (same relative paths).

    Returns the SkipLog of the rows and images left out; `log` gets one summary line.
    """
    from tqdm import tqdm

    if not os.path.isdir(src):
        raise DataError(f"{src}: source folder not found")
    if os.path.realpath(src) == os.path.realpath(dst):
        raise DataError(f"{dst}: DST is SRC; the photos would be overwritten")
    if size < 16:
        raise DataError(f"--size must be at least 16, got {size}")
    if workers < 1:
        raise DataError(f"--workers must be at least 1, got {workers}")
    start = time.time()
    skips = SkipLog(lambda line: print(line, file=sys.stderr))
    rows = read_landmark_file(landmark_file, skips, size)
    if not rows and not len(skips):
        raise DataError(f"{landmark_file}: no rows")
    os.makedirs(dst, exist_ok=True)
    written = 0
    with tqdm(total=len(rows), unit="img", disable=not progress, desc="align") as bar:
        skips.write = lambda line: bar.write(line, file=sys.stderr)
        for _, problem in _aligned(rows, src, dst, size, workers):
            bar.update()
            if problem:
                skips.add(*problem)
            else:
                written += 1
    if log:
        log(f"aligned {written} faces ({size}x{size}) into {dst}, {skips.summary()}, "
            f"{time.time() - start:.1f} s")
    return skips
