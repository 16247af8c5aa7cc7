"""Synthetic faces: rendering speed, and how hard the verification set is for raw pixels.

Prints images/minute for 1 and 2 workers, the best-threshold 10-fold accuracy of cosine
similarity of raw pixels on `verify.bin` (the "no learning" baseline, which must stay well below
80 %), and two checks that identity is learnable: a PCA+LDA classifier on held-out images of
training identities, and PCA+LDA features (fitted on training identities) on `verify.bin`.

    python benchmarks/bench_synthetic.py                      # default 6,000-pair set
    python benchmarks/bench_synthetic.py --identities 1000 --images-per-identity 40
"""
import argparse
import os
import sys
import tempfile
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognition.commands.demo import raw_pixel_accuracy  # noqa: E402
from recognition.data.reading.pairs import decode_pair_images, load_pairs  # noqa: E402
from recognition.eval.metrics import evaluate_embeddings  # noqa: E402
from recognition.synthetic.generate import generate, read_attributes  # noqa: E402


def raw_pixel_baseline(bin_path):
    """`(mean, std)` accuracy of raw-pixel cosine similarity with the verification protocol."""
    result = raw_pixel_accuracy(bin_path)
    return result["acc"], result["acc_std"]


def _small(img, side=32):
    return cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA).reshape(-1) / 255.0


def load_identities(out_dir, count):
    """Downsampled pixels and labels of the first `count` training identities."""
    root = os.path.join(out_dir, "images")
    attrs = sorted(read_attributes(os.path.join(out_dir, "attributes.tsv")).items(),
                   key=lambda kv: kv[1][0])[:count]
    xs, ys = [], []
    for folder, (label, _, _) in attrs:
        for name in sorted(os.listdir(os.path.join(root, folder))):
            xs.append(_small(cv2.imread(os.path.join(root, folder, name))))
            ys.append(label)
    return np.array(xs, np.float32), np.array(ys)


def lda_model(x, y, dims=150):
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.pipeline import make_pipeline

    return make_pipeline(PCA(min(dims, len(x) - 1), random_state=0),
                         LinearDiscriminantAnalysis()).fit(x, y)


def probes(out_dir, count):
    """PCA+LDA identity accuracy (half the images of each identity held out) and its features
    used for verification of the held-out identities of `verify.bin`."""
    x, y = load_identities(out_dir, count)
    first = np.zeros(len(y), bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        first[idx[: len(idx) // 2]] = True
    acc = float((lda_model(x[first], y[first]).predict(x[~first]) == y[~first]).mean())
    model = lda_model(x, y)
    pairs = load_pairs(os.path.join(out_dir, "verify.bin"))
    imgs = decode_pair_images(pairs).transpose(0, 2, 3, 1)[..., ::-1]
    feats = model.transform(np.array([_small(np.ascontiguousarray(i)) for i in imgs]))
    verify = evaluate_embeddings(feats, pairs.issame)
    return acc, 1.0 / len(np.unique(y)), (verify["acc"], verify["acc_std"])


def speed(workers, identities, per_identity):
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        generate(tmp, identities, per_identity, 2, num_pairs=2, workers=workers)
        secs = time.perf_counter() - start
    return (identities * per_identity + 4) / secs * 60


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--identities", type=int, default=300, help="training identities")
    ap.add_argument("--images-per-identity", type=int, default=20)
    ap.add_argument("--verify-identities", type=int, default=200)
    ap.add_argument("--pairs", type=int, default=6000)
    ap.add_argument("--probe-identities", type=int, default=300,
                    help="training identities used by the PCA+LDA checks")
    ap.add_argument("--speed-images", type=int, default=1200,
                    help="images rendered per speed measurement")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for w in (1, 2):
        rate = speed(w, args.speed_images // 20, 20)
        print(f"speed: {rate:,.0f} images/minute with {w} worker(s) (write JPEG files)")
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp, args.identities, args.images_per_identity, args.verify_identities,
                 args.pairs, args.seed, workers=2)
        mean, std = raw_pixel_baseline(os.path.join(tmp, "verify.bin"))
        print(f"raw-pixel cosine, 10-fold best threshold, {args.pairs} pairs: "
              f"{100 * mean:.2f} +- {100 * std:.2f} %")
        acc, chance, (vm, vs) = probes(tmp, args.probe_identities)
        print(f"PCA+LDA identity accuracy (32x32 pixels, {args.probe_identities} identities, "
              f"half the images held out): {100 * acc:.1f} % (chance {100 * chance:.2f} %)")
        print(f"PCA+LDA features on verify.bin (held-out identities): {100 * vm:.2f} +- "
              f"{100 * vs:.2f} %")


if __name__ == "__main__":
    main()
