""".lst image lists as MXNet's im2rec writes them: `index<TAB>label(s)<TAB>relative/path`.

A folder per identity gives one label per folder, numbered in sorted walk order, as MXNet's
`im2rec --recursive` does, so lists made here and there agree.
"""
import os
import random

from ..errors import DataError

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


def list_images(root, recursive=True, exts=(".jpeg", ".jpg", ".png")):
    """`[(index, relpath, label)]` of the images under `root`, in sorted order."""
    if not os.path.isdir(root):
        raise DataError(f"{root}: image root not found or not a folder")
    exts = set(check_extensions(exts))
    items, labels = [], {}
    if recursive:
        for path, dirs, files in os.walk(root, followlinks=True):
            dirs.sort()
            for name in sorted(files):
                if os.path.splitext(name)[1].lower() in exts:
                    label = labels.setdefault(path, len(labels))
                    items.append((len(items), os.path.relpath(os.path.join(path, name), root),
                                  label))
    else:
        for name in sorted(os.listdir(root)):
            full = os.path.join(root, name)
            if os.path.isfile(full) and os.path.splitext(name)[1].lower() in exts:
                items.append((len(items), name, 0))
    if not items:
        how = "in any sub-folder" if recursive else "directly inside (add --recursive?)"
        raise DataError(f"{root}: no images with extensions {sorted(exts)} {how}")
    return items


def write_lst(path, items):
    """Write items `(index, relpath, label or labels)` with MXNet's float formatting."""
    with open(path, "w") as f:
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
    with open(path) as f:
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
