"""Sizes of a registry backbone for the sizing model, from shape inference alone.

The network is traced to an MXNet symbol and the shapes of every internal node are inferred
for one image; nothing is initialised or run, so even IResNet-100 takes a fraction of a second.

- ``params``: scalars of every trained argument (weights, biases, BatchNorm gamma/beta, PReLU
  slopes); ``aux``: scalars stored but never trained (BatchNorm running statistics, fixed
  gammas): no gradient, no optimizer state;
- ``activations``: the sum of the output sizes of every operator of the graph for one image.
  Training keeps (nearly) all of them for the backward pass; the memory model multiplies this
  sum by the batch size, the bytes of the dtype and a factor (see :mod:`.memory`);
- ``embedding_size``: the size of the network's (first) output.
"""
from collections import namedtuple
from functools import lru_cache

__all__ = ["BackboneStats", "backbone_stats"]

BackboneStats = namedtuple("BackboneStats", "name input_size params aux activations embedding_size")


@lru_cache(maxsize=32)
def backbone_stats(name, input_size=None, embedding_size=None):
    """:class:`BackboneStats` of registry backbone ``name`` for one ``input_size`` image.

    ``embedding_size`` (when given) goes to the backbone's constructor. Unknown names raise
    :class:`~recognition.errors.ConfigError` listing the valid ones.
    """
    import mxnet as mx
    import numpy as np

    from ..backbones import default_input_size, get_model

    size = input_size or default_input_size(name)
    kwargs = {} if embedding_size is None else {"embedding_size": embedding_size}
    net = get_model(name, **kwargs)
    out = net(mx.sym.var("data"))
    sym = mx.sym.Group(list(out)) if isinstance(out, (list, tuple)) else out
    internals = sym.get_internals()
    arg_shapes, out_shapes, aux_shapes = internals.infer_shape(data=(1, 3, size, size))
    if arg_shapes is None:
        raise ValueError(f"{name}: shapes cannot be inferred for a {size}x{size} input")
    args = dict(zip(internals.list_arguments(), arg_shapes))
    trained = {key for key, p in net.collect_params().items() if p.grad_req != "null"}
    sizes = {arg: int(np.prod(shape)) for arg, shape in args.items() if arg != "data"}
    params = sum(size for arg, size in sizes.items() if arg in trained)
    aux = sum(int(np.prod(shape)) for shape in aux_shapes) + sum(
        size for arg, size in sizes.items() if arg not in trained)
    variables = set(args) | set(internals.list_auxiliary_states())
    activations = sum(int(np.prod(shape)) for out_name, shape
                      in zip(internals.list_outputs(), out_shapes) if out_name not in variables)
    _, final_shapes, _ = sym.infer_shape(data=(1, 3, size, size))
    return BackboneStats(name, size, params, aux, activations, int(final_shapes[0][-1]))
