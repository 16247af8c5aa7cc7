"""The one shape of every command-line entry point: bad input ends in one line, not a traceback.

    @entry_point(OSError)
    def main(argv=None):
        args = build_parser().parse_args(argv)
        ...
        return 0

`tools/X.py` is a thin wrapper that puts the repository on `sys.path` and calls `main()`.
"""
import functools
import sys

from ..errors import UserError

__all__ = ["entry_point", "BAD_INPUT"]

BAD_INPUT = 2  # exit status after `error: ...`, as argparse uses for a bad flag


def entry_point(*errors, exit_codes=None):
    """Decorate `main(argv=None)`, which returns an exit status.

    A `UserError`, or an instance of a class in `errors`, prints `error: <message>` on stderr and
    returns 2; `exit_codes` maps more classes to their own status (e.g. `{NonFiniteLoss: 3}`).
    Any other exception is a bug and keeps its traceback.
    """
    codes = dict(exit_codes or {})
    for cls in (UserError,) + errors:
        codes.setdefault(cls, BAD_INPUT)
    caught = tuple(codes)

    def decorate(main):
        @functools.wraps(main)
        def wrapper(argv=None):
            try:
                return main(argv)
            except caught as exc:
                print(f"error: {exc}", file=sys.stderr)
                return next(code for cls, code in codes.items() if isinstance(exc, cls))
        return wrapper
    return decorate
