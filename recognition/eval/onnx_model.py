"""Score an ONNX face model (InsightFace's zoo, this repo's exports) through onnxruntime.

`Embedder` feeds every model the same batches: RGB NCHW pixel values 0..255. The ONNX input
convention (layout, channel order, value range) comes, key by key, from the `--onnx-*` flags,
else the `recognition.*` metadata that `export_onnx` writes (its models take what MXNet
checkpoints take), else InsightFace's zoo convention: RGB, (x - 127.5) / 127.5, and the layout
read from the input shape (3 on axis 1: NCHW, on axis 3: NHWC).
"""
import os
import sys

import numpy as np

from ..errors import DataError, UserError

__all__ = ["CHOICES", "EXPORT_METADATA", "OnnxModel", "load_onnx"]

CHOICES = {"layout": ("nchw", "nhwc"), "channels": ("rgb", "bgr"), "input": ("raw", "normalized")}
INSIGHTFACE = {"channels": "rgb", "input": "normalized"}
# What `export_onnx` writes: its models take the RGB 0..255 NCHW images MXNet checkpoints take.
EXPORT_METADATA = {"recognition.layout": "nchw", "recognition.channels": "rgb",
                   "recognition.input": "raw"}
DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
          "tensor(double)": np.float64}


def _fixed(dim):
    """A dimension's size, or None when the model leaves it free (a name or unknown)."""
    return dim if isinstance(dim, int) and dim > 0 else None


def _convention(path, metadata, shape, flags):
    """{"layout", "channels", "input"}: per key the flag, else the metadata, else InsightFace's."""
    guess = dict(INSIGHTFACE, layout="nhwc" if shape[3] == 3 and shape[1] != 3 else "nchw")
    out = {}
    for key, choices in CHOICES.items():
        out[key] = flags.get(key) or metadata.get(f"recognition.{key}") or guess[key]
        if out[key] not in choices:
            raise DataError(f"{path}: metadata recognition.{key} is {out[key]!r}, expected one "
                            f"of {', '.join(choices)}; pass --onnx-{key}")
    return out


class OnnxModel:
    """One ONNX file in an onnxruntime session, scored like `embed.EmbeddingModel`: the first
    output is the embedding (`layer`); `forward_numpy` is what `Embedder` runs."""

    epoch = None

    def __init__(self, session, path, convention):
        inp = session.get_inputs()[0]
        self.session, self.prefix, self.convention = session, path, convention
        self.input_name, self.shape = inp.name, list(inp.shape)
        self.dtype = DTYPES[inp.type]
        self.layer = session.get_outputs()[0].name
        axes = (2, 3) if convention["layout"] == "nchw" else (1, 2)
        self.size = tuple(_fixed(self.shape[a]) for a in axes)

    @property
    def name(self):
        return os.path.basename(self.prefix)

    def _takes(self, size):
        """None when (H, W) images fit the input, else the size it takes, e.g. '112x112'."""
        if all(want in (None, got) for want, got in zip(self.size, size)):
            return None
        return "x".join(str(v or "any") for v in self.size)

    def check_input_size(self, size, source):
        """Raise DataError naming `source` when its (H, W) images do not fit the input."""
        takes = self._takes(size)
        if takes:
            resize = ",".join(map(str, self.size)) if None not in self.size else "H,W"
            raise DataError(f"{source}: images are {size[0]}x{size[1]} (HxW) but {self.prefix} "
                            f"takes {takes} (input {self.input_name!r} {self.shape}, "
                            f"{self.convention['layout'].upper()}); pass --image-size {resize} "
                            "to resize")

    def _prepare(self, batch):
        """RGB NCHW 0..255 -> this model's layout, channel order and value range."""
        x = batch[:, ::-1] if self.convention["channels"] == "bgr" else batch
        if self.convention["input"] == "normalized":
            x = (x - 127.5) / 127.5
        if self.convention["layout"] == "nhwc":
            x = x.transpose(0, 2, 3, 1)
        return np.ascontiguousarray(x, dtype=self.dtype)

    def forward_numpy(self, batch):
        """(n, d) float32 embeddings of a float RGB NCHW 0..255 batch, run in chunks of the
        model's fixed batch size (zero-padded) or, with a free batch axis, all at once."""
        takes = self._takes(batch.shape[2:])
        if takes:
            raise DataError(f"{self.prefix}: takes {takes} (HxW) images, given "
                            f"{batch.shape[2]}x{batch.shape[3]}")
        x, n = self._prepare(batch), len(batch)
        step = _fixed(self.shape[0]) or n
        if n % step:
            x = np.concatenate([x, np.zeros((step - n % step,) + x.shape[1:], x.dtype)])
        out = [self._run(x[s:s + step]) for s in range(0, len(x), step)]
        return np.concatenate(out)[:n].astype(np.float32, copy=False)

    def _run(self, x):
        try:
            out = self.session.run([self.layer], {self.input_name: x})[0]
        except Exception as exc:  # onnxruntime's errors derive from Exception only
            raise DataError(f"{self.prefix}: onnxruntime failed on input {list(x.shape)}: "
                            f"{_message(exc)}") from None
        return out.reshape(len(x), -1)


def _message(exc):
    """onnxruntime's message without its '[ONNXRuntimeError] : N : CODE : ... failed:' preamble."""
    return str(exc).rsplit("failed:", 1)[-1].strip()


def _onnxruntime(path):
    try:
        import onnxruntime
    except ImportError:
        raise UserError(f"{path}: scoring ONNX models needs onnxruntime, from the 'export' "
                        "extra: pip install -e '.[export]'") from None
    return onnxruntime


def _providers(ort, gpu, path):
    """CUDA (device `gpu`) then CPU when `gpu` >= 0 and this onnxruntime has CUDA; else CPU."""
    if gpu < 0:
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        return [("CUDAExecutionProvider", {"device_id": gpu}), "CPUExecutionProvider"]
    print(f"note: {path} runs on the CPU: this onnxruntime has no CUDAExecutionProvider "
          "(pip install onnxruntime-gpu)", file=sys.stderr)
    return ["CPUExecutionProvider"]


def _check_input(path, session):
    """Raise DataError unless the model has one float input of rank 4; its shape."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise DataError(f"{path}: expected one image input, found "
                        f"{[(i.name, i.shape) for i in inputs]}")
    inp = inputs[0]
    if len(inp.shape) != 4:
        raise DataError(f"{path}: input {inp.name!r} has shape {inp.shape}; expected a 4-D "
                        "image batch (NCHW or NHWC)")
    if inp.type not in DTYPES:
        raise DataError(f"{path}: input {inp.name!r} is {inp.type}; expected float images")
    return inp.shape


def load_onnx(path, gpu=-1, layout=None, channels=None, input_range=None):
    """An OnnxModel of the file at `path`; DataError when it is missing, not ONNX, or its input
    is no batch of 3-channel images. None for a flag: from metadata or InsightFace's."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: ONNX model not found")
    ort = _onnxruntime(path)
    providers = _providers(ort, gpu, path)
    try:
        session = ort.InferenceSession(path, providers=providers)
    except Exception as exc:  # InvalidProtobuf, Fail, ...: all derive from Exception only
        what = "not a valid ONNX model" if len(providers) == 1 else f"cannot load on GPU {gpu}"
        raise DataError(f"{path}: {what} ({_message(exc)})") from None
    shape = _check_input(path, session)
    flags = {"layout": layout, "channels": channels, "input": input_range}
    convention = _convention(path, session.get_modelmeta().custom_metadata_map, shape, flags)
    channel_dim = shape[1] if convention["layout"] == "nchw" else shape[3]
    if _fixed(channel_dim) not in (None, 3):
        raise DataError(f"{path}: input {session.get_inputs()[0].name!r} has shape {shape}: "
                        f"{channel_dim} channels as {convention['layout'].upper()}, expected 3 "
                        "(RGB/BGR); --onnx-layout reads it the other way")
    return OnnxModel(session, path, convention)
