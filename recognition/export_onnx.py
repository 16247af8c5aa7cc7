"""`face-export-onnx` / `tools/export_onnx.py`: MXNet checkpoint -> ONNX, checked by onnxruntime.

MXNet 1.9.1's exporter has known traps, fixed here: a per-channel PReLU slope is
written as (C,) and broadcasts over width instead of channels, so it is reshaped to (C, 1, 1);
a fixed-gamma BatchNorm's stored gamma is written as is, so it is set to 1 first; initialisers
are listed as graph inputs, so they are removed from the inputs; a FullyConnected without an
explicit `flatten` is exported unflattened, so the default is written out; the batch axis is
dynamic. The file's metadata records its input convention (raw RGB 0..255 NCHW, as MXNet
takes), so `face-verify` feeds it right.
The exported file is then run on the same random batch as MXNet and the max abs difference is
reported (non-zero exit when it exceeds --atol).
"""
import argparse
import json
import sys

import numpy as np

from .cli import entry_point
from .errors import DataError
from .eval.onnx_model import EXPORT_METADATA
from .fileio import atomic_write
from .model_spec import parse_prefix_epoch

__all__ = ["explicit_defaults", "fixed_gamma_params", "prelu_slope_ranks", "fix_onnx_model",
           "export", "compare", "main"]


def _true(value, default=True):
    return default if value is None else str(value).lower() in ("true", "1")


def explicit_defaults(symbol):
    """The symbol with FullyConnected's `flatten` written out: absent, MXNet flattens but the
    exporter does not (InsightFace symbols omit it), which breaks a conv -> FC step in ONNX."""
    import mxnet as mx

    graph = json.loads(symbol.tojson())
    for node in graph["nodes"]:
        if node["op"] == "FullyConnected":
            node.setdefault("attrs", {}).setdefault("flatten", "True")
    return mx.sym.load_json(json.dumps(graph))


def fixed_gamma_params(symbol, params):
    """Copy of params with the gamma of every fix_gamma BatchNorm (MXNet default) set to 1."""
    import mxnet as mx

    out = dict(params)
    for node in json.loads(symbol.tojson())["nodes"]:
        if node["op"] == "BatchNorm" and _true(node.get("attrs", {}).get("fix_gamma")):
            name = f"{node['name']}_gamma"
            if name in out:
                out[name] = mx.nd.ones_like(out[name])
    return out


def prelu_slope_ranks(symbol, input_name, input_shape):
    """{PReLU slope parameter name: rank of the data it multiplies}, from MXNet shape inference."""
    nodes = json.loads(symbol.tojson())["nodes"]
    internals = symbol.get_internals()
    _, shapes, _ = internals.infer_shape(**{input_name: (1,) + tuple(input_shape)})
    shape_of = dict(zip(internals.list_outputs(), shapes))
    ranks = {}
    for node in nodes:
        attrs = node.get("attrs", {})
        if node["op"] == "LeakyReLU" and attrs.get("act_type") == "prelu":
            data, gamma = node["inputs"][0], node["inputs"][1]
            src = nodes[data[0]]
            key = src["name"] if src["op"] == "null" else f"{src['name']}_output"
            shape = shape_of.get(key) or shape_of.get(f"{key}{data[1]}")
            if shape is not None:
                ranks[nodes[gamma[0]]["name"]] = len(shape)
    return ranks


def fix_onnx_model(model, slope_ranks):
    """Reshape PRelu slopes (C,) -> (C, 1, ...) for rank-4 data; drop initialisers from inputs."""
    from onnx import numpy_helper

    slopes = {n.input[1] for n in model.graph.node if n.op_type == "PRelu"}
    for i, init in enumerate(model.graph.initializer):
        rank = slope_ranks.get(init.name, 2)
        if init.name in slopes and len(init.dims) == 1 and rank > 2:
            arr = numpy_helper.to_array(init).reshape((-1,) + (1,) * (rank - 2))
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(arr, init.name))
    names = {init.name for init in model.graph.initializer}
    keep = [inp for inp in model.graph.input if inp.name not in names]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    return model


def export(model, out_path, input_shape=(3, 112, 112)):
    """Write the embedding model (recognition.eval.embed.EmbeddingModel) as ONNX, dynamic batch."""
    import mxnet as mx
    import onnx

    if not model.accepts(input_shape[1:]):
        raise DataError(f"{model.prefix}: model does not take input shape {input_shape}")
    names = set(model.symbol.list_arguments()) | set(model.symbol.list_auxiliary_states())
    params = fixed_gamma_params(model.symbol, {k: v for k, v in model.params.items()
                                               if k in names})
    def write(tmp):
        mx.onnx.export_model(explicit_defaults(model.symbol), params, [(1,) + tuple(input_shape)],
                             np.float32, tmp, dynamic=True,
                             dynamic_input_shapes=[(None,) + tuple(input_shape)])
        onnx_model = fix_onnx_model(onnx.load(tmp),
                                    prelu_slope_ranks(model.symbol, model.input_name, input_shape))
        onnx.helper.set_model_props(onnx_model, EXPORT_METADATA)
        onnx.checker.check_model(onnx_model)
        onnx.save(onnx_model, tmp)
    return atomic_write(out_path, write, suffix=".onnx")


def compare(model, onnx_path, batch):
    """`(max abs difference, max abs MXNet output)` between MXNet and onnxruntime outputs on a
    float32 NCHW batch (the second scales the tolerance)."""
    import mxnet as mx
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: batch.astype(np.float32)})[0]
    want = model.net(mx.nd.array(batch)).asnumpy()
    return float(np.abs(got.reshape(want.shape) - want).max()), float(np.abs(want).max())


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
    from .eval.embed import load_model

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
