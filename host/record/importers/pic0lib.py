"""pic0lib's HDF5 files (``pic0lib/ndt_acquisition.py`` in kelu124/pic0rick).

Layout: groups ``acq_0000``, ``acq_0001``, … (numbers may skip: pic0lib deletes a group it
replaces), each with a dataset ``signal`` (float32[8000] = (code − 512) / 512) and attributes
``Fech`` (Hz), ``pon``, ``poff``, ``damp`` (ns), ``gain`` (the DAC code ``write dac`` got),
``target``, ``piezo_id``, ``timestamp`` (ISO, seconds; local time), optionally
``piezo_central_freq`` and ``piezo_bandwidth`` (Hz). Each acquisition becomes one frame of one
line; acquisitions with other settings (gain, pulse) get another configuration id, so another
segment.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any

import numpy as np

from sonobridge.protocol.boards import pic0rick_shell as shell

from .common import (
    MAX_ACQUISITIONS,
    MAX_BYTES,
    MAX_METADATA_ITEMS,
    MAX_SAMPLES_PER_LINE,
    Imported,
    ImportedFrame,
    check_count,
    fail,
    recover_codes,
    u16_ob,
)

NAME = "pic0lib"
DESCRIPTION = "pic0lib HDF5 (groups acq_NNNN with a signal dataset)"
GROUP = re.compile(r"acq_\d{4,}\Z")
#: the group attributes kept per acquisition (anything else is ignored)
ATTRS = ("Fech", "pon", "poff", "damp", "gain", "target", "piezo_id", "timestamp",
         "piezo_central_freq", "piezo_bandwidth")
#: the longest text attribute kept
MAX_TEXT = 1024
#: the longest span of timestamps taken as one session's
MAX_SPAN = datetime.timedelta(days=366)


def looks_like(file: Any) -> bool:
    """True if an open h5py file has at least one ``acq_NNNN`` group holding ``signal``."""
    for name in _groups(file):
        obj = file.get(name, getlink=False)
        if hasattr(obj, "keys") and "signal" in obj:
            return True
    return False


def _groups(file: Any) -> list[str]:
    names = []
    for i, name in enumerate(file):
        if i >= MAX_ACQUISITIONS:
            raise fail(f"{file.filename} has more than {MAX_ACQUISITIONS} members")
        if GROUP.match(name):
            names.append(name)
    return sorted(names)


def read(path: Path, *, allow_pickle: bool = False) -> Imported:
    """Read a pic0lib file (HDF5) into memory; see the module docs."""
    del allow_pickle  # HDF5 holds no pickles
    import h5py

    from ..hdf5_schema import H5_ERRORS

    try:
        with h5py.File(path, "r") as f:
            return _read(f, path)
    except H5_ERRORS as exc:
        raise fail(f"{path} cannot be read as a pic0lib HDF5 file: {exc}") from exc


def _read(f: Any, path: Path) -> Imported:
    names = _groups(f)
    check_count(f"{path}: the number of acq_NNNN groups", len(names), MAX_ACQUISITIONS)
    fmt, bits = u16_ob(shell.ADC_BITS)
    out = Imported(NAME, [], int(shell.SAMPLE_RATE_HZ), fmt, bits, shell.device_info(),
                   dict(shell.NOMINAL_FIELDS))
    budget = MAX_BYTES
    settings_ids: dict[tuple, int] = {}
    acqs: list[dict[str, Any]] = []
    times: list[datetime.datetime | None] = []
    rates: set[float] = set()
    for name in names:
        g = f[name]
        if not hasattr(g, "keys") or "signal" not in g:
            raise fail(f"{path}: {name} has no signal dataset")
        ds = g["signal"]
        if not hasattr(ds, "shape") or ds.ndim != 1 or ds.dtype.kind not in "fiu":
            raise fail(f"{path}: {name}/signal must be a 1-D array of numbers, got "
                       f"{getattr(ds, 'dtype', '?')} {getattr(ds, 'shape', '?')}")
        n = check_count(f"{path}: {name}/signal's length", int(ds.shape[0]),
                        MAX_SAMPLES_PER_LINE)
        budget -= n * 8  # read as float64 below
        if budget < 0:
            raise fail(f"{path}: the signals claim more than {MAX_BYTES / 1e6:.0f} MB")
        meta = {"group": name, **{k: _attr(g, k) for k in ATTRS if k in g.attrs}}
        rate = meta.get("Fech")
        if rate is not None:
            if not isinstance(rate, (int, float)) or not 1e3 <= rate <= 1e10:
                raise fail(f"{path}: {name}'s Fech {rate!r} is not a sample rate in Hz")
            rates.add(float(rate))
        settings = tuple(meta.get(k) for k in ("gain", "pon", "poff", "damp"))
        config_id = settings_ids.setdefault(settings, len(settings_ids)) & 0xFFFF
        signal = ds[()]
        codes = recover_codes(signal, what=f"{name}/signal", zero_level=shell.ZERO_LEVEL,
                              scales=(shell.ZERO_LEVEL,), adc_bits=shell.ADC_BITS, out=out)
        out.frames.append(ImportedFrame(codes[np.newaxis, :], 0, config_id))
        acqs.append(meta)
        times.append(_parse_time(meta.get("timestamp")))
    lengths = {fr.codes.shape[1] for fr in out.frames}
    if len(rates) > 1:
        raise fail(f"{path}: the acquisitions give different sample rates (Fech {sorted(rates)})"
                   "; import them separately")
    if rates:
        out.sample_rate_hz = round(rates.pop())
        if out.sample_rate_hz != int(shell.SAMPLE_RATE_HZ):
            out.notes.append(f"Fech says {out.sample_rate_hz} Hz; the pic0rick samples at "
                             f"{int(shell.SAMPLE_RATE_HZ)} Hz: Fech is used as the file says")
    else:
        out.nominal["sample_rate_hz"] = (f"no Fech attribute: the pic0rick's "
                                         f"{int(shell.SAMPLE_RATE_HZ)} S/s is assumed")
    if lengths != {shell.N_SAMPLES}:
        out.notes.append(f"signals of {sorted(lengths)} samples; the stock shell dumps "
                         f"{shell.N_SAMPLES}")
    _set_times(out, times)
    out.info = _info(out, lengths)
    out.nominal["gain"] = ("the DAC code write dac got (attribute gain); its dB value is "
                           "nominal: " + shell.NOMINAL_FIELDS["gain_min_cdb"])
    out.metadata = {"acquisitions": acqs[:MAX_METADATA_ITEMS],
                    "acquisitions_total": len(acqs),
                    "configurations": [dict(zip(("gain", "pon", "poff", "damp"), k,
                                                strict=True))
                                       for k in list(settings_ids)[:MAX_METADATA_ITEMS]]}
    return out


def _info(out: Imported, lengths: set[int]) -> Any:
    import dataclasses

    info = shell.device_info()
    return dataclasses.replace(info, adc_rate_hz=out.sample_rate_hz,
                               min_samples_per_line=min(lengths),
                               max_samples_per_line=max(lengths))


def _set_times(out: Imported, times: list[datetime.datetime | None]) -> None:
    """Acquisition times relative to the first (µs), when every timestamp parses and they
    span at most :data:`MAX_SPAN` (a longer span is a damaged timestamp, not a session)."""
    try:
        known = [t for t in times if t is not None]
        if known and len(known) == len(times):
            t0 = min(known)
            deltas = [t - t0 for t in known]
            if max(deltas) <= MAX_SPAN:
                for fr, d in zip(out.frames, deltas, strict=True):
                    fr.timestamp_us = int(d.total_seconds() * 1e6)
                out.nominal["timestamp_us"] = ("µs since the first acquisition, from the "
                                               "timestamp attributes (whole seconds)")
                return
    except TypeError:  # timestamps with and without a time zone cannot be compared
        pass
    out.nominal["timestamp_us"] = ("the timestamp attributes are missing, unreadable or "
                                   "inconsistent: all 0 (they are kept in import_metadata)")


def _parse_time(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.datetime.fromisoformat(value)
    except ValueError:
        return None


def _attr(g: Any, name: str) -> Any:
    """A group attribute as a plain scalar (text cut to MAX_TEXT); anything else is refused."""
    try:
        v = g.attrs[name]
    except (OSError, RuntimeError, KeyError, TypeError) as exc:
        raise fail(f"{g.file.filename}: {g.name}'s attribute {name} cannot be read: "
                   f"{exc}") from exc
    if isinstance(v, np.ndarray):
        if v.size != 1:
            raise fail(f"{g.file.filename}: {g.name}'s attribute {name} is an array of "
                       f"{v.size} values, not one")
        v = v.reshape(()).item()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if isinstance(v, str):
        return v[:MAX_TEXT]
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if isinstance(v, (bool, int, float)):
        return v
    raise fail(f"{g.file.filename}: {g.name}'s attribute {name} is a "
               f"{type(v).__name__}, not a number or text")
