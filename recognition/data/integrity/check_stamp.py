"""Remember that a `.rec`/`.idx` pair passed the open-time record check, so a big file is
checked once, not at every start of every worker.

The stamp is a small JSON file keyed by both files' path, size and modification time. It goes
beside the dataset (or into the iterator's `cache_dir`); when that folder is read-only it goes
to the user's cache folder, and when that fails too the check simply runs again next time.
Small files are not stamped: checking them costs less than a stamp file beside them.
"""
import hashlib
import json
import os

from ...fileio import atomic_write_text

__all__ = ["is_checked", "mark_checked", "STAMP_MIN_RECORDS"]

STAMP_MIN_RECORDS = 50_000
_VERSION = 1  # bump when the check finds more, so older stamps are not trusted


def _source(rec_path, idx_path):
    rec, idx = os.stat(rec_path), os.stat(idx_path)
    return {"version": _VERSION, "rec": os.path.abspath(rec_path),
            "rec_size": rec.st_size, "rec_mtime_ns": rec.st_mtime_ns,
            "idx_size": idx.st_size, "idx_mtime_ns": idx.st_mtime_ns}


def _user_cache():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "face-recognition", "rec-checks")


def stamp_paths(rec_path, cache_dir=None):
    """Where the stamp may be: beside the file (or in `cache_dir`), then the user cache."""
    rec_path = os.path.abspath(rec_path)
    name = os.path.basename(rec_path)[:-4] + ".checked.json"
    digest = hashlib.sha1(rec_path.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return [os.path.join(cache_dir or os.path.dirname(rec_path), name),
            os.path.join(_user_cache(), f"{digest}-{name}")]


def is_checked(rec_path, idx_path, cache_dir=None):
    """True when a stamp says these exact files passed the check."""
    source = _source(rec_path, idx_path)
    for path in stamp_paths(rec_path, cache_dir):
        try:
            with open(path) as f:
                if json.load(f) == source:
                    return True
        except (OSError, ValueError):
            continue
    return False


def mark_checked(rec_path, idx_path, num_records, cache_dir=None):
    """Write the stamp where possible; returns its path, or None when not stamped."""
    if num_records < STAMP_MIN_RECORDS:
        return None
    text = json.dumps(_source(rec_path, idx_path))
    for path in stamp_paths(rec_path, cache_dir):
        try:
            return atomic_write_text(path, text)
        except OSError:
            continue
    return None
