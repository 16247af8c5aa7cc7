"""`im2rec` (`tools/im2rec.py`, `face-im2rec`): MXNet's command line for making `.lst` and
`.rec`/`.idx`, plus the InsightFace layout.

Two steps, as with MXNet's tool:
    im2rec.py PREFIX ROOT --list --recursive      # PREFIX.lst: one label per identity folder
    im2rec.py PREFIX ROOT --num-thread 2          # PREFIX.rec + PREFIX.idx from every PREFIX*.lst
Add `--layout insightface` to the second step for InsightFace's layout and `property` file.
"""
import argparse
import glob
import os
import sys

from ..data.reading.recordio import INSIGHTFACE, PLAIN
from ..data.writing.image_list import list_images, read_lst, split_list, write_lst
from ..data.writing.packing import EncodeOptions, write_records
from ..data.writing.skips import SkipLog
from ..errors import DataError
from .entry import entry_point

__all__ = ["main", "build_parser"]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="im2rec.py",
        description="Create an image list and then a RecordIO dataset from it; same flags as "
                    "MXNet's tools/im2rec.py, plus --layout insightface.")
    parser.add_argument("prefix", help="prefix of the .lst/.rec/.idx files to read or write")
    parser.add_argument("root", help="folder holding the images (a sub-folder per identity "
                                     "with --recursive)")
    lst = parser.add_argument_group("making image lists (--list)")
    lst.add_argument("--list", action="store_true",
                     help="write PREFIX.lst from the images under ROOT; without it, pack every "
                          "PREFIX*.lst into a .rec")
    lst.add_argument("--exts", nargs="+", default=[".jpeg", ".jpg", ".png"],
                     help="image extensions to list (default: .jpeg .jpg .png)")
    lst.add_argument("--chunks", type=int, default=1, help="split the list into this many chunks")
    lst.add_argument("--train-ratio", type=float, default=1.0,
                     help="fraction of images for PREFIX_train.lst (1.0: one PREFIX.lst)")
    lst.add_argument("--test-ratio", type=float, default=0.0,
                     help="fraction of images for PREFIX_test.lst")
    lst.add_argument("--recursive", action="store_true",
                     help="walk sub-folders; each folder's images get their own label")
    lst.add_argument("--no-shuffle", dest="shuffle", action="store_false",
                     help="keep sorted order in the list instead of shuffling (seed 100)")
    rec = parser.add_argument_group("packing records")
    rec.add_argument("--pass-through", action="store_true",
                     help="store the original file bytes (checked to decode) without re-encoding")
    rec.add_argument("--resize", type=int, default=0,
                     help="resize the shorter edge to this many pixels (0: keep size)")
    rec.add_argument("--center-crop", action="store_true",
                     help="crop the central square before resizing")
    rec.add_argument("--quality", type=int, default=95,
                     help="JPEG quality 1-100, or PNG compression 0-9 (default 95)")
    rec.add_argument("--num-thread", type=int, default=1,
                     help="worker processes that decode and encode images (default 1)")
    rec.add_argument("--color", type=int, default=1, choices=[-1, 0, 1],
                     help="1: colour, 0: grayscale, -1: as stored (with alpha)")
    rec.add_argument("--encoding", default=".jpg", choices=[".jpg", ".png"],
                     help="encoding of the packed images (default .jpg)")
    rec.add_argument("--pack-label", action="store_true",
                     help="store every label column of the .lst (e.g. identity + attributes) "
                          "as a label array; the identity is the first")
    rec.add_argument("--layout", choices=[PLAIN, INSIGHTFACE], default=PLAIN,
                     help="plain: MXNet's layout; insightface: header record 0, images "
                          "grouped by identity, identity records and a property file")
    rec.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _make_lists(args):
    skips = SkipLog(lambda line: print(line, file=sys.stderr))
    items = list_images(args.root, args.recursive, args.exts, skips)
    written = []
    for suffix, chunk in split_list(items, args.chunks, args.train_ratio, args.test_ratio,
                                    args.shuffle).items():
        path = args.prefix + suffix + ".lst"
        write_lst(path, chunk)
        written.append(path)
    labels = len({it[2] for it in items})
    print(f"listed {len(items)} images of {labels} labels into {', '.join(written)}, "
          f"{skips.summary()}")


def _lists_for(prefix):
    if os.path.isfile(prefix + ".lst"):
        return [prefix + ".lst"]
    found = sorted(glob.glob(glob.escape(prefix) + "*.lst"))
    if not found:
        raise DataError(f"{prefix}.lst: no list file with this prefix (run with --list first)")
    return found


def _options(args):
    if not 0 <= args.quality <= 100:
        raise DataError(f"--quality must be 0..100, got {args.quality}")
    return EncodeOptions(args.resize, args.center_crop, args.quality, args.encoding, args.color,
                         args.pass_through)


def _pack_lists(args):
    if not os.path.isdir(args.root):
        raise DataError(f"{args.root}: image root not found or not a folder")
    for lst_path in _lists_for(args.prefix):
        items = read_lst(lst_path)
        if not items:
            raise DataError(f"{lst_path}: list is empty")
        write_records(items, args.root, lst_path[:-4] + ".rec", args.layout, _options(args),
                      args.num_thread, args.pack_label, progress=not args.quiet)


@entry_point(OSError)  # OSError: e.g. the output folder is not writable
def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.list:
        _make_lists(args)
    else:
        _pack_lists(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
