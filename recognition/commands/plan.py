"""`face-plan` / `python tools/plan.py`: what one worker of a training run needs.

Prints, for worker 0 (it holds the largest classifier shard), the memory of the backbone
(weights, gradients, SGD momentum, float32 master weights with float16, activations kept for
backward, counted for the PReLU form --device builds) and of the sharded classifier (centres,
momentum, gradient or sampled rows, the two softmax arrays, gathered features), the bytes it
sends per step (backbone gradient all-reduce, zero-padded feature/label all-reduces, softmax
all-reduces, feature-gradient all-reduce) and their time at line rate, the classifier's GEMM
time at --gpu-tflops (both lower bounds) and, with --gpu-memory, the largest batch and the
largest class count that fit. Nothing of this project has run on a GPU: the GPU figures are
the model's, not measurements. Formulas and assumptions: docs/scaling.md.

example:
  python tools/plan.py --classes 10M --workers 64 --network r100 --batch-size 128 \\
      --embedding-size 512 --dtype float16 --sample-rate 0.1 --gpu-memory 80
"""
import argparse
import json
import re
import sys

from ..errors import ConfigError, UserError
from ..scaling.backbone_stats import PRELU_FORM_OF_DEVICE
from ..scaling.memory import ACTIVATION_FACTORS, DTYPE_BYTES, FUSION_BYTES, GIB, MIB, Setup
from ..scaling.report import build_plan, format_plan
from ..scaling.timing import GPU_FP32_TFLOPS
from .entry import entry_point

__all__ = ["main", "build_parser"]

_SUFFIX = {"": 1, "k": 10 ** 3, "m": 10 ** 6, "g": 10 ** 9}


def count(text):
    """A positive integer, also written 200k, 10M, 1e7."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmg]?)\s*", str(text).lower())
    if not match:
        raise argparse.ArgumentTypeError(f"expected a positive count such as 200000, 200k, 10M "
                                         f"or 1e7, got {text!r}")
    value = float(match.group(1)) * _SUFFIX[match.group(2)]
    if value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"expected a positive whole count, got {text!r}")
    return int(value)


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
        return value
    return parse


def _non_negative(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse that raises ConfigError instead of exiting, so main() returns the code."""

    def error(self, message):
        raise ConfigError(message)


def build_parser():
    p = _Parser(prog="face-plan", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--classes", type=count, required=True,
                   help="identities C of the whole run (200000, 200k, 10M and 1e7 all work)")
    p.add_argument("--workers", type=count, default=1,
                   help="Horovod workers W, one per GPU (default 1)")
    p.add_argument("--network", default="r100",
                   help="registry backbone (tools/summary.py --list), or 'none' to size the "
                        "classifier alone (default r100)")
    p.add_argument("--input-size", type=count, default=None,
                   help="square input side in pixels (default: the backbone's, 112 for faces)")
    p.add_argument("--batch-size", type=count, default=128,
                   help="images per worker per step b; the global batch is W*b (default 128)")
    p.add_argument("--embedding-size", type=count, default=None,
                   help="embedding size D (default: the backbone's output; 512 with "
                        "--network none)")
    p.add_argument("--dtype", choices=sorted(DTYPE_BYTES), default="float32",
                   help="backbone dtype; float16 adds float32 master weights, the classifier "
                        "stays float32 (default float32)")
    p.add_argument("--sample-rate", type=_positive(float), default=1.0,
                   help="partial FC: fraction of each worker's centres used per step, positives "
                        "always kept; 1 = full FC (default 1)")
    p.add_argument("--device", choices=("gpu", "cpu"), default="gpu",
                   help="what the workers run on; it sets the PReLU form counted, as "
                        "backbones.common.prelu_form_for picks it for training. Today both "
                        "build the four-op conv form (IResNet-100: 48.1M values/image): MXNet "
                        "1.9.1's one-op PReLU (31.8M) gets its slope gradient wrong inside "
                        "graphs; the plan also prints the one-op count (default gpu)")
    p.add_argument("--gpu-tflops", type=_positive(float), default=GPU_FP32_TFLOPS,
                   metavar="TFLOPS",
                   help="peak float32 rate for the classifier's GEMM time, a lower bound "
                        f"(default {GPU_FP32_TFLOPS:g}: NVIDIA H100 SXM5, dense float32 "
                        "without tensor cores, NVIDIA H100 Tensor Core GPU datasheet; the "
                        "H100 PCIe: 51; TF32 tensor cores: 495 dense)")
    p.add_argument("--gpu-memory", type=_positive(float), default=None, metavar="GB",
                   help="device memory in GiB (an '80 GB' card: 80); prints whether the setup "
                        "fits, the largest batch per worker and the largest class count")
    p.add_argument("--reserve-gb", type=_non_negative, default=1.0,
                   help="memory the model does not derive: CUDA context, cuDNN/NCCL "
                        "workspaces, allocator slack, in GiB (default 1; 0 on a CPU)")
    p.add_argument("--activation-factor", type=_positive(float), default=None,
                   help="peak backward memory over batch x sum of layer outputs x dtype bytes "
                        f"(default by PReLU form: {ACTIVATION_FACTORS['conv']:g} for the "
                        "four-op conv form training builds, 1.01-1.21 measured on the CPU; "
                        f"{ACTIVATION_FACTORS['op']:g} for the one-op form, 1.29-1.57 measured)")
    p.add_argument("--fusion-mb", type=_non_negative, default=FUSION_BYTES / MIB,
                   help="Horovod fusion buffer in MiB, counted when W > 1 (horovodrun "
                        "--fusion-threshold-mb; default 128)")
    p.add_argument("--link-gbps", type=_positive(float), nargs="+", default=[100.0, 25.0],
                   help="link speeds in Gb/s to turn the bytes per step into milliseconds at "
                        "line rate, a lower bound (default: 100 for InfiniBand EDR, 25 for "
                        "25GbE)")
    p.add_argument("--step-time", type=_positive(float), default=None, metavar="SECONDS",
                   help="a step time; prints the link speed needed to move a step's bytes in "
                        "it (a lower bound)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON instead")
    return p


def _stats(args, prelu_form):
    if args.network.lower() == "none":
        return None
    import mxnet as mx

    from ..scaling.backbone_stats import backbone_stats

    try:
        return backbone_stats(args.network, args.input_size, args.embedding_size, prelu_form)
    except (TypeError, ValueError, mx.base.MXNetError) as exc:
        if isinstance(exc, UserError):
            raise
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot size --network {args.network} with --input-size "
                          f"{args.input_size} --embedding-size {args.embedding_size}: "
                          f"{reason}") from None


@entry_point()
def main(argv=None):
    try:
        args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # --help
        return exc.code or 0
    if args.sample_rate > 1:
        raise ConfigError(f"--sample-rate must be in (0, 1], got {args.sample_rate:g}")
    form = PRELU_FORM_OF_DEVICE[args.device]
    stats = _stats(args, form)
    other = _stats(args, "conv" if form == "op" else "op")
    dim = stats.embedding_size if stats is not None else (args.embedding_size or 512)
    factor = args.activation_factor or ACTIVATION_FACTORS[form]
    setup = Setup(args.classes, args.workers, args.batch_size, dim, args.dtype,
                  args.sample_rate, factor, int(args.fusion_mb * MIB), int(args.reserve_gb * GIB))
    gpu = int(args.gpu_memory * GIB) if args.gpu_memory else None
    plan = build_plan(setup, stats, gpu, tuple(args.link_gbps), args.step_time,
                      args.gpu_tflops, other)
    print(json.dumps(plan, indent=1) if args.json else format_plan(plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
