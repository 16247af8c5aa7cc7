"""`tools/eval_attributes.py`: held-out accuracy of an attribute network checkpoint.

Scores every output of a checkpoint written by training an attribute config (e.g.
`adience_facialnet`: gender and age group) on a `.rec` packed with `--pack-label`, and prints
exact accuracy per output plus 1-off accuracy for outputs with more than two classes.
"""
import argparse
import sys

from ..eval.attributes import AttributeEvaluator, format_attribute_report
from ..model_spec import load_network, parse_prefix_epoch
from .entry import entry_point
from .verify import _context, _image_size, _write_json

__all__ = ["build_parser", "run", "main"]


def build_parser():
    p = argparse.ArgumentParser(
        prog="face-eval-attributes", description=__doc__.splitlines()[0],
        epilog="example: python tools/eval_attributes.py --model work_dirs/adience_facialnet/"
        "best,45000 --rec data/adience/val.rec --image-size 75,75")
    p.add_argument("--model", required=True, metavar="PREFIX,EPOCH",
                   help="checkpoint prefix-symbol.json + prefix-EPOCH.params (zero-padded to 4)")
    p.add_argument("--rec", required=True, help="held-out .rec packed with --pack-label: "
                   "labels [identity, attr1, attr2, ...]")
    p.add_argument("--names", default="gender,age_group",
                   help="comma-separated names of the network's outputs, in order "
                   "(default: gender,age_group)")
    p.add_argument("--image-size", default=None, metavar="H,W",
                   help="resize images to the network's input (default: as stored)")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    p.add_argument("--gpu", type=int, default=-1, help="GPU id; -1 (default) runs on the CPU")
    p.add_argument("--output", default=None, help="write a JSON report here")
    return p


def run(args):
    """Load, predict, score; returns `{"model", "rec", "results": [per-output dicts]}`."""
    prefix, epoch = parse_prefix_epoch(args.model, "--model")
    if args.batch_size < 1:
        raise ValueError("--batch-size must be at least 1")
    names = [n.strip() for n in args.names.split(",") if n.strip()]
    ctx = _context(args.gpu)
    net = load_network(prefix, epoch, ctx)
    evaluator = AttributeEvaluator(args.rec, len(names), _image_size(args.image_size), ctx,
                                   names, args.batch_size)
    report = {"model": args.model, "rec": args.rec, "results": evaluator(net)}
    if args.output:
        _write_json(args.output, report)
    return report


@entry_point(ValueError, OSError)
def main(argv=None):
    args = build_parser().parse_args(argv)
    report = run(args)
    count = report["results"][0]["count"]
    print(f"{args.model} on {args.rec} ({count} images): "
          f"{format_attribute_report(report['results'])}")
    if args.output:
        print(f"report: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
