"""Inputs im2rec leaves out: each reported by path as it happens, counted per reason.

One bad image or folder in a million must not abort a pack, nor vanish unnoticed: it is
printed as `skipped: PATH: why` and the final summary says how many were left out and why.
"""
import os
from collections import Counter

from ...errors import DataError

__all__ = ["Skip", "SkipLog", "printable_path", "EMPTY", "UNREADABLE", "TRUNCATED",
           "UNDECODABLE", "NOT_ENCODED", "FAILED", "UNREADABLE_FOLDER", "BAD_NAME"]

EMPTY, UNREADABLE, TRUNCATED = "empty file", "unreadable file", "truncated JPEG"
UNDECODABLE, NOT_ENCODED, FAILED = "not decodable", "could not be re-encoded", "failed"
UNREADABLE_FOLDER, BAD_NAME = "unreadable folder", "name not UTF-8"


class Skip(DataError):
    """An input left out, with the reason it is counted under."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


def printable_path(path):
    """`path` as text even when its bytes are not UTF-8 (shown as \\xNN escapes)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


class SkipLog:
    """Collects skipped inputs; `write(line)` prints each one (e.g. `tqdm.write`, stderr)."""

    def __init__(self, write):
        self.write = write
        self.messages = []
        self.counts = Counter()

    def add(self, reason, message):
        self.messages.append(message)
        self.counts[reason] += 1
        self.write(f"skipped: {message}")

    def __len__(self):
        return len(self.messages)

    def summary(self):
        """`skipped 3 (2 empty file, 1 unreadable folder)`, or `skipped 0`."""
        if not self.messages:
            return "skipped 0"
        counts = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))
        detail = ", ".join(f"{n} {reason}" for reason, n in counts)
        return f"skipped {len(self.messages)} ({detail})"
