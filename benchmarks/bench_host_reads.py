"""Host reads per training step: how often the Python loop waits for the device.

    python benchmarks/bench_host_reads.py [--classes 1000] [--batch 64] [--size 56]

One process, `r_tiny` at SIZE x SIZE, BATCH images per step, CLASSES classes (full FC, then
partial FC at sample rate 0.1), no logging, saving or verification inside the window: the
NDArray reads (`asnumpy`/`asscalar`/`wait_to_read`/`waitall`, recognition.training.host_reads)
of a 20-step run are subtracted from those of a 60-step run, so start-up and the end of the
run cancel out. On a GPU each read stalls the loop until the device has caught up.
"""
import argparse
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks.common import machine, textured_faces  # noqa: E402
from recognition.config import load_config  # noqa: E402
from recognition.data.writing.packing import pack_image_folder  # noqa: E402
from recognition.parallel.distributed import init_workers  # noqa: E402
from recognition.training.host_reads import HostReads  # noqa: E402
from recognition.training.run import Run  # noqa: E402


def _parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=1000, help="classes (default 1000)")
    parser.add_argument("--batch", type=int, default=64, help="batch per step (default 64)")
    parser.add_argument("--size", type=int, default=56, help="image side (default 56)")
    return parser


def _reads(rec, args, steps, sample_rate, output):
    cfg = load_config(os.path.join(REPO, "configs", "synthetic.py"), dict(
        rec=rec, num_classes=args.classes, image_size=[args.size, args.size],
        batch_size=args.batch, sample_rate=sample_rate, max_steps=steps,
        lr_steps=[steps + 1], log_every=10 ** 6, verify_every=0, save_every=0,
        output=output, preprocess_threads=1))
    run = Run(cfg, init_workers())
    with HostReads() as reads:
        run.train(stop=False)
    return reads.count


def main(argv=None):
    args = _parser().parse_args(argv)
    print(f"machine: {machine()}")
    print("| FC | reads, 20 steps | reads, 60 steps | host reads per step |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        textured_faces(os.path.join(tmp, "img"), 50, 8, size=args.size)
        pack_image_folder(os.path.join(tmp, "img"), os.path.join(tmp, "train"),
                          progress=False, log=None)
        rec = os.path.join(tmp, "train.rec")
        for name, rate in (("full", 1.0), ("partial, rate 0.1", 0.1)):
            short = _reads(rec, args, 20, rate, os.path.join(tmp, f"short{rate}"))
            long = _reads(rec, args, 60, rate, os.path.join(tmp, f"long{rate}"))
            print(f"| {name} | {short} | {long} | {(long - short) / 40:g} |", flush=True)


if __name__ == "__main__":
    main()
