"""Building the embedding network for training and loading weights into it.

Checkpoints are MXNet's exported format (`arg:`/`aux:` prefixed names): the same file users load
with `mx.model.load_checkpoint`, read by `recognition.model_spec` and set here into the Gluon
network by parameter name.
"""
import mxnet as mx
from mxnet import gluon

from ..backbones import get_model
from ..errors import ConfigError, DataError
from ..model_spec import load_embedding, parse_prefix_epoch, read_params
from .task import task_for

__all__ = ["build_network", "load_exported_params", "make_trainer", "materialize"]


def build_network(cfg, ctx, task=None):
    """The configured backbone, initialised on `ctx` and hybridized; `task` (default: the one
    `cfg.network` is built for) gives its arguments and checks its output.

    With `network_checkpoint` the backbone is that checkpoint cut at its embedding layer
    (found the way `tools/verify.py` finds it), its weights kept.

    It is created under a fresh name manager so that its parameter names do not depend on how
    many networks the process built before (checkpoints are matched by name).
    """
    if cfg.network_checkpoint:
        return _imported_network(cfg, ctx)
    task = task or task_for(cfg)
    kwargs = task.network_kwargs(cfg)
    with mx.name.NameManager():
        try:
            net = get_model(cfg.network, **kwargs)
        except TypeError as exc:  # an argument the backbone does not take
            raise ConfigError(f"network {cfg.network!r} with network_kwargs {kwargs}: {exc}") \
                from None
    # He initialisation (fan-in): keeps activations and logits O(1) for any head size
    net.initialize(mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2), ctx=ctx)
    net.hybridize(static_alloc=True)
    _check_output(net, cfg, task)
    return net


def _imported_network(cfg, ctx):
    prefix, epoch = parse_prefix_epoch(cfg.network_checkpoint, "network_checkpoint")
    model = load_embedding(prefix, epoch, ctx)
    _, shapes, _ = model.symbol.infer_shape(**{model.input_name: (1, 3) + tuple(cfg.image_size)})
    if shapes[0][1] != cfg.embedding_size:
        raise ConfigError(f"{cfg.network_checkpoint}: its embedding layer {model.layer} gives "
                         f"{shapes[0][1]}-d embeddings; set embedding_size={shapes[0][1]}")
    model.net.hybridize(static_alloc=True)
    return model.net


def _check_output(net, cfg, task):
    """Check the output (for an embedding, its size) by shape inference, without a forward pass.

    A forward pass in inference mode would let MKL-DNN reorder the weights into its own
    layout, which Horovod cannot broadcast; shapes are materialised by the first training
    step instead (Horovod broadcasts deferred parameters as they are initialised).
    """
    task.check_output(net(mx.sym.var("data")), cfg)


def load_exported_params(net, path, ctx, allow_missing=False):
    """Set `net`'s parameters from an exported `prefix-NNNN.params` (names must match).

    Works before the first forward pass too: deferred parameters start from these values.
    """
    saved = read_params(path)
    params = net.collect_params()
    missing = [name for name in params if name not in saved]
    if missing and not allow_missing:
        raise DataError(f"{path}: {len(missing)} parameters of the network are not in the file "
                        f"(e.g. {missing[:3]}); it was saved from another architecture")
    for name, param in params.items():
        if name in saved:
            if not _shape_fits(saved[name].shape, param.shape):
                raise DataError(f"{path}: {name} has shape {saved[name].shape}, the network "
                                f"needs {param.shape}")
            param.set_data(saved[name].astype(param.dtype, copy=False).as_in_context(ctx))
    return len(list(params.keys())) - len(missing)


def materialize(net, image_size, ctx, dtype="float32"):
    """Finish deferred initialisation with one inference-mode pass of a zero batch.

    Under Horovod the values are broadcast from rank 0 as they are initialised (before any
    MKL-DNN reordering), so every rank must call this at the same point.
    """
    net(mx.nd.zeros((1, 3) + tuple(image_size), ctx=ctx, dtype=dtype))


def _shape_fits(saved, wanted):
    """Shapes agree where the network's is known (0 or None = not yet inferred: deferred
    init, or a SymbolBlock imported from a checkpoint)."""
    if wanted is None:
        return True
    return len(saved) == len(wanted) and all(w in (0, s) for s, w in zip(saved, wanted))


def make_trainer(net, cfg, workers, extra_options=None):
    """SGD for the backbone; under Horovod its gradients are all-reduced (averaged).

    `extra_options` adds optimizer options (e.g. `multi_precision` for float16)."""
    options = {"learning_rate": cfg.lr, "momentum": cfg.momentum, "wd": cfg.weight_decay,
               **(extra_options or {})}
    if workers.size > 1:
        import horovod.mxnet as hvd

        params = net.collect_params()
        hvd.broadcast_parameters(params, root_rank=0)
        return hvd.DistributedTrainer(params, "sgd", options)
    return gluon.Trainer(net.collect_params(), "sgd", options, kvstore=None)
