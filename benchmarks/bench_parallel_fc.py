"""Memory and time of one step of the sharded FC (forward_backward + update) per worker.

    python benchmarks/bench_parallel_fc.py                        # short default, 1 worker
    python benchmarks/bench_parallel_fc.py --classes 1000000 --sample-rates 1.0 0.1
    horovodrun -np 2 -H localhost:2 --gloo python benchmarks/bench_parallel_fc.py \
        --classes 2000000 --batch 4

Prints one markdown row per (classes, sample rate): per-worker state (centres + gradient +
momentum, float32), the process RSS now and at its peak (max over workers), and the median
time of forward_backward and of update (max over workers). RSS is cumulative within one
process, so run one class count per invocation for clean memory figures.
"""
import argparse
import time

import mxnet as mx
import numpy as np
import psutil
from mxnet import nd

from recognition.heads.parallel_fc import ParallelFC
from recognition.parallel.distributed import init_workers


def _parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, nargs="+", default=[10000, 100000],
                        help="class counts to measure, ascending (default: 10k 100k)")
    parser.add_argument("--dim", type=int, default=512, help="embedding size (default 512)")
    parser.add_argument("--batch", type=int, default=8, help="per-worker batch (default 8)")
    parser.add_argument("--steps", type=int, default=3,
                        help="timed steps after one warm-up step (default 3)")
    parser.add_argument("--sample-rates", type=float, nargs="+", default=[1.0, 0.1],
                        help="partial-FC sample rates to measure (default: 1.0 0.1)")
    parser.add_argument("--margin", default="arcface", help="margin preset (default arcface)")
    return parser


def _max_over_workers(comm, values):
    return comm.allreduce(nd.array(values, dtype="float64"), op="max", name="bench.max").asnumpy()


def _measure(comm, args, num_classes, rate):
    fc = ParallelFC(num_classes, args.dim, margin=args.margin, sample_rate=rate, comm=comm,
                    seed=0)
    rng = np.random.RandomState(comm.rank)
    fb_times, up_times = [], []
    for step in range(args.steps + 1):
        feats = nd.array(rng.randn(args.batch, args.dim).astype(np.float32))
        labels = nd.array(rng.randint(0, num_classes, args.batch))
        start = time.perf_counter()
        fc.forward_backward(feats, labels)
        nd.waitall()
        mid = time.perf_counter()
        fc.update(lr=0.1, momentum=0.9, wd=5e-4)
        nd.waitall()
        if step:
            fb_times.append(mid - start)
            up_times.append(time.perf_counter() - mid)
    mem = psutil.Process().memory_info()
    peak = _read_peak_rss()
    figures = [np.median(fb_times) * 1e3, np.median(up_times) * 1e3, mem.rss / 2**20,
               peak / 2**20]
    fb_ms, up_ms, rss, peak_mb = _max_over_workers(comm, figures)
    state_mb = fc.state_bytes() / 2**20
    del fc
    return (f"| {comm.size} | {num_classes:,} | {args.dim} | {rate:g} | {args.batch} | "
            f"{state_mb:,.0f} | {rss:,.0f} | {peak_mb:,.0f} | {fb_ms:,.1f} | {up_ms:,.1f} | "
            f"{fb_ms + up_ms:,.1f} |")


def _read_peak_rss():
    """Peak resident set size (VmHWM) of this process in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def main(argv=None):
    args = _parser().parse_args(argv)
    comm = init_workers().comm
    if comm.rank == 0:
        print("| workers | classes | dim | sample rate | batch/worker | state MB/worker "
              "| RSS MB | peak RSS MB | fwd+bwd ms | update ms | step ms |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
    for num_classes in args.classes:
        for rate in sorted(args.sample_rates):
            row = _measure(comm, args, num_classes, rate)
            if comm.rank == 0:
                print(row, flush=True)
    mx.nd.waitall()


if __name__ == "__main__":
    main()
