"""`face-summary NAME...` (`tools/summary.py`): parameters, FLOPs, output shape and exported
size of registry backbones as a Markdown table (`recognition.backbones.summary`)."""
import argparse
import ast
import sys

import mxnet as mx

from ..backbones import default_input_size, get_model_list
from ..backbones.summary import HEADER, format_row, summarize
from .entry import entry_point

__all__ = ["build_parser", "parse_options", "main"]


def parse_options(pairs):
    """`key=value` strings -> kwargs; values are Python literals when they parse, else strings."""
    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    return options


def build_parser():
    parser = argparse.ArgumentParser(
        prog="face-summary",
        description="Print parameters, FLOPs (multiply-accumulates of conv/FC layers), output "
                    "shape and exported size of registry backbones as a Markdown table.")
    parser.add_argument("names", nargs="*", help="backbone names (see --list); none with --all")
    parser.add_argument("--all", action="store_true", help="summarize every registry entry")
    parser.add_argument("--list", action="store_true", help="print the registry names and exit")
    parser.add_argument("--input-size", type=int, default=None,
                        help="square input side in pixels (default: each backbone's own, "
                             "112 for face nets, 75 for FacialNet)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="constructor option, repeatable, e.g. --set act=prelu --set trsf=True")
    return parser


@entry_point(ValueError, TypeError, mx.MXNetError)
def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.list:
        print("\n".join(get_model_list()))
        return 0
    names = get_model_list() if args.all else args.names
    if not names:
        raise ValueError("give backbone names or --all; valid: " + ", ".join(get_model_list()))
    for name in names:
        default_input_size(name)  # unknown names fail before any output
    options = parse_options(args.set)
    print(HEADER)
    for name in names:
        try:
            row = format_row(summarize(name, args.input_size, **options))
        except TypeError as err:  # an option this backbone does not take
            raise ValueError(f"{name}: {err} (--set applies to every backbone named)") from None
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
