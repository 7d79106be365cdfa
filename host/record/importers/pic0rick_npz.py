"""The older pic0rick shell's captures (``software/imgs/pico_shell/pic0gain_at_*.npz``).

Keys: ``signal`` (8000 values, (code − 512) / 512), ``t`` (µs), ``f`` (MHz, the FFT axis),
``gain`` (an index G: DAC code 100·G) and ``timestamp`` (``YYYYmmddHHMMSS``); the notebook
that wrote them builds ``t`` as ``k / 64`` µs, as if the ADC ran at 64 MHz, but the pic0rick
samples at 60 MS/s. So ``t`` and ``f`` are ignored, the recording says 60 MS/s, and a note
says why. One file is one capture: one frame of one line. The gain index is read from the
``gain`` key only (never from the file name); without it the gain is unknown.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from sonobridge.protocol.boards import pic0rick_shell as shell

from .common import (
    MAX_SAMPLES_PER_LINE,
    Imported,
    ImportedFrame,
    check_count,
    fail,
    recover_codes,
    u16_ob,
)
from .npz import NpzFile

NAME = "pic0rick-npz"
DESCRIPTION = "the older pic0rick shell's .npz capture (signal, t, f, gain)"
#: the rate the notebooks' ``t`` assumes
ASSUMED_T_RATE_HZ = 64e6
#: DAC code per gain index G (the notebooks' gain sweep)
DAC_CODE_PER_INDEX = 100


def looks_like(npz: NpzFile) -> bool:
    """``signal`` is 1-D numbers, ``t`` is beside it, and it is not a multi-line capture."""
    m = npz.members
    s = m.get("signal")
    return (s is not None and not s.pickled and len(s.shape) == 1 and "t" in m
            and s.dtype.kind in "fiu" and "t_on" not in m)


def read(path: Path, *, allow_pickle: bool = False) -> Imported:
    """Read one capture into memory; see the module docs."""
    del allow_pickle  # the plain arrays of this format never need it
    with NpzFile(path) as npz:
        if not looks_like(npz):
            raise fail(f"{path} is not a pic0rick capture: it needs a 1-D numeric 'signal' "
                       "and a 't' array")
        s = npz.members["signal"]
        check_count(f"{path}: the signal's length", s.size, MAX_SAMPLES_PER_LINE)
        fmt, bits = u16_ob(shell.ADC_BITS)
        out = Imported(NAME, [], int(shell.SAMPLE_RATE_HZ), fmt, bits, shell.device_info(),
                       dict(shell.NOMINAL_FIELDS))
        signal = npz.array("signal")
        codes = recover_codes(signal, what="signal", zero_level=shell.ZERO_LEVEL,
                              scales=(shell.ZERO_LEVEL,), adc_bits=shell.ADC_BITS, out=out)
        out.frames.append(ImportedFrame(codes[np.newaxis, :]))
        meta: dict[str, Any] = {}
        _check_t(npz, out, meta)
        _gain(npz, out, meta)
        if "timestamp" in npz.members:
            meta["timestamp"] = _scalar(npz, "timestamp")
    out.nominal_fields["adc_rate_hz"] = (
        "the file does not say; a pic0rick's ADC runs at 60 MS/s (its t assumes 64 MHz)")
    out.nominal["timestamp_us"] = "one capture: 0"
    out.info = dataclasses.replace(shell.device_info(shell.VARIANTS["old"]),
                                   min_samples_per_line=s.size, max_samples_per_line=s.size)
    out.metadata = meta
    return out


def _check_t(npz: NpzFile, out: Imported, meta: dict[str, Any]) -> None:
    """Say what ``t`` claims; the known 64 MHz mistake is flagged, never used."""
    step_us, why = npz.time_step_us("t")
    if step_us is None:
        out.notes.append(why)
        return
    meta["t_step_us"] = step_us
    rate = 1e6 / step_us
    meta["t_rate_hz"] = rate if np.isfinite(rate) else None
    true = shell.SAMPLE_RATE_HZ
    if abs(rate - ASSUMED_T_RATE_HZ) < 1.0:
        out.notes.append(f"t assumes 64 MHz ({step_us * 1e3:g} ns steps), the known mistake of "
                         f"the notebooks that wrote these files; the pic0rick samples at "
                         f"{true / 1e6:g} MS/s, so {true / 1e6:g} MS/s is used and t is ignored")
        meta["t_mistake"] = "t assumes 64 MHz; the true rate is 60 MS/s"
        out.nominal["sample_rate_hz"] = ("60 MS/s, the pic0rick's ADC rate, not the 64 MHz "
                                         "the file's t assumes")
    elif abs(rate - true) >= 1.0:
        out.notes.append(f"t's steps ({step_us:g} µs) give {rate / 1e6:g} MS/s; the pic0rick "
                         f"samples at {true / 1e6:g} MS/s, which is used")
        out.nominal["sample_rate_hz"] = "60 MS/s, the pic0rick's ADC rate; t disagrees"


def _gain(npz: NpzFile, out: Imported, meta: dict[str, Any]) -> None:
    if "gain" not in npz.members:
        out.nominal["gain"] = "unknown: the file has no gain key"
        return
    g = _scalar(npz, "gain")
    if isinstance(g, float) and g.is_integer():
        g = int(g)
    if not isinstance(g, int) or isinstance(g, bool) or not 0 <= g <= shell.DAC_MAX_CODE:
        out.nominal["gain"] = f"unknown: the gain key holds {g!r}, not a gain index"
        return
    meta["gain_index"] = g
    meta["dac_code"] = g * DAC_CODE_PER_INDEX
    out.nominal["gain"] = (f"DAC code {g * DAC_CODE_PER_INDEX} read as 100 × the gain index "
                           f"{g} (the notebooks' sweep); its dB value is nominal")


def _scalar(npz: NpzFile, key: str) -> Any:
    m = npz.members[key]
    if m.pickled or m.size != 1:
        raise fail(f"{npz.path}: {key!r} must be one value, got {m.dtype} {m.shape}")
    v = npz.array(key, budget=1 << 16).reshape(()).item()
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v
