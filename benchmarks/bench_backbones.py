"""Forward+backward images/s of registry backbones on this machine, imperative vs hybridized.

Each measurement: a few warm-up steps, then `--steps` timed steps of forward under
`autograd.record()`, backward of the mean output, and a wait for the result. No optimizer step
(it costs the same for both modes). Default: the CPU-sized nets at batch 64, so the run stays
under ~3 minutes on 2 cores; time big nets with e.g. `--models r50 incres_v1 --batch-size 8`.
"""
import argparse
import time

import mxnet as mx
from mxnet import autograd

from recognition.backbones import default_input_size, get_model, get_model_list

DEFAULT_MODELS = ("r_tiny", "mbv2", "facialnet")


def images_per_second(name, batch_size, steps, hybridize, input_size=None, warmup=2):
    """Forward+backward throughput of backbone `name` in images/s."""
    size = input_size or default_input_size(name)
    net = get_model(name)
    net.initialize(mx.init.Xavier())
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    x = mx.nd.random.uniform(0, 255, (batch_size, 3, size, size))
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        with autograd.record():
            out = net(x)
            outs = out if isinstance(out, (list, tuple)) else [out]
            loss = mx.nd.add_n(*[o.mean() for o in outs])
        loss.backward()
        loss.wait_to_read()
        mx.nd.waitall()
    return batch_size * steps / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                        choices=get_model_list(), help="backbones to time")
    parser.add_argument("--batch-size", type=int, default=64, help="images per step")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per measurement")
    parser.add_argument("--input-size", type=int, default=None,
                        help="square input side (default: each backbone's own, 112 mostly)")
    args = parser.parse_args(argv)
    print(f"batch {args.batch_size}, {args.steps} timed steps, forward+backward images/s")
    print("| backbone | input | imperative | hybridized |\n|---|---|---|---|")
    for name in args.models:
        rates = [images_per_second(name, args.batch_size, args.steps, hybrid, args.input_size)
                 for hybrid in (False, True)]
        size = args.input_size or default_input_size(name)
        print(f"| {name} | {size} | {rates[0]:.1f} | {rates[1]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
