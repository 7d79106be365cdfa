"""Which code reads a recording file, picked by its first bytes (never by its name).

Like python-can's ``can.io.MESSAGE_READERS`` (file suffix → reader class), :data:`READERS` maps
a file signature to the :class:`FileFormat` that says what handles such a file for each task:

* ``read``: the plain reader (:class:`~sonobridge.record.raw.CaptureReader`,
  :func:`~sonobridge.record.hdf5_reader.open_recording`);
* ``replay``: the source a replay board serves (:mod:`sonobridge.record.replay`);
* ``export``: what ``sonobridge export`` opens;
* ``convert``: ``sonobridge convert`` (a capture is converted, an HDF5 recording salvaged).

Handlers are named ``"module:attribute"`` and imported when used, so looking at a raw capture
never loads h5py. A file that matches no signature raises :class:`UnknownFormatError` naming
the file and the formats known; a known format without a handler for the task says which
formats have one.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .hdf5_schema import HDF5_SIGNATURE, RecordingError
from .raw import MAGIC as CAPTURE_MAGIC

#: bytes read from the start of a file to tell its format
HEAD_BYTES = 64


@dataclass(frozen=True)
class FileFormat:
    """A recording file format: its signature and what handles it, per task."""

    name: str
    signature: bytes
    #: task → ``"module:attribute"`` within ``sonobridge.record``
    handlers: Mapping[str, str]
    #: ``(offset, bytes)`` that still identify the format when its signature is damaged
    also: tuple[tuple[int, bytes], ...] = field(default=())

    def matches(self, head: bytes) -> bool:
        """True if ``head`` (the file's first :data:`HEAD_BYTES`) is a file of this format."""
        if head.startswith(self.signature):
            return True
        return any(head[at : at + len(b)] == b for at, b in self.also)

    def handler(self, task: str) -> Callable[..., Any] | None:
        """What handles ``task`` for this format (imported now), None if nothing does."""
        target = self.handlers.get(task)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(f".{module}", __package__), attr)


CAPTURE = FileFormat("sonobridge raw capture (.sbcap)", CAPTURE_MAGIC, {
    "read": "raw:CaptureReader",
    "replay": "replay:CaptureSource",
    "convert": "convert:convert_capture",
})

HDF5 = FileFormat("sonobridge HDF5 recording (.h5)", HDF5_SIGNATURE, {
    "read": "hdf5_reader:open_recording",
    "replay": "replay:RecordingSource",
    "export": "hdf5_reader:open_recording",
    "convert": "salvage:salvage_recording",
}, also=((48, b"OHDR"),))  # a damaged signature before the root group (worth salvaging)

#: signature → format; the first whose :meth:`FileFormat.matches` accepts a file reads it
READERS: dict[bytes, FileFormat] = {CAPTURE.signature: CAPTURE, HDF5.signature: HDF5}


class UnknownFormatError(RecordingError):
    """A file is none of the formats in :data:`READERS` (or not one a task can use)."""


def known_formats(task: str | None = None) -> str:
    """The names of the formats (that can do ``task``), for messages."""
    return ", ".join(f.name for f in READERS.values() if task is None or task in f.handlers)


def file_format(path: str | os.PathLike) -> FileFormat:
    """The format of ``path`` by its first bytes; :class:`UnknownFormatError` if none."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist or is not a file")
    with path.open("rb") as f:
        head = f.read(HEAD_BYTES)
    for fmt in READERS.values():
        if fmt.matches(head):
            return fmt
    raise UnknownFormatError(f"{path} is not a recording sonobridge knows: its first bytes match "
                             f"none of the known formats ({known_formats()})", offset=0,
                             path=path)


def handler_for(path: str | os.PathLike, task: str) -> Callable[..., Any]:
    """What handles ``task`` for the file at ``path`` (picked by its format)."""
    fmt = file_format(path)
    handler = fmt.handler(task)
    if handler is None:
        raise UnknownFormatError(f"{path} is a {fmt.name}; {task} needs one of: "
                                 f"{known_formats(task)}", path=path)
    return handler


def open_for(path: str | os.PathLike, task: str, *args: Any, **kwargs: Any) -> Any:
    """Call the handler of ``task`` for ``path``'s format with ``(path, *args, **kwargs)``."""
    return handler_for(path, task)(path, *args, **kwargs)
