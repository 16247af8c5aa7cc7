"""Atomic file writes: a kill mid-write never leaves a half-written file under the real name.

The content goes to a temporary file in the same folder (same file system), is flushed to
disk, then renamed over the target in one step.
"""
import os

__all__ = ["atomic_write", "atomic_write_text"]


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
