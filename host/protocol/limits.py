"""What a board's own announcements allow: sane DEVICE_INFO and STATUS, lines within limits.

A receiver trusts no size from the wire beyond what the board announced before: an ECHO_LINE
whose ``lines_per_frame``, ``ensemble_size``, sample count or sample format exceeds the board's
DEVICE_INFO is malformed, however intact its CRC (one such line could otherwise make a host
allocate a terabyte for its sweep). A DEVICE_INFO that cannot describe a working board (an ADC
at 0 Hz, an empty range) is refused at the handshake, and STATUS values that cannot be true
are flagged rather than shown as facts.
"""

from __future__ import annotations

from .constants import DeviceState, SampleFormat, SweepKind
from .messages import DeviceInfo, EchoLine, Status

#: the widest physically plausible board temperature, in centi-degrees Celsius (beyond the
#: -55..150 °C of any silicon a board is built from, the reading is a fault, not a fact)
TEMPERATURE_RANGE_CDEG = (-5500, 15000)
_KNOWN_FORMATS = sum(1 << f for f in SampleFormat)


def device_info_problems(info: DeviceInfo) -> list[str]:
    """Every DEVICE_INFO field that cannot describe a working board, as ``field = value: why``."""
    p: list[str] = []

    def need(ok: bool, name: str, why: str) -> None:
        if not ok:
            p.append(f"{name} = {getattr(info, name)}: {why}")

    need(1 <= info.adc_bits <= 16, "adc_bits", "must be 1..16")
    need(info.sample_formats & _KNOWN_FORMATS != 0, "sample_formats",
         "announces no known sample format (bits 0..3)")
    need(info.sweep_kind in {int(k) for k in SweepKind}, "sweep_kind",
         f"must be one of {', '.join(f'{int(k)} ({k.name})' for k in SweepKind)}")
    need(info.adc_rate_hz > 0, "adc_rate_hz", "must be above 0")
    need(info.max_decimation >= 1, "max_decimation", "must be at least 1")
    need(info.tgc_points_max >= 1, "tgc_points_max", "must be at least 1")
    need(info.ensemble_max >= 1, "ensemble_max", "must be at least 1")
    need(info.pulse_cycles_max >= 1, "pulse_cycles_max", "must be at least 1")
    need(info.min_samples_per_line >= 1, "min_samples_per_line", "must be at least 1")
    need(info.max_samples_per_line >= max(1, info.min_samples_per_line),
         "max_samples_per_line", f"must be at least min_samples_per_line "
         f"({info.min_samples_per_line}) and 1")
    need(info.max_lines_per_frame >= 1, "max_lines_per_frame", "must be at least 1")
    need(info.prf_min_hz >= 1, "prf_min_hz", "must be at least 1")
    for lo, hi in (("gain_min_cdb", "gain_max_cdb"), ("sweep_min", "sweep_max"),
                   ("prf_min_hz", "prf_max_hz"), ("pulse_freq_min_hz", "pulse_freq_max_hz"),
                   ("hv_min_mv", "hv_max_mv")):
        need(getattr(info, lo) <= getattr(info, hi), hi, f"is below {lo} ({getattr(info, lo)})")
    return p


def status_problems(status: Status, info: DeviceInfo | None = None) -> list[str]:
    """STATUS values that cannot be true (a sensor or firmware fault), for people to read."""
    p: list[str] = []
    if status.state not in {int(s) for s in DeviceState}:
        p.append(f"state = {status.state} is not a known state")
    lo, hi = TEMPERATURE_RANGE_CDEG
    if not lo <= status.temperature_cdeg <= hi:
        p.append(f"temperature {status.temperature_c:.1f} °C is impossible "
                 f"(outside {lo / 100:.0f}..{hi / 100:.0f} °C)")
    if status.buffer_fill_permille > 1000:
        p.append(f"buffer fill {status.buffer_fill_permille / 10:.1f} % is above 100 %")
    if info is not None and status.hv_mv > info.hv_max_mv * 1.1:
        p.append(f"HV {status.hv_mv / 1000:.1f} V is above the board's own maximum "
                 f"({info.hv_max_mv / 1000:.1f} V)")
    return p


def line_limit_problem(line: EchoLine, info: DeviceInfo | None) -> str | None:
    """Why ``line`` exceeds what the board announced in ``info`` (None if it does not)."""
    if info is None:
        return "arrived before the board announced its limits (DEVICE_INFO)"
    if line.lines_per_frame > info.max_lines_per_frame:
        return (f"claims lines_per_frame = {line.lines_per_frame}, above its DEVICE_INFO "
                f"max_lines_per_frame {info.max_lines_per_frame}")
    if line.ensemble_size > max(1, info.ensemble_max):
        return (f"claims ensemble_size = {line.ensemble_size}, above its DEVICE_INFO "
                f"ensemble_max {info.ensemble_max}")
    if line.n_samples > info.max_samples_per_line:
        return (f"carries {line.n_samples} samples, above its DEVICE_INFO "
                f"max_samples_per_line {info.max_samples_per_line}")
    if line.sample_format is None or not info.supports_format(line.sample_format):
        return f"uses sample_format {line.sample_format}, which its DEVICE_INFO does not list"
    return None
