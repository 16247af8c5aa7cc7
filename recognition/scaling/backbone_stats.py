"""Sizes of a registry backbone for the sizing model, from shape inference alone.

The network is traced to an MXNet symbol and the shapes of every internal node are inferred
for one image; nothing is initialised or run, so even IResNet-100 takes a fraction of a second.

- ``params``: scalars of every trained argument (weights, biases, BatchNorm gamma/beta, PReLU
  slopes); ``aux``: scalars stored but never trained (BatchNorm running statistics, fixed
  gammas): no gradient, no optimizer state;
- ``activations``: the sum of the output sizes of every operator of the graph that depends on
  the image, for one image (operators of the parameters alone, such as a slope reshape, are
  per step, not per image, and left out). Training keeps (nearly) all of them for the
  backward pass; the memory model multiplies this sum by the batch size, the bytes of the
  dtype and a factor (see :mod:`.memory`);
- ``embedding_size``: the size of the network's (first) output;
- ``prelu_form``: the PReLU form the count is for (``backbones.common.ChannelPReLU``): 'op'
  is what a GPU context builds, 'conv' what a CPU builds. IResNet-100 at 112x112 has 31.8M
  activation values per image as built for a GPU and 48.1M as built for a CPU; networks
  without PReLU give the same count for both.
"""
import json
from collections import namedtuple
from functools import lru_cache

__all__ = ["BackboneStats", "backbone_stats", "PRELU_FORM_OF_DEVICE"]

BackboneStats = namedtuple("BackboneStats", "name input_size params aux activations "
                                            "embedding_size prelu_form")



def _forms_of_devices():
    """{'gpu': form, 'cpu': form} as backbones.common.prelu_form_for picks them (a Context
    object is only a description: no device is needed)."""
    import mxnet as mx

    from ..backbones.common import prelu_form_for

    return {"gpu": prelu_form_for(mx.gpu(0)), "cpu": prelu_form_for(mx.cpu())}


PRELU_FORM_OF_DEVICE = _forms_of_devices()


def _image_outputs(internals):
    """Flags, one per output of ``internals``: made by an operator that depends on 'data'."""
    graph = json.loads(internals.tojson())
    nodes = graph["nodes"]
    depends = []
    for node in nodes:  # topological order: inputs come first
        if node["op"] == "null":
            depends.append(node["name"] == "data")
        else:
            depends.append(any(depends[src] for src, *_ in node["inputs"]))
    return [nodes[nid]["op"] != "null" and depends[nid] for nid, *_ in graph["heads"]]


@lru_cache(maxsize=32)
def backbone_stats(name, input_size=None, embedding_size=None, prelu_form="conv"):
    """:class:`BackboneStats` of registry backbone ``name`` for one ``input_size`` image.

    ``embedding_size`` (when given) goes to the backbone's constructor; ``prelu_form`` is the
    form its PReLU blocks are built in ('conv' as on a CPU, 'op' as on a GPU). Unknown names
    raise :class:`~recognition.errors.ConfigError` listing the valid ones.
    """
    import mxnet as mx
    import numpy as np

    from ..backbones import default_input_size, get_model
    from ..backbones.common import prelu_form as building

    size = input_size or default_input_size(name)
    kwargs = {} if embedding_size is None else {"embedding_size": embedding_size}
    with building(prelu_form):
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
    activations = sum(int(np.prod(shape)) for shape, keep
                      in zip(out_shapes, _image_outputs(internals)) if keep)
    _, final_shapes, _ = sym.infer_shape(data=(1, 3, size, size))
    return BackboneStats(name, size, params, aux, activations, int(final_shapes[0][-1]),
                         prelu_form)
