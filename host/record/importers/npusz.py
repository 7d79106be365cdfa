"""kelu124's processed swept-probe images (``*.npusz.npz``): a pickled dict.

The dict holds ``img`` [frames, lines, samples] (processed pictures, not ADC codes), ``f``
(the sample rate in MHz), ``sensor``, ``Desc`` and ``meta``. It is read only with
``allow_pickle`` and then only through the restricted unpickler. Each image becomes a frame of
``lines`` lines on a fixed geometry (the sweep's angles are not in the file). Whole values in
0..255 are kept as u8 exactly; anything else is rescaled onto 12-bit codes, and the recording
says the samples are not the board's codes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sonobridge.protocol import Capability, DeviceInfo, SampleFormat, SweepKind

from .common import (
    CODE_TOLERANCE,
    MAX_ACQUISITIONS,
    MAX_LINES_PER_FRAME,
    MAX_METADATA_ITEMS,
    MAX_SAMPLES_PER_LINE,
    Imported,
    ImportedFrame,
    check_bytes,
    check_count,
    fail,
)
from .npz import NpzFile

NAME = "npusz"
DESCRIPTION = "kelu124's pickled image dict (*.npusz.npz: img, f, sensor, Desc, meta)"
#: the sample rate assumed when ``f`` is missing or implausible
DEFAULT_RATE_HZ = 1_000_000
RESCALE_BITS = 12


def looks_like(npz: NpzFile) -> bool:
    """One pickled (object) member and nothing else: what ``np.savez(path, a_dict)`` writes."""
    return len(npz.members) == 1 and next(iter(npz.members.values())).pickled


def read(path: Path, *, allow_pickle: bool = False) -> Imported:
    """Read the image dict (only with ``allow_pickle``); see the module docs."""
    with NpzFile(path) as npz:
        if not looks_like(npz):
            raise fail(f"{path} is not an npusz file: it needs one pickled member")
        key = next(iter(npz.members))
        obj = npz.unpickled(key, allow_pickle=allow_pickle)
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject and obj.size == 1:
        obj = obj.reshape(()).item()
    if not isinstance(obj, dict) or "img" not in obj:
        raise fail(f"{path}: the pickle holds a {type(obj).__name__}, not a dict with 'img'")
    img = obj["img"]
    if not isinstance(img, np.ndarray) or img.dtype.kind not in "biuf" or img.ndim not in (2, 3):
        raise fail(f"{path}: 'img' must be a 2-D or 3-D numeric array")
    if img.ndim == 2:
        img = img[np.newaxis]
    n_frames, n_lines, n_samples = img.shape
    check_count(f"{path}: the number of images", n_frames, MAX_ACQUISITIONS)
    check_count(f"{path}: the lines per image", n_lines, MAX_LINES_PER_FRAME)
    check_count(f"{path}: the samples per line", n_samples, MAX_SAMPLES_PER_LINE)
    check_bytes(f"{path}: 'img' as float64", img.size, 8)
    x = img.astype(np.float64)
    if not np.isfinite(x).all():
        raise fail(f"{path}: 'img' holds NaN or infinite values")
    out = Imported(NAME, [], DEFAULT_RATE_HZ, int(SampleFormat.U8), 8, DeviceInfo(), {})
    rounded = np.rint(x)
    if (np.abs(x - rounded).max(initial=0) <= CODE_TOLERANCE and rounded.min(initial=0) >= 0
            and rounded.max(initial=0) <= 255):
        codes = rounded.astype(np.uint8)
    else:
        lo, hi = float(x.min()), float(x.max())
        top = (1 << RESCALE_BITS) - 1
        scaled = (x - lo) / (hi - lo) * top if hi > lo else np.zeros_like(x)
        codes = np.rint(scaled).astype(np.uint16)
        out.sample_format, out.adc_bits = int(SampleFormat.U16_OB), RESCALE_BITS
        out.exact = False
        out.notes.append(f"img holds {img.dtype} values from {lo:g} to {hi:g}, not codes: "
                         f"rescaled linearly onto 0..{top} ({RESCALE_BITS}-bit); not the "
                         "board's samples")
        out.metadata["img_range"] = [lo, hi]
    out.frames = [ImportedFrame(np.ascontiguousarray(codes[i])) for i in range(n_frames)]
    f_mhz = obj.get("f")
    rate = float(f_mhz) * 1e6 if isinstance(f_mhz, (int, float, np.number)) else 0.0
    if 1e4 <= rate <= 1e10:
        out.sample_rate_hz = round(rate)
    else:
        out.nominal["sample_rate_hz"] = (f"f is {f_mhz!r}, not a rate in MHz: "
                                         f"{DEFAULT_RATE_HZ} S/s is assumed")
    out.nominal["geometry"] = "the sweep's angles are not in the file: drawn as a fixed beam"
    out.nominal["timestamp_us"] = "not in the file: all 0"
    out.metadata.update({k: _plain(obj.get(k)) for k in ("sensor", "Desc", "meta")
                         if k in obj})
    out.info = DeviceInfo(
        board_name=str(_plain(obj.get("sensor")) or "npusz")[:24],
        adc_bits=out.adc_bits, sample_formats=1 << out.sample_format,
        sweep_kind=SweepKind.FIXED, capabilities=Capability.NONE,
        adc_rate_hz=out.sample_rate_hz, max_decimation=1, tgc_points_max=1, ensemble_max=1,
        pulse_cycles_max=1, min_samples_per_line=n_samples, max_samples_per_line=n_samples,
        max_start_delay_samples=0, max_lines_per_frame=n_lines, sweep_min=0, sweep_max=0,
        hv_min_mv=0, hv_max_mv=0, transducer_freq_hz=0)
    out.nominal_fields = {n: "not in the file: a default" for n in (
        "gain_min_cdb", "gain_max_cdb", "prf_min_hz", "prf_max_hz", "pulse_freq_min_hz",
        "pulse_freq_max_hz", "transducer_freq_hz")}
    if "sample_rate_hz" in out.nominal:
        out.nominal_fields["adc_rate_hz"] = out.nominal["sample_rate_hz"]
    return out


def _plain(value: Any, depth: int = 0, budget: list[int] | None = None) -> Any:
    """JSON-able copy of a small plain value (arrays summarised; bounded in size and depth)."""
    budget = budget if budget is not None else [MAX_METADATA_ITEMS]
    budget[0] -= 1
    if budget[0] < 0 or depth > 16:
        return "…"
    if value is None or isinstance(value, (bool, int, str)):
        return value[:1024] if isinstance(value, str) else value
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, bytes):
        return value[:1024].decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return _plain(value.item(), depth + 1, budget)
    if isinstance(value, np.ndarray):
        if value.size <= 64 and value.dtype.kind in "biufUS":
            return _plain(value.tolist(), depth + 1, budget)
        return f"array {value.dtype} {list(value.shape)}"
    if isinstance(value, dict):
        return {str(k)[:256]: _plain(v, depth + 1, budget) for k, v in list(value.items())[:256]}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1, budget) for v in list(value)[:256]]
    return repr(type(value).__name__)
