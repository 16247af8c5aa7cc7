"""`align` (`tools/align.py`, `face-align`): warp a folder of photos onto the ArcFace template from
a landmark file (`recognition.data.writing.align.align_folder`)."""
import argparse
import sys

from ..data.writing.align import LANDMARK_NAMES, align_folder
from .entry import entry_point

__all__ = ["build_parser", "main"]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="align.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Warp photos onto the ArcFace 5-point template with the least-squares\n"
                    "similarity InsightFace uses, writing DST/<path> for every SRC/<path> the\n"
                    "landmark file names.",
        epilog="Landmark files: 5 points in source pixels, in this order:\n  " + LANDMARK_NAMES
               + "\n(left and right as seen in the image: the left eye has the smaller x).\n"
               "  TSV (any name not ending in .lst): one row per face,\n"
               "      relative/path  x1 y1  x2 y2  x3 y3  x4 y4  x5 y5\n"
               "    tab-separated (a line without a tab may use spaces; then the path may not\n"
               "    contain spaces).\n"
               "  .lst (InsightFace face2rec): 17 tab-separated fields per row,\n"
               "      0  relative/path  label  bx1 by1 bx2 by2  x1 x2 x3 x4 x5  y1 y2 y3 y4 y5\n"
               "    (aligned flag 0, integer label and bounding box, both ignored, then the 5 x\n"
               "    and then the 5 y). Rows with flag 1 or without landmarks are skipped.\n"
               "Missing or undecodable images, malformed rows and degenerate landmarks (all\n"
               "at one point, collinear, or in an order no similarity fits) are printed as\n"
               "'skipped: ...' and counted in the summary.\n"
               "Exit status: 0 every row aligned, 1 some skipped, 2 bad input (no SRC, no\n"
               "landmark file, a bad flag).")
    parser.add_argument("src", metavar="SRC", help="folder the paths in the landmark file are "
                                                   "relative to")
    parser.add_argument("dst", metavar="DST", help="output folder (created); each face is "
                        "written under its own relative path, in the format its extension "
                        "names (JPEG quality 95)")
    parser.add_argument("--landmarks", metavar="FILE", required=True,
                        help="landmark file: a TSV, or a face2rec .lst (told by the extension); "
                             "layouts below")
    parser.add_argument("--size", type=int, default=112, metavar="S",
                        help="output side in pixels (default 112); the 112x112 template is "
                             "scaled by S/112 about the image corner, so the face fills the "
                             "same share of the crop")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="processes that decode, warp and write (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


@entry_point(OSError)  # OSError: e.g. DST cannot be created
def main(argv=None):
    args = build_parser().parse_args(argv)
    skips = align_folder(args.src, args.dst, args.landmarks, args.size, args.workers,
                         progress=not args.quiet)
    return 1 if len(skips) else 0


if __name__ == "__main__":
    sys.exit(main())
