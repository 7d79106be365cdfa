"""Reading ``.npz`` (and bare ``.npy``) files without trusting them.

``numpy.load`` allocates whatever shape a header claims and, with ``allow_pickle``, runs any
pickle. Here every member's header is read first (:class:`Member`: key, dtype, shape), so
detection needs no data; an array is read only when its claimed size is within the budget and
matches the bytes actually stored; a pickled member is read only when pickles are allowed, and
then through :mod:`.safe_unpickle`.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .common import MAX_BYTES, ImportFailure, check_bytes, fail
from .safe_unpickle import safe_loads

ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
NPY_MAGIC = b"\x93NUMPY"
#: an npz with more members than this is not one of the boards' files
MAX_MEMBERS = 1024
#: the largest .npy header read (NumPy's own default limit)
MAX_HEADER = 10_000
#: the largest member read whole: the sample budget, plus room for a pickle's framing
MAX_MEMBER_BYTES = MAX_BYTES + (1 << 20)
#: dtype kinds an array member may have without pickle: bool, integers, floats, text, bytes
PLAIN_KINDS = frozenset("biufUS")


@dataclass(frozen=True)
class Member:
    """One array of an npz: its key, dtype and shape as its header claims them."""

    key: str
    dtype: np.dtype
    shape: tuple[int, ...]
    fortran: bool

    @property
    def pickled(self) -> bool:
        """True if reading it means unpickling (an object array)."""
        return self.dtype.hasobject

    @property
    def size(self) -> int:
        """Elements claimed."""
        n = 1
        for d in self.shape:
            n *= d
        return n


class NpzFile:
    """An ``.npz`` (zip of ``.npy``) or a bare ``.npy`` file, read member by member."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self.members: dict[str, Member] = {}
        with path.open("rb") as f:
            head = f.read(8)
        try:
            if head.startswith(NPY_MAGIC):
                with path.open("rb") as f:
                    self.members["arr_0"] = _read_header(f, "arr_0", path)
                return
            self._zip = zipfile.ZipFile(path)
            infos = self._zip.infolist()
            if len(infos) > MAX_MEMBERS:
                raise fail(f"{path} has {len(infos)} members; an npz import reads at most "
                           f"{MAX_MEMBERS}")
            for info in infos:
                if not info.filename.endswith(".npy"):
                    continue
                key = info.filename[:-4]
                with self._zip.open(info) as f:
                    self.members[key] = _read_header(f, key, path)
        except ImportFailure:
            self.close()
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
                NotImplementedError, RuntimeError, zlib.error) as exc:
            self.close()
            raise fail(f"{path} is not a readable npz file: {exc}") from exc

    @property
    def pickled(self) -> list[str]:
        """Keys of the members that hold pickles."""
        return [k for k, m in self.members.items() if m.pickled]

    def array(self, key: str, *, budget: int = MAX_BYTES) -> np.ndarray:
        """The plain (not pickled) array ``key``, after checking its claimed size."""
        m = self.members.get(key)
        if m is None:
            raise fail(f"{self.path} has no {key!r} array")
        if m.pickled or m.dtype.kind not in PLAIN_KINDS:
            raise fail(f"{self.path}: {key!r} is a {m.dtype} array, not numbers or text")
        check_bytes(f"{self.path}: {key!r}", m.size, m.dtype.itemsize, budget)
        nbytes = m.size * m.dtype.itemsize
        data = self._payload(key, nbytes + 1)
        if len(data) != nbytes:
            raise fail(f"{self.path}: {key!r} claims {m.shape} of {m.dtype} ({nbytes} bytes) "
                       f"but {'more' if len(data) > nbytes else len(data)} bytes are stored")
        arr = np.frombuffer(data, dtype=m.dtype)
        return arr.reshape(m.shape[::-1]).T if m.fortran else arr.reshape(m.shape)

    def unpickled(self, key: str, *, allow_pickle: bool) -> Any:
        """The object stored in the pickled member ``key`` (restricted unpickler), only when
        ``allow_pickle``."""
        if not allow_pickle:
            raise fail(f"{self.path} holds pickled objects ({key!r}); they are never "
                       "unpickled unless you trust the file and pass --allow-pickle")
        data = self._payload(key, MAX_MEMBER_BYTES + 1)
        if len(data) > MAX_MEMBER_BYTES:
            raise fail(f"{self.path}: {key!r} holds more than {MAX_MEMBER_BYTES / 1e6:.0f} MB "
                       "of pickle")
        return safe_loads(data, what=f"{self.path}: {key!r}")

    def _open(self, key: str) -> io.BufferedIOBase:
        try:
            if self._zip is None:
                return self.path.open("rb")
            return self._zip.open(key + ".npy")  # type: ignore[return-value]
        except (zipfile.BadZipFile, OSError, KeyError, RuntimeError) as exc:
            raise fail(f"{self.path} cannot be read: {exc}") from exc

    def _payload(self, key: str, limit: int) -> bytes:
        """At most ``limit`` bytes of member ``key`` after its header (a zip member's claimed
        size is not trusted: reading stops at the limit)."""
        try:
            with self._open(key) as f:
                _read_header(f, key, self.path)
                return f.read(limit)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError, zlib.error) as exc:
            raise fail(f"{self.path}: {key!r} cannot be read ({exc})") from exc

    def time_step_us(self, key: str = "t") -> tuple[float | None, str]:
        """The step of the 1-D time axis ``key`` in µs, or (None, why it is unusable)."""
        m = self.members[key]
        if m.pickled or len(m.shape) != 1 or m.size < 2 or m.dtype.kind not in "fiu":
            return None, f"{key} is not a 1-D time axis; ignored"
        t = self.array(key)
        with np.errstate(all="ignore"):  # a damaged axis is reported, not warned about
            step_us = float(t[1].astype(np.float64) - t[0].astype(np.float64))
        if not np.isfinite(step_us) or step_us <= 0:
            return None, f"{key} does not increase from its first to its second value; ignored"
        return step_us, ""

    def close(self) -> None:
        """Close the zip file."""
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def __enter__(self) -> NpzFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_header(f: Any, key: str, path: Path) -> Member:
    """The member's header (magic, version, dtype, shape), bounded by :data:`MAX_HEADER`."""
    fmt = np.lib.format
    try:
        major, _minor = fmt.read_magic(f)
        if major == 1:
            shape, fortran, dtype = fmt.read_array_header_1_0(f, max_header_size=MAX_HEADER)
        elif major in (2, 3):
            shape, fortran, dtype = fmt.read_array_header_2_0(f, max_header_size=MAX_HEADER)
        else:
            raise ValueError(f"unknown .npy version {major}")
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
        raise fail(f"{path}: {key!r} has no valid .npy header ({exc})") from exc
    if len(shape) > 32 or any(d < 0 for d in shape):
        raise fail(f"{path}: {key!r} claims an impossible shape {shape}")
    return Member(key, dtype, tuple(int(d) for d in shape), bool(fortran))
