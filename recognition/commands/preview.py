"""`preview` (`tools/preview.py`, `face-preview`): draw a contact sheet of a `.rec` into an image
file (`recognition.data.reading.preview.make_sheet`)."""
import argparse
import os
import sys

import cv2

from ..data.reading.preview import make_sheet
from ..data.reading.recordio import describe_record
from ..errors import DataError
from .entry import entry_point

__all__ = ["build_parser", "main"]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="preview.py",
        description="Draw a contact sheet of a .rec: N identities (one per row, its label on "
                    "the left) x K images (record key under each), to check alignment and "
                    "labels before a long run. Damaged records are skipped and named.")
    parser.add_argument("rec", help=".rec path, its prefix, or a folder holding train.rec")
    parser.add_argument("-o", "--output", required=True, metavar="PNG", help="sheet to write")
    parser.add_argument("--identities", type=int, default=8, metavar="N",
                        help="rows: identities drawn at random (default 8)")
    parser.add_argument("--per-identity", type=int, default=6, metavar="K",
                        help="images per identity (default 6)")
    parser.add_argument("--seed", type=int, default=0, help="which identities and images")
    return parser


@entry_point(OSError)
def main(argv=None):
    args = build_parser().parse_args(argv)
    sheet = make_sheet(args.rec, args.identities, args.per_identity, args.seed)
    for key, offset, reason in sheet.skipped:
        print(f"skipped {describe_record(key, offset, reason)}", file=sys.stderr)
    folder = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(folder, exist_ok=True)
    if not cv2.imwrite(args.output, sheet.image):
        raise DataError(f"{args.output}: could not write the sheet (use a .png or .jpg name)")
    h, w = sheet.tile_size
    print(f"{args.output}: {len(sheet.rows)} identities x {args.per_identity} images "
          f"({w}x{h} each), {len(sheet.skipped)} damaged record(s) skipped")
    return 0
