"""Verification during training on the configured `.bin` sets, with the code of `tools/verify.py`.

Pair images are decoded once; each call embeds them with the live network (image + mirror),
runs the published protocol and returns `{target: accuracy}`. Rank 0 only.
"""
import os

from ..data.pairs import decode_pair_images, load_pairs
from ..errors import DataError
from ..eval.embed import Embedder
from ..eval.metrics import verification_report

__all__ = ["Verifier"]


class Verifier:
    """Scores a Gluon network on `<data_dir>/<target>.bin` for each target."""

    def __init__(self, data_dir, targets, image_size, ctx, batch_size=64):
        self.sets = {}
        for target in targets:
            path = os.path.join(data_dir, f"{target}.bin")
            if not os.path.isfile(path):
                raise DataError(f"{path}: verification set {target!r} not found "
                                f"(val_data_dir={data_dir!r}, val_targets={list(targets)})")
            pairs = load_pairs(path)
            self.sets[target] = (decode_pair_images(pairs, tuple(image_size), path=path),
                                 pairs.issame)
        self.ctx, self.batch_size = ctx, batch_size

    def __call__(self, net):
        embedder = Embedder(net, batch_size=self.batch_size, ctx=self.ctx)
        results = {}
        for target, (images, issame) in self.sets.items():
            plain, flipped = embedder.embed_all(images, flip=True, progress=False, desc=target)
            results[target] = verification_report(plain, flipped, issame)
        return results
