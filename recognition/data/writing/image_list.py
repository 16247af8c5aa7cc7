""".lst image lists as MXNet's im2rec writes them: `index<TAB>label(s)<TAB>relative/path`.

A folder per identity gives one label per folder, numbered in sorted walk order, as MXNet's
`im2rec --recursive` does, so lists made here and there agree. A folder that cannot be read
and a file name that is not UTF-8 (a `.lst` is UTF-8 text, and MXNet's tools read it as
such) are reported by path and left out, never dropped silently nor a crash.
"""
import os
import random
import sys

from ...errors import DataError
from .skips import BAD_NAME, UNREADABLE_FOLDER, SkipLog, printable_path

__all__ = ["list_images", "write_lst", "read_lst", "split_list", "check_extensions"]

# Extensions OpenCV's imread decodes (the ones im2rec can pack).
OPENCV_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm",
                     ".pgm", ".pbm", ".pnm", ".jp2", ".sr", ".ras", ".exr", ".hdr", ".pic"}


def check_extensions(exts):
    """Normalise `['.jpg', 'png']` and refuse ones OpenCV cannot read."""
    out = []
    for ext in exts:
        ext = ext.lower() if ext.startswith(".") else "." + ext.lower()
        if ext not in OPENCV_EXTENSIONS:
            raise DataError(f"unknown image extension {ext!r}: OpenCV cannot decode it "
                            f"(use e.g. .jpg .jpeg .png .bmp .webp)")
        out.append(ext)
    return out


def list_images(root, recursive=True, exts=(".jpeg", ".jpg", ".png"), skips=None):
    """`[(index, relpath, label)]` of the images under `root`, in sorted order.

    Unreadable folders and non-UTF-8 names go to `skips` (a SkipLog; default: printed on
    stderr) and are left out; a folder with no listable image gets no label.
    """
    if not os.path.isdir(root):
        raise DataError(f"{root}: image root not found or not a folder")
    exts = set(check_extensions(exts))
    skips = skips if skips is not None else SkipLog(lambda line: print(line, file=sys.stderr))
    items, labels = [], {}
    for folder, names in _image_files(root, recursive, exts, skips):
        for name in names:
            rel = os.path.relpath(os.path.join(folder, name), root)
            if not _is_utf8(rel):
                skips.add(BAD_NAME, f"{printable_path(os.path.join(root, rel))}: file name is "
                                    f"not valid UTF-8 (rename it)")
                continue
            label = labels.setdefault(folder, len(labels)) if recursive else 0
            items.append((len(items), rel, label))
    if not items:
        how = "in any sub-folder" if recursive else "directly inside (add --recursive?)"
        raise DataError(f"{root}: no images with extensions {sorted(exts)} {how}")
    return items


def _image_files(root, recursive, exts, skips):
    """`(folder, sorted image names)` in sorted walk order; unreadable folders go to `skips`."""
    def unreadable(exc):
        if os.path.normpath(exc.filename) == os.path.normpath(root):
            raise DataError(f"{printable_path(root)}: cannot read the image root "
                            f"({exc.strerror})")
        skips.add(UNREADABLE_FOLDER, f"{printable_path(exc.filename)}: cannot read folder "
                                     f"({exc.strerror}); its images are left out")

    def wanted(names):
        return sorted(n for n in names if os.path.splitext(n)[1].lower() in exts)

    if not recursive:
        try:
            names = os.listdir(root)
        except OSError as exc:
            unreadable(exc)
        yield root, wanted(n for n in names if os.path.isfile(os.path.join(root, n)))
        return
    for folder, dirs, files in os.walk(root, onerror=unreadable, followlinks=True):
        dirs.sort()
        yield folder, wanted(files)


def _is_utf8(name):
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def write_lst(path, items):
    """Write items `(index, relpath, label or labels)` with MXNet's float formatting."""
    with open(path, "w", encoding="utf-8") as f:
        for index, relpath, *labels in items:
            flat = _flatten(labels)
            f.write(f"{index}\t" + "".join(f"{float(v):f}\t" for v in flat) + f"{relpath}\n")


def _flatten(values):
    out = []
    for v in values:
        out.extend(v if isinstance(v, (list, tuple)) else [v])
    return out


def read_lst(path):
    """Read a `.lst` into `[(index, relpath, [labels...])]`; a bad line is an error."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: list file not found (make it with --list)")
    items = []
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for lineno, line in enumerate(f, 1):
            parts = [p.strip() for p in line.rstrip("\n").split("\t")]
            if len(parts) < 3:
                if line.strip():
                    raise DataError(f"{path}:{lineno}: expected 'index<TAB>label<TAB>path', "
                                    f"got {line.strip()!r}")
                continue
            try:
                items.append((int(parts[0]), parts[-1], [float(v) for v in parts[1:-1]]))
            except ValueError:
                raise DataError(f"{path}:{lineno}: index and labels must be numbers, "
                                f"got {line.strip()!r}") from None
    return items


def split_list(items, chunks=1, train_ratio=1.0, test_ratio=0.0, shuffle=True, seed=100):
    """`{suffix: items}` as MXNet names them: '', '_train', '_val', '_test' (+ '_<chunk>')."""
    items = list(items)
    if shuffle:
        random.Random(seed).shuffle(items)
    size = (len(items) + chunks - 1) // chunks
    out = {}
    for c in range(chunks):
        chunk = items[c * size:(c + 1) * size]
        tag = f"_{c}" if chunks > 1 else ""
        n_train, n_test = int(size * train_ratio), int(size * test_ratio)
        if train_ratio == 1.0:
            out[tag] = chunk
            continue
        if test_ratio:
            out[tag + "_test"] = chunk[:n_test]
        if train_ratio + test_ratio < 1.0:
            out[tag + "_val"] = chunk[n_test + n_train:]
        out[tag + "_train"] = chunk[n_test:n_test + n_train]
    return out
