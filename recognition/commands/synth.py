"""`synth` (`face-synth`, `python -m recognition.synthetic`): generate the synthetic face dataset
(`recognition.synthetic.generate`) and pack its training images into `train.rec/.idx/.lst`."""
import argparse
import os
import sys

from ..data.writing.packing import pack_image_folder
from ..synthetic.generate import attribute_labels, generate
from ..synthetic.nuisance import PRESETS
from .entry import entry_point

__all__ = ["build_parser", "main"]


def build_parser():
    ap = argparse.ArgumentParser(
        prog="face-synth", description="Generate the synthetic face dataset: an image folder "
        "per identity, a packed training .rec and a held-out verification .bin.")
    ap.add_argument("--out", required=True, help="output folder (images/, attributes.tsv, "
                    "verify.bin, verify_attributes.rec, meta.json, train.rec/.idx/.lst)")
    ap.add_argument("--identities", type=int, default=1000, help="training identities "
                    "(default 1000)")
    ap.add_argument("--images-per-identity", type=int, default=40, help="images rendered per "
                    "training identity (default 40)")
    ap.add_argument("--verify-identities", type=int, default=200, help="held-out identities "
                    "for verify.bin, never in training (default 200)")
    ap.add_argument("--pairs", type=int, default=6000, help="pairs in verify.bin, half genuine "
                    "and half impostor, in 10 LFW-like folds (default 6000)")
    ap.add_argument("--seed", type=int, default=0, help="the same seed gives byte-identical "
                    "images whatever the number of workers (default 0)")
    ap.add_argument("--workers", type=int, default=None, help="rendering (and packing) "
                    "processes (default: the number of CPUs)")
    ap.add_argument("--nuisance", choices=sorted(PRESETS), default="aligned",
                    help="per-image variation: 'aligned' (the demo's: aligned crops, mild "
                    "capture damage) or 'wild' (more pose, looser crops, more occluders, harsher "
                    "light, blur, noise and JPEG); default aligned")
    ap.add_argument("--quality", type=int, default=95, help="JPEG quality of the written "
                    "files (the rendered images already carry random JPEG damage; default 95)")
    ap.add_argument("--layout", choices=("plain", "insightface"), default="plain",
                    help="record layout of train.rec: plain MXNet or InsightFace's (header "
                    "record, identity ranges, property file); default plain")
    ap.add_argument("--pack-label", action="store_true", help="append the two attributes "
                    "(gender, age group) to each record's label: [identity, gender, age]")
    ap.add_argument("--no-pack", action="store_true", help="write the image folder and "
                    "verify.bin only, no train.rec")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing images/ "
                    "folder under --out")
    return ap


@entry_point(ValueError, OSError)
def main(argv=None):
    args = build_parser().parse_args(argv)
    meta = generate(args.out, args.identities, args.images_per_identity,
                    args.verify_identities, args.pairs, args.seed, args.workers,
                    args.quality, args.overwrite, args.nuisance)
    if not args.no_pack:
        extra = (attribute_labels(os.path.join(args.out, "attributes.tsv"))
                 if args.pack_label else None)
        pack_image_folder(os.path.join(args.out, "images"), os.path.join(args.out, "train"),
                          layout=args.layout, num_workers=args.workers or os.cpu_count(),
                          extra_labels=extra, quality=args.quality)
    print(f"wrote {meta['identities']} x {meta['images_per_identity']} training images, "
          f"{meta['pairs']} verification pairs to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
