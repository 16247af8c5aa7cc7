"""Load an MXNet checkpoint as an embedding network and embed images in batches.

Reads `prefix-symbol.json` + `prefix-%04d.params` written by this project (`net.export`) or by
InsightFace (model zoo, training), whose symbol may end in a classifier and a softmax, through
`recognition.model_spec`, which finds the embedding layer from the graph, not assumed: an
explicit `layer`, else InsightFace's `fc1`, else the input of the classifier under a
softmax/loss head, else the network output.
"""
import os

import numpy as np

from ..errors import DataError
from ..model_spec import (find_embedding_layer, format_prefix_epoch, load_embedding,
                          load_network, params_path, parse_models, symbol_path)

__all__ = ["EmbeddingModel", "load_model", "load_network", "find_embedding_layer", "Embedder",
           "parse_models"]

COMMON_SIZES = [(112, 112), (112, 96), (96, 96), (128, 128), (160, 160), (224, 224)]


class EmbeddingModel:
    """A checkpoint cut at its embedding layer: a Gluon SymbolBlock plus where it came from."""

    def __init__(self, net, symbol, params, input_name, layer, prefix, epoch):
        self.net, self.symbol, self.params = net, symbol, params
        self.input_name, self.layer, self.prefix, self.epoch = input_name, layer, prefix, epoch

    @property
    def name(self):
        return format_prefix_epoch(os.path.basename(self.prefix), self.epoch)

    def mismatched_params(self, size):
        """`[(name, stored shape, shape the graph needs)]` for (H, W) images; None when the
        graph cannot take that size at all (shape inference fails)."""
        try:
            arg_shapes, _, aux_shapes = self.symbol.infer_shape(
                **{self.input_name: (1, 3) + tuple(size)})
        except Exception:  # MXNet raises MXNetError subclasses for shape conflicts
            return None
        names = self.symbol.list_arguments() + self.symbol.list_auxiliary_states()
        return [(name, tuple(self.params[name].shape), tuple(shape))
                for name, shape in zip(names, arg_shapes + aux_shapes)
                if name in self.params and tuple(self.params[name].shape) != tuple(shape)]

    def accepts(self, size):
        """Whether the graph takes (H, W) images with the stored parameter shapes."""
        return self.mismatched_params(size) == []

    def check_input_size(self, size, source):
        """Raise DataError naming `source` when its (H, W) images do not fit this model, and
        the parameter that does not fit when no common size does (a mismatched .params)."""
        mismatched = self.mismatched_params(size)
        if mismatched == []:
            return
        fits = [f"{h}x{w}" for h, w in COMMON_SIZES if self.accepts((h, w))]
        model = format_prefix_epoch(self.prefix, self.epoch)
        if fits:
            raise DataError(f"{source}: images are {size[0]}x{size[1]} (HxW) but model "
                            f"{model} expects {' or '.join(fits)}; pass --image-size to resize")
        if mismatched:
            name, stored, needed = mismatched[0]
            raise DataError(
                f"{params_path(self.prefix, self.epoch)}: parameter {name} has shape {stored} "
                f"but {symbol_path(self.prefix)} needs {needed} (at {size[0]}x{size[1]} input; "
                f"{len(mismatched)} parameter(s) differ): the parameters do not belong to "
                f"this symbol, or the network takes another input size (--image-size)")
        raise DataError(f"{source}: images are {size[0]}x{size[1]} (HxW) but model "
                        f"{model} accepts none of the common sizes "
                        f"({', '.join(f'{h}x{w}' for h, w in COMMON_SIZES)}); pass --image-size")


def load_model(prefix, epoch, ctx=None, layer=None):
    """Load `prefix-symbol.json` + `prefix-%04d.params`, cut at the embedding layer."""
    return EmbeddingModel(*load_embedding(prefix, epoch, ctx, layer), prefix, epoch)


class Embedder:
    """Embeds uint8 RGB NCHW images in fixed-size batches (last one padded), with flips.

    `model` is an EmbeddingModel from `load_model`, any Gluon block (e.g. the network being
    trained, for verification during training), or an `onnx_model.OnnxModel`, which runs the
    float32 batch itself (`forward_numpy`).
    """

    def __init__(self, model, batch_size=64, ctx=None):
        import mxnet as mx

        self.net = getattr(model, "net", model)
        self._run = getattr(model, "forward_numpy", self._run_mxnet)
        self.batch_size, self.ctx = int(batch_size), ctx or mx.cpu()

    def _run_mxnet(self, batch):
        import mxnet as mx

        out = self.net(mx.nd.array(batch, ctx=self.ctx))
        out = out[0] if isinstance(out, (list, tuple)) else out
        return out.asnumpy()

    def _forward(self, images):
        n = len(images)
        batch = np.zeros((self.batch_size,) + images.shape[1:], dtype=np.float32)
        batch[:n] = images
        return self._run(batch).reshape(self.batch_size, -1)[:n]

    def embed_batch(self, images, flip=True):
        """(plain, flipped) embeddings of at most `batch_size` images (flipped None if no flip)."""
        plain = self._forward(images)
        return plain, (self._forward(images[:, :, :, ::-1]) if flip else None)

    def embed_all(self, images, flip=True, progress=True, desc="embed"):
        """Embeddings of all images; a tqdm bar over batches when `progress`."""
        from tqdm import tqdm

        starts = range(0, len(images), self.batch_size)
        plains, flips = [], []
        for s in tqdm(starts, desc=desc, unit="batch", disable=not progress, leave=False):
            p, f = self.embed_batch(images[s:s + self.batch_size], flip)
            plains.append(p)
            flips.append(f)
        return np.concatenate(plains), (np.concatenate(flips) if flip else None)

