"""`face-shards`: inspect, merge and re-split the sharded classifier of a training run.

    face-shards info  work/fc-rank*of2.params
    face-shards merge work/fc-rank*of2.params -o work/fc-full.params
    face-shards split work/fc-rank*of2.params --world-size 4 --prefix work/fc4

A merged classifier is the shard of a one-worker world, so `split` accepts either one merged
file or every shard of a run, and a run can resume on another number of workers.

Memory: `split` streams, holding one source shard and one output shard at a time (never the
whole classifier), so a 10M-class classifier can be re-cut on a modest machine. `merge` writes
one file holding every class, so it needs the whole classifier (weight and momentum,
2 x classes x dim values) in memory; `split --world-size 1` is the same thing.
"""
import argparse
import sys

from ..heads.shards import read_shard_info, recut_files, save_shard, shard_path
from .entry import entry_point


def _parser():
    parser = argparse.ArgumentParser(prog="face-shards", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="print what each shard file holds")
    info.add_argument("shards", nargs="+", help="shard files (*.params)")
    merge = sub.add_parser(
        "merge", help="join all shards of a run into one full classifier (all in memory)",
        description="Join every shard of one run into one file holding all classes. The output "
        "is the whole classifier, so it is built in memory: weight and momentum, 2 x classes x "
        "dim values (40 GB for 10M classes x 512 float32). Use `split` to change the number "
        "of workers; it never holds the whole classifier.")
    merge.add_argument("shards", nargs="+", help="every shard file of one run, any order")
    merge.add_argument("-o", "--output", required=True, help="file to write the full classifier")
    split = sub.add_parser(
        "split", help="re-cut a classifier for another number of workers (streams)",
        description="Re-cut a merged classifier or a complete shard set for another number of "
        "workers. Streams: one input shard and one output shard are in memory at a time, and "
        "each input file is read twice (to check the set, then to copy its rows).")
    split.add_argument("shards", nargs="+",
                       help="one merged classifier, or every shard file of one run")
    split.add_argument("-n", "--world-size", type=int, required=True,
                       help="number of workers of the run that will load the shards")
    split.add_argument("--prefix", required=True,
                       help="output prefix; writes PREFIX-rank{r}of{N}.params for each rank")
    return parser


def _info(paths):
    """One line per file; each file is read and dropped before the next."""
    for path in paths:
        info = read_shard_info(path)
        print(f"{path}: rank {info.rank}/{info.world_size}, classes [{info.class_start}, "
              f"{info.class_start + info.num_local}) of {info.num_classes}, "
              f"dim {info.dim}, {info.dtype}")


def _saver(path_of, merged=False):
    """A writer for :func:`recut_files`: saves each shard to ``path_of(shard)`` as it comes."""
    def write(shard):
        path = path_of(shard)
        save_shard(path, shard)
        print(f"wrote {path}" + (f" ({shard.num_classes} classes)" if merged else ""))
    return write


@entry_point(ValueError)
def main(argv=None):
    """Entry point of `face-shards`; returns 0, or 2 after printing `error: ...`."""
    args = _parser().parse_args(argv)
    if args.command == "info":
        _info(args.shards)
    elif args.command == "merge":
        recut_files(args.shards, 1, _saver(lambda shard: args.output, merged=True))
    else:
        if args.world_size < 1:
            raise ValueError(f"--world-size must be >= 1, got {args.world_size}")
        recut_files(args.shards, args.world_size, _saver(
            lambda shard: shard_path(args.prefix, shard.rank, shard.world_size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
