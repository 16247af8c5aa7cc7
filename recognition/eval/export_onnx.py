"""MXNet checkpoint -> ONNX, checked by onnxruntime (the command line: `face-export-onnx`,
`recognition.commands.export_onnx`).

MXNet 1.9.1's exporter has known traps, fixed here: a per-channel PReLU slope is
written as (C,) and broadcasts over width instead of channels, so it is reshaped to (C, 1, 1);
a fixed-gamma BatchNorm's stored gamma is written as is, so it is set to 1 first; initialisers
are listed as graph inputs, so they are removed from the inputs; a FullyConnected without an
explicit `flatten` is exported unflattened, so the default is written out; the batch axis is
dynamic. The file's metadata records its input convention (raw RGB 0..255 NCHW, as MXNet
takes), so `face-verify` feeds it right.
`compare` runs the exported file and MXNet on the same batch; the command reports the max abs
difference (non-zero exit when it exceeds the tolerance).
"""
import json

import numpy as np

from ..errors import DataError
from ..fileio import atomic_write
from .onnx_model import EXPORT_METADATA

__all__ = ["explicit_defaults", "fixed_gamma_params", "prelu_slope_ranks", "fix_onnx_model",
           "export", "compare"]


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
