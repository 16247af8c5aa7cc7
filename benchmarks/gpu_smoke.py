"""`make gpu-check`: one verdict on whether training works on this machine's GPUs.

    python benchmarks/gpu_smoke.py                    # what `make gpu-check` runs
    python benchmarks/gpu_smoke.py --rehearse-on-cpu  # the same runs on CPU workers, float32

It renders a small synthetic set (100 identities x 10 images), then trains `configs/synthetic.py`
for 50 steps through the public command line (`recognition/train.py CONFIG --key value`), in
float32 and then float16, on one GPU and then on every local GPU (`horovodrun -np G -H
localhost:G`, built by recognition/parallel/launch.py). For each run it checks that the loss
falls (the `loss X` of train.log's lines), and prints the speed (img/s, the log's figure after
the first lines) and the peak GPU memory (nvidia-smi, polled; MXNet's pool keeps what it
allocated, so this is what the run reserved) beside tools/plan.py's prediction for the same
setup (peak memory per worker, and its lower bound on the step time). Exit status 0: every run
trained, 1: a run failed or its loss did not fall.

Without a GPU (a CPU build of MXNet, or no GPU visible) it prints one line saying it skipped
and why, and exits 0, at once: `make bench` runs it everywhere.

This script has never run on a GPU in this project: no GPU was available to its sessions. The
GPU runs take the code path `--rehearse-on-cpu` takes on a CPU (same data, commands, log
parsing and plan; only the device count, float16 and the memory probe differ), which is how
it was checked.
"""
import argparse
import importlib.metadata
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from recognition.parallel.launch import local_workers_command  # noqa: E402

IDENTITIES, IMAGES_PER_IDENTITY = 100, 10
BATCH_SIZE, EMBEDDING_SIZE, NETWORK = 64, 128, "r_tiny"  # configs/synthetic.py's
MIB = 2 ** 20
LOG_LINE = re.compile(r"step (\d+)/\d+ .*\bloss (\S+) .*?([\d.]+) img/s")


def skip_reason():
    """Why there is nothing to test here (None: MXNet is a CUDA build and sees a GPU)."""
    wheels = mxnet_wheels()
    if wheels and not [name for name in wheels if name.startswith("mxnet-cu")]:
        # decided from the package metadata: importing MXNet takes seconds, `make bench` waits
        return (f"this MXNet is a CPU build (pip package {', '.join(sorted(wheels))}); "
                f"`make install GPU=cu112` installs mxnet-cu112")
    try:
        import mxnet as mx
    except ImportError as err:
        return f"MXNet does not import ({err}); run `make install GPU=cu112`"
    if not mx.runtime.Features().is_enabled("CUDA"):
        return "this MXNet is built without CUDA; `make install GPU=cu112` installs mxnet-cu112"
    if mx.context.num_gpus() == 0:
        return ("MXNet (a CUDA build) sees no GPU (mx.context.num_gpus() == 0): check "
                "nvidia-smi and CUDA_VISIBLE_DEVICES")
    return None


def mxnet_wheels():
    """Names of the installed MXNet distributions (mxnet, mxnet-cu112, ...)."""
    names = (dist.metadata["Name"] or "" for dist in importlib.metadata.distributions())
    return {name.lower() for name in names if re.fullmatch(r"mxnet(-\w+)?", name.lower())}


def gpu_count():
    import mxnet as mx
    return mx.context.num_gpus()


def horovod_note(workers, on_gpu):
    """A warning when several GPUs will all-reduce through a Horovod built without NCCL."""
    if workers < 2 or not on_gpu:
        return None
    try:
        import horovod.mxnet as hvd
    except ImportError as err:
        return f"Horovod does not import ({err}): multi-GPU runs will fail"
    if not hvd.nccl_built():
        return ("Horovod was built without NCCL: GPU all-reduces go through host memory "
                "(`make install GPU=cu112` builds it with NCCL)")
    return None


def make_data(folder):
    """Render and pack the small training set; returns the .rec path."""
    subprocess.run([sys.executable, "-m", "recognition.synthetic", "--out", folder,
                    "--identities", str(IDENTITIES), "--images-per-identity",
                    str(IMAGES_PER_IDENTITY), "--verify-identities", "10", "--pairs", "20"],
                   cwd=REPO, env=child_env(), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, text=True)
    return os.path.join(folder, "train.rec")


def child_env():
    return dict(os.environ, PYTHONPATH=REPO)


def train_command(rec, output, dtype, workers, steps, log_every):
    """The public command line: the demo config with a short, verification-free schedule."""
    train = [sys.executable, os.path.join(REPO, "recognition", "train.py"),
             os.path.join(REPO, "configs", "synthetic.py"), "--rec", rec, "--output", output,
             "--dtype", dtype, "--max_steps", str(steps), "--log_every", str(log_every),
             "--warmup_steps", "0", "--lr_steps", "[]", "--verify_every", "0",
             "--save_every", "0"]
    return local_workers_command(train, workers)


def parse_log(path):
    """``[(step, loss, img_per_s), ...]`` from a train.log (no lines when it is missing)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [(int(m[1]), float(m[2]), float(m[3])) for m in map(LOG_LINE.search, f) if m]


def loss_fell(lines):
    """``(ok, why)``: finite losses, and the last two log lines below the first two."""
    losses = [loss for _, loss, _ in lines]
    if len(losses) < 4:
        return False, f"only {len(losses)} loss line(s) in train.log"
    if not all(map(_finite, losses)):
        return False, f"non-finite loss: {losses}"
    first, last = statistics.mean(losses[:2]), statistics.mean(losses[-2:])
    if last >= first:
        return False, f"loss did not fall: {first:.3f} -> {last:.3f}"
    return True, f"loss {first:.3f} -> {last:.3f}"


def _finite(value):
    return value == value and abs(value) != float("inf")


def steady_speed(lines):
    """Median img/s of the log lines after the first two (start-up, cuDNN autotuning)."""
    speeds = [speed for _, _, speed in lines[2:]] or [speed for _, _, speed in lines]
    return statistics.median(speeds) if speeds else None


class GpuMemoryPeak:
    """Polls nvidia-smi while a run lasts: the largest rise of memory.used on any GPU."""

    QUERY = ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"]

    def __init__(self, enabled, period=0.2):
        self.enabled = enabled and shutil.which("nvidia-smi") is not None
        self.period, self.peak, self._stop = period, None, threading.Event()

    def _used(self):
        out = subprocess.run(self.QUERY, capture_output=True, text=True, timeout=10).stdout
        return [int(v) * MIB for v in out.split() if v.strip().isdigit()]

    def _poll(self, baseline):
        while not self._stop.wait(self.period):
            rise = [max(0, now - base) for now, base in zip(self._used(), baseline)]
            self.peak = max([self.peak or 0] + rise)

    def __enter__(self):
        if self.enabled:
            self._thread = threading.Thread(target=self._poll, args=(self._used(),), daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._stop.set()
            self._thread.join()
        return False


def plan(workers, dtype):
    """tools/plan.py's JSON for this setup, or ``{"error": ...}``."""
    command = [sys.executable, os.path.join(REPO, "tools", "plan.py"), "--classes",
               str(IDENTITIES), "--workers", str(workers), "--network", NETWORK,
               "--batch-size", str(BATCH_SIZE), "--embedding-size", str(EMBEDDING_SIZE),
               "--dtype", dtype, "--json"]
    proc = subprocess.run(command, cwd=REPO, env=child_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode])[-1]}
    return json.loads(proc.stdout)


def plan_step_seconds(prediction):
    """The plan's lower bound on a step: classifier GEMM plus the fastest link's traffic."""
    gemm = prediction.get("classifier_work", {}).get("gemm_seconds_lower_bound")
    links = prediction.get("traffic_seconds_lower_bound") or prediction.get("traffic_seconds")
    if gemm is None and not links:
        return None
    return (gemm or 0.0) + (min(links.values()) if links else 0.0)


def train_once(rec, folder, dtype, workers, on_gpu, steps, log_every, timeout):
    """One training run; a dict of what was measured and whether it passed."""
    output = os.path.join(folder, f"{workers}x-{dtype}")
    command = train_command(rec, output, dtype, workers, steps, log_every)
    started = time.time()
    with GpuMemoryPeak(on_gpu) as memory:
        try:
            proc = subprocess.run(command, cwd=REPO, env=child_env(), capture_output=True,
                                  text=True, timeout=timeout)
            status, tail = proc.returncode, (proc.stdout + proc.stderr)[-2000:]
        except subprocess.TimeoutExpired:
            status, tail = None, f"no result after {timeout} s"
    lines = parse_log(os.path.join(output, "train.log"))
    ok, why = loss_fell(lines) if status == 0 else (False, f"exit status {status}:\n{tail}")
    return dict(workers=workers, dtype=dtype, ok=ok, why=why, speed=steady_speed(lines),
                memory=memory.peak, seconds=time.time() - started, plan=plan(workers, dtype))


def _mib(value):
    return "n/a" if value is None else f"{value / MIB:,.0f} MiB"


def report(run):
    """One line per run: verdict, loss, img/s and memory, each beside the plan's."""
    prediction, global_batch = run["plan"], BATCH_SIZE * run["workers"]  # img/s is global
    if "error" in prediction:
        planned = f"plan failed: {prediction['error']}"
    else:
        bound = plan_step_seconds(prediction)
        planned = (f"plan: peak {_mib(prediction.get('memory_peak_bytes'))}/worker"
                   + ("" if bound is None else f", step >= {1e3 * bound:.3g} ms "
                      f"(classifier GEMM + all-reduce bytes at line rate)"))
    speed = "n/a" if run["speed"] is None else f"{run['speed']:,.1f} img/s"
    step = "" if not run["speed"] else f" ({1e3 * global_batch / run['speed']:.1f} ms/step)"
    return (f"{'PASS' if run['ok'] else 'FAIL'} {run['workers']} worker(s) {run['dtype']}: "
            f"{run['why']}; {speed}{step}, peak GPU memory {_mib(run['memory'])}; {planned}")


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rehearse-on-cpu", action="store_true",
                        help="run the same check on CPU workers (float32 only: float16 is "
                             "GPU only), to test this script without a GPU")
    parser.add_argument("--workers", type=int, default=None,
                        help="workers of the multi-worker runs (default: every GPU; 2 with "
                             "--rehearse-on-cpu)")
    parser.add_argument("--steps", type=int, default=50, help="steps per run (default 50)")
    parser.add_argument("--log-every", type=int, default=5,
                        help="steps between train.log lines (default 5)")
    parser.add_argument("--timeout", type=int, default=900,
                        help="seconds one run may take (default 900)")
    parser.add_argument("--keep", metavar="DIR", default=None,
                        help="put the data and run folders here and keep them")
    return parser


def runs_to_do(args, on_gpu):
    """``[(workers, dtype), ...]``: 1 worker then all, float32 then float16 (GPU only)."""
    many = args.workers or (gpu_count() if on_gpu else 2)
    dtypes = ["float32", "float16"] if on_gpu else ["float32"]
    return [(w, d) for w in sorted({1, many}) for d in dtypes]


def main(argv=None):
    args = _parser().parse_args(argv)
    on_gpu = not args.rehearse_on_cpu
    if on_gpu:
        reason = skip_reason()
        if reason:
            print(f"gpu_smoke: skipped: {reason}")
            return 0
    todo = runs_to_do(args, on_gpu)
    note = horovod_note(max(w for w, _ in todo), on_gpu)
    if note:
        print(f"gpu_smoke: note: {note}")
    folder = args.keep or tempfile.mkdtemp(prefix="gpu_smoke_")
    try:
        print(f"gpu_smoke: rendering {IDENTITIES} x {IMAGES_PER_IDENTITY} synthetic faces in "
              f"{folder}", flush=True)
        try:
            rec = make_data(os.path.join(folder, "data"))
        except subprocess.CalledProcessError as err:
            print(f"gpu_smoke: FAIL: the synthetic data could not be made:\n{err.stderr[-2000:]}")
            return 1
        results = []
        for workers, dtype in todo:
            results.append(train_once(rec, folder, dtype, workers, on_gpu, args.steps,
                                      args.log_every, args.timeout))
            print(f"gpu_smoke: {report(results[-1])}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    failed = [r for r in results if not r["ok"]]
    where = "GPU" if on_gpu else "CPU (rehearsal)"
    print(f"gpu_smoke: {'FAIL' if failed else 'PASS'}: {len(results) - len(failed)} of "
          f"{len(results)} {where} runs trained with a falling loss")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
