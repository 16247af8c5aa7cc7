"""Atomic file writes: a kill mid-write never leaves a half-written file under the real name.

The content goes to a temporary file in the same folder (same file system), is flushed to
disk, then renamed over the target in one step.
"""
import errno
import os

__all__ = ["atomic_write", "atomic_write_text", "write_failure_message"]

_LOW_SPACE = 1 << 20  # bytes free below which a failed write is reported as a full disk


def atomic_write(path, write, suffix=""):
    """Call `write(tmp_path)`, flush the file to disk, then rename it to `path`.

    `suffix` ends the temporary name, for writers that choose the format by extension.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}{suffix}"
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def atomic_write_text(path, text):
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    return atomic_write(path, write)


def write_failure_message(exc, folder, what):
    """`no space left on device writing DIR` for a full disk, the OS's reason otherwise."""
    try:
        stats = os.statvfs(folder)
        free = stats.f_bavail * stats.f_frsize
    except OSError:
        free = None
    if getattr(exc, "errno", None) == errno.ENOSPC or (free is not None and free < _LOW_SPACE):
        return f"no space left on device writing {folder} ({what} not saved)"
    reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return f"cannot write {folder} ({what} not saved): {reason}"
