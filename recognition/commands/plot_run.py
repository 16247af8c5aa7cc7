"""`plot_run` (`tools/plot_run.py`, `face-plot-run`): loss, lr, img/s and held-out accuracy of
training runs, read from their `train.log` (`recognition.training.run_plot`), in one figure."""
import argparse
import os
import sys

import numpy as np

from ..training.run_plot import log_path, parse_log, run_figure
from .entry import entry_point

__all__ = ["build_parser", "main"]


def _names(paths):
    """Each run's name: its folder's name, or its path where two folders share a name."""
    folders = [os.path.dirname(os.path.abspath(p)) for p in paths]
    short = [os.path.basename(f) for f in folders]
    return [s if short.count(s) == 1 else os.path.relpath(f) for s, f in zip(short, folders)]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="plot_run.py",
        description="Plot loss, lr, img/s and held-out accuracy against step and against "
                    "wall-clock time from the train.log of one or more run folders (overlaid, "
                    "one colour per run). Resumed runs are joined at their checkpoint.")
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="run folder (holding train.log) or a train.log path")
    parser.add_argument("-o", "--output", required=True, metavar="PNG", help="figure to write")
    return parser


@entry_point(OSError)
def main(argv=None):
    args = build_parser().parse_args(argv)
    paths = [log_path(run) for run in args.runs]
    runs = [parse_log(path, name) for path, name in zip(paths, _names(paths))]
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    run_figure(runs).savefig(args.output, dpi=90)
    for run in runs:
        last = run.train[-1]
        best = {n: np.nanmax(a) for n, a in run.accuracy.items() if np.isfinite(a).any()}
        scores = ", ".join(f"best {n} {100 * a:.2f}%" for n, a in best.items())
        print(f"{run.name}: {len(run.train)} log points to step {last['step']}"
              f"/{run.max_steps} in {last['seconds'] / 60:.1f} min"
              + (f", {scores}" if scores else ""))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
