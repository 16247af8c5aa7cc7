"""`face-summary NAME...`: parameters, FLOPs, output shape and exported size of backbones.

FLOPs are counted here, not taken from a library: the network is traced to an MXNet symbol,
shapes are inferred for every internal node, and each Convolution / FullyConnected contributes
output elements x (input channels / groups) x kernel area multiply-accumulates. Like the papers
the recipes follow (and most face papers) one multiply-accumulate counts as one FLOP; BatchNorm,
activations, pooling and additions are left out (a few percent of the total), except PReLU,
which is a 1x1 depthwise convolution here (`common.ChannelPReLU`) and so counts one per element.
"""
import argparse
import ast
import json
import os
import sys
import tempfile
from collections import namedtuple

import mxnet as mx
import numpy as np

from ..cli import entry_point
from . import default_input_size, get_model, get_model_list

Summary = namedtuple("Summary", "name input_size trainable total macs output_shapes export_bytes")


def _as_symbol(net):
    out = net(mx.sym.var("data"))
    return mx.sym.Group(list(out)) if isinstance(out, (list, tuple)) else out


def count_macs(net, input_shape):
    """Multiply-accumulates of all Convolution/FullyConnected layers for one input batch."""
    sym = _as_symbol(net)
    internals = sym.get_internals()
    arg_shapes, out_shapes, _ = internals.infer_shape(data=input_shape)
    args = dict(zip(internals.list_arguments(), arg_shapes))
    outs = dict(zip(internals.list_outputs(), out_shapes))
    nodes = json.loads(sym.tojson())["nodes"]
    total = 0
    for node in nodes:
        if node["op"] not in ("Convolution", "FullyConnected"):
            continue
        weight = args[nodes[node["inputs"][1][0]]["name"]]
        out = outs[node["name"] + "_output"]
        if node["op"] == "Convolution":  # weight is (out, in / groups, kh, kw)
            total += int(np.prod(out)) * int(np.prod(weight[1:]))
        else:  # weight is (hidden, in); out is (batch, hidden)
            total += int(out[0]) * int(np.prod(weight))
    return total


def count_params(net):
    """(trainable scalars, all scalars incl. BatchNorm running statistics)."""
    params = net.collect_params().values()
    trainable = sum(p.data().size for p in params if p.grad_req != "null")
    return trainable, sum(p.data().size for p in params)


def exported_bytes(net, input_shape):
    """Bytes on disk of `prefix-symbol.json` + `prefix-0000.params` after `export`."""
    net.hybridize()
    net(mx.nd.zeros(input_shape))
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "model")
        net.export(prefix)
        return sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp))


def summarize(name, input_size=None, **kwargs):
    """Build `name`, initialise it and measure everything the summary table shows."""
    size = input_size or default_input_size(name)
    shape = (1, 3, size, size)
    net = get_model(name, **kwargs)
    net.initialize(mx.init.Xavier())
    out = net(mx.nd.zeros(shape))
    outs = out if isinstance(out, (list, tuple)) else [out]
    trainable, total = count_params(net)
    macs = count_macs(net, shape)
    return Summary(name, size, trainable, total, macs, [o.shape for o in outs],
                   exported_bytes(net, shape))


def format_row(s):
    shapes = " + ".join("x".join(str(d) for d in shape) for shape in s.output_shapes)
    return (f"| {s.name} | {s.input_size} | {s.trainable / 1e6:.3f} | {s.total * 4 / 2**20:.2f} | "
            f"{s.macs / 1e9:.3f} | {shapes} | {s.export_bytes / 2**20:.2f} |")


HEADER = ("| name | input | params (M, trainable) | float32 weights (MiB, incl. BN stats) | "
          "GFLOPs (MACs) | output | exported (MiB) |\n|---|---|---|---|---|---|---|")


def parse_options(pairs):
    """`key=value` strings -> kwargs; values are Python literals when they parse, else strings."""
    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    return options


def build_parser():
    parser = argparse.ArgumentParser(
        prog="face-summary",
        description="Print parameters, FLOPs (multiply-accumulates of conv/FC layers), output "
                    "shape and exported size of registry backbones as a Markdown table.")
    parser.add_argument("names", nargs="*", help="backbone names (see --list); none with --all")
    parser.add_argument("--all", action="store_true", help="summarize every registry entry")
    parser.add_argument("--list", action="store_true", help="print the registry names and exit")
    parser.add_argument("--input-size", type=int, default=None,
                        help="square input side in pixels (default: each backbone's own, "
                             "112 for face nets, 75 for FacialNet)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="constructor option, repeatable, e.g. --set act=prelu --set trsf=True")
    return parser


@entry_point(ValueError, TypeError, mx.MXNetError)
def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.list:
        print("\n".join(get_model_list()))
        return 0
    names = get_model_list() if args.all else args.names
    if not names:
        raise ValueError("give backbone names or --all; valid: " + ", ".join(get_model_list()))
    for name in names:
        default_input_size(name)  # unknown names fail before any output
    options = parse_options(args.set)
    print(HEADER)
    for name in names:
        try:
            row = format_row(summarize(name, args.input_size, **options))
        except TypeError as err:  # an option this backbone does not take
            raise ValueError(f"{name}: {err} (--set applies to every backbone named)") from None
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
