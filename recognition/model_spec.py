"""MXNet model files: `prefix-symbol.json` + `prefix-%04d.params`, named `prefix,epoch`.

The one place that reads, checks and writes them, so every tool accepts and refuses the same
spellings and names a missing or unreadable file the same way:
- the notation: `parse_prefix_epoch` / `format_prefix_epoch` (the epoch follows the LAST comma,
  a prefix may contain commas, and is a non-negative integer); `parse_models` for the
  verification tools' `prefix,EPOCHS`; where a tool also takes ONNX models, a path ending in
  `.onnx` names one (`is_onnx`);
- the files: `symbol_path`, `params_path`, `checkpoint_files` (DataError naming a missing one),
  `saved_epochs` (what is on disk);
- reading: `read_checkpoint` (symbol + parameters), `read_params` (a `.params` alone), both with
  MXNet's `arg:`/`aux:` prefixes dropped; `load_network` (the whole graph) and `load_embedding`
  (cut at the embedding layer `find_embedding_layer` finds: InsightFace's `fc1`, ...) as
  hybridized Gluon SymbolBlocks;
- writing: `export_network`, a hybridized block exported at an epoch, atomically.
MXNet is imported on use: configs are checked with this module before it loads.
"""
import json
import os
import warnings
from collections import namedtuple

from .errors import ConfigError, DataError

__all__ = ["parse_prefix_epoch", "format_prefix_epoch", "params_path", "symbol_path", "is_onnx",
           "require_file", "checkpoint_files", "saved_epochs", "parse_models", "read_params",
           "read_checkpoint", "find_embedding_layer", "symbol_block", "load_network",
           "Embedding", "load_embedding", "export_network"]


def parse_prefix_epoch(text, what="checkpoint"):
    """`'work_dirs/r50/model,2000'` -> `('work_dirs/r50/model', 2000)`; ConfigError otherwise."""
    if not isinstance(text, str):
        raise ConfigError(f"{what} must be 'prefix,epoch' (a string), got {text!r}")
    prefix, sep, epoch = text.strip().rpartition(",")
    if not sep or not prefix or not epoch.strip().isdigit():
        raise ConfigError(f"{what} must be 'prefix,epoch' (e.g. work_dirs/run/model,2000), "
                          f"got {text!r}")
    return prefix, int(epoch)


def format_prefix_epoch(prefix, epoch):
    """`('work_dirs/r50/model', 2000)` -> `'work_dirs/r50/model,2000'`."""
    return f"{prefix},{epoch}"


def params_path(prefix, epoch):
    """The parameter file MXNet writes for `prefix`, `epoch`."""
    return f"{prefix}-{epoch:04d}.params"


def symbol_path(prefix):
    """The graph file MXNet writes for `prefix`."""
    return f"{prefix}-symbol.json"


def is_onnx(text):
    """Whether a `--model` value names an ONNX file (`.onnx`, any case) rather than a checkpoint."""
    return text.strip().lower().endswith(".onnx")


# ------------------------------------------------------------------ locating the files
def require_file(path, missing="checkpoint file not found"):
    """`path` when it is a file; DataError `'{path}: {missing}'` otherwise."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: {missing}")
    return path


def checkpoint_files(prefix, epoch):
    """`(symbol file, params file)` of `prefix,epoch`; DataError naming the first missing."""
    return require_file(symbol_path(prefix)), require_file(params_path(prefix, epoch))


def saved_epochs(prefix):
    """Sorted epochs N of the `prefix-NNNN.params` files on disk (none: [])."""
    folder, base = os.path.split(prefix)
    folder = folder or "."
    found = []
    for fname in os.listdir(folder) if os.path.isdir(folder) else []:
        stem = fname[len(base) + 1:-len(".params")]
        if fname.startswith(base + "-") and fname.endswith(".params") and stem.isdigit():
            found.append(int(stem))
    return sorted(found)


def _parse_epochs(text, prefix):
    epochs = []
    for item in text.split("|"):
        item = item.strip()
        lo, sep, hi = item.partition("-")
        if not (lo.isdigit() and (not sep or hi.isdigit())):
            raise ConfigError(f"--model {prefix},{text}: epochs are N, N|M or N-M")
        epochs.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
    return epochs


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
            found = saved_epochs(prefix)
            if not found:
                raise DataError(f"{prefix}: no {prefix}-NNNN.params checkpoint found")
            out.extend((prefix, e) for e in found)
            continue
        wanted = _parse_epochs(epochs, prefix)
        if "-" in epochs:
            saved = set(saved_epochs(prefix))
            wanted = [e for e in wanted if e in saved] or wanted[:1]
        out.extend((prefix, e) for e in wanted)
    return out


# ------------------------------------------------------------------ reading
def _by_name(saved, param_file):
    """`{name: NDArray}` of what `mx.nd.load` returned, with the arg:/aux: prefixes dropped."""
    if isinstance(saved, list):  # a network without parameters saves an empty list
        if saved:
            raise DataError(f"{param_file}: parameters are unnamed; not a checkpoint")
        saved = {}
    return {k.split(":", 1)[-1]: v for k, v in saved.items()}


def read_params(path):
    """`{name: NDArray}` of a `.params` file alone; DataError naming it when unreadable."""
    import mxnet as mx

    try:
        saved = mx.nd.load(path)
    except mx.base.MXNetError as exc:
        raise DataError(f"{path}: cannot read parameters ({str(exc).splitlines()[0]})") from None
    return _by_name(saved, path)


def read_checkpoint(prefix, epoch):
    """`(symbol, {name: NDArray}, symbol file, params file)` with arg:/aux: prefixes dropped;
    DataError naming the file that is missing, or the prefix when a file is not MXNet's."""
    import mxnet as mx

    sym_file, param_file = checkpoint_files(prefix, epoch)
    try:
        symbol = mx.sym.load(sym_file)
        saved = mx.nd.load(param_file)
    except Exception as exc:  # MXNetError for malformed JSON / params
        raise DataError(f"{prefix}: not an MXNet checkpoint ({exc})") from None
    return symbol, _by_name(saved, param_file), sym_file, param_file


# Heads that turn logits into a loss or probabilities: never part of the embedding.
LOSS_OPS = {"SoftmaxOutput", "softmax", "SoftmaxActivation", "log_softmax", "MakeLoss",
            "make_loss", "LinearRegressionOutput", "LogisticRegressionOutput",
            "MAERegressionOutput", "SVMOutput", "BlockGrad", "stop_gradient"}
# Parameter-free ops between an embedding and a (cosine) classifier, e.g. ArcFace's s * x/|x|.
PASS_OPS = {"L2Normalization", "_mul_scalar", "_div_scalar", "Dropout", "Flatten", "flatten",
            "_copy", "identity"}


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
    """Name of the internal output holding the embedding: an explicit `layer`, else
    InsightFace's `fc1`, else the input of the classifier under a softmax/loss head, else the
    network output. ValueError when `layer` is not in the graph or no classifier is found."""
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


def symbol_block(outputs, params, sym_file, param_file, ctx=None):
    """A hybridized SymbolBlock of `outputs` on `ctx` (CPU by default) whose one free input is
    the image, its parameters set from `params`; `(net, input name)`."""
    import mxnet as mx

    free = [a for a in outputs.list_arguments() if a not in params]
    free += [a for a in outputs.list_auxiliary_states() if a not in params]
    if len(free) != 1:
        raise DataError(f"{sym_file}: expected one input besides the parameters of "
                        f"{param_file}, found {free}")
    with warnings.catch_warnings():  # SymbolBlock warns about the untyped input variable
        warnings.simplefilter("ignore")
        net = mx.gluon.SymbolBlock(outputs=outputs, inputs=mx.sym.var(free[0]))
    net.collect_params().load_dict(params, ctx=ctx or mx.cpu(), ignore_extra=True,
                                   filename=param_file)
    net.hybridize(static_alloc=True, static_shape=True)
    return net, free[0]


def load_network(prefix, epoch, ctx=None):
    """The whole checkpointed graph, every output kept (e.g. an attribute network's heads)."""
    symbol, params, sym_file, param_file = read_checkpoint(prefix, epoch)
    return symbol_block(symbol, params, sym_file, param_file, ctx)[0]


Embedding = namedtuple("Embedding", "net symbol params input_name layer")


def load_embedding(prefix, epoch, ctx=None, layer=None):
    """`prefix,epoch` cut at its embedding layer (`find_embedding_layer`): an Embedding of the
    SymbolBlock, the cut symbol, the parameters, the image input's name and the layer."""
    symbol, params, sym_file, param_file = read_checkpoint(prefix, epoch)
    try:
        layer = find_embedding_layer(symbol, layer)
    except ValueError as exc:
        raise DataError(f"{sym_file}: {exc}") from None
    emb = symbol.get_internals()[layer]
    net, input_name = symbol_block(emb, params, sym_file, param_file, ctx)
    return Embedding(net, emb, params, input_name, layer)


# ------------------------------------------------------------------ writing
def export_network(net, prefix, epoch):
    """`net.export` (a hybridized block) to a temporary prefix `.NAME.tmpPID` beside `prefix`,
    then rename both files into place: a kill leaves no half-written model file."""
    folder, name = os.path.split(prefix)
    tmp_prefix = os.path.join(folder, f".{name}.tmp{os.getpid()}")
    moves = [(symbol_path(tmp_prefix), symbol_path(prefix)),
             (params_path(tmp_prefix, epoch), params_path(prefix, epoch))]
    try:
        net.export(tmp_prefix, epoch=epoch)
        for tmp, final in moves:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, final)
    finally:
        for tmp, _ in moves:
            if os.path.exists(tmp):
                os.remove(tmp)
