"""A restricted unpickler: NumPy arrays and dtypes and plain containers, nothing else.

Unpickling runs whatever callables a pickle names, so an untrusted pickle can run any code
(``os.system``, ``subprocess``…). This unpickler resolves only the few NumPy globals an array
or a dtype needs; any other global is refused before it is looked up. Plain containers and
scalars (dict, list, tuple, str, int, float, bool, None, bytes) need no global at all.

It is the pure-Python unpickler (``pickle._Unpickler``) so that the BUILD step, which gives an
array its shape and data, can be checked before NumPy allocates anything: a pickle cannot claim
a terabyte array in a few bytes.
"""

from __future__ import annotations

import importlib
import io
import pickle
import struct
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from .common import MAX_BYTES, ImportFailure, fail


def _numpy_core(module: str) -> Any:
    # NumPy 2 moved numpy.core to numpy._core; pickles written by either name both
    for name in ("numpy._core." + module, "numpy.core." + module):
        with_module = _try_import(name)
        if with_module is not None:
            return with_module
    raise ImportError(f"numpy has no {module}")


def _try_import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


_multiarray = _numpy_core("multiarray")
#: the most elements an array may be created with before BUILD gives it its real shape
_RECONSTRUCT_MAX = 1 << 16


def _reconstruct(cls: Any, shape: Any, dtype: Any) -> np.ndarray:
    """``numpy.core.multiarray._reconstruct`` for plain ndarrays of a small initial shape."""
    if cls is not np.ndarray:
        raise pickle.UnpicklingError("only plain numpy arrays may be reconstructed")
    n = int(np.prod(shape, dtype=np.int64)) if isinstance(shape, tuple) else -1
    if not 0 <= n <= _RECONSTRUCT_MAX:
        raise pickle.UnpicklingError(f"an array is reconstructed with shape {shape!r}")
    return _multiarray._reconstruct(cls, shape, dtype)


def _scalar(dtype: Any, data: Any = None) -> Any:
    """``numpy.core.multiarray.scalar`` for a dtype object and its bytes."""
    if not isinstance(dtype, np.dtype) or dtype.itemsize > 4096:
        raise pickle.UnpicklingError("a numpy scalar needs a small dtype")
    return _multiarray.scalar(dtype, data) if data is not None else _multiarray.scalar(dtype)


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """``numpy.core.numeric._frombuffer`` (protocol 5 arrays): the data is already in the
    pickle, so its size is bounded by the file."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError("a buffer array needs a plain dtype")
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order)


def _encode(text: Any, encoding: Any = "latin1") -> bytes:
    """``_codecs.encode``: how protocol 2 pickles spell bytes (latin-1 text only)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is allowed for latin-1 text only")
    return text.encode("latin-1")


#: (module, name) → what it resolves to; nothing else can be named by a pickle
ALLOWED: dict[tuple[str, str], Callable[..., Any] | type] = {}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    ALLOWED[(_mod, "_reconstruct")] = _reconstruct
    ALLOWED[(_mod, "scalar")] = _scalar
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    ALLOWED[(_mod, "_frombuffer")] = _frombuffer
ALLOWED[("numpy", "ndarray")] = np.ndarray
ALLOWED[("numpy", "dtype")] = np.dtype
ALLOWED[("_codecs", "encode")] = _encode
#: what REDUCE may call
_CALLABLE = (_reconstruct, _scalar, _frombuffer, _encode, np.dtype)


class RestrictedUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """Resolves only :data:`ALLOWED` globals and checks every array's state before BUILD."""

    dispatch: ClassVar[dict[int, Callable[..., Any]]] = dict(
        pickle._Unpickler.dispatch)  # type: ignore[attr-defined]

    def __init__(self, file: io.BufferedIOBase, *, max_bytes: int = MAX_BYTES) -> None:
        super().__init__(file, fix_imports=False)
        self.max_bytes = max_bytes

    def find_class(self, module: str, name: str) -> Any:
        """The allowed global ``module.name``; any other is refused."""
        target = ALLOWED.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(f"the pickle asks for {module}.{name}, which is not "
                                         "a numpy array, dtype or plain container")
        return target

    def persistent_load(self, pid: Any) -> Any:
        """Persistent ids name objects outside the pickle: never allowed."""
        raise pickle.UnpicklingError("the pickle refers to outside objects (persistent ids)")

    def load_build(self) -> None:
        """BUILD: for an array, check the claimed shape and data before NumPy sees them."""
        stack = self.stack
        state = stack[-1]
        inst = stack[-2]
        if isinstance(inst, np.ndarray):
            _check_array_state(state, self.max_bytes)
        elif isinstance(inst, np.dtype):
            if not isinstance(state, tuple) or len(state) > 9:
                raise pickle.UnpicklingError("a dtype's state is not a short tuple")
        else:
            raise pickle.UnpicklingError(f"the pickle sets the state of a "
                                         f"{type(inst).__name__}, which is not allowed")
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]

    def load_reduce(self) -> None:
        """REDUCE: only the allowed functions may be called (``numpy.ndarray`` itself would
        allocate any shape it is given: it may only be named as ``_reconstruct``'s class)."""
        if not any(self.stack[-2] is f for f in _CALLABLE):
            raise pickle.UnpicklingError("the pickle calls something other than numpy's array "
                                         "and dtype constructors")
        pickle._Unpickler.load_reduce(self)  # type: ignore[attr-defined]

    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.REDUCE[0]] = load_reduce
    # instances of classes are what make a pickle run code: refuse the opcodes outright
    for _op in (pickle.INST, pickle.OBJ, pickle.NEWOBJ, pickle.NEWOBJ_EX, pickle.EXT1,
                pickle.EXT2, pickle.EXT4, pickle.PERSID, pickle.BINPERSID):
        dispatch.pop(_op[0], None)


def _check_array_state(state: Any, max_bytes: int) -> None:
    if not isinstance(state, tuple) or len(state) != 5:
        raise pickle.UnpicklingError("an array's state is not (version, shape, dtype, "
                                     "fortran, data)")
    _version, shape, dtype, _fortran, data = state
    if not (isinstance(shape, tuple) and all(isinstance(d, int) and d >= 0 for d in shape)
            and len(shape) <= 32 and isinstance(dtype, np.dtype)):
        raise pickle.UnpicklingError("an array's state has an invalid shape or dtype")
    n = 1
    for d in shape:
        n *= d
    if n * max(1, dtype.itemsize) > max_bytes:
        raise pickle.UnpicklingError(f"an array claims shape {shape} of {dtype} "
                                     f"({n * dtype.itemsize / 1e6:.0f} MB), more than "
                                     f"{max_bytes / 1e6:.0f} MB")
    if dtype.hasobject:
        if not isinstance(data, list) or len(data) != n:
            raise pickle.UnpicklingError("an object array's items do not match its shape")
    elif not isinstance(data, (bytes, bytearray)) or len(data) != n * dtype.itemsize:
        raise pickle.UnpicklingError("an array's data does not match its shape and dtype")


def safe_loads(data: bytes, *, what: str, max_bytes: int = MAX_BYTES) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`; anything refused or malformed
    raises ImportFailure naming ``what``."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), max_bytes=max_bytes).load()
    except ImportFailure:
        raise
    except RecursionError as exc:
        raise fail(f"{what}: the pickle nests too deeply") from exc
    except (pickle.UnpicklingError, ValueError, TypeError, EOFError, KeyError, IndexError,
            AttributeError, OverflowError, MemoryError, UnicodeDecodeError,
            struct.error) as exc:
        raise fail(f"{what}: pickle refused ({exc})") from exc
