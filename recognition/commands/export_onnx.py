"""`face-export-onnx` / `tools/export_onnx.py`: MXNet checkpoint -> ONNX, checked by onnxruntime
(`recognition.eval.export_onnx`)."""
import argparse
import sys

import numpy as np

from ..eval.export_onnx import compare, export
from ..model_spec import parse_prefix_epoch
from .entry import entry_point

__all__ = ["build_parser", "main"]


def build_parser():
    p = argparse.ArgumentParser(prog="face-export-onnx", description="Export an MXNet face "
                                "embedding checkpoint to ONNX and check it with onnxruntime.")
    p.add_argument("model", metavar="PREFIX,EPOCH", help="checkpoint prefix and epoch")
    p.add_argument("output", help="ONNX file to write")
    p.add_argument("--input-shape", default="3,112,112", metavar="C,H,W",
                   help="input shape without the (dynamic) batch axis")
    p.add_argument("--layer", default=None, help="embedding layer (default: found from graph)")
    p.add_argument("--check-batch", type=int, default=4,
                   help="random images (0..255) in the MXNet vs onnxruntime check")
    p.add_argument("--atol", type=float, default=1e-4,
                   help="absolute part of the tolerance (default 1e-4)")
    p.add_argument("--rtol", type=float, default=1e-4,
                   help="relative part: fail when max |ONNX - MXNet| exceeds atol + rtol * "
                        "max |MXNet output| (float32 sums in another order differ in the last "
                        "digits, which is larger for larger outputs; default 1e-4)")
    return p


@entry_point(ValueError, OSError)
def main(argv=None):
    """Console entry point; bad input prints `error: ...` and exits with status 2."""
    from ..eval.embed import load_model

    args = build_parser().parse_args(argv)
    prefix, epoch = parse_prefix_epoch(args.model, "model")
    shape = tuple(int(v) for v in args.input_shape.split(","))
    model = load_model(prefix, epoch, layer=args.layer)
    export(model, args.output, shape)
    batch = np.random.default_rng(0).uniform(0, 255, (args.check_batch,) + shape)
    diff, scale = compare(model, args.output, batch.astype(np.float32))
    tolerance = args.atol + args.rtol * scale
    print(f"wrote {args.output}; onnxruntime vs MXNet on {args.check_batch} images: "
          f"max abs diff {diff:.3g} (max |output| {scale:.3g}, tolerance {tolerance:.3g})")
    if diff > tolerance:
        print(f"error: difference {diff:.3g} exceeds the tolerance {tolerance:.3g} "
              f"(--atol {args.atol:g} + --rtol {args.rtol:g} * {scale:.3g})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
