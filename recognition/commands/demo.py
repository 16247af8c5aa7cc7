"""`make demo`: the main job end to end on the embedded synthetic dataset.

Steps (each skipped when its output is already there and up to date):
1. generate the synthetic faces (training identities + held-out verification identities);
2. pack the training images into `train.rec` / `train.idx`;
3. score the raw-pixel baseline on the held-out `verify.bin` (what a network must beat);
4. train `configs/synthetic.py` with `horovodrun -np 2` on the CPU (resumes if interrupted);
5. score the best checkpoint on the held-out pairs with `tools/verify.py`.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from ..data.reading.pairs import decode_pair_images, load_pairs
from ..data.writing.packing import pack_image_folder
from ..parallel.launch import local_workers_command
from ..synthetic.generate import GENERATOR_VERSION, generate

__all__ = ["main", "raw_pixel_accuracy"]

DEMO_SIZE = dict(num_identities=500, images_per_identity=40, num_verify_identities=200,
                 num_pairs=6000)


def _dataset_ready(out, seed):
    meta_path = os.path.join(out, "meta.json")
    if not os.path.isfile(meta_path):
        return False
    meta = json.load(open(meta_path))
    return (meta.get("version") == GENERATOR_VERSION and meta.get("seed") == seed
            and meta.get("identities") == DEMO_SIZE["num_identities"]
            and meta.get("images_per_identity") == DEMO_SIZE["images_per_identity"]
            and meta.get("pairs") == DEMO_SIZE["num_pairs"]
            and meta.get("nuisance", "aligned") == "aligned")


def raw_pixel_accuracy(bin_path, nfolds=10):
    """The verification protocol on raw pixels as embeddings (the baseline to beat).

    After L2 normalisation, squared distance is 2 - 2 cos: this is cosine similarity.
    """
    from ..eval.metrics import evaluate_embeddings

    pairs = load_pairs(bin_path)
    x = decode_pair_images(pairs, path=bin_path).reshape(len(pairs.bins), -1).astype(np.float32)
    return evaluate_embeddings(x, pairs.issame, nfolds=nfolds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/synthetic", help="dataset folder")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed")
    parser.add_argument("--workers", type=int, default=2,
                        help="processes for generation and Horovod training workers")
    parser.add_argument("--output", default="work_dirs/synthetic", help="training run folder")
    args = parser.parse_args(argv)
    start = time.time()
    if _dataset_ready(args.data, args.seed):
        print(f"[1/5] synthetic dataset already in {args.data}")
    else:
        print(f"[1/5] generating the synthetic dataset in {args.data}")
        generate(args.data, seed=args.seed, workers=args.workers, overwrite=True, **DEMO_SIZE)
    rec = os.path.join(args.data, "train.rec")
    if os.path.isfile(rec) and os.path.getmtime(rec) > os.path.getmtime(
            os.path.join(args.data, "meta.json")):
        print(f"[2/5] {rec} already packed")
    else:
        print(f"[2/5] packing {rec}")
        pack_image_folder(os.path.join(args.data, "images"), rec[:-4], num_workers=args.workers,
                          pass_through=True)
    baseline = raw_pixel_accuracy(os.path.join(args.data, "verify.bin"))
    print(f"[3/5] raw-pixel cosine baseline on {args.data}/verify.bin: "
          f"{100 * baseline['acc']:.2f} % +- {100 * baseline['acc_std']:.2f}")
    print(f"[4/5] training configs/synthetic.py on {args.workers} CPU workers into {args.output}")
    _train(args)
    report = _verify(args)
    print(f"held-out pair accuracy: network {100 * report['acc']:.2f} % +- "
          f"{100 * report['acc_std']:.2f} vs raw pixels {100 * baseline['acc']:.2f} % "
          f"(demo took {time.time() - start:.0f} s)")
    return 0


def _train(args):
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    command = [sys.executable, os.path.join(repo, "recognition", "train.py"),
               os.path.join(repo, "configs", "synthetic.py"),
               "--rec", os.path.join(args.data, "train.rec"), "--val_data_dir", args.data,
               "--output", args.output, "--resume", "true"]
    subprocess.run(local_workers_command(command, args.workers), check=True)


def _verify(args):
    """Score the best checkpoint with the verification tool; returns its result entry."""
    from ..model_spec import format_prefix_epoch, saved_epochs
    from .verify import build_parser, run

    prefix = os.path.join(args.output, "best")
    best = saved_epochs(prefix)
    if not best:
        raise SystemExit(f"error: no best-*.params in {args.output}: training did not verify")
    model = format_prefix_epoch(prefix, best[-1])
    print(f"[5/5] tools/verify.py --data-dir {args.data} --target verify --model {model}")
    report = run(build_parser().parse_args([
        "--data-dir", args.data, "--target", "verify", "--model", model,
        "--output", os.path.join(args.output, "verify_report.json"), "--quiet"]))
    return report["results"][0]


if __name__ == "__main__":
    sys.exit(main())
