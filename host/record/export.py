"""Export a recording: one B-mode PNG per frame, or an NPZ of samples and metadata.

PNG frames go through the same processing as the viewer (``sonobridge.dsp.Chain`` and
``ScanConverter``); this module uses ``sonobridge.dsp`` directly and never the viewer, and writes
PNG with the standard library (:mod:`sonobridge.record.png`), so no GUI toolkit is needed.

NPZ is written as a stream (``zipfile`` + ``numpy.lib.format``), one segment's rows at a time,
so a recording larger than memory can still be exported.

Every row is checked against its CRC-32 first. Damaged rows are left out (a PNG draws them as
missing lines) unless ``keep_damaged``; either way the result names them.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sonobridge.protocol import SampleFormat, SweepKind

from .formats import open_for
from .hdf5_reader import Recording, Segment
from .hdf5_schema import FRAME_DTYPE, LINE_DTYPE, BadRow
from .png import write_png

#: a wire sample format → the DSP chain's ``input_format`` name (PNG, DICOM and UFF share it)
DSP_INPUT_FORMATS = {SampleFormat.U8: "u8", SampleFormat.I16: "i16", SampleFormat.U16_OB: "u16",
                  SampleFormat.PACKED12: "u12"}


class ExportError(ValueError):
    """The recording cannot be exported as asked (the message says why)."""


@dataclass
class FrameImage:
    """One exported frame: where it came from and its picture (rows = depth)."""

    number: int
    segment: str
    frame_index: int
    lines_present: int
    image: np.ndarray
    #: the scan converter's ``(x_min, x_max, z_min, z_max)`` in metres (pixel size = extent /
    #: image shape); None when the picture is not scan-converted (one column per line)
    extent_m: tuple[float, float, float, float] | None = None


_SEGMENT_ATTRS = ("lines_per_frame", "zero_level", "sample_format", "adc_bits",
                  "sample_rate_hz", "start_delay_samples", "sweep_kind")


def damaged_rows(rec: Recording) -> dict[str, list[BadRow]]:
    """Per segment name, the rows whose samples fail their CRC-32."""
    return {seg.name: bad for seg in rec.segments if (bad := seg.bad_rows())}


def _frame_rf(seg: Segment, start: int, end: int, skip: frozenset[int] = frozenset()
              ) -> tuple[np.ndarray, np.ndarray, int]:
    """The sweep's first firings ``(n_lines, n_samples)`` (missing rows at the zero level),
    per-line positions in µrad/µm (NaN where missing), and how many lines are present.
    Rows in ``skip`` (damaged) count as missing."""
    a = seg.attrs
    n_lines = int(a["lines_per_frame"])
    meta = seg.lines[start:end]
    rows = seg.rows(start, end)
    rf = np.full((n_lines, seg.n_samples), int(a["zero_level"]), dtype=seg.samples.dtype)
    pos = np.full(n_lines, np.nan)
    first = meta["ensemble_index"] == 0
    if skip:
        first &= ~np.isin(np.arange(start, end), list(skip))
    idx = meta["line_index"][first].astype(np.int64)
    rf[idx] = rows[first]
    pos[idx] = meta["beam_position"][first]
    return rf, pos, int(np.count_nonzero(first))


def fill_positions(pos: np.ndarray, config: dict[str, Any] | None) -> np.ndarray | None:
    """Positions of missing lines: nominal from the configuration, else interpolated."""
    n = pos.size
    missing = np.isnan(pos)
    if not missing.any():
        return pos
    if config is not None and n > 1:
        nominal = config["sweep_start"] + np.arange(n) * (
            (config["sweep_end"] - config["sweep_start"]) / (n - 1))
        return np.where(missing, nominal, pos)
    have = np.flatnonzero(~missing)
    if have.size < 2:
        return None
    return np.interp(np.arange(n), have, pos[have])


def iter_frame_images(rec: Recording, *, size: tuple[int, int] = (512, 512),
                      dynamic_range_db: float = 50.0, center_freq_hz: float | None = None,
                      skip: dict[str, list[BadRow]] | None = None,
                      one_grid: bool = False) -> Iterator[FrameImage]:
    """B-mode pictures of every frame (scan-converted when the sweep allows it; samples too
    slow to hold the carrier are the board's own envelope, drawn as sent); rows in ``skip``
    (per segment name, e.g. :func:`damaged_rows`) are drawn as missing lines. ``one_grid``:
    every frame of a segment on its first frame's pixel grid (one calibration for them all,
    though a servo's actual angles move the field of view a little from sweep to sweep)."""
    from sonobridge.dsp import Chain, ChainConfig, ScanConverter

    info = rec.device_info
    number = 0
    for seg in rec.segments:
        a = seg.attrs
        missing = [k for k in _SEGMENT_ATTRS if k not in a]
        if missing:
            raise ExportError(f"segment {seg.name} lacks the attributes {', '.join(missing)} "
                              "(a salvaged file whose segment metadata was lost): it cannot "
                              "be drawn; export it with --npz instead")
        skipped = frozenset(b.row for b in (skip or {}).get(seg.name, ()))
        config = seg.config
        recorded_f0 = (config or {}).get("pulse_freq_hz") or \
            (info.transducer_freq_hz if info is not None else 0)
        f0 = center_freq_hz or recorded_f0 or 5e6
        fmt = int(a["sample_format"])
        bits = int(a["adc_bits"]) if fmt in (SampleFormat.I16, SampleFormat.U16_OB) else None
        fs = float(a["sample_rate_hz"])
        if center_freq_hz is None and recorded_f0 and fs < 2.0 * float(recorded_f0):
            # samples this slow cannot hold the carrier: the board detected the envelope
            # itself (an Open Echo's TUSS4470), so they are drawn as sent
            for fi, start, end in seg.frame_runs():
                rf, pos, present = _frame_rf(seg, start, end,
                                             skipped & frozenset(range(start, end)))
                picture = _envelope_picture(rf, np.isnan(pos), DSP_INPUT_FORMATS[fmt], bits)
                yield FrameImage(number, seg.name, fi, present, picture)
                number += 1
            continue
        try:
            chain = Chain(ChainConfig(
                sample_rate_hz=fs, center_freq_hz=float(f0),
                start_delay_s=int(a["start_delay_samples"]) / fs,
                dynamic_range_db=dynamic_range_db, input_format=DSP_INPUT_FORMATS[fmt],
                adc_bits=bits if bits is None or bits >= 2 else None))
        except ValueError as exc:
            raise ExportError(f"segment {seg.name}: cannot make B-mode images: {exc} "
                              "(give --center-freq-mhz)") from exc
        kind = int(a["sweep_kind"])
        converters: dict[bytes, Any] = {}
        grid: tuple[float, float, float, float] | None = None
        for fi, start, end in seg.frame_runs():
            rf, pos, present = _frame_rf(seg, start, end,
                                         skipped & frozenset(range(start, end)))
            result = chain.process(rf)
            image = result.image
            positions = fill_positions(pos, config)
            picture = None
            extent = None
            if kind != SweepKind.FIXED and positions is not None and rf.shape[0] >= 2:
                scale = 1e-6  # µrad → rad, µm → m
                p = positions * scale
                key = p.tobytes()
                conv = converters.get(key)
                if conv is None and np.unique(p).size == p.size:
                    try:
                        conv = ScanConverter(
                            p, result.depth_m, "sector" if kind == SweepKind.SECTOR else "linear",
                            out_shape=size, extent_m=grid)
                    except ValueError:
                        conv = None
                    if conv is not None:
                        converters.clear()
                        converters[key] = conv
                if conv is not None:
                    picture = conv.convert(image).copy()
                    extent = conv.extent_m
                    if one_grid:
                        grid = extent
            if picture is None:
                picture = np.ascontiguousarray(image.T)  # depth down, one column per line
            yield FrameImage(number, seg.name, fi, present, picture, extent)
            number += 1


def _envelope_picture(codes: np.ndarray, missing: np.ndarray, fmt: str, bits: int | None
                      ) -> np.ndarray:
    """A board's own envelope samples ``(n_lines, n_samples)`` as grey levels, depth down,
    as the viewer's echogram draws them (``dsp.envelope_to_grey``: no second compression, u8
    codes unchanged; a signed format's negative codes, impossible in an envelope, as 0),
    missing lines black."""
    from sonobridge.dsp import full_scale
    from sonobridge.dsp.echogram import envelope_to_grey

    mid, scale = full_scale(fmt, bits)
    # the codes an envelope spans: all of an unsigned format, the positive half of a signed one
    span_bits = round(math.log2(2 * scale if mid else scale))
    grey = envelope_to_grey(np.clip(np.nan_to_num(codes), 0, None), span_bits)
    grey[missing] = 0
    return np.ascontiguousarray(grey.T)


@dataclass
class ExportResult:
    """What an export wrote, and the damaged rows it found."""

    files: int
    frames: int
    bytes: int
    path: str
    #: rows whose samples fail their CRC-32: left out, or kept with ``keep_damaged``
    damaged: list[BadRow] = field(default_factory=list)
    kept_damaged: bool = False


def export_png(path: str | os.PathLike, out_dir: str | os.PathLike, *, overwrite: bool = False,
               size: tuple[int, int] = (512, 512), dynamic_range_db: float = 50.0,
               center_freq_hz: float | None = None, keep_damaged: bool = False) -> ExportResult:
    """Write ``frame_NNNNNN.png`` per frame into ``out_dir`` (which must be new or empty);
    damaged rows are drawn as missing lines unless ``keep_damaged``."""
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty; use --force to write into it")
    out.mkdir(parents=True, exist_ok=True)
    files = total = 0
    with open_for(path, "export") as rec:
        bad = damaged_rows(rec)
        for fr in iter_frame_images(rec, size=size, dynamic_range_db=dynamic_range_db,
                                    center_freq_hz=center_freq_hz,
                                    skip=None if keep_damaged else bad):
            target = out / f"frame_{fr.number:06d}.png"
            try:
                write_png(target, fr.image)
            except BaseException:
                target.unlink(missing_ok=True)  # a truncated PNG (disk full) is not a frame
                raise
            files += 1
            total += target.stat().st_size
    return ExportResult(files, files, total, str(out), _flat(bad), keep_damaged)


def _flat(bad: dict[str, list[BadRow]]) -> list[BadRow]:
    return [row for rows in bad.values() for row in rows]


def export_npz(path: str | os.PathLike, out_path: str | os.PathLike, *,
               overwrite: bool = False, keep_damaged: bool = False) -> ExportResult:
    """Write samples and per-line metadata arrays (one set per segment) to an NPZ file;
    damaged rows are left out unless ``keep_damaged``.

    Keys: ``samples`` and one array per ``LINE_DTYPE`` field (``seq``, ``frame_index``…) for a
    recording with one segment; with several, each key gets the segment suffix (``samples_0001``).
    Also ``frames_<field>`` (the per-sweep table), ``device_info``, ``nominal_fields`` and
    ``config_changes`` (JSON strings), ``dialect`` (a string) and ``segment_attrs`` (JSON).
    """
    out = Path(out_path)
    # checked before any work: a directory cannot be replaced by the finished file
    if out.is_dir():
        raise ExportError(f"{out} is a directory; give a file name for the NPZ")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; use --force to overwrite it")
    tmp = out.with_name(out.name + ".partial")
    frames = 0
    try:
        with open_for(path, "export") as rec:
            bad = damaged_rows(rec)
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                frames = _write_npz(zf, rec, {} if keep_damaged else bad)
        os.replace(tmp, out)
    except BaseException:
        # every failure, the final rename's included, leaves no half-written file behind
        tmp.unlink(missing_ok=True)
        raise
    return ExportResult(1, frames, out.stat().st_size, str(out), _flat(bad), keep_damaged)


def _write_npz(zf: zipfile.ZipFile, rec: Recording, skip: dict[str, list[BadRow]]) -> int:
    """Every array of the NPZ file, rows in ``skip`` left out; returns the frame count."""
    frames = 0
    several = len(rec.segments) > 1
    seg_attrs = {}
    for seg in rec.segments:
        suffix = f"_{seg.name.rsplit('/', 1)[-1]}" if several else ""
        keep = np.ones(seg.n_rows, bool)
        keep[[b.row for b in skip.get(seg.name, ())]] = False
        _stream_array(zf, f"samples{suffix}", seg, keep)
        lines = seg.lines[keep]
        for name in LINE_DTYPE.names or ():
            _small_array(zf, f"{name}{suffix}", np.ascontiguousarray(lines[name]))
        frames += len(seg.frame_runs())
        seg_attrs[seg.name] = {k: v for k, v in seg.attrs.items() if k != "config"}
        seg_attrs[seg.name]["config"] = seg.config
    for name in FRAME_DTYPE.names or ():
        _small_array(zf, f"frames_{name}", np.ascontiguousarray(rec.frames[name]))
    _small_array(zf, "device_info", np.array(json.dumps(rec.device_info_dict)))
    origin = rec.origin
    _small_array(zf, "dialect", np.array(origin.dialect))
    _small_array(zf, "nominal_fields", np.array(json.dumps(origin.nominal_fields)))
    _small_array(zf, "config_changes", np.array(json.dumps(rec.config_changes)))
    _small_array(zf, "segment_attrs", np.array(json.dumps(seg_attrs)))
    return frames


def _small_array(zf: zipfile.ZipFile, name: str, arr: np.ndarray) -> None:
    with zf.open(f"{name}.npy", "w", force_zip64=True) as fp:
        np.lib.format.write_array(fp, arr, allow_pickle=False)


def _stream_array(zf: zipfile.ZipFile, name: str, seg: Segment, keep: np.ndarray) -> None:
    """Write a segment's samples rows where ``keep`` as ``name.npy`` without loading them
    whole."""
    ds = seg.samples
    n_rows = keep.size
    shape = (int(np.count_nonzero(keep)), *ds.shape[1:])
    header = {"descr": np.lib.format.dtype_to_descr(ds.dtype), "fortran_order": False,
              "shape": shape}
    step = max(1, (8 << 20) // max(1, int(np.prod(ds.shape[1:])) * ds.dtype.itemsize))
    with zf.open(f"{name}.npy", "w", force_zip64=True) as fp:
        np.lib.format.write_array_header_1_0(fp, header)
        for start in range(0, n_rows, step):
            end = min(n_rows, start + step)
            block = seg.rows(start, end)[keep[start:end]]
            fp.write(np.ascontiguousarray(block).tobytes())
