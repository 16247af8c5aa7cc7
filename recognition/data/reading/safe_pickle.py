"""Load `.bin` pair-set pickles without letting them run code.

A pickle may name any importable callable (`os.system`, `builtins.eval`, ...) and have the
loader call it, so a crafted `.bin` downloaded from anywhere could run code on load. Pair
sets only ever hold lists, tuples, bytes, bools and numpy uint8 arrays; this unpickler admits
exactly the globals those need and refuses every other one by name, before anything runs.

What the admitted globals are for:
- `_codecs.encode(text, 'latin1')`: how protocol 0-2 pickles from Python 3 store `bytes`
  (only the latin-1 codec is allowed: other codecs are not needed and could do more);
- `numpy.core.multiarray._reconstruct`, `numpy.ndarray`, `numpy.dtype`: numpy arrays
  (protocols 0-4); `numpy.core.numeric._frombuffer`: protocol 5; `numpy.core.multiarray.scalar`:
  numpy scalars such as `numpy.bool_` in `issame_list`. numpy 2 writes `numpy._core...`.
"""
import _compat_pickle
import pickle

import numpy as np
from numpy.core import multiarray, numeric

__all__ = ["RefusedGlobal", "load"]


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle asked for a global a pair set never contains."""

    def __init__(self, module, name):
        super().__init__(f"{module}.{name}")
        self.name = f"{module}.{name}"


def _latin1_encode(text, encoding="utf-8", errors="strict"):
    codec = str(encoding).lower().replace("-", "").replace("_", "")
    if codec not in ("latin1", "iso88591", "l1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with codec {encoding!r}")
    return text.encode("latin-1", "strict")


_ALLOWED = {("_codecs", "encode"): _latin1_encode,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype}
for _core in ("numpy.core", "numpy._core"):
    _ALLOWED.update({(f"{_core}.multiarray", "_reconstruct"): multiarray._reconstruct,
                     (f"{_core}.multiarray", "scalar"): multiarray.scalar,
                     (f"{_core}.numeric", "_frombuffer"): numeric._frombuffer})


class _PairSetUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise RefusedGlobal(*_python3_name(module, name)) from None


def _python3_name(module, name):
    """The Python 3 name of a Python 2 one (`__builtin__.eval` -> `builtins.eval`), for messages."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def load(f):
    """Unpickle `f` like `pickle.load(f, encoding='bytes')`, refusing foreign globals."""
    return _PairSetUnpickler(f, encoding="bytes").load()
