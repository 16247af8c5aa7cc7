"""`rec_check` (`tools/rec_check.py`, `face-rec-check`): find every damaged record of a `.rec`,
decoding each image (`recognition.data.integrity.rec_check`), and name each by key and offset."""
import argparse
import os
import sys

from ..data.integrity.rec_check import check_records, summary_line
from ..data.reading.recordio import describe_record
from ..errors import DataError
from .entry import entry_point

__all__ = ["build_parser", "main"]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="rec_check.py",
        description="Check every record of a .rec/.idx dataset: framing (record markers, "
                    "lengths, the .idx), image headers, and a full decode of every image "
                    "(cut JPEGs, corrupt JPEG data, images that do not decode or have another "
                    "size). Prints each damaged record (key, byte offset, reason) and a "
                    "summary. Exit status: 0 all sound, 1 damaged records found, 2 bad input.")
    parser.add_argument("rec", help=".rec path, its prefix, or a folder holding train.rec")
    parser.add_argument("--workers", type=int, metavar="N", default=len(os.sched_getaffinity(0)),
                        help="decoding processes (default: the CPUs this process may use)")
    parser.add_argument("--image-size", metavar="HxW", default="auto",
                        help="size every image must have, e.g. 112x112 (default: the "
                             "'property' file's, else the first image's); 'any' skips the test")
    parser.add_argument("--damaged-keys", metavar="FILE",
                        help="write the keys of the damaged records to FILE, one per line "
                             "(in a plain-layout file a key is the image's index in the .lst: "
                             "drop those lines and repack)")
    parser.add_argument("--framing-only", action="store_true",
                        help="check record framing and image headers only, without decoding "
                             "(seconds for millions of records)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _parse_size(text):
    if text in ("auto", "any"):
        return {"auto": "auto", "any": None}[text]
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise DataError(f"--image-size must look like 112x112, got {text!r}") from None
    return height, width


@entry_point(OSError)
def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.workers < 1:
        raise DataError(f"--workers must be at least 1, got {args.workers}")
    report = check_records(args.rec, workers=args.workers,
                           image_size=_parse_size(args.image_size),
                           progress=not args.quiet, decode=not args.framing_only)
    for d in report.damaged:
        print(describe_record(d.key, d.offset, d.reason))
    if args.damaged_keys:
        with open(args.damaged_keys, "w") as f:
            f.writelines(f"{d.key}\n" for d in report.damaged)
    print(summary_line(report, decode=not args.framing_only))
    return 1 if report.damaged else 0


if __name__ == "__main__":
    sys.exit(main())
