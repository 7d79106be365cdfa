"""Recording, conversion, replay and export of board sessions.

* :class:`Recorder` records a live :class:`~host.device.Device` into an HDF5 dataset
  (:mod:`host.record.hdf5`) and/or an append-only raw capture (:mod:`host.record.raw`);
* :func:`convert_capture` turns a raw capture into the same HDF5 dataset;
* :func:`open_recording` reads a dataset; :func:`verify_recording` finds damaged rows and
  :func:`salvage_recording` (:mod:`host.record.salvage`) copies what survives of a truncated
  or damaged file;
* :class:`~host.record.replay.ReplayBoard` serves a recording as a board again, on a pty or as
  ``replay://PATH``;
* :mod:`host.record.export` writes PNG frames or an NPZ file.

This package imports ``host.protocol``, ``host.device``, h5py and numpy; the replay server uses
the simulator's transports and engine (``host.sim.engine``) and nothing else of ``host.sim``.
The names below are imported on first use, so ``host.record.commands`` (the CLI) and
``host.record.urlhandler`` load without h5py. See docs/recording.md.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ConvertResult": "convert",
    "OfflineClient": "convert",
    "convert_capture": "convert",
    "FRAME_DTYPE": "hdf5",
    "LINE_DTYPE": "hdf5",
    "BadRow": "hdf5",
    "DatasetWriter": "hdf5",
    "Recording": "hdf5",
    "RecordingError": "hdf5",
    "SalvageReport": "salvage",
    "Segment": "hdf5",
    "open_recording": "hdf5",
    "salvage_recording": "salvage",
    "verify_recording": "hdf5",
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
        raise AttributeError(f"module 'host.record' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
