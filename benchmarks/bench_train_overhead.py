"""What `train.py` keeps of the framework's speed: its training step against a bare loop.

    python benchmarks/bench_train_overhead.py [--workers 1 2] [--rounds 4] [--steps 20]

The bare loop is what a user would write by hand with the same pieces: the same backbone
(`r_tiny`, hybridized), batch, `FaceRecordIter` reader and a CosFace margin (s=32 m=0.2 on
both sides; configs/synthetic.py otherwise), with the normalised classifier and the loss inside
the hybrid graph, and Gluon's SGD (Horovod's DistributedTrainer under `horovodrun`: the
classifier replicated, not sharded). The `train.py` side is `Run.train` itself, with logging
(log_every 20), the checkpoint bookkeeping and the sharded FC on (no checkpoint falls inside
the timed window).
Both run in the same process(es), interleaved: after a warm-up round, each round times
`--steps` steps of `train.py`, then `--steps` steps of the bare loop. Prints images/s of each
round (global batch), and the median ratio train.py / bare. With `--workers 2` the same
measurement runs under `horovodrun -np 2` on this machine.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import mxnet as mx
from mxnet import autograd, gluon, nd

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from recognition.parallel.launch import local_workers_command  # noqa: E402


def _prepare_data(folder):
    """A small synthetic `.rec` (120 identities x 20 images), generated once."""
    from recognition.data.writing.packing import pack_image_folder
    from recognition.synthetic.generate import generate

    rec = os.path.join(folder, "train.rec")
    if not os.path.isfile(rec):
        generate(folder, num_identities=120, images_per_identity=20, num_verify_identities=20,
                 num_pairs=40, seed=5, workers=2, overwrite=True)
        pack_image_folder(os.path.join(folder, "images"), rec[:-4], num_workers=2,
                          pass_through=True, progress=False, log=None)
    return rec


class CosFaceModel(gluon.HybridBlock):
    """Embedding -> normalised classifier -> s * (cos - m3 at the label) -> softmax CE."""

    def __init__(self, backbone, num_classes, dim, s, m3):
        super().__init__()
        self._classes, self._s, self._m3 = num_classes, s, m3
        with self.name_scope():
            self.backbone = backbone
            self.weight = self.params.get("weight", shape=(num_classes, dim))
            self.loss = gluon.loss.SoftmaxCrossEntropyLoss()

    def hybrid_forward(self, F, x, label, weight):
        emb = F.L2Normalization(self.backbone(x), mode="instance")
        cos = F.FullyConnected(emb, F.L2Normalization(weight, mode="instance"), no_bias=True,
                               num_hidden=self._classes)
        logits = self._s * (cos - self._m3 * F.one_hot(label, self._classes))
        return self.loss(logits, label)


class BareLoop:
    """Backbone + normalised classifier + CosFace loss in one hybridized graph, Gluon SGD."""

    def __init__(self, cfg, workers, num_classes):
        from recognition.backbones import get_model
        from recognition.data.reading.iterator import FaceRecordIter

        self.batch_size, self.workers = cfg.batch_size, workers
        self.data = FaceRecordIter(cfg.rec, cfg.batch_size, (3,) + tuple(cfg.image_size),
                                   part_index=workers.rank, num_parts=workers.size,
                                   preprocess_threads=cfg.preprocess_threads, seed=99,
                                   **cfg.augment)
        with mx.name.Prefix("bare_"):  # Horovod names collectives after the parameters
            self.model = CosFaceModel(get_model(cfg.network, embedding_size=cfg.embedding_size),
                                       num_classes, cfg.embedding_size, cfg.margin_s,
                                       cfg.margin_m3)
        self.model.initialize(mx.init.Xavier(rnd_type="gaussian", factor_type="in",
                                             magnitude=2), ctx=workers.ctx)
        self.model.hybridize(static_alloc=True, static_shape=True)
        options = {"learning_rate": 0.01, "momentum": cfg.momentum, "wd": cfg.weight_decay}
        if workers.size > 1:
            import horovod.mxnet as hvd

            x = mx.nd.zeros((cfg.batch_size, 3) + tuple(cfg.image_size), ctx=workers.ctx)
            self.model(x, mx.nd.zeros((cfg.batch_size,), ctx=workers.ctx))  # shapes first
            params = self.model.collect_params()
            hvd.broadcast_parameters(params, root_rank=0)
            nd.waitall()
            self.trainer = hvd.DistributedTrainer(params, "sgd", options, prefix="bare.")
        else:
            self.trainer = gluon.Trainer(self.model.collect_params(), "sgd", options,
                                         kvstore=None)

    def run(self, steps):
        for _ in range(steps):
            try:
                batch = next(self.data)
            except StopIteration:
                self.data.reset()
                batch = next(self.data)
            x = batch.data[0].as_in_context(self.workers.ctx)
            y = self.data.identities(batch).as_in_context(self.workers.ctx)
            with autograd.record():
                loss = self.model(x, y)
            loss.backward()
            self.trainer.step(self.batch_size)
        nd.waitall()


class Interleave:
    """The stop flag `Run.train` polls once per step: every `steps` steps it closes the
    train.py round, runs a bare round, and restarts the clock; it stops after the last."""

    def __init__(self, run, bare, rounds, steps):
        self.run, self.bare, self.rounds, self.steps = run, bare, rounds, steps
        self.start_step, self.clock, self.results = run.step, None, []

    def __bool__(self):
        done = self.run.step - self.start_step
        if self.clock is None:
            self.clock = time.perf_counter()
            return False
        if done == 0 or done % self.steps:
            return False
        nd.waitall()
        train_seconds = time.perf_counter() - self.clock
        start = time.perf_counter()
        self.bare.run(self.steps)
        bare_seconds = time.perf_counter() - start
        self.results.append((train_seconds, bare_seconds))
        self.clock = time.perf_counter()
        return len(self.results) >= self.rounds + 1  # + the warm-up round


def measure(rec, args):
    from recognition.config import load_config
    from recognition.parallel.distributed import init_workers
    from recognition.training.run import Run

    workers = init_workers()
    output = tempfile.mkdtemp(prefix="bench_overhead_")
    cfg = load_config(os.path.join(REPO, "configs", "synthetic.py"), dict(
        loss="cosface", margin_s=32.0, margin_m3=0.2, rec=rec, batch_size=args.batch_size,
        verify_every=0, save_every=100000, log_every=20,
        max_steps=100000, warmup_steps=0, lr=0.01, lr_steps=[], output=output,
        preprocess_threads=args.preprocess_threads))
    run = Run(cfg, workers)
    bare = BareLoop(cfg, workers, run.num_classes)
    flag = Interleave(run, bare, args.rounds, args.steps)
    run.train(flag)
    run.log.close()
    images = args.steps * cfg.batch_size * workers.size
    rounds = [(images / t, images / b) for t, b in flag.results[1:]]
    return {"workers": workers.size, "rounds": rounds,
            "ratio": statistics.median(t / b for t, b in rounds)}


def report(result):
    print(f"{result['workers']} worker(s): train.py vs bare loop, img/s per round (global batch)")
    for i, (train, bare) in enumerate(result["rounds"], 1):
        print(f"  round {i}: train.py {train:6.1f}   bare {bare:6.1f}   ratio {train / bare:.3f}")
    print(f"  median ratio train.py / bare: {result['ratio']:.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="worker counts to measure (2: under horovodrun -np 2)")
    parser.add_argument("--rounds", type=int, default=4, help="timed rounds (after a warm-up)")
    parser.add_argument("--steps", type=int, default=20, help="steps per round and side")
    parser.add_argument("--batch-size", type=int, default=64, help="images per worker per step")
    parser.add_argument("--preprocess-threads", type=int, default=2,
                        help="decoding threads per worker (both sides)")
    parser.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "bench_overhead"),
                        help="where the synthetic .rec is generated (reused)")
    parser.add_argument("--worker-mode", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    rec = _prepare_data(args.data)
    if args.worker_mode:  # one Horovod worker: rank 0 prints the result as JSON
        result = measure(rec, args)
        if result is not None and os.environ.get("HOROVOD_RANK", "0") == "0":
            print("RESULT " + json.dumps(result), flush=True)
        return 0
    from benchmarks.common import machine

    print(f"machine: {machine()}; load before: {os.getloadavg()[0]:.2f}; threads: "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"MXNET_CPU_WORKER_NTHREADS={os.environ.get('MXNET_CPU_WORKER_NTHREADS', 'unset')}, "
          f"preprocess_threads={args.preprocess_threads}")
    for count in args.workers:
        if count == 1:
            report(measure(rec, args))
            continue
        command = local_workers_command(
            [sys.executable, os.path.abspath(__file__), "--worker-mode",
             "--rounds", str(args.rounds), "--steps", str(args.steps),
             "--batch-size", str(args.batch_size), "--data", args.data,
             "--preprocess-threads", str(args.preprocess_threads)], count)
        out = subprocess.run(command, capture_output=True, text=True, check=True,
                             env=dict(os.environ, PYTHONPATH=REPO)).stdout
        line = next(ln for ln in out.splitlines() if "RESULT " in ln)
        report(json.loads(line.split("RESULT ", 1)[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
