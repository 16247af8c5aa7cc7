"""`face-verify` / `tools/verify.py`: score checkpoints on `.bin` pair sets and IJB-B/C.

Flags follow InsightFace's `verification.py`. Each target is decoded once and shared by all
models; a report line per model and target, an optional JSON report and PNG figures.
"""
import argparse
import json
import os
import sys
import time

from ..errors import DataError

__all__ = ["build_parser", "run", "main"]

IJB_TARGETS = ("ijbb", "ijbc")


def build_parser():
    p = argparse.ArgumentParser(
        prog="face-verify", description="Verification accuracy of MXNet face-embedding "
        "checkpoints on LFW/CFP-FP/AgeDB-style .bin pair sets (InsightFace protocol) and IJB-B/C.")
    p.add_argument("--data-dir", default=".", help="folder holding <target>.bin files; for "
                   "ijbb/ijbc the IJB root (with meta/ and loose_crop/, or IJBB/ IJBC/ below)")
    p.add_argument("--model", action="append", required=True, metavar="PREFIX[,EPOCHS]",
                   help="checkpoint prefix-symbol.json + prefix-NNNN.params; EPOCHS is N, "
                   "N|M|... or N-M (saved ones in the range); no epochs = all saved. Repeatable")
    p.add_argument("--target", default="lfw,cfp_fp,agedb_30",
                   help="comma-separated targets: any <name> with <data-dir>/<name>.bin, "
                   "or ijbb/ijbc")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    p.add_argument("--nfolds", type=int, default=10, help="cross-validation folds (file order)")
    p.add_argument("--far", type=float, default=1e-3, help="FAR at which VAL is reported")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True,
                   help="sum the embeddings of each image and its mirror (the published protocol)")
    p.add_argument("--gpu", type=int, default=-1, help="GPU id; -1 (default) runs on the CPU")
    p.add_argument("--layer", default=None, help="embedding layer name (default: found from the "
                   "graph: fc1, else the classifier input, else the network output)")
    p.add_argument("--image-size", default=None, metavar="H,W",
                   help="resize pair images to this size before embedding (default: as stored)")
    p.add_argument("--transform", default="none", metavar="NAME[:VALUE]",
                   help="test-time transform: none, low_light, blur[:sigma], noise[:sigma], "
                   "grayscale, downscale[:factor]")
    p.add_argument("--output", default=None, help="write a JSON report here")
    p.add_argument("--plot", default=None, metavar="DIR",
                   help="write ROC, precision-recall and distance-histogram PNGs to DIR")
    p.add_argument("--workers", type=int, default=4, help="IJB image decode/align threads")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _context(gpu):
    import mxnet as mx

    if gpu < 0:
        return mx.cpu()
    try:
        count = mx.context.num_gpus()
    except Exception:  # a CPU-only build raises instead of returning 0
        count = 0
    if gpu >= count:
        raise ValueError(f"--gpu {gpu}: this MXNet sees {count} GPU(s); use --gpu -1 for the CPU")
    return mx.gpu(gpu)


def _load_targets_images(path, image_size, transform):
    from ..data.pairs import decode_pair_images, load_pairs
    from .transforms import apply_transform

    pairs = load_pairs(path)
    images = decode_pair_images(pairs, image_size, path=path)
    return apply_transform(transform, images), pairs.issame


def _verify_pairs(model, embedder, target, path, images, issame, args):
    from .metrics import verification_report

    model.check_input_size(images.shape[2:], path)
    start = time.time()
    plain, flipped = embedder.embed_all(images, args.flip, not args.quiet, desc=target)
    seconds = time.time() - start
    res = verification_report(plain, flipped, issame, args.nfolds, args.far)
    res.update(model=model.name, prefix=model.prefix, epoch=model.epoch, target=target,
               pairs=len(issame), layer=model.layer,
               embed_seconds=seconds, pairs_per_s=len(issame) / max(seconds, 1e-9))
    print(f"[{target}][{model.name}] XNorm: {res['xnorm']:.6f}  Accuracy: {res['acc']:.5f}"
          f"+-{res['acc_std']:.5f}  Accuracy-NoFlip: {res['acc_noflip']:.5f}+-"
          f"{res['acc_noflip_std']:.5f}  Threshold: {res['threshold']:.3f}  VAL@FAR={args.far:g}: "
          f"{res['val']:.5f}+-{res['val_std']:.5f} (FAR {res['far']:.5f})  "
          f"{res['pairs_per_s']:.1f} pairs/s", flush=True)
    return res


def _verify_ijb(model, embedder, target, args):
    from .ijb import evaluate_ijb

    res = evaluate_ijb(embedder, args.data_dir, target, args.flip, not args.quiet, args.workers)
    res.update(model=model.name, prefix=model.prefix, epoch=model.epoch, target=target,
               layer=model.layer)
    table = res["tar_at_far"]
    print(f"[{target}][{model.name}] TAR@FAR " + "  ".join(
        f"{far}: {100 * tar:.2f}" for far, tar in table.items())
        + f"  ({res['images_per_s']:.1f} images/s)", flush=True)
    return res


def _plots(results, issame_by_target, plot_dir):
    from .metrics import roc_pr_curves
    from .plots import plot_histogram, plot_pr, plot_roc, safe_name

    written = []
    for target in dict.fromkeys(r["target"] for r in results):
        rows = [r for r in results if r["target"] == target]
        if target in IJB_TARGETS:
            curves = [(r["model"], r["fpr"], r["tpr"], r["auc"]) for r in rows]
            written.append(plot_roc(curves, os.path.join(plot_dir, f"{target}_roc.png"),
                                    f"{target} ROC", log_far=True))
            continue
        rocs, prs = [], []
        for r in rows:
            c = roc_pr_curves(r["dist"], issame_by_target[target])
            rocs.append((r["model"], c["fpr"], c["tpr"], c["roc_auc"]))
            prs.append((r["model"], c["recall"], c["precision"], c["pr_auc"]))
            r.update(roc_auc=c["roc_auc"], pr_auc=c["pr_auc"])
            name = f"{target}_{safe_name(r['model'])}_hist.png"
            written.append(plot_histogram(r["dist"], issame_by_target[target],
                                          os.path.join(plot_dir, name),
                                          f"{target} {r['model']}", r["threshold"]))
        written.append(plot_roc(rocs, os.path.join(plot_dir, f"{target}_roc.png"),
                                f"{target} ROC"))
        written.append(plot_pr(prs, os.path.join(plot_dir, f"{target}_pr.png"), f"{target} PR"))
    return written


def _check_inputs(args, targets):
    from .transforms import get_transform

    get_transform(args.transform)
    for t in targets:
        path = os.path.join(args.data_dir, f"{t}.bin")
        if t not in IJB_TARGETS and not os.path.isfile(path):
            raise DataError(f"{path}: pair set not found (target {t!r}, --data-dir "
                            f"{args.data_dir})")
    if args.batch_size < 1:
        raise ValueError("--batch-size must be at least 1")


def _image_size(text):
    if text is None:
        return None
    try:
        h, w = (int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--image-size {text!r}: expected H,W") from None
    return h, w


def run(args):
    """Evaluate every model on every target; returns the report dict (arrays dropped)."""
    from .embed import Embedder, load_model, parse_models

    targets = [t.strip() for t in args.target.split(",") if t.strip()]
    _check_inputs(args, targets)
    ctx = _context(args.gpu)
    models = [load_model(p, e, ctx, args.layer) for p, e in parse_models(args.model)]
    embedders = [Embedder(m, args.batch_size, ctx) for m in models]
    results, issame_by_target = [], {}
    for target in targets:
        if target in IJB_TARGETS:
            results += [_verify_ijb(m, e, target, args) for m, e in zip(models, embedders)]
            continue
        path = os.path.join(args.data_dir, f"{target}.bin")
        images, issame = _load_targets_images(path, _image_size(args.image_size), args.transform)
        issame_by_target[target] = issame
        results += [_verify_pairs(m, e, target, path, images, issame, args)
                    for m, e in zip(models, embedders)]
    plots = _plots(results, issame_by_target, args.plot) if args.plot else []
    arrays = ("dist", "fpr", "tpr", "scores", "labels")
    report = {"transform": args.transform, "flip": args.flip, "nfolds": args.nfolds,
              "results": [{k: v for k, v in r.items() if k not in arrays} for r in results],
              "plots": plots}
    if args.output:
        _write_json(args.output, report)
    return report


def _write_json(path, report):
    from ..fileio import atomic_write_text

    atomic_write_text(path, json.dumps(report, indent=2))


def main(argv=None):
    """Console entry point; bad input prints `error: ...` and exits with status 2."""
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except (DataError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
