"""`face-verify` / `tools/verify.py`: score checkpoints on `.bin` pair sets and IJB-B/C.

Flags follow InsightFace's `verification.py`. Models are MXNet checkpoints or ONNX files
(`eval.onnx_model`), mixed freely. Targets come from `eval.targets` (the registry training uses
too); each is decoded once and shared by all models; a report line per model and target, an
optional JSON report and PNG figures (one ROC per target overlaying every model).
"""
import argparse
import json
import os
import sys

from .entry import entry_point

__all__ = ["build_parser", "run", "main"]


def build_parser():
    p = argparse.ArgumentParser(
        prog="face-verify", description="Verification accuracy of face-embedding models (MXNet "
        "checkpoints, ONNX files) on LFW/CFP-FP/AgeDB-style .bin pair sets (InsightFace "
        "protocol) and IJB-B/C.")
    p.add_argument("--data-dir", default=".", help="folder holding <target>.bin files; for "
                   "ijbb/ijbc the IJB root (with meta/ and loose_crop/, or IJBB/ IJBC/ below)")
    p.add_argument("--model", action="append", required=True,
                   metavar="PREFIX[,EPOCHS]|FILE.onnx",
                   help="checkpoint prefix-symbol.json + prefix-NNNN.params; EPOCHS is N, "
                   "N|M|... or N-M (saved ones in the range); no epochs = all saved. Or an ONNX "
                   "model, run by onnxruntime (the 'export' extra). Repeatable")
    p.add_argument("--target", default="lfw,cfp_fp,agedb_30",
                   help="comma-separated targets: any <name> with <data-dir>/<name>.bin, "
                   "or ijbb/ijbc")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    p.add_argument("--nfolds", type=int, default=10, help="cross-validation folds (file order)")
    p.add_argument("--far", type=float, default=1e-3, help="FAR at which VAL is reported")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True,
                   help="sum the embeddings of each image and its mirror (the published protocol)")
    p.add_argument("--gpu", type=int, default=-1, help="GPU id; -1 (default) runs on the CPU")
    p.add_argument("--layer", default=None, help="embedding layer name of MXNet checkpoints "
                   "(default: found from the graph: fc1, else the classifier input, else the "
                   "network output); an ONNX model's first output is its embedding")
    p.add_argument("--image-size", default=None, metavar="H,W",
                   help="resize pair images to this size before embedding (default: as stored)")
    p.add_argument("--transform", default="none", metavar="NAME[:VALUE]",
                   help="test-time transform: none, low_light, blur[:sigma], noise[:sigma], "
                   "grayscale, downscale[:factor]")
    p.add_argument("--output", default=None, help="write a JSON report here")
    p.add_argument("--plot", default=None, metavar="DIR",
                   help="write PNGs to DIR: per target a ROC (TAR against log FAR, TAR marked "
                   "at FAR 1e-6..1e-1) with a curve per model; for pair sets also "
                   "precision-recall and distance histograms")
    p.add_argument("--workers", type=int, default=4, help="IJB image decode/align threads")
    _onnx_flags(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _onnx_flags(p):
    from ..eval.onnx_model import CHOICES

    g = p.add_argument_group("ONNX input", "how .onnx models take images; each defaults to the "
                             "metadata face-export-onnx writes (raw RGB NCHW), else InsightFace's "
                             "zoo convention (RGB, normalized, layout read from the input shape)")
    g.add_argument("--onnx-layout", choices=CHOICES["layout"],
                   help="axis order (default: 3 on axis 1 is NCHW, on axis 3 NHWC)")
    g.add_argument("--onnx-channels", choices=CHOICES["channels"], help="channel order")
    g.add_argument("--onnx-input", choices=CHOICES["input"],
                   help="pixel values: raw 0..255, or normalized (x - 127.5) / 127.5")


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


def _options(args):
    """The scoring options of `args` (the transform's name checked here, before any loading)."""
    from ..eval.targets import Options
    from ..eval.transforms import get_transform

    get_transform(args.transform)
    if args.batch_size < 1:
        raise ValueError("--batch-size must be at least 1")
    return Options(batch_size=args.batch_size, flip=args.flip, nfolds=args.nfolds,
                   far=args.far, progress=not args.quiet, workers=args.workers,
                   image_size=_image_size(args.image_size), transform=args.transform)


def _score(target, data, model):
    """One model on one loaded target: prints its line; the result, naming model and target."""
    size = target.input_size(data)
    if size is not None:
        model.check_input_size(size, target.path)
    res = target.score(data, model)
    res.update(model=model.name, prefix=model.prefix, epoch=model.epoch, target=target.name,
               layer=model.layer)
    print(f"[{target.name}][{model.name}] {target.report(res)}", flush=True)
    return res


def _labels(rows):
    """Legend and file names: `name,epoch` (an ONNX file: its name), with as many parent
    folders as tell models apart."""
    parts = [os.path.normpath(r["prefix"]).split(os.sep) for r in rows]
    epochs = ["" if r["epoch"] is None else f",{r['epoch']}" for r in rows]
    for depth in range(1, max(map(len, parts)) + 1):
        labels = ["/".join(p[-depth:]) + e for p, e in zip(parts, epochs)]
        if len(set(labels)) == len(labels):
            break
    return labels


def _plots(scored, plot_dir):
    """scored: [(target, [result per model])]; the PNG paths written."""
    from ..eval.plots import write_plots

    written = []
    for target, rows in scored:
        written += write_plots(target.name, list(zip(_labels(rows), map(target.plot_data, rows))),
                               plot_dir)
    return written


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
    import numpy as np

    from ..eval.embed import parse_models
    from ..eval.targets import open_target

    options = _options(args)
    names = [t.strip() for t in args.target.split(",") if t.strip()]
    targets = [open_target(n, args.data_dir, options, f"--data-dir {args.data_dir}")
               for n in names]
    specs = parse_models(args.model)
    if any(epoch is not None for _, epoch in specs):  # onnxruntime picks its own device
        options.ctx = _context(args.gpu)  # the targets share `options`: set after their checks
    models = [_load(path, epoch, args, options.ctx) for path, epoch in specs]
    scored = []
    for target in targets:
        data = target.load()
        scored.append((target, [_score(target, data, m) for m in models]))
        del data  # one target's images in memory at a time
    plots = _plots(scored, args.plot) if args.plot else []
    results = [r for _, rows in scored for r in rows]
    report = {"transform": args.transform, "flip": args.flip, "nfolds": args.nfolds,
              "results": [{k: v for k, v in r.items() if not isinstance(v, np.ndarray)}
                          for r in results],
              "plots": plots}
    if args.output:
        _write_json(args.output, report)
    return report


def _load(path, epoch, args, ctx):
    """An MXNet checkpoint, or with no epoch an ONNX file (`embed.parse_models`)."""
    from ..eval.embed import load_model
    from ..eval.onnx_model import load_onnx

    if epoch is None:
        return load_onnx(path, args.gpu, args.onnx_layout, args.onnx_channels, args.onnx_input)
    return load_model(path, epoch, ctx, args.layer)


def _write_json(path, report):
    from ..fileio import atomic_write_text

    atomic_write_text(path, json.dumps(report, indent=2))


@entry_point(ValueError, OSError)
def main(argv=None):
    """Console entry point; bad input prints `error: ...` and exits with status 2."""
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
