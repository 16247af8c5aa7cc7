"""Sizes of a registry backbone for the sizing model, from shape inference alone.

The network is traced to an MXNet symbol and the shapes of every internal node are inferred
for one image (``backbones.trace.Trace``); nothing is initialised or run, so even IResNet-100
takes a fraction of a second.

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


@lru_cache(maxsize=32)
def backbone_stats(name, input_size=None, embedding_size=None, prelu_form="conv"):
    """:class:`BackboneStats` of registry backbone ``name`` for one ``input_size`` image.

    ``embedding_size`` (when given) goes to the backbone's constructor; ``prelu_form`` is the
    form its PReLU blocks are built in ('conv' as on a CPU, 'op' as on a GPU). Unknown names
    raise :class:`~recognition.errors.ConfigError` listing the valid ones.
    """
    from ..backbones import default_input_size, get_model
    from ..backbones.common import prelu_form as building
    from ..backbones.trace import Trace

    size = input_size or default_input_size(name)
    kwargs = {} if embedding_size is None else {"embedding_size": embedding_size}
    with building(prelu_form):
        net = get_model(name, **kwargs)
    trace = Trace(net, (1, 3, size, size), name)
    params, aux = trace.parameter_counts()
    return BackboneStats(name, size, params, aux, trace.image_activations(),
                         int(trace.output_shapes[0][-1]), prelu_form)
