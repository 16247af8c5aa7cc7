"""Start-up soak: many two-worker training start-ups under load, counting crashes.

    python benchmarks/bench_startup_soak.py [--runs 100] [--load 2] [--steps 3]

A rare segfault was seen twice at the start of a two-worker run, while MXNet's first record
reader was still prefetching. Each run here starts `horovodrun -np 2 recognition/train.py` on a
small synthetic set for a few steps while `--load` busy-loop processes compete for the cores,
and the script prints, per run, the exit code and whether a worker died of a signal; at the
end the count of crashes. It is a soak, not a unit test: 100 runs take about 20 minutes on 2
cores. Exit status 1 when any run crashed.
"""
import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks.common import machine  # noqa: E402
from recognition.parallel.launch import local_workers_command  # noqa: E402

CRASH_SIGNS = ("Segmentation fault", "SIGSEGV", "Fatal Python error", "signal 11",
               "core dumped", "Aborted")


def _parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100, help="start-ups (default 100)")
    parser.add_argument("--load", type=int, default=2,
                        help="busy-loop processes running meanwhile (default 2)")
    parser.add_argument("--steps", type=int, default=3, help="steps per run (default 3)")
    return parser


def _busy():
    while True:
        pass


def _make_data(folder):
    subprocess.run([sys.executable, "-m", "recognition.synthetic", "--out", folder,
                    "--identities", "20", "--images-per-identity", "8", "--verify-identities",
                    "20", "--pairs", "40", "--workers", "1"], cwd=REPO, check=True,
                   capture_output=True)
    return os.path.join(folder, "train.rec")


def _one_run(rec, output, steps):
    command = local_workers_command(
        [sys.executable, "recognition/train.py", "configs/synthetic.py", "--rec", rec,
         "--output", output, "--max_steps", str(steps), "--lr_steps", f"[{steps + 1}]",
         "--batch_size", "8", "--verify_every", "0", "--save_every", "0", "--log_every", "1",
         "--warmup_steps", "0"], 2)
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=REPO))
    text = proc.stdout + proc.stderr
    crashed = proc.returncode < 0 or any(sign in text for sign in CRASH_SIGNS)
    return proc.returncode, crashed, text


def main(argv=None):
    args = _parser().parse_args(argv)
    print(f"machine: {machine()}; {args.runs} runs of 2 workers, {args.load} busy processes")
    load = [multiprocessing.Process(target=_busy, daemon=True) for _ in range(args.load)]
    for proc in load:
        proc.start()
    crashes, start = 0, time.time()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rec = _make_data(os.path.join(tmp, "data"))
            for run in range(args.runs):
                code, crashed, text = _one_run(rec, os.path.join(tmp, f"run{run}"), args.steps)
                crashes += crashed
                print(f"run {run + 1}/{args.runs}: exit {code}" +
                      (" CRASH\n" + text[-3000:] if crashed else ""), flush=True)
    finally:
        for proc in load:
            proc.terminate()
    print(f"{crashes} crash(es) in {args.runs} start-ups, {time.time() - start:.0f} s")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
