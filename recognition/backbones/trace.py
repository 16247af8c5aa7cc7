"""A backbone traced to an MXNet symbol, the shape of every internal node inferred for one
input batch: nothing is initialised or run, so even IResNet-100 takes a fraction of a second.

One trace serves both counts made of a backbone: `face-summary`'s FLOPs (`macs`) and the sizing
model's parameters and activations (`parameter_counts`, `image_activations`, in
`recognition.scaling.backbone_stats`).
"""
import json

import mxnet as mx
import numpy as np

__all__ = ["Trace"]


class Trace:
    """`net` (a Gluon HybridBlock, initialised or not) called on the symbol `data` of
    `input_shape` (N, C, H, W). ValueError naming `name` (default: the block's) when the
    shapes cannot all be inferred for that input."""

    def __init__(self, net, input_shape, name=None):
        self.net = net
        out = net(mx.sym.var("data"))
        self.symbol = mx.sym.Group(list(out)) if isinstance(out, (list, tuple)) else out
        internals = self.symbol.get_internals()
        arg_shapes, out_shapes, aux_shapes = internals.infer_shape(data=tuple(input_shape))
        if arg_shapes is None:
            raise ValueError(f"{name or net.name}: shapes cannot be inferred for a "
                             f"{input_shape[2]}x{input_shape[3]} input")
        self.arg_shapes = dict(zip(internals.list_arguments(), arg_shapes))
        self.out_shapes = dict(zip(internals.list_outputs(), out_shapes))
        self.aux_shapes = aux_shapes
        graph = json.loads(internals.tojson())  # the network's nodes, every output a head
        self.nodes, self.heads = graph["nodes"], graph["heads"]
        self.head_shapes = out_shapes

    @property
    def output_shapes(self):
        """Shapes of the network's outputs (one per output of a multi-head network)."""
        return [self.out_shapes[name] for name in self.symbol.list_outputs()]

    def macs(self):
        """Multiply-accumulates of all Convolution/FullyConnected layers for the input batch:
        output elements x (input channels / groups) x kernel area."""
        total = 0
        for node in self.nodes:
            if node["op"] not in ("Convolution", "FullyConnected"):
                continue
            weight = self.arg_shapes[self.nodes[node["inputs"][1][0]]["name"]]
            out = self.out_shapes[node["name"] + "_output"]
            if node["op"] == "Convolution":  # weight is (out, in / groups, kh, kw)
                total += int(np.prod(out)) * int(np.prod(weight[1:]))
            else:  # weight is (hidden, in); out is (batch, hidden)
                total += int(out[0]) * int(np.prod(weight))
        return total

    def parameter_counts(self):
        """`(trained, stored)` scalars: trained are the arguments with a gradient (weights,
        biases, BatchNorm gamma/beta, PReLU slopes); stored the auxiliary states (BatchNorm
        running statistics) and the arguments without one (fixed gammas)."""
        trained = {key for key, p in self.net.collect_params().items() if p.grad_req != "null"}
        sizes = {arg: int(np.prod(shape)) for arg, shape in self.arg_shapes.items()
                 if arg != "data"}
        params = sum(size for arg, size in sizes.items() if arg in trained)
        aux = sum(int(np.prod(shape)) for shape in self.aux_shapes) + sum(
            size for arg, size in sizes.items() if arg not in trained)
        return params, aux

    def _image_outputs(self):
        """Flags, one per head: made by an operator that depends on 'data'."""
        depends = []
        for node in self.nodes:  # topological order: inputs come first
            if node["op"] == "null":
                depends.append(node["name"] == "data")
            else:
                depends.append(any(depends[src] for src, *_ in node["inputs"]))
        return [self.nodes[nid]["op"] != "null" and depends[nid] for nid, *_ in self.heads]

    def image_activations(self):
        """Sum of the output sizes of every operator that depends on the image (operators of
        the parameters alone, such as a slope reshape, are left out)."""
        return sum(int(np.prod(shape)) for shape, keep
                   in zip(self.head_shapes, self._image_outputs()) if keep)
