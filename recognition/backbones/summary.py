"""Parameters, FLOPs, output shape and exported size of backbones (the `face-summary` table;
its command line is `recognition.commands.summary`).

FLOPs are counted here, not taken from a library: the network is traced to an MXNet symbol and
shapes are inferred for every internal node (`trace.Trace`); each Convolution / FullyConnected
contributes output elements x (input channels / groups) x kernel area multiply-accumulates.
Like the papers the recipes follow (and most face papers) one multiply-accumulate counts as one
FLOP; BatchNorm, activations, pooling and additions are left out (a few percent of the total),
except PReLU, which is a 1x1 depthwise convolution here (`common.ChannelPReLU`) and so counts
one per element.
"""
import os
import tempfile
from collections import namedtuple

import mxnet as mx

from ..model_spec import export_network
from . import default_input_size, get_model
from .trace import Trace

Summary = namedtuple("Summary", "name input_size trainable total macs output_shapes export_bytes")


def count_macs(net, input_shape):
    """Multiply-accumulates of all Convolution/FullyConnected layers for one input batch."""
    return Trace(net, input_shape).macs()


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
        export_network(net, os.path.join(tmp, "model"), 0)
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
