"""un0rick / un0usb captures (``usb/*.npz`` in kelu124/un0rick).

Keys: ``signal`` float64 [lines, 16384] (each sample ``w & 0x3FF``, offset binary, stored
normalised as (code − 512) / 512: the published files hold exactly those values), ``t`` (µs,
1/64 µs steps: 64 MS/s), ``gain`` [32] (the 10-bit DAC codes of the 32-step TGC), ``t_on``,
``t_off``, ``t_inter``, ``t_delay``, ``dac``, ``doublerate``, ``nblines``, ``libversion``,
``timestamp``. One file is one acquisition: one frame of ``lines`` lines fired on the one fixed
element. The older pyUn0 library normalised as (code − 512) / 256: such files are recognised
by their codes and said so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sonobridge.protocol import Capability, DeviceInfo, SampleFormat, SweepKind

from .common import (
    MAX_LINES_PER_FRAME,
    MAX_SAMPLES_PER_LINE,
    Imported,
    ImportedFrame,
    check_count,
    fail,
    recover_codes,
    u16_ob,
)
from .npz import NpzFile

NAME = "un0rick-npz"
DESCRIPTION = "un0rick / un0usb .npz capture (signal [lines, 16384], t, gain [32], t_on…)"
SAMPLE_RATE_HZ = 64_000_000
ADC_BITS = 10
ZERO_LEVEL = 512
N_SAMPLES = 16384
MAX_LINES = 32
TGC_POINTS = 32
#: (code − 512) / 512 (un0usb), then (code − 512) / 256 (the older pyUn0)
SCALES = (512, 256)
#: the scalar settings kept from the file
SETTINGS = ("t_on", "t_off", "t_inter", "t_delay", "dac", "doublerate", "nblines",
            "libversion", "timestamp", "version", "author", "nameFile")
#: keys only un0rick files have beside ``signal``
MARKERS = frozenset({"t_on", "t_off", "t_inter", "t_delay", "doublerate"})

NOMINAL_FIELDS = {
    "transducer_freq_hz": "not in the file; any probe can be fitted",
    "gain_min_cdb": "the TGC DAC codes are in the file, their dB values are not",
    "gain_max_cdb": "the TGC DAC codes are in the file, their dB values are not",
    "prf_max_hz": "not in the file",
    "hv_max_mv": "not in the file",
}


def looks_like(npz: NpzFile) -> bool:
    """``signal`` is 1-D or 2-D numbers, with at least two of un0rick's setting keys."""
    s = npz.members.get("signal")
    return (s is not None and not s.pickled and len(s.shape) in (1, 2)
            and s.dtype.kind in "fiu" and len(MARKERS & set(npz.members)) >= 2)


def read(path: Path, *, allow_pickle: bool = False) -> Imported:
    """Read one acquisition into memory; see the module docs."""
    del allow_pickle  # the plain arrays of this format never need it
    with NpzFile(path) as npz:
        if not looks_like(npz):
            raise fail(f"{path} is not an un0rick capture: it needs a numeric 'signal' "
                       "[lines, samples] and un0rick's settings (t_on, t_off, …)")
        s = npz.members["signal"]
        shape = s.shape if len(s.shape) == 2 else (1, s.shape[0])
        check_count(f"{path}: the number of lines", shape[0], MAX_LINES_PER_FRAME)
        check_count(f"{path}: the samples per line", shape[1], MAX_SAMPLES_PER_LINE)
        fmt, bits = u16_ob(ADC_BITS)
        out = Imported(NAME, [], SAMPLE_RATE_HZ, fmt, bits, DeviceInfo(), dict(NOMINAL_FIELDS))
        signal = npz.array("signal").reshape(shape)
        codes = recover_codes(signal, what="signal", zero_level=ZERO_LEVEL, scales=SCALES,
                              adc_bits=ADC_BITS, out=out)
        out.frames.append(ImportedFrame(codes))
        meta: dict[str, Any] = {k: _scalar(npz, k) for k in SETTINGS if k in npz.members}
        if "gain" in npz.members:
            meta["gain"] = _gain(npz)
        _check_t(npz, out, meta)
    out.nominal["timestamp_us"] = "one acquisition: 0 (the lines' own times are not stored)"
    if meta.get("doublerate") == 0:
        # the published files (doublerate 1) have 1/64 µs steps; nothing says what 0 does
        out.nominal["sample_rate_hz"] = ("doublerate is 0: the un0rick's 64 MS/s is assumed; "
                                         "the published files (doublerate 1) are at 64 MS/s")
    if shape[0] > MAX_LINES:
        out.notes.append(f"{shape[0]} lines; an un0rick acquisition has at most {MAX_LINES}")
    out.info = _info(shape)
    out.metadata = meta
    return out


def _info(shape: tuple[int, ...]) -> DeviceInfo:
    """The nominal DEVICE_INFO of an un0rick as far as its file tells."""
    return DeviceInfo(
        board_name="un0rick", adc_bits=ADC_BITS, sample_formats=1 << SampleFormat.U16_OB,
        sweep_kind=SweepKind.FIXED, capabilities=Capability.NONE, adc_rate_hz=SAMPLE_RATE_HZ,
        max_decimation=1, tgc_points_max=TGC_POINTS, ensemble_max=1, pulse_cycles_max=1,
        min_samples_per_line=shape[1], max_samples_per_line=shape[1],
        max_start_delay_samples=0, max_lines_per_frame=max(MAX_LINES, shape[0]),
        gain_min_cdb=0, gain_max_cdb=4000, sweep_min=0, sweep_max=0, prf_min_hz=1,
        prf_max_hz=100, hv_min_mv=0, hv_max_mv=0, transducer_freq_hz=0)


def _check_t(npz: NpzFile, out: Imported, meta: dict[str, Any]) -> None:
    m = npz.members.get("t")
    if m is None:
        out.nominal["sample_rate_hz"] = "no t array: the un0rick's 64 MS/s is assumed"
        return
    step_us, why = npz.time_step_us("t")
    if step_us is None:
        out.notes.append(why)
        return
    meta["t_step_us"] = step_us
    if abs(1e6 / step_us - SAMPLE_RATE_HZ) >= 1.0:
        out.notes.append(f"t's steps ({step_us:g} µs) do not give the un0rick's 64 MS/s, "
                         "which is used")
        out.nominal["sample_rate_hz"] = "64 MS/s, the un0rick's ADC rate; t disagrees"


def _gain(npz: NpzFile) -> list[float] | None:
    m = npz.members["gain"]
    if m.pickled or m.dtype.kind not in "fiu" or m.size > 4096:
        return None
    return [float(g) for g in npz.array("gain").ravel()]


def _scalar(npz: NpzFile, key: str) -> Any:
    m = npz.members[key]
    if m.pickled or m.size != 1 or m.dtype.kind not in "biufUS":
        return None
    v = npz.array(key, budget=1 << 16).reshape(()).item()
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if isinstance(v, str):
        return v[:1024]
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v
