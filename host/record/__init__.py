"""Recording, conversion, replay and export of board sessions.

* :class:`Recorder` records a live :class:`~sonobridge.device.Device` into an HDF5 dataset
  (:mod:`sonobridge.record.hdf5_writer`, layout in :mod:`sonobridge.record.hdf5_schema`) and/or an
  append-only raw capture (:mod:`sonobridge.record.raw`), both written on a
  :mod:`sonobridge.record.background_writer` thread;
* :func:`convert_capture` turns a raw capture into the same HDF5 dataset;
* :func:`open_recording` (:mod:`sonobridge.record.hdf5_reader`) reads a dataset;
  :func:`verify_recording` finds damaged rows and :func:`salvage_recording`
  (:mod:`sonobridge.record.salvage`) copies what survives of a truncated or damaged file;
* :mod:`sonobridge.record.formats` tells a raw capture from an HDF5 recording by its first bytes
  (``READERS``) for replay, export and convert;
* :class:`~sonobridge.record.replay.ReplayBoard` serves a recording as a board again, on a pty or as
  ``replay://PATH``;
* :mod:`sonobridge.record.export` writes PNG frames or an NPZ file; :mod:`~sonobridge.record.uff`
  and :mod:`~sonobridge.record.dicom` write USTB UFF and DICOM, :mod:`~sonobridge.record.pacs`
  stores to a PACS, and :mod:`~sonobridge.record.importers` turns other tools' files into
  recordings.

This package imports ``sonobridge.protocol``, ``sonobridge.device``, ``sonobridge.board`` (the
replay server's engine, transports and run loop), h5py and numpy; never ``sonobridge.sim``.
The names below are imported on first use, so ``sonobridge.record.commands`` (the CLI) and
``sonobridge.record.urlhandler`` load without h5py. See docs/recording.md.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ConvertResult": "convert",
    "OfflineClient": "convert",
    "convert_capture": "convert",
    "FRAME_DTYPE": "hdf5_schema",
    "LINE_DTYPE": "hdf5_schema",
    "BadRow": "hdf5_schema",
    "DatasetWriter": "hdf5_writer",
    "Recording": "hdf5_reader",
    "RecordingError": "hdf5_schema",
    "SalvageReport": "salvage",
    "Segment": "hdf5_reader",
    "open_recording": "hdf5_reader",
    "salvage_recording": "salvage",
    "verify_recording": "hdf5_reader",
    "CaptureError": "raw",
    "CaptureReader": "raw",
    "CaptureWriter": "raw",
    "Record": "raw",
    "iter_rx": "raw",
    "Recorder": "recorder",
    "RecordingProgress": "recorder",
    "RecordingSummary": "recorder",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sonobridge.record' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
