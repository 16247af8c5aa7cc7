"""Training images/s for worker and thread counts: how to split a machine's cores.

    python benchmarks/bench_threads.py [--steps 100] [--workers 1 2] [--omp 1 2 auto]
                                       [--preprocess 1 2]

Runs `recognition/train.py configs/synthetic.py` (r_tiny, batch 64 per worker, ArcFace) on a
small synthetic `.rec` for each combination: `--workers 2` under `horovodrun -np 2` on this
machine, `OMP_NUM_THREADS` (auto: what train.py chooses, cores / local workers) and
`preprocess_threads` (JPEG decoding threads per worker). Prints the global images/s of the
log lines after the first (warm-up) one, median over them.
"""
import argparse
import itertools
import os
import re
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks.bench_train_overhead import _prepare_data  # noqa: E402
from benchmarks.common import machine  # noqa: E402
from recognition.parallel.launch import local_workers_command  # noqa: E402


def images_per_second(rec, workers, omp, preprocess, steps):
    output = tempfile.mkdtemp(prefix="bench_threads_")
    env = dict(os.environ, PYTHONPATH=REPO)
    for name in ("OMP_NUM_THREADS", "MXNET_CPU_WORKER_NTHREADS"):
        env.pop(name, None)
    if omp != "auto":
        env["OMP_NUM_THREADS"] = str(omp)
    train = [sys.executable, os.path.join(REPO, "recognition", "train.py"),
             os.path.join(REPO, "configs", "synthetic.py"), "--rec", rec,
             "--val_data_dir", os.path.dirname(rec), "--output", output,
             "--max_steps", str(steps), "--log_every", "20", "--verify_every", "0",
             "--save_every", "0", "--preprocess_threads", str(preprocess)]
    out = subprocess.run(local_workers_command(train, workers), env=env, capture_output=True,
                         text=True, check=True).stdout
    speeds = [float(m) for m in re.findall(r"([\d.]+) img/s", out)]
    return statistics.median(speeds[1:]) if len(speeds) > 1 else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="training steps per setting")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="worker counts (more than 1: horovodrun on this machine)")
    parser.add_argument("--omp", nargs="+", default=["auto", "1", "2"],
                        help="OMP_NUM_THREADS values; auto lets train.py choose")
    parser.add_argument("--preprocess", type=int, nargs="+", default=[1, 2],
                        help="preprocess_threads values")
    parser.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "bench_overhead"),
                        help="where the synthetic .rec is generated (reused)")
    args = parser.parse_args()
    rec = _prepare_data(args.data)
    print(f"machine: {machine()}; load before: {os.getloadavg()[0]:.2f}")
    print("| workers | OMP_NUM_THREADS | preprocess_threads | img/s (global) |\n|---|---|---|---|")
    for workers, omp, pre in itertools.product(args.workers, args.omp, args.preprocess):
        speed = images_per_second(rec, workers, omp, pre, args.steps)
        print(f"| {workers} | {omp} | {pre} | {speed:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
