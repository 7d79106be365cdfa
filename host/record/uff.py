"""Export a recording as USTB UFF ``channel_data`` (``sonobridge export FILE --uff OUT``).

The convention (docs/recording.md, "UFF export"): a mechanically swept single element is one
virtual element per beam position and one wave per firing of that element, so USTB's and
pyuff-ustb's beamforming tools read the recording like a line-by-line array acquisition. Every
object but the samples is written with pyuff-ustb's own writer; the samples are written with
h5py in the writer's layout (float32 ``data``, transposed, ``class="single"``), one row per
chunk and one row at a time: the diagonal layout is mostly zeros, which would not fit in memory
as one array, and HDF5 stores no chunk that was never written (it reads as the fill value 0).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from sonobridge.protocol import SweepKind

from .export import ExportError, ExportResult, damaged_rows, fill_positions
from .formats import CAPTURE, file_format, open_for
from .hdf5_reader import Recording, Segment
from .hdf5_schema import BadRow

#: where the first segment goes; a later segment NNNN goes to ``channel_data_NNNN``
LOCATION = "channel_data"
#: segment attributes the export needs
_NEEDED = ("lines_per_frame", "ensemble_size", "zero_level", "sample_rate_hz",
           "start_delay_samples", "sweep_kind")


class UffRequestError(ValueError):
    """The export cannot be done as asked (a raw capture given): a usage error, exit 2."""


def sound_speed(rec: Recording, seg: Segment) -> float:
    """The speed of sound the recording implies: its configuration's if it states one, water
    for an Open Echo (it images in a tank), else soft tissue."""
    from sonobridge.device.frames import SOUND_SPEED_M_S
    from sonobridge.protocol.boards import open_echo

    stated = (seg.config or {}).get("sound_speed_m_s")
    if stated:
        return float(stated)
    if rec.dialect.startswith("open-echo"):
        return float(open_echo.SOUND_SPEED_M_S)
    return float(SOUND_SPEED_M_S)


def center_frequency(rec: Recording, seg: Segment) -> float | None:
    """The pulse centre frequency: the configuration's, else the transducer's (None: unknown)."""
    info = rec.device_info
    f0 = (seg.config or {}).get("pulse_freq_hz") or (info.transducer_freq_hz if info else 0)
    return float(f0) if f0 else None


def element_positions(seg: Segment) -> np.ndarray:
    """Per line of the sweep, its beam position in rad (sector) or m (linear): the mean of the
    positions the board reported for that line, the nominal one for a line never received."""
    n = int(seg.attrs["lines_per_frame"])
    meta = seg.lines
    idx = meta["line_index"].astype(np.int64)
    ok = idx < n
    sums = np.bincount(idx[ok], meta["beam_position"][ok].astype(np.float64), minlength=n)
    counts = np.bincount(idx[ok], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        pos = np.where(counts > 0, sums / counts, np.nan)
    filled = fill_positions(pos, seg.config)
    if filled is None:
        raise ExportError(f"segment {seg.name}: fewer than two beam positions are known, so "
                          "its virtual array cannot be placed")
    return filled * 1e-6  # µrad → rad, µm → m


def _probe(kind: int, pos: np.ndarray) -> Any:
    """The virtual array: one element per beam position (element size unknown: 0)."""
    import pyuff_ustb as uff

    n = pos.size
    geometry = np.zeros((7, n))
    if kind == SweepKind.SECTOR:
        # the element turns about the origin: every virtual element there, facing its angle
        geometry[3] = pos
        return uff.CurvilinearArray(N=n, pitch=0.0, radius=0.0, geometry=geometry,
                                    element_width=0.0, element_height=0.0, origin=uff.Point())
    if kind == SweepKind.LINEAR:
        geometry[0] = pos
        pitch = float(np.mean(np.diff(pos))) if n > 1 else 0.0
        return uff.LinearArray(N=n, pitch=pitch, geometry=geometry, element_width=0.0,
                               element_height=0.0, origin=uff.Point())
    return uff.Probe(geometry=geometry, origin=uff.Point())


def _sequence(kind: int, pos: np.ndarray, ensemble: int, c: float) -> list[Any]:
    """One wave per firing: line-major, ``wave = line * ensemble + firing``; a spherical wave
    from its element, which alone transmits."""
    import pyuff_ustb as uff

    waves = []
    for i, p in enumerate(pos):
        source = uff.Point()
        if kind == SweepKind.SECTOR:
            source = uff.Point(distance=0.0, azimuth=float(p), elevation=0.0)
        elif kind == SweepKind.LINEAR:
            source.xyz = (float(p), 0.0, 0.0)
        one_hot = np.zeros(pos.size)
        one_hot[i] = 1.0
        for e in range(ensemble):
            waves.append(uff.Wave(
                wavefront=uff.Wavefront.spherical, source=source, origin=source,
                apodization=uff.Apodization(window=uff.Window.none, apodization_vector=one_hot),
                delay=0.0, sound_speed=c, event=i * ensemble + e))
    return waves


def _write_segment(hf: h5py.File, location: str, rec: Recording, seg: Segment,
                   skip: frozenset[int]) -> int:
    """One segment as a ``channel_data`` object at ``location``; returns its frame count."""
    import pyuff_ustb as uff

    a = seg.attrs
    missing = [k for k in _NEEDED if k not in a]
    if missing:
        raise ExportError(f"segment {seg.name} lacks the attributes {', '.join(missing)} "
                          "(a salvaged file whose segment metadata was lost): it cannot be "
                          "exported as UFF; export it with --npz instead")
    kind = int(a["sweep_kind"])
    n_lines, ensemble = int(a["lines_per_frame"]), max(1, int(a["ensemble_size"]))
    fs = float(a["sample_rate_hz"])
    pos = np.zeros(1) if kind == SweepKind.FIXED else element_positions(seg)
    c = sound_speed(rec, seg)
    waves = _sequence(kind, pos, ensemble if kind != SweepKind.FIXED else n_lines * ensemble, c)
    cd = uff.ChannelData(
        sampling_frequency=fs, initial_time=int(a["start_delay_samples"]) / fs,
        sound_speed=c, modulation_frequency=0.0, probe=_probe(kind, pos),
        sequence=waves if len(waves) > 1 else waves[0], N_active_elements=1,
        info=json.dumps({"source": str(rec.path), "segment": seg.name,
                         "dialect": rec.dialect, "sweep_kind": kind,
                         "samples": f"ADC code - zero level ({int(a['zero_level'])})"}))
    prf = (seg.config or {}).get("prf_hz")
    if prf:
        cd.PRF = float(prf)
    f0 = center_frequency(rec, seg)
    if f0 is not None:
        # the board states neither bandwidth nor waveform: NaN and an empty array say so
        cd.pulse = uff.Pulse(center_frequency=f0, fractional_bandwidth=float("nan"),
                             phase=0.0, waveform=np.zeros(0))
    unset = [k for k in ("sampling_frequency", "initial_time", "sound_speed",
                         "modulation_frequency", "sequence", "probe") if getattr(cd, k) is None]
    assert not unset, unset  # every compulsory field is set above
    # the apodizations leave probe and focus unset (USTB's defaults); the samples stand in as
    # an empty array and are written below in the writer's layout, one row at a time
    cd.data = np.zeros((0, 0), np.float32)
    uff.write_object(hf, cd, location, ignore_missing_compulsory_fields=True)
    del hf[f"{location}/data"]
    runs = seg.frame_runs()
    n_waves, n_channels = len(waves), pos.size
    # pyuff-ustb stores data transposed: (frames, waves, channels, samples) on disk
    ds = hf.create_dataset(f"{location}/data", (len(runs), n_waves, n_channels, seg.n_samples),
                           np.float32, chunks=(1, 1, 1, seg.n_samples), fillvalue=0)
    ds.attrs.update({"class": "single", "name": "data", "complex": np.array([0]),
                     "imaginary": np.array([0])})
    zero = int(a["zero_level"])
    meta = seg.lines
    for f, (_, start, end) in enumerate(runs):
        rows = seg.rows(start, end).astype(np.float32) - np.float32(zero)
        for k in range(end - start):
            if start + k in skip:
                continue
            m = meta[start + k]
            line, firing = int(m["line_index"]), int(m["ensemble_index"])
            if line >= n_lines or firing >= ensemble:
                continue  # outside the segment's sweep: no wave to hold it
            wave = line * ensemble + firing
            ds[f, wave, 0 if kind == SweepKind.FIXED else line, :] = rows[k]
    return len(runs)


def export_uff(path: str | os.PathLike, out_path: str | os.PathLike, *,
               overwrite: bool = False, keep_damaged: bool = False) -> ExportResult:
    """Write every segment as USTB UFF ``channel_data`` (docs/recording.md, "UFF export");
    damaged rows are left out (zeros) unless ``keep_damaged``."""
    out = Path(out_path)
    if file_format(path) is CAPTURE:
        stem = Path(path).with_suffix(".h5")
        raise UffRequestError(f"{path} is a raw capture, not an HDF5 recording: convert it "
                              f"first with `sonobridge convert {path} -o {stem}`, then export "
                              f"{stem}")
    if out.is_dir():
        raise ExportError(f"{out} is a directory; give a file name for the UFF file")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; use --force to overwrite it")
    tmp = out.with_name(out.name + ".partial")
    frames = 0
    bad: dict[str, list[BadRow]] = {}
    try:
        with open_for(path, "export") as rec:
            bad = damaged_rows(rec)
            with h5py.File(tmp, "w") as hf:
                for i, seg in enumerate(rec.segments):
                    location = LOCATION if i == 0 else \
                        f"{LOCATION}_{seg.name.rsplit('/', 1)[-1]}"
                    skip = frozenset(() if keep_damaged else
                                     (b.row for b in bad.get(seg.name, ())))
                    frames += _write_segment(hf, location, rec, seg, skip)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)  # no half-written file is left behind
        raise
    return ExportResult(1, frames, out.stat().st_size, str(out),
                        [r for rows in bad.values() for r in rows], keep_damaged)


def cmd_export_uff(args: argparse.Namespace) -> int:
    """``sonobridge export FILE --uff OUT``: one-line errors, exit 2 for a request that cannot
    be met as given, 1 for a recording that cannot be exported."""
    from .commands import _err, run_export

    try:
        import pyuff_ustb  # noqa: F401
    except ImportError:
        _err("UFF export needs pyuff-ustb: pip install 'sonobridge[formats]'")
        return 2
    return run_export(
        args,
        lambda: export_uff(args.file, args.uff, overwrite=args.force,
                           keep_damaged=args.keep_damaged),
        lambda res: f"wrote {res.path} ({res.frames} frames, {res.bytes / 1e6:.1f} MB)",
        "their samples are zeros", refused=(UffRequestError,))
