"""The sizing model (recognition/scaling) against measured ParallelFC runs on this machine.

    python benchmarks/bench_plan.py                       # the default points (W = 1, 2, 4)
    python benchmarks/bench_plan.py --points 1:200k:1:8 2:2M:0.1:8 --steps 3
    python benchmarks/bench_plan.py --points 1:1M:1:64 --embedding-size 128 --steps 2
    python benchmarks/bench_plan.py --activations r18:8 r18:16 r18:32 r50:8   # backbone factor

A point is WORKERS:CLASSES:SAMPLE_RATE:BATCH_PER_WORKER. Each point runs in fresh processes
(`horovodrun -np W -H localhost:W --gloo` when W > 1, one process otherwise), so the memory
figures belong to that point alone. Every worker first calibrates the time model (memory
bandwidth, GEMM rate, host sampling cost, all-reduce latency and throughput, all workers at
once), then resets its peak-RSS counter (/proc/self/clear_refs), builds the ParallelFC, runs
one warm-up and STEPS timed steps of forward_backward_async with the row counts fixed (the
training loop's path: features and labels gathered by all-reduces of zero-padded blocks) +
update, and reports:

- state: predicted persistent bytes of the classifier (weight, momentum, gradient or sampled
  rows) vs ParallelFC.state_bytes() vs the RSS growth from before the FC to after the steps;
- peak: predicted persistent + per-step temporaries vs the peak-RSS growth (VmHWM);
- step: the calibrated time model vs the median measured step (max over workers).

Memory figures are worker 0's (it holds the largest shard); MiB = 2**20 bytes.

`--activations NAME:BATCH[:FORM] ...` measures instead the backbone side's one measured
constant: the peak-RSS growth of two forward + backward passes of a hybridized backbone
(static_alloc, as training runs it), over batch x the sum of its layer outputs (shape
inference) x 4 bytes. FORM is the PReLU form built ('conv', the default and what training
builds on every device, or 'op', MXNet's one-op PReLU); the sum is counted for the same form.
"""
import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from recognition.parallel.launch import local_workers_command  # noqa: E402

DEFAULT_POINTS = ["1:200k:1:8", "1:200k:1:256", "1:2M:1:8", "1:2M:0.1:8", "2:2M:1:8",
                  "2:1M:0.1:64", "4:2M:1:8", "4:2M:0.1:32"]
MARK = "BENCH_PLAN_JSON "


def parse_point(text):
    """`W:C:RATE:BATCH` -> dict (C accepts 200k / 2M)."""
    from recognition.commands.plan import count

    workers, classes, rate, batch = text.split(":")
    return {"workers": int(workers), "classes": count(classes), "rate": float(rate),
            "batch": int(batch)}


def _status():
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                fields[line.split(":")[0]] = int(line.split()[1]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


def _reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _run_steps(fc, comm, point, steps):
    import numpy as np
    from mxnet import nd

    rng = np.random.RandomState(comm.rank)
    batches = [(nd.array(rng.randn(point["batch"], fc.embedding_size).astype(np.float32)),
                nd.array(rng.randint(0, point["classes"], point["batch"])))
               for _ in range(steps + 1)]
    counts = [point["batch"]] * comm.size  # fixed, as training/objectives.py passes them
    times = []
    for i, (feats, labels) in enumerate(batches):
        start = time.perf_counter()
        fc.forward_backward_async(feats, labels, counts)
        fc.update(lr=0.1, momentum=0.9, wd=5e-4)
        nd.waitall()
        if i:
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def worker(point, steps, dim=512):
    """One point on this worker; rank 0 prints a JSON line with predicted and measured."""
    import ctypes
    import gc

    from mxnet import nd

    from recognition.heads.parallel_fc import ParallelFC
    from recognition.scaling.memory import Setup, classifier_memory, total
    from recognition.scaling.timing import calibrate, predict_seconds
    from recognition.scaling.traffic import step_traffic
    from recognition.parallel.distributed import init_workers

    comm = init_workers().comm
    load_start = os.getloadavg()[0]
    cal = calibrate(comm)
    warm = ParallelFC(1000 * comm.size, dim, sample_rate=point["rate"], comm=comm, seed=0)
    warm.forward_backward(nd.ones((2, dim)), nd.array([0, 1]))  # load every kernel once
    warm.update(0.1)
    nd.waitall()
    del warm
    gc.collect()
    nd.waitall()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # a baseline without freed-but-kept heap pages
    rss0, _ = _status()
    _reset_peak()
    fc = ParallelFC(point["classes"], dim, sample_rate=point["rate"], comm=comm, seed=0)
    nd.waitall()
    step = _run_steps(fc, comm, point, steps)
    rss1, peak = _status()
    setup = Setup(point["classes"], comm.size, point["batch"], dim, sample_rate=point["rate"])
    items = classifier_memory(setup)
    traffic = sum(t.bytes for t in step_traffic(setup))
    measured = [step, rss1 - rss0, peak - rss0, float(fc.state_bytes())]
    if comm.size > 1:
        measured = comm.allreduce(nd.array(measured, dtype="float64"), op="max",
                                  name="bench.max").asnumpy().tolist()
        measured[1:] = [rss1 - rss0, peak - rss0, float(fc.state_bytes())]  # worker 0's memory
    if comm.rank == 0:
        print(MARK + json.dumps({
            "point": point, "steps": steps,
            "predicted": {"state": total(items, persistent_only=True), "peak": total(items),
                          "step": predict_seconds(setup, cal, traffic)},
            "measured": {"step": measured[0], "rss_growth": measured[1],
                         "peak_growth": measured[2], "state_bytes": measured[3]},
            "calibration": cal._asdict(),
            "load": [load_start, os.getloadavg()[0]]}), flush=True)


def activation_worker(spec):
    """Peak-RSS growth of forward + backward of a hybridized (static_alloc, as training runs it)
    backbone over batch x (sum of layer outputs) x 4 bytes: the model's activation factor."""
    import ctypes

    import mxnet as mx
    from mxnet import autograd, nd

    from recognition.backbones import get_model
    from recognition.backbones.common import prelu_form
    from recognition.scaling.backbone_stats import backbone_stats

    name, batch, form = (spec.split(":") + ["conv"])[:3]
    stats = backbone_stats(name, prelu_form=form)
    with prelu_form(form):
        net = get_model(name)
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True)
    x = nd.random.uniform(0, 255, (int(batch), 3, stats.input_size, stats.input_size))

    def step(data):
        with autograd.record():
            out = net(data)
        out.backward()
        nd.waitall()

    step(x[:1])  # parameters, gradients and kernels exist before the baseline
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    rss0, _ = _status()
    _reset_peak()
    step(x)
    step(x)
    _, peak = _status()
    predicted = int(batch) * stats.activations * 4
    print(MARK + json.dumps({"network": name, "batch": int(batch), "form": form,
                             "sum_bytes": predicted, "peak_growth": peak - rss0}), flush=True)


def _activation_table(specs, timeout):
    print("| backbone | batch | PReLU form | batch x sum of layer outputs x 4 B (MiB) | peak RSS "
          "growth of forward + backward (MiB) | ratio |\n|---|---|---|---|---|---|", flush=True)
    for spec in specs:
        cmd = [sys.executable, os.path.abspath(__file__), "--activation-worker", spec]
        proc = subprocess.run(cmd, env=dict(os.environ, PYTHONPATH=REPO), capture_output=True,
                              text=True, timeout=timeout)
        lines = [line for line in proc.stdout.splitlines() if MARK in line]
        if not lines:
            raise RuntimeError(f"{spec} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        r = json.loads(lines[0].split(MARK, 1)[1])
        print(f"| {r['network']} | {r['batch']} | {r['form']} | {r['sum_bytes'] / 2**20:,.0f} | "
              f"{r['peak_growth'] / 2**20:,.0f} | {r['peak_growth'] / r['sum_bytes']:.2f} |",
              flush=True)


def launch(point, steps, timeout, dim=512):
    """Run one point in fresh process(es); returns rank 0's JSON dict."""
    spec = f"{point['workers']}:{point['classes']}:{point['rate']}:{point['batch']}"
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", spec, "--steps", str(steps),
           "--embedding-size", str(dim)]
    env = dict(os.environ, PYTHONPATH=REPO)
    cmd = local_workers_command(cmd, point["workers"])
    if point["workers"] > 1:
        env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    for line in proc.stdout.splitlines():
        if MARK in line:
            return json.loads(line.split(MARK, 1)[1])
    raise RuntimeError(f"point {spec} failed (exit {proc.returncode}):\n"
                       f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def _err(predicted, measured):
    return f"{100 * (predicted - measured) / measured:+.1f} %"


def row(result):
    p, pred, meas = result["point"], result["predicted"], result["measured"]
    mib = 2 ** 20
    return (f"| {p['workers']} | {p['classes']:,} | {p['rate']:g} | {p['batch']} | "
            f"{pred['state'] / mib:,.0f} | {meas['state_bytes'] / mib:,.0f} | "
            f"{meas['rss_growth'] / mib:,.0f} | {_err(pred['state'], meas['rss_growth'])} | "
            f"{pred['peak'] / mib:,.0f} | {meas['peak_growth'] / mib:,.0f} | "
            f"{_err(pred['peak'], meas['peak_growth'])} | {pred['step']:.2f} | "
            f"{meas['step']:.2f} | {_err(pred['step'], meas['step'])} | "
            f"{result['load'][0]:.1f}-{result['load'][1]:.1f} |")


HEADER = ("| W | classes | rate | batch/worker | state pred MiB | state_bytes MiB | RSS growth MiB "
          "| err | peak pred MiB | peak RSS growth MiB | err | step pred s | step meas s | err "
          "| load |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", nargs="+", default=DEFAULT_POINTS,
                        help="W:CLASSES:RATE:BATCH per point (default: the 8 points of "
                             "docs/benchmarks.md)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per point (default 3)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per point")
    parser.add_argument("--embedding-size", type=int, default=512,
                        help="embedding size D of the FC points (default 512)")
    parser.add_argument("--activations", nargs="+", metavar="NAME:BATCH[:FORM]",
                        help="instead of the FC points, measure the backbone activation factor "
                             "(e.g. r18:8 r18:16 r18:32 r50:8 r18:8:op)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--activation-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(parse_point(args.worker), args.steps, args.embedding_size)
        return 0
    if args.activation_worker:
        activation_worker(args.activation_worker)
        return 0
    from benchmarks.common import machine

    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f} at start")
    if args.activations:
        _activation_table(args.activations, args.timeout)
        return 0
    print(HEADER, flush=True)
    for text in args.points:
        result = launch(parse_point(text), args.steps, args.timeout, args.embedding_size)
        print(row(result), flush=True)
        cal = result["calibration"]
        print(f"<!-- worker 0 calibration: stream {cal['stream'] / 1e9:.2f} GB/s, GEMM memory "
              f"{cal['gemm_memory'] / 1e9:.2f} GB/s / {cal['gemm_flops'] / 1e9:.1f} GFLOP/s, "
              f"gather {cal['gather'] / 1e9:.2f} GB/s, fresh element-wise "
              f"{cal['logits'] / 1e9:.2f} GB/s, {cal['sample_cost'] * 1e9:.1f} ns/key, "
              f"all-reduce latency {cal['latency'] * 1e3:.2f} ms, {cal['link'] / 1e9:.2f} GB/s "
              f"-->", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
