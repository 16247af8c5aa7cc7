"""The embedded default dataset: synthetic faces, written as an image folder, `.rec` and `.bin`.

`generate()` renders training identities into `images/<id_NNNNN>/<k>.jpg` with their two
attributes in `attributes.tsv`, renders held-out identities (a separate index range, so they are
never trained on) into an LFW-like `verify.bin`, and records what it did in `meta.json`.
The held-out images are also written with their attributes to `verify_attributes.rec` (the
attribute networks' validation set). The command line (`recognition.commands.synth`: console
`face-synth`, `python -m recognition.synthetic`) also packs the folder into `train.rec/.idx/.lst`.
Identities come from `identity`, each image's variation from `nuisance` (a named preset:
`aligned` for the demo, `wild` for a harder capture), drawing from `render`; every image depends
only on (seed, preset, identity, image).
"""
import json
import math
import os
import shutil
import sys
from itertools import combinations

import cv2
import numpy as np

from ..data.reading.pairs import save_pairs
from ..data.reading.pool import worker_pool
from ..data.writing.packing import write_encoded_records
from ..errors import DataError
from ..fileio import atomic_write_text
from .identity import identity_params
from .nuisance import nuisance_settings
from .render import render_image

__all__ = ["generate", "render_image", "read_attributes", "attribute_labels", "verify_plan",
           "GENERATOR_VERSION", "VERIFY_BASE"]

GENERATOR_VERSION = 2        # 2: aligned faces (small residual pose error), fewer occluders
VERIFY_BASE = 1_000_000_000    # held-out identities use indices from here: disjoint, and the
                               # same verify.bin whatever the number of training identities
ATTRIBUTES = ("gender", "age_group")


def _encode(img, quality):
    ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def _init_worker():
    cv2.setNumThreads(1)        # processes already use every core


def _train_identity(task):
    """Render and write the images of one training identity; return its attributes."""
    seed, index, count, folder, width, quality, settings = task
    os.makedirs(folder, exist_ok=True)
    for k in range(count):
        data = _encode(render_image(seed, index, k, settings), quality)
        with open(os.path.join(folder, f"{k:0{width}d}.jpg"), "wb") as f:
            f.write(data)
    p = identity_params(seed, index)
    return p["gender"], p["age"]


def _verify_identity(task):
    seed, index, count, quality, settings = task
    return [_encode(render_image(seed, index, k, settings), quality) for k in range(count)]


def _run(func, tasks, workers, images, desc):
    """Map `func` over `tasks` in order (in-process for one worker) with a progress bar."""
    from tqdm import tqdm

    tty = sys.stderr.isatty()  # piped (make demo | tee): an update every 15 s, not a flood
    bar = tqdm(total=images, desc=desc, unit="img", mininterval=0.1 if tty else 15)
    out = []
    if workers <= 1:
        results, pool = map(func, tasks), None
    else:
        pool = worker_pool(workers, _init_worker, preload=[__name__])
        results = pool.imap(func, tasks, chunksize=max(1, len(tasks) // (workers * 16)))
    try:
        for task, res in zip(tasks, results):
            out.append(res)
            bar.update(task[2])
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    return out


def verify_plan(num_identities, num_pairs, folds=10):
    """(folds, images per identity) for an LFW-like split; identity j belongs to fold j % folds.

    Each fold holds as many genuine as impostor pairs, built only from its own identities.
    """
    if num_pairs < 2 or num_pairs % 2:
        raise ValueError(f"the number of pairs must be even and positive, got {num_pairs}")
    folds = min(folds, num_identities // 2, num_pairs // 2)
    if folds < 1:
        raise ValueError(f"need at least 2 verification identities, got {num_identities}")
    genuine = math.ceil(num_pairs / 2 / folds)
    per_identity = math.ceil(genuine / (num_identities // folds))
    k = 2
    while k * (k - 1) // 2 < per_identity:
        k += 1
    ids = num_identities // folds
    if ids * (ids - 1) // 2 * k * k < genuine:
        raise ValueError(f"{num_pairs} pairs need more than {num_identities} verification "
                         "identities for distinct impostor pairs")
    return folds, k


def _fold_pairs(rng, members, genuine, k):
    """`genuine` same-identity pairs then as many different-identity pairs, all distinct."""
    counts = np.full(len(members), genuine // len(members))
    counts[rng.permutation(len(members))[:genuine % len(members)]] += 1
    combos = list(combinations(range(k), 2))
    same = []
    for ident, c in zip(members, counts):
        for j in rng.choice(len(combos), size=c, replace=False):
            same.append(((ident, combos[j][0]), (ident, combos[j][1])))
    same = [same[i] for i in rng.permutation(len(same))]
    diff, seen = [], set()
    while len(diff) < genuine:
        a, b = rng.choice(members, size=2, replace=False)
        pair = ((int(a), int(rng.integers(k))), (int(b), int(rng.integers(k))))
        key = tuple(sorted(pair))
        if key not in seen:
            seen.add(key)
            diff.append(pair)
    return same + diff, [True] * len(same) + [False] * len(diff)


def _build_pairs(seed, num_ids, num_pairs, images):
    """Pairs in LFW order: per fold, a block of genuine pairs then a block of impostors."""
    folds, k = verify_plan(num_ids, num_pairs)
    rng = np.random.default_rng([seed, VERIFY_BASE - 1])
    sizes = np.diff(np.linspace(0, num_pairs // 2, folds + 1).round().astype(int))
    bins, issame = [], []
    for f in range(folds):
        pairs, same = _fold_pairs(rng, np.arange(f, num_ids, folds), int(sizes[f]), k)
        for (i, a), (j, b) in pairs:
            bins += [images[i][a], images[j][b]]
        issame += same
    return bins, issame


def _prepare(out_dir, overwrite):
    images = os.path.join(out_dir, "images")
    if os.path.isdir(images) and os.listdir(images):
        if not overwrite:
            raise DataError(f"{images}: already holds images; pass overwrite=True (--overwrite) "
                            "or choose another output folder")
        shutil.rmtree(images)
    os.makedirs(images, exist_ok=True)
    return images


def _write_attributes(path, folders, attrs):
    rows = [f"{folder}\t{label}\t{gender}\t{age}\n"
            for label, (folder, (gender, age)) in enumerate(zip(folders, attrs))]
    atomic_write_text(path, "folder\tlabel\t" + "\t".join(ATTRIBUTES) + "\n" + "".join(rows))


def generate(out_dir, num_identities, images_per_identity, num_verify_identities,
             num_pairs=6000, seed=0, workers=None, quality=95, overwrite=False,
             nuisance="aligned"):
    """Write the synthetic dataset under `out_dir`; return the contents of its `meta.json`.

    `nuisance` names the per-image variation preset (`nuisance.PRESETS`)."""
    settings = nuisance_settings(nuisance)
    for name, v in (("num_identities", num_identities),
                    ("images_per_identity", images_per_identity)):
        if int(v) < 1:
            raise ValueError(f"{name} must be at least 1, got {v}")
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    folds, k = verify_plan(num_verify_identities, num_pairs)
    workers = max(1, int(workers or os.cpu_count() or 1))
    images = _prepare(out_dir, overwrite)
    width = max(5, len(str(num_identities - 1)))
    folders = [f"id_{i:0{width}d}" for i in range(num_identities)]
    iw = max(3, len(str(images_per_identity - 1)))
    tasks = [(seed, i, images_per_identity, os.path.join(images, folders[i]), iw, quality,
              settings)
             for i in range(num_identities)]
    attrs = _run(_train_identity, tasks, workers, num_identities * images_per_identity, "train")
    _write_attributes(os.path.join(out_dir, "attributes.tsv"), folders, attrs)
    tasks = [(seed, VERIFY_BASE + j, k, quality, settings) for j in range(num_verify_identities)]
    rendered = _run(_verify_identity, tasks, workers, num_verify_identities * k, "verify")
    bins, issame = _build_pairs(seed, num_verify_identities, num_pairs, rendered)
    save_pairs(os.path.join(out_dir, "verify.bin"), bins, issame)
    _write_verify_attributes(os.path.join(out_dir, "verify_attributes.rec"), seed, rendered)
    meta = dict(generator="recognition.synthetic", version=GENERATOR_VERSION, seed=seed,
                image_size=[112, 112], identities=num_identities,
                images_per_identity=images_per_identity,
                verify_identities=num_verify_identities, verify_images_per_identity=k,
                verify_identity_base=VERIFY_BASE, pairs=num_pairs, folds=folds,
                quality=quality, attributes=list(ATTRIBUTES), nuisance=nuisance,
                nuisance_settings={k: list(v) if isinstance(v, tuple) else v
                                   for k, v in settings._asdict().items()})
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
    return meta


def _write_verify_attributes(rec_path, seed, rendered):
    """The held-out identities' images labelled [identity, gender, age group]: the attribute
    networks' validation set (`val_rec`), disjoint from training like verify.bin."""
    records = []
    for j, images in enumerate(rendered):
        p = identity_params(seed, VERIFY_BASE + j)
        records += [([float(j), float(p["gender"]), float(p["age"])], data) for data in images]
    write_encoded_records(rec_path, records)


def read_attributes(path):
    """`{folder: (label, gender, age_group)}` from an `attributes.tsv`."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: attributes file not found")
    out = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            cols = line.rstrip("\n").split("\t")
            if n == 1 and cols[0] == "folder":
                continue
            try:
                out[cols[0]] = (int(cols[1]), int(cols[2]), int(cols[3]))
            except (IndexError, ValueError):
                raise DataError(f"{path}:{n}: expected folder, label, gender, age_group "
                                f"separated by tabs, got {line.strip()!r}") from None
    return out


def attribute_labels(path):
    """`{folder: [gender, age_group]}` as floats: the `extra_labels` of `pack_image_folder`."""
    return {k: [float(g), float(a)] for k, (_, g, a) in read_attributes(path).items()}
