"""A contact sheet of a `.rec` (`face-preview`), to see that faces are aligned and labelled right.

One row per identity (its number in the left margin), `K` images of it side by side at the
size they are stored (the record key under each image where it fits). Identities and images
are drawn at random with a seed, from both layouts `RecordDataset` reads: the InsightFace
layout's identity records give each identity's keys at once; in the plain layout the label of
every image record is read first (its 36-byte head only, in file order).

Damaged records (framing, or an image that does not decode) are skipped, named on stderr, and
replaced by another image of the same identity where there is one.
"""
import os
import struct
from typing import NamedTuple

import cv2
import numpy as np

from ...errors import DataError
from .recordio import INSIGHTFACE, RecordDataset

__all__ = ["Layout", "LAYOUT", "Sheet", "group_identities", "choose", "render_sheet",
           "make_sheet", "tile_origin", "sheet_size"]


class Layout(NamedTuple):
    """Pixel geometry of a sheet around `tile_h x tile_w` images."""

    margin: int = 64    # left column holding the identity number
    caption: int = 14   # strip under each image holding its record key
    pad: int = 4        # space between tiles and around the sheet


LAYOUT = Layout()
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BACKGROUND, _EMPTY, _TEXT = 255, 200, (0, 0, 0)


def sheet_size(rows, cols, tile_h, tile_w, layout=LAYOUT):
    """`(height, width)` in pixels of a sheet of `rows x cols` tiles."""
    return (layout.pad + rows * (tile_h + layout.caption + layout.pad),
            layout.margin + cols * (tile_w + layout.pad))


def tile_origin(row, col, tile_h, tile_w, layout=LAYOUT):
    """`(y, x)` of the top-left pixel of tile `(row, col)`."""
    return (layout.pad + row * (tile_h + layout.caption + layout.pad),
            layout.margin + col * (tile_w + layout.pad))


class Sheet(NamedTuple):
    image: np.ndarray   # BGR uint8, as cv2 writes it
    rows: list          # [(identity, [key, ...])] in sheet order
    skipped: list       # [(key, offset, reason)] damaged records met on the way
    tile_size: tuple    # (height, width)


_HEAD = struct.Struct("<IIIfQQ")  # magic, lrec, IRHeader(flag, label, id, id2)


def _label_of(f, offset):
    """The identity of the image record at `offset`: its float label, or the first of its
    label array; None when the head cannot be read."""
    f.seek(offset)
    head = f.read(_HEAD.size + 4)
    if len(head) < _HEAD.size:
        return None
    flag, label = _HEAD.unpack_from(head)[2:4]
    if flag > 0:
        if len(head) < _HEAD.size + 4:
            return None
        label = struct.unpack_from("<f", head, _HEAD.size)[0]
    return int(label) if np.isfinite(label) else None


def group_identities(dataset):
    """`{identity: [image keys]}` of every sound image record of `dataset`."""
    bad = dataset.problems
    if dataset.layout == INSIGHTFACE:
        first_id = dataset.identity_keys[0] if dataset.identity_keys else 0
        groups = {}
        for key in dataset.identity_keys:
            if key in bad or key not in dataset.index:
                continue
            header, _ = dataset.read(key)
            start, end = int(header.label[0]), int(header.label[1])
            keys = [k for k in range(start, end) if k in dataset.index and k not in bad]
            if keys:
                groups[key - first_id] = keys
        return groups
    groups = {}
    keys = [k for k in dataset.image_keys if k not in bad]
    with open(dataset.rec_path, "rb") as f:
        for key in sorted(keys, key=dataset.index.__getitem__):  # file order: one pass
            label = _label_of(f, dataset.index[key])
            if label is not None:
                groups.setdefault(label, []).append(key)
    return {identity: sorted(keys) for identity, keys in groups.items()}


def choose(groups, identities, per_identity, seed):
    """`[(identity, [keys in drawing order])]`: `identities` identities at random, those with
    at least `per_identity` images first; each identity's keys shuffled (its spares follow)."""
    rng = np.random.default_rng(seed)
    names = sorted(groups)
    full = [n for n in names if len(groups[n]) >= per_identity]
    short = sorted((n for n in names if len(groups[n]) < per_identity),
                   key=lambda n: -len(groups[n]))
    picked = [full[i] for i in rng.permutation(len(full))[:identities]]
    picked += short[:identities - len(picked)]
    picked.sort()
    return [(n, [groups[n][i] for i in rng.permutation(len(groups[n]))]) for n in picked]


def _decode(dataset, key):
    """`(BGR image, None)` or `(None, reason)`."""
    try:
        _, payload = dataset.read(key)
    except DataError as exc:
        return None, str(exc).rsplit(": ", 1)[-1]
    img = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        return None, "the image does not decode"
    return img, None


def _put_text(canvas, text, x, y, width, scale):
    """Draw `text` with its baseline at `y` if it fits in `width` pixels; True if drawn."""
    (w, _), _ = cv2.getTextSize(text, _FONT, scale, 1)
    if w > width:
        return False
    cv2.putText(canvas, text, (x, y), _FONT, scale, _TEXT, 1, cv2.LINE_AA)
    return True


def render_sheet(dataset, chosen, per_identity, layout=LAYOUT):
    """Decode `per_identity` sound images of each `(identity, keys)` and draw the sheet."""
    skipped, rows, tiles = [], [], []
    tile_size = None
    for identity, keys in chosen:
        row = []
        for key in keys:
            if len(row) == per_identity:
                break
            img, reason = _decode(dataset, key)
            if img is None:
                skipped.append((key, dataset.index[key], reason))
                continue
            tile_size = tile_size or img.shape[:2]
            row.append((key, img))
        if row:
            rows.append((identity, [k for k, _ in row]))
            tiles.append(row)
    if not rows:
        raise DataError(f"{dataset.rec_path}: no image record decodes")
    th, tw = tile_size
    height, width = sheet_size(len(rows), per_identity, th, tw, layout)
    canvas = np.full((height, width, 3), _BACKGROUND, np.uint8)
    for r, ((identity, _), row) in enumerate(zip(rows, tiles)):
        y0, _ = tile_origin(r, 0, th, tw, layout)
        if not _put_text(canvas, f"id {identity}", 4, y0 + th // 2 + 5, layout.margin - 6, 0.45):
            _put_text(canvas, str(identity), 4, y0 + th // 2 + 5, layout.margin - 6, 0.35)
        for c in range(per_identity):
            y, x = tile_origin(r, c, th, tw, layout)
            if c >= len(row):
                canvas[y:y + th, x:x + tw] = _EMPTY
                continue
            key, img = row[c]
            if img.shape[:2] != (th, tw):
                img = cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA)
            canvas[y:y + th, x:x + tw] = img
            _put_text(canvas, f"#{key}", x + 1, y + th + layout.caption - 3, tw - 2, 0.35)
    return Sheet(canvas, rows, skipped, (th, tw))


def make_sheet(path, identities=8, per_identity=6, seed=0, layout=LAYOUT):
    """Open `path` (a `.rec`, its prefix or a folder holding `train.rec`) and draw its sheet."""
    if os.path.isfile(path) and not path.endswith((".rec", ".idx")):
        raise DataError(f"{path}: not a .rec file (expected DATA.rec with DATA.idx beside it)")
    if identities < 1 or per_identity < 1:
        raise DataError(f"{path}: --identities and --per-identity must be at least 1")
    dataset = RecordDataset(path, strict=False)
    try:
        damaged = [(k, off, why) for k, (off, why) in dataset.problems.items()]
        groups = group_identities(dataset)
        if not groups:
            raise DataError(f"{dataset.rec_path}: no sound image record (is it a .rec?)")
        sheet = render_sheet(dataset, choose(groups, identities, per_identity, seed),
                             per_identity, layout)
    finally:
        dataset.close()
    return sheet._replace(skipped=sorted(damaged + sheet.skipped, key=lambda p: p[1]))
