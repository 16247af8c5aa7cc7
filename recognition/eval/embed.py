"""Load an MXNet checkpoint as an embedding network and embed images in batches.

Reads `prefix-symbol.json` + `prefix-%04d.params` written by this project (`net.export`) or by
InsightFace (model zoo, training), whose symbol may end in a classifier and a softmax. The
embedding layer is found from the graph, not assumed: an explicit `layer`, else InsightFace's
`fc1`, else the input of the classifier under a softmax/loss head, else the network output.
"""
import json
import os
import warnings

import numpy as np

from ..errors import ConfigError, DataError
from ..model_spec import is_onnx

__all__ = ["EmbeddingModel", "load_model", "load_network", "find_embedding_layer", "Embedder",
           "parse_models"]

# Heads that turn logits into a loss or probabilities: never part of the embedding.
LOSS_OPS = {"SoftmaxOutput", "softmax", "SoftmaxActivation", "log_softmax", "MakeLoss",
            "make_loss", "LinearRegressionOutput", "LogisticRegressionOutput",
            "MAERegressionOutput", "SVMOutput", "BlockGrad", "stop_gradient"}
# Parameter-free ops between an embedding and a (cosine) classifier, e.g. ArcFace's s * x/|x|.
PASS_OPS = {"L2Normalization", "_mul_scalar", "_div_scalar", "Dropout", "Flatten", "flatten",
            "_copy", "identity"}
COMMON_SIZES = [(112, 112), (112, 96), (96, 96), (128, 128), (160, 160), (224, 224)]


class EmbeddingModel:
    """A checkpoint cut at its embedding layer: a Gluon SymbolBlock plus where it came from."""

    def __init__(self, net, symbol, params, input_name, layer, prefix, epoch):
        self.net, self.symbol, self.params = net, symbol, params
        self.input_name, self.layer, self.prefix, self.epoch = input_name, layer, prefix, epoch

    @property
    def name(self):
        return f"{os.path.basename(self.prefix)},{self.epoch}"

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
        if fits:
            raise DataError(f"{source}: images are {size[0]}x{size[1]} (HxW) but model "
                            f"{self.prefix},{self.epoch} expects {' or '.join(fits)}; pass "
                            f"--image-size to resize")
        if mismatched:
            name, stored, needed = mismatched[0]
            raise DataError(
                f"{self.prefix}-{self.epoch:04d}.params: parameter {name} has shape {stored} "
                f"but {self.prefix}-symbol.json needs {needed} (at {size[0]}x{size[1]} input; "
                f"{len(mismatched)} parameter(s) differ): the parameters do not belong to "
                f"this symbol, or the network takes another input size (--image-size)")
        raise DataError(f"{source}: images are {size[0]}x{size[1]} (HxW) but model "
                        f"{self.prefix},{self.epoch} accepts none of the common sizes "
                        f"({', '.join(f'{h}x{w}' for h, w in COMMON_SIZES)}); pass --image-size")


def _output_name(names, node_name, index):
    for cand in (f"{node_name}_output", f"{node_name}_output{index}"):
        if cand in names:
            return cand
    return None


def _classifier_input(nodes, head):
    """Below a loss head: the data input of the nearest FullyConnected, past PASS_OPS."""
    node_id = head
    while nodes[node_id]["op"] in LOSS_OPS:
        node_id = nodes[node_id]["inputs"][0][0]
    queue, seen = [node_id], set()
    while queue:
        nid = queue.pop(0)
        if nid in seen or nodes[nid]["op"] == "null":
            continue
        seen.add(nid)
        if nodes[nid]["op"] == "FullyConnected":
            entry = nodes[nid]["inputs"][0]
            while nodes[entry[0]]["op"] in PASS_OPS:
                entry = nodes[entry[0]]["inputs"][0]
            return entry
        queue.extend(inp[0] for inp in nodes[nid]["inputs"])
    return None


def find_embedding_layer(symbol, layer=None):
    """Name of the internal output holding the embedding (see the module docstring)."""
    names = symbol.get_internals().list_outputs()
    if layer:
        for cand in (layer, f"{layer}_output"):
            if cand in names:
                return cand
        raise ValueError(f"layer {layer!r} not in the symbol; last outputs: {names[-8:]}")
    if "fc1_output" in names:
        return "fc1_output"
    graph = json.loads(symbol.tojson())
    nodes, head = graph["nodes"], graph["heads"][0]
    if nodes[head[0]]["op"] not in LOSS_OPS:
        return symbol.list_outputs()[0]
    entry = _classifier_input(nodes, head[0])
    name = entry and _output_name(names, nodes[entry[0]]["name"], entry[1])
    if not name:
        raise ValueError("the symbol ends in a loss but no classifier input was found; "
                         f"pass --layer (last outputs: {names[-8:]})")
    return name


def _checkpoint_files(prefix, epoch):
    sym_file, param_file = f"{prefix}-symbol.json", f"{prefix}-{epoch:04d}.params"
    for path in (sym_file, param_file):
        if not os.path.isfile(path):
            raise DataError(f"{path}: checkpoint file not found")
    return sym_file, param_file


def _read_checkpoint(prefix, epoch):
    """`(symbol, {name: NDArray}, symbol file, params file)` with arg:/aux: prefixes dropped."""
    import mxnet as mx

    sym_file, param_file = _checkpoint_files(prefix, epoch)
    try:
        symbol = mx.sym.load(sym_file)
        saved = mx.nd.load(param_file)
    except Exception as exc:  # MXNetError for malformed JSON / params
        raise DataError(f"{prefix}: not an MXNet checkpoint ({exc})") from None
    if isinstance(saved, list):  # a network without parameters saves an empty list
        if saved:
            raise DataError(f"{param_file}: parameters are unnamed; not a checkpoint")
        saved = {}
    return symbol, {k.split(":", 1)[-1]: v for k, v in saved.items()}, sym_file, param_file


def _symbol_block(outputs, params, sym_file, param_file, ctx):
    """A hybridized SymbolBlock of `outputs` whose one free input is the image; (net, input)."""
    import mxnet as mx

    free = [a for a in outputs.list_arguments() if a not in params]
    free += [a for a in outputs.list_auxiliary_states() if a not in params]
    if len(free) != 1:
        raise DataError(f"{sym_file}: expected one input besides the parameters of "
                        f"{param_file}, found {free}")
    with warnings.catch_warnings():  # SymbolBlock warns about the untyped input variable
        warnings.simplefilter("ignore")
        net = mx.gluon.SymbolBlock(outputs=outputs, inputs=mx.sym.var(free[0]))
    net.collect_params().load_dict(params, ctx=ctx, ignore_extra=True, filename=param_file)
    net.hybridize(static_alloc=True, static_shape=True)
    return net, free[0]


def load_model(prefix, epoch, ctx=None, layer=None):
    """Load `prefix-symbol.json` + `prefix-%04d.params`, cut at the embedding layer."""
    import mxnet as mx

    symbol, params, sym_file, param_file = _read_checkpoint(prefix, epoch)
    try:
        layer = find_embedding_layer(symbol, layer)
    except ValueError as exc:
        raise DataError(f"{sym_file}: {exc}") from None
    emb = symbol.get_internals()[layer]
    net, input_name = _symbol_block(emb, params, sym_file, param_file, ctx or mx.cpu())
    return EmbeddingModel(net, emb, params, input_name, layer, prefix, epoch)


def load_network(prefix, epoch, ctx=None):
    """The whole checkpointed graph, every output kept (e.g. an attribute network's heads)."""
    import mxnet as mx

    symbol, params, sym_file, param_file = _read_checkpoint(prefix, epoch)
    return _symbol_block(symbol, params, sym_file, param_file, ctx or mx.cpu())[0]


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


def _parse_epochs(text, prefix):
    epochs = []
    for item in text.split("|"):
        item = item.strip()
        lo, sep, hi = item.partition("-")
        if not (lo.isdigit() and (not sep or hi.isdigit())):
            raise ConfigError(f"--model {prefix},{text}: epochs are N, N|M or N-M")
        epochs.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
    return epochs


def _epochs_on_disk(prefix):
    folder, base = os.path.split(prefix)
    folder = folder or "."
    found = []
    for fname in os.listdir(folder) if os.path.isdir(folder) else []:
        stem = fname[len(base) + 1:-len(".params")]
        if fname.startswith(base + "-") and fname.endswith(".params") and stem.isdigit():
            found.append(int(stem))
    return sorted(found)


def parse_models(specs):
    """`prefix,EPOCHS` strings -> [(prefix, epoch)]. EPOCHS: N, N|M|..., N-M; none = all saved.
    A path ending in `.onnx` -> (path, None), an ONNX model.

    A range keeps only the epochs saved on disk; an explicit epoch or ONNX file that is missing
    is an error at load time naming the file.
    """
    out = []
    for spec in specs:
        if is_onnx(spec):
            out.append((spec.strip(), None))
            continue
        prefix, sep, epochs = spec.rpartition(",")  # the epochs follow the last comma
        if not sep:
            prefix, epochs = spec, ""
        if is_onnx(prefix):
            raise ConfigError(f"--model {spec}: an ONNX file has no epochs; pass its path alone")
        if not epochs:
            found = _epochs_on_disk(prefix)
            if not found:
                raise DataError(f"{prefix}: no {prefix}-NNNN.params checkpoint found")
            out.extend((prefix, e) for e in found)
            continue
        wanted = _parse_epochs(epochs, prefix)
        if "-" in epochs:
            saved = set(_epochs_on_disk(prefix))
            wanted = [e for e in wanted if e in saved] or wanted[:1]
        out.extend((prefix, e) for e in wanted)
    return out
