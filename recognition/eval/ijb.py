"""IJB-B / IJB-C 1:1 template verification as in InsightFace's published evaluation.

Reads the official meta files (`<t>_face_tid_mid.txt`: image template media,
`<t>_name_5pts_score.txt`: image 5 landmarks (x y) faceness, `<t>_template_pair_label.txt`:
template template label; every template a pair names must have images) and the `loose_crop`
images; aligns each face to the 112x112 ArcFace 5-point template with InsightFace's float32
similarity estimate (`recognition.data.writing.align`, shared with `face-align`), so aligned
pixels and scores are InsightFace's; sums image and flip embeddings; multiplies by the faceness
score (the norm is kept); averages per media, sums the media of a template, L2 normalises;
scores template pairs by cosine; TAR at FAR 1e-6 .. 1e-1 from sklearn's ROC.
Images stream through a bounded prefetch (decode + align in threads), so 227k images fit.
"""
import collections
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..data.writing.align import ARCFACE_TEMPLATE, align_face, similarity_transform
from ..errors import DataError
from .metrics import tar_at_far

__all__ = ["ARCFACE_TEMPLATE", "IJBMeta", "read_ijb_meta", "similarity_transform", "align_face",
           "iter_aligned", "embed_ijb", "template_features", "pair_scores", "score_ijb",
           "evaluate_ijb"]

class IJBMeta:
    """Per-image names, landmarks (N, 5, 2), faceness, template and media ids; template pairs."""

    def __init__(self, names, landmarks, faceness, templates, medias, pairs, image_dir):
        self.names, self.landmarks, self.faceness = names, landmarks, faceness
        self.templates, self.medias, self.image_dir = templates, medias, image_dir
        self.p1, self.p2, self.labels = pairs[:, 0], pairs[:, 1], pairs[:, 2].astype(bool)


def _find_root(root, target):
    for cand in (root, os.path.join(root, target.upper()), os.path.join(root, target)):
        if os.path.isfile(os.path.join(cand, "meta", f"{target}_face_tid_mid.txt")):
            return cand
    raise DataError(f"{root}: no meta/{target}_face_tid_mid.txt here or in {target.upper()}/")


def _read_rows(path, ncols):
    if not os.path.isfile(path):
        raise DataError(f"{path}: IJB meta file not found")
    with open(path) as f:
        rows = [line.split() for line in f if line.strip()]
    bad = next((i for i, r in enumerate(rows) if len(r) != ncols), None)
    if bad is not None:
        raise DataError(f"{path}: line {bad + 1} has {len(rows[bad])} fields, expected {ncols}")
    return rows


def _read_pairs(path):
    if not os.path.isfile(path):
        raise DataError(f"{path}: IJB meta file not found")
    with open(path) as f:
        values = np.array(f.read().split(), dtype=np.int64)  # millions of lines: no per-line loop
    if values.size % 3 or not values.size:
        raise DataError(f"{path}: expected lines 'template template label'")
    return values.reshape(-1, 3)


def read_ijb_meta(root, target):
    """Read the three meta files of `target` ('ijbb' or 'ijbc') under `root`; check they agree."""
    base = _find_root(root, target)
    meta = os.path.join(base, "meta")
    tid = _read_rows(os.path.join(meta, f"{target}_face_tid_mid.txt"), 3)
    lmk_path = os.path.join(meta, f"{target}_name_5pts_score.txt")
    lmk = _read_rows(lmk_path, 12)
    if len(tid) != len(lmk) or any(a[0] != b[0] for a, b in zip(tid, lmk)):
        raise DataError(f"{lmk_path}: image names do not match {target}_face_tid_mid.txt line "
                        "by line")
    try:
        numbers = np.array([r[1:] for r in lmk], dtype=np.float64)
        ids = np.array([r[1:] for r in tid], dtype=np.int64)
    except ValueError as exc:
        raise DataError(f"{meta}: non-numeric field in the meta files ({exc})") from None
    pairs_path = os.path.join(meta, f"{target}_template_pair_label.txt")
    pairs = _read_pairs(pairs_path)
    _check_pair_templates(pairs, ids[:, 0], pairs_path, f"{target}_face_tid_mid.txt")
    # float32 landmarks, as InsightFace parses them: the similarity estimate runs in float32
    landmarks = numbers[:, :10].astype(np.float32).reshape(-1, 5, 2)
    return IJBMeta([r[0] for r in tid], landmarks, numbers[:, 10], ids[:, 0], ids[:, 1], pairs,
                   os.path.join(base, "loose_crop"))


def _check_pair_templates(pairs, templates, pairs_path, tid_name):
    """Fail before any embedding when a pair names a template that has no images."""
    missing = ~np.isin(pairs[:, :2], np.unique(templates))
    if missing.any():
        row, col = np.argwhere(missing)[0]
        raise DataError(f"{pairs_path}: pair {row + 1} ({pairs[row, 0]} {pairs[row, 1]}) names "
                        f"template {pairs[row, col]}, which has no images in {tid_name} "
                        f"({int(missing.any(axis=1).sum())} pairs name such templates)")


def _load_aligned(meta, index):
    import cv2

    path = os.path.join(meta.image_dir, meta.names[index])
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"{path}: image missing or does not decode")
    return align_face(img, meta.landmarks[index])[:, :, ::-1].transpose(2, 0, 1)


def _load_batch(meta, indices):
    return np.stack([_load_aligned(meta, i) for i in indices])


def iter_aligned(meta, batch_size, workers=4):
    """Yield (indices, uint8 RGB NCHW aligned faces) in order, decoding ahead in threads."""
    chunks = (np.arange(s, min(s + batch_size, len(meta.names)))
              for s in range(0, len(meta.names), batch_size))
    pending = collections.deque()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for chunk in chunks:
            pending.append((chunk, pool.submit(_load_batch, meta, chunk)))
            if len(pending) > 2 * workers:
                idx, fut = pending.popleft()
                yield idx, fut.result()
        while pending:
            idx, fut = pending.popleft()
            yield idx, fut.result()


def embed_ijb(embedder, meta, flip=True, progress=True, workers=4):
    """Image features (N, D): plain (+ flipped) embedding, times the faceness score."""
    from tqdm import tqdm

    feats = None
    total = -(-len(meta.names) // embedder.batch_size)
    batches = iter_aligned(meta, embedder.batch_size, workers)
    for idx, images in tqdm(batches, total=total, desc="ijb", unit="batch", disable=not progress,
                            leave=False):
        plain, flipped = embedder.embed_batch(images, flip)
        out = plain + flipped if flip else plain
        if feats is None:
            feats = np.zeros((len(meta.names), out.shape[1]), dtype=np.float32)
        feats[idx] = out
    return feats * meta.faceness[:, None].astype(np.float32)


def template_features(feats, templates, medias):
    """(unique templates, L2-normalised features): mean per media, then sum per template."""
    from scipy import sparse

    utemp, t_idx = np.unique(templates, return_inverse=True)
    low = int(np.min(medias))
    key = t_idx.astype(np.int64) * (int(np.max(medias)) - low + 1) + (medias - low)
    _, g_idx, counts = np.unique(key, return_inverse=True, return_counts=True)
    g_idx = g_idx.ravel()
    n = len(feats)
    media_mean = sparse.csr_matrix((1.0 / counts[g_idx], (g_idx, np.arange(n))),
                                   shape=(len(counts), n)) @ feats.astype(np.float64)
    g_template = np.zeros(len(counts), dtype=np.int64)
    g_template[g_idx] = t_idx.ravel()
    pooled = sparse.csr_matrix((np.ones(len(counts)), (g_template, np.arange(len(counts)))),
                               shape=(len(utemp), len(counts))) @ media_mean
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return utemp, pooled / np.where(norms == 0, 1.0, norms)


def pair_scores(utemp, tfeats, p1, p2, chunk=100000):
    """Cosine similarity of template pairs (features are already unit length)."""
    rows = []
    for ids, which in ((p1, "first"), (p2, "second")):
        pos = np.searchsorted(utemp, ids).clip(0, len(utemp) - 1)
        missing = utemp[pos] != ids
        if missing.any():
            raise DataError(f"pair list: {which} template {ids[missing][0]} has no images")
        rows.append(pos)
    scores = np.empty(len(p1), dtype=np.float64)
    for s in range(0, len(p1), chunk):
        a, b = tfeats[rows[0][s:s + chunk]], tfeats[rows[1][s:s + chunk]]
        scores[s:s + chunk] = np.einsum("ij,ij->i", a, b)
    return scores


def score_ijb(embedder, meta, flip=True, progress=True, workers=4):
    """The IJB protocol for one model on read meta; a JSON-ready dict (+ ROC, score arrays)."""
    start = time.time()
    feats = embed_ijb(embedder, meta, flip, progress, workers)
    seconds = time.time() - start
    utemp, tfeats = template_features(feats, meta.templates, meta.medias)
    scores = pair_scores(utemp, tfeats, meta.p1, meta.p2)
    result = tar_at_far(meta.labels, scores)
    result.update(images=len(meta.names), templates=len(utemp), pairs=len(scores),
                  embed_seconds=seconds, images_per_s=len(meta.names) / max(seconds, 1e-9),
                  scores=scores, labels=meta.labels)
    return result


def evaluate_ijb(embedder, root, target, flip=True, progress=True, workers=4):
    """Read `target`'s meta under `root` and score one model (see `score_ijb`)."""
    return score_ijb(embedder, read_ijb_meta(root, target), flip, progress, workers)
