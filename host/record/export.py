"""Export a recording: one B-mode PNG per frame, or an NPZ of samples and metadata.

PNG frames go through the same processing as the viewer (``host.dsp.Chain`` and
``ScanConverter``); this module uses ``host.dsp`` directly and never the viewer, and writes
PNG with the standard library (:mod:`host.record.png`), so no GUI toolkit is needed.

NPZ is written as a stream (``zipfile`` + ``numpy.lib.format``), one segment's rows at a time,
so a recording larger than memory can still be exported.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from host.protocol import SampleFormat, SweepKind

from .hdf5 import FRAME_DTYPE, LINE_DTYPE, Recording, Segment, open_recording
from .png import write_png

_INPUT_FORMATS = {SampleFormat.U8: "u8", SampleFormat.I16: "i16", SampleFormat.U16_OB: "u16",
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


def _frame_rf(seg: Segment, start: int, end: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The sweep's first firings ``(n_lines, n_samples)`` (missing rows at the zero level),
    per-line positions in µrad/µm (NaN where missing), and how many lines are present."""
    a = seg.attrs
    n_lines = int(a["lines_per_frame"])
    meta = seg.lines[start:end]
    rows = seg.samples[start:end]
    rf = np.full((n_lines, seg.n_samples), int(a["zero_level"]), dtype=seg.samples.dtype)
    pos = np.full(n_lines, np.nan)
    first = meta["ensemble_index"] == 0
    idx = meta["line_index"][first].astype(np.int64)
    rf[idx] = rows[first]
    pos[idx] = meta["beam_position"][first]
    return rf, pos, int(np.count_nonzero(first))


def _fill_positions(pos: np.ndarray, config: dict[str, Any] | None) -> np.ndarray | None:
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
                      dynamic_range_db: float = 50.0, center_freq_hz: float | None = None
                      ) -> Iterator[FrameImage]:
    """B-mode pictures of every frame (scan-converted when the sweep allows it)."""
    from host.dsp import Chain, ChainConfig, ScanConverter

    info = rec.device_info
    number = 0
    for seg in rec.segments:
        a = seg.attrs
        config = seg.config
        f0 = center_freq_hz or (config or {}).get("pulse_freq_hz") or \
            (info.transducer_freq_hz if info is not None else 0) or 5e6
        fmt = int(a["sample_format"])
        bits = int(a["adc_bits"]) if fmt in (SampleFormat.I16, SampleFormat.U16_OB) else None
        fs = float(a["sample_rate_hz"])
        try:
            chain = Chain(ChainConfig(
                sample_rate_hz=fs, center_freq_hz=float(f0),
                start_delay_s=int(a["start_delay_samples"]) / fs,
                dynamic_range_db=dynamic_range_db, input_format=_INPUT_FORMATS[fmt],
                adc_bits=bits if bits is None or bits >= 2 else None))
        except ValueError as exc:
            raise ExportError(f"segment {seg.name}: cannot make B-mode images: {exc} "
                              "(give --center-freq-mhz)") from exc
        kind = int(a["sweep_kind"])
        converters: dict[bytes, Any] = {}
        for fi, start, end in seg.frame_runs():
            rf, pos, present = _frame_rf(seg, start, end)
            result = chain.process(rf)
            image = result.image
            positions = _fill_positions(pos, config)
            picture = None
            if kind != SweepKind.FIXED and positions is not None and rf.shape[0] >= 2:
                scale = 1e-6  # µrad → rad, µm → m
                p = positions * scale
                key = p.tobytes()
                conv = converters.get(key)
                if conv is None and np.unique(p).size == p.size:
                    try:
                        conv = ScanConverter(
                            p, result.depth_m, "sector" if kind == SweepKind.SECTOR else "linear",
                            out_shape=size)
                    except ValueError:
                        conv = None
                    if conv is not None:
                        converters.clear()
                        converters[key] = conv
                if conv is not None:
                    picture = conv.convert(image).copy()
            if picture is None:
                picture = np.ascontiguousarray(image.T)  # depth down, one column per line
            yield FrameImage(number, seg.name, fi, present, picture)
            number += 1


@dataclass
class ExportResult:
    """What an export wrote."""

    files: int
    frames: int
    bytes: int
    path: str


def export_png(path: str | os.PathLike, out_dir: str | os.PathLike, *, overwrite: bool = False,
               size: tuple[int, int] = (512, 512), dynamic_range_db: float = 50.0,
               center_freq_hz: float | None = None) -> ExportResult:
    """Write ``frame_NNNNNN.png`` per frame into ``out_dir`` (which must be new or empty)."""
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty; use --force to write into it")
    out.mkdir(parents=True, exist_ok=True)
    files = total = 0
    with open_recording(path) as rec:
        for fr in iter_frame_images(rec, size=size, dynamic_range_db=dynamic_range_db,
                                    center_freq_hz=center_freq_hz):
            target = out / f"frame_{fr.number:06d}.png"
            write_png(target, fr.image)
            files += 1
            total += target.stat().st_size
    return ExportResult(files, files, total, str(out))


def export_npz(path: str | os.PathLike, out_path: str | os.PathLike, *,
               overwrite: bool = False) -> ExportResult:
    """Write samples and per-line metadata arrays (one set per segment) to an NPZ file.

    Keys: ``samples`` and one array per ``LINE_DTYPE`` field (``seq``, ``frame_index``…) for a
    recording with one segment; with several, each key gets the segment suffix (``samples_0001``).
    Also ``frames_<field>`` (the per-sweep table), ``device_info`` and ``config_changes``
    (JSON strings) and ``segment_attrs`` (JSON).
    """
    out = Path(out_path)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; use --force to overwrite it")
    tmp = out.with_name(out.name + ".partial")
    frames = 0
    with open_recording(path) as rec, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED,
                                                      allowZip64=True) as zf:
        several = len(rec.segments) > 1
        seg_attrs = {}
        for seg in rec.segments:
            suffix = f"_{seg.name.rsplit('/', 1)[-1]}" if several else ""
            _stream_array(zf, f"samples{suffix}", seg.samples, seg.n_rows)
            lines = seg.lines
            for name in LINE_DTYPE.names or ():
                _small_array(zf, f"{name}{suffix}", np.ascontiguousarray(lines[name]))
            frames += len(seg.frame_runs())
            seg_attrs[seg.name] = {k: v for k, v in seg.attrs.items() if k != "config"}
            seg_attrs[seg.name]["config"] = seg.config
        for name in FRAME_DTYPE.names or ():
            _small_array(zf, f"frames_{name}", np.ascontiguousarray(rec.frames[name]))
        _small_array(zf, "device_info", np.array(json.dumps(rec.device_info_dict)))
        _small_array(zf, "config_changes", np.array(json.dumps(rec.config_changes)))
        _small_array(zf, "segment_attrs", np.array(json.dumps(seg_attrs)))
    os.replace(tmp, out)
    return ExportResult(1, frames, out.stat().st_size, str(out))


def _small_array(zf: zipfile.ZipFile, name: str, arr: np.ndarray) -> None:
    with zf.open(f"{name}.npy", "w", force_zip64=True) as fp:
        np.lib.format.write_array(fp, arr, allow_pickle=False)


def _stream_array(zf: zipfile.ZipFile, name: str, ds: Any, n_rows: int) -> None:
    """Write the first ``n_rows`` of a 2-D dataset as ``name.npy`` without loading it whole."""
    shape = (n_rows, *ds.shape[1:])
    header = {"descr": np.lib.format.dtype_to_descr(ds.dtype), "fortran_order": False,
              "shape": shape}
    step = max(1, (8 << 20) // max(1, int(np.prod(ds.shape[1:])) * ds.dtype.itemsize))
    with zf.open(f"{name}.npy", "w", force_zip64=True) as fp:
        np.lib.format.write_array_header_1_0(fp, header)
        for start in range(0, n_rows, step):
            fp.write(np.ascontiguousarray(ds[start : min(n_rows, start + step)]).tobytes())
