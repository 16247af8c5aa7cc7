"""`rec_convert` (`tools/rec_convert.py`, `face-rec-convert`): rewrite a `.rec` in the other
layout, plain MXNet or InsightFace (`recognition.data.writing.convert.convert_layout`)."""
import argparse
import os

import mxnet as mx

from ..data.reading.recordio import INSIGHTFACE, PLAIN
from ..data.writing.convert import convert_layout
from ..errors import DataError
from ..fileio import write_failure_message
from .entry import entry_point

__all__ = ["main"]


@entry_point()
def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="rec_convert.py",
        description="Convert a .rec/.idx dataset between the plain MXNet layout and the "
                    "InsightFace layout (header record 0, identity records, property file). "
                    "Image payloads are copied byte for byte.")
    parser.add_argument("src", help="source .rec (or its prefix, or a folder with train.rec)")
    parser.add_argument("dst", help="output .rec path (its .idx is written beside it)")
    parser.add_argument("--layout", choices=[PLAIN, INSIGHTFACE], required=True,
                        help="layout of the output file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        convert_layout(args.src, args.dst, args.layout, progress=not args.quiet)
    except (OSError, mx.base.MXNetError) as exc:  # the output could not be written
        folder = os.path.dirname(os.path.abspath(args.dst))
        raise DataError(write_failure_message(exc, folder, args.dst)) from None
    return 0
