"""Which importer reads a file, told from its content, never its name.

* HDF5 signature: a sonobridge recording is refused (it needs no import); ``acq_NNNN`` groups
  holding ``signal`` make a pic0lib file.
* Zip (or bare ``.npy``) signature: the members' headers, read without their data, decide:
  un0rick's setting keys beside ``signal``; a 1-D ``signal`` with ``t`` (the pic0rick shell);
  one pickled member (an npusz dict).

Anything else raises ImportFailure naming the formats known.
"""

from __future__ import annotations

from pathlib import Path

from ..hdf5_schema import HDF5_SIGNATURE
from . import npusz, pic0lib, pic0rick_npz, un0rick_npz
from .common import ImportFailure, fail
from .npz import NPY_MAGIC, ZIP_MAGICS, NpzFile

#: name → importer module (``NAME``, ``DESCRIPTION``, ``read(path, allow_pickle=)``)
FORMATS = {m.NAME: m for m in (pic0lib, pic0rick_npz, un0rick_npz, npusz)}


def format_names() -> str:
    """The known format names, for messages."""
    return ", ".join(FORMATS)


def detect_format(path: Path) -> str:
    """The name of the format ``path`` holds, by its content."""
    with path.open("rb") as f:
        head = f.read(8)
    if head.startswith(HDF5_SIGNATURE):
        return _detect_hdf5(path)
    if head.startswith(ZIP_MAGICS) or head.startswith(NPY_MAGIC):
        with NpzFile(path) as npz:
            for module in (un0rick_npz, pic0rick_npz, npusz):
                if module.looks_like(npz):
                    return module.NAME
            keys = ", ".join(sorted(npz.members)[:12]) or "none"
        raise fail(f"{path} is an npz file whose arrays ({keys}) match no format sonobridge "
                   f"imports ({format_names()}); --format NAME forces one")
    raise fail(f"{path} is neither HDF5 nor npz (its first bytes match no format sonobridge "
               f"imports: {format_names()})")


def _detect_hdf5(path: Path) -> str:
    import h5py

    from ..hdf5_schema import H5_ERRORS
    from ..meta import FORMAT_NAME

    try:
        with h5py.File(path, "r") as f:
            fmt = f.attrs.get("format")
            if isinstance(fmt, bytes):
                fmt = fmt.decode("utf-8", "replace")
            if fmt == FORMAT_NAME:
                raise ImportFailure(f"{path} is already a sonobridge recording: replay, export "
                                    "or convert it directly", 1)
            if pic0lib.looks_like(f):
                return pic0lib.NAME
    except H5_ERRORS as exc:
        raise fail(f"{path} has an HDF5 signature but HDF5 cannot read it: {exc}") from exc
    raise fail(f"{path} is an HDF5 file without acq_NNNN/signal groups: not a format "
               f"sonobridge imports ({format_names()})")
