"""`face-shards`: inspect, merge and re-split the sharded classifier of a training run.

    face-shards info  work/fc-rank*of2.params
    face-shards merge work/fc-rank*of2.params -o work/fc-full.params
    face-shards split work/fc-rank*of2.params --world-size 4 --prefix work/fc4

A merged classifier is the shard of a one-worker world, so `split` accepts either one merged
file or every shard of a run, and a run can resume on another number of workers.
"""
import argparse
import sys

from recognition.cli import entry_point
from recognition.heads.shards import (load_shard, merge_shards, save_shard, shard_path,
                                      split_classifier)


def _parser():
    parser = argparse.ArgumentParser(prog="face-shards", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="print what each shard file holds")
    info.add_argument("shards", nargs="+", help="shard files (*.params)")
    merge = sub.add_parser("merge", help="join all shards of a run into one full classifier")
    merge.add_argument("shards", nargs="+", help="every shard file of one run, any order")
    merge.add_argument("-o", "--output", required=True, help="file to write the full classifier")
    split = sub.add_parser("split", help="re-cut a classifier for another number of workers")
    split.add_argument("shards", nargs="+",
                       help="one merged classifier, or every shard file of one run")
    split.add_argument("-n", "--world-size", type=int, required=True,
                       help="number of workers of the run that will load the shards")
    split.add_argument("--prefix", required=True,
                       help="output prefix; writes PREFIX-rank{r}of{N}.params for each rank")
    return parser


def _info(shards, paths):
    for path, shard in zip(paths, shards):
        print(f"{path}: rank {shard.rank}/{shard.world_size}, classes [{shard.class_start}, "
              f"{shard.class_start + shard.num_local}) of {shard.num_classes}, "
              f"dim {shard.weight.shape[1]}, {shard.weight.dtype}")


@entry_point(ValueError)
def main(argv=None):
    """Entry point of `face-shards`; returns 0, or 2 after printing `error: ...`."""
    args = _parser().parse_args(argv)
    shards = [load_shard(path) for path in args.shards]
    if args.command == "info":
        _info(shards, args.shards)
    elif args.command == "merge":
        save_shard(args.output, merge_shards(shards))
        print(f"wrote {args.output} ({shards[0].num_classes} classes)")
    else:
        if args.world_size < 1:
            raise ValueError(f"--world-size must be >= 1, got {args.world_size}")
        for shard in split_classifier(shards, args.world_size):
            path = shard_path(args.prefix, shard.rank, shard.world_size)
            save_shard(path, shard)
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
