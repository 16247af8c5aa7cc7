"""`prefix,epoch`: how configs and tools name an MXNet checkpoint (`prefix-symbol.json` +
`prefix-%04d.params`). One parser, so every tool accepts and refuses the same spellings: the
epoch follows the LAST comma (a prefix may contain commas) and is a non-negative integer.
Where a tool also takes ONNX models, a path ending in `.onnx` names one (`is_onnx`).
"""
from .errors import ConfigError

__all__ = ["parse_prefix_epoch", "params_path", "is_onnx"]


def parse_prefix_epoch(text, what="checkpoint"):
    """`'work_dirs/r50/model,2000'` -> `('work_dirs/r50/model', 2000)`; ConfigError otherwise."""
    if not isinstance(text, str):
        raise ConfigError(f"{what} must be 'prefix,epoch' (a string), got {text!r}")
    prefix, sep, epoch = text.strip().rpartition(",")
    if not sep or not prefix or not epoch.strip().isdigit():
        raise ConfigError(f"{what} must be 'prefix,epoch' (e.g. work_dirs/run/model,2000), "
                          f"got {text!r}")
    return prefix, int(epoch)


def params_path(prefix, epoch):
    """The parameter file MXNet writes for `prefix`, `epoch`."""
    return f"{prefix}-{epoch:04d}.params"


def is_onnx(text):
    """Whether a `--model` value names an ONNX file (`.onnx`, any case) rather than a checkpoint."""
    return text.strip().lower().endswith(".onnx")
