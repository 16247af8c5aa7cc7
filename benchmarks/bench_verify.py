"""Verification speed: the metric on N pairs (target < 1 s for 6,000) and `face-verify` end to end
(decode, embed image + flip, metric) for a ResNet-50 on a generated 112x112 `.bin`.

    python benchmarks/bench_verify.py                       # 6,000-pair metric, 48-pair e2e
    python benchmarks/bench_verify.py --e2e-pairs 600 --batch-size 64 --gpu 0

The network is the project's IResNet-50 (`recognition.backbones.get_model('r50')`) with random
weights, or GluonCV's resnet50_v1b (512-way output as the embedding) with `--backbone gluoncv`
or when the registry cannot be imported. Random weights do not change the speed.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recognition.data.reading.pairs import save_pairs  # noqa: E402
from recognition.commands.verify import main as verify_main  # noqa: E402
from recognition.eval.metrics import evaluate_embeddings  # noqa: E402


def bench_metric(pairs, dim=512, repeats=3):
    rng = np.random.default_rng(0)
    issame = rng.random(pairs) < 0.5
    a = rng.normal(size=(pairs, dim))
    b = np.where(issame[:, None], a + rng.normal(size=(pairs, dim)), rng.normal(size=(pairs, dim)))
    emb = np.empty((2 * pairs, dim))
    emb[0::2], emb[1::2] = a, b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        res = evaluate_embeddings(emb, issame)
        times.append(time.perf_counter() - start)
    return min(times), res["acc"]


def build_resnet50(kind):
    import mxnet as mx

    if kind == "registry":
        try:
            from recognition.backbones import get_model

            return get_model("r50"), "recognition.backbones r50 (IResNet-50, 512-d)"
        except Exception as exc:  # registry missing or broken: say so and fall back
            print(f"registry r50 unavailable ({exc}); using gluoncv resnet50_v1b")
    from gluoncv.model_zoo import get_model as gcv_model

    class Normalised(mx.gluon.HybridBlock):
        def __init__(self):
            super().__init__()
            with self.name_scope():
                self.body = gcv_model("resnet50_v1b", classes=512, pretrained=False)

        def hybrid_forward(self, F, x):
            return self.body((x - 127.5) / 128)

    return Normalised(), "gluoncv resnet50_v1b, 512-way fc as embedding"


def make_bin(path, pairs, size=112):
    import cv2

    rng = np.random.default_rng(0)
    bins = []
    for _ in range(2 * pairs):
        img = cv2.resize(rng.integers(0, 256, (8, 8, 3)).astype(np.uint8), (size, size))
        bins.append(cv2.imencode(".jpg", img)[1].tobytes())
    save_pairs(path, bins, [i % 2 == 0 for i in range(pairs)])


def bench_e2e(pairs, batch_size, kind, gpu):
    import mxnet as mx

    net, label = build_resnet50(kind)
    net.initialize(mx.init.Xavier())
    net.hybridize()
    net(mx.nd.zeros((1, 3, 112, 112)))
    with tempfile.TemporaryDirectory() as tmp:
        net.export(os.path.join(tmp, "r50"), 1)
        make_bin(os.path.join(tmp, "bench.bin"), pairs)
        report = os.path.join(tmp, "report.json")
        start = time.perf_counter()
        rc = verify_main(["--data-dir", tmp, "--model", os.path.join(tmp, "r50") + ",1",
                          "--target", "bench", "--batch-size", str(batch_size), "--output",
                          report, "--gpu", str(gpu), "--nfolds", "2"])
        wall = time.perf_counter() - start
        if rc:
            raise SystemExit(f"face-verify failed with status {rc}")
        with open(report) as f:
            result = json.load(f)["results"][0]
    return label, result["pairs_per_s"], pairs / wall


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--metric-pairs", type=int, default=6000, help="pairs for the metric timing")
    p.add_argument("--e2e-pairs", type=int, default=48, help="pairs for the end-to-end run")
    p.add_argument("--batch-size", type=int, default=32, help="embedding batch size")
    p.add_argument("--backbone", choices=["registry", "gluoncv"], default="registry",
                   help="project IResNet-50 (default) or GluonCV resnet50_v1b")
    p.add_argument("--gpu", type=int, default=-1, help="GPU id; -1 = CPU")
    p.add_argument("--skip-e2e", action="store_true", help="metric timing only")
    args = p.parse_args(argv)
    seconds, acc = bench_metric(args.metric_pairs)
    print(f"metric: {args.metric_pairs} pairs, 512-d, 10 folds + VAL@FAR: {seconds:.3f} s "
          f"(best of 3; acc {acc:.4f})")
    if not args.skip_e2e:
        label, embed_rate, wall_rate = bench_e2e(args.e2e_pairs, args.batch_size, args.backbone,
                                                 args.gpu)
        print(f"end to end: {label}, {args.e2e_pairs} pairs 112x112, batch {args.batch_size}, "
              f"image + flip: embedding {embed_rate:.2f} pairs/s; whole run (load, decode, "
              f"embed, metric) {wall_rate:.2f} pairs/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
