"""ChainConfig: every parameter of the echo-line → image chain, with units in the names."""

from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import dataclass, field
from typing import Literal

InputFormat = Literal["auto", "u8", "i16", "u16", "u12", "float"]
INPUT_FORMATS: tuple[str, ...] = ("auto", "u8", "i16", "u16", "u12", "float")


def _check_range(
    name: str,
    value: float,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise a ValueError naming the field, its value and the allowed interval."""
    try:
        finite = math.isfinite(value)
    except TypeError:
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if not finite or below or above:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"{name}={value!r} is outside the allowed range {lo}{low}, {high}{hi}")


@dataclass(frozen=True)
class ChainConfig:
    """Parameters of the DSP chain; defaults suit a single-element hobby board in water or tissue.

    Only ``sample_rate_hz`` and ``center_freq_hz`` are required. See docs/dsp.md for every field.
    """

    sample_rate_hz: float
    center_freq_hz: float
    fractional_bandwidth: float = 0.6
    sound_speed_m_s: float = 1540.0
    start_delay_s: float = 0.0
    blank_s: float = 2e-6
    blank_taper_s: float = 0.5e-6
    dc_removal: bool = True
    decimation: int | Literal["auto"] = "auto"
    tgc_db_per_cm: float = 0.0
    tgc_curve_db: tuple[tuple[float, float], ...] | None = None
    auto_tgc: bool = False
    auto_tgc_rate: float = 0.1
    auto_tgc_max_db: float = 40.0
    auto_tgc_smooth_m: float = 5e-3
    dynamic_range_db: float = 50.0
    gain_db: float = 0.0
    reference: Literal["tracking", "fixed"] = "tracking"
    reference_level: float = 1.0
    reference_percentile: float = 99.0
    reference_rate: float = 0.05
    persistence: float = 0.0
    persistence_on: Literal["envelope", "image"] = "envelope"
    adc_bits: int | None = None
    input_format: InputFormat = "auto"
    # Derived, not an argument: the band's upper -6 dB edge, used by the Nyquist check.
    band_high_hz: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_range("sample_rate_hz", self.sample_rate_hz, 0.0, math.inf, low_open=True,
                     high_open=True)
        _check_range("center_freq_hz", self.center_freq_hz, 0.0, math.inf, low_open=True,
                     high_open=True)
        _check_range("fractional_bandwidth", self.fractional_bandwidth, 0.0, 2.0, low_open=True,
                     high_open=True)
        _check_range("sound_speed_m_s", self.sound_speed_m_s, 300.0, 10000.0)
        _check_range("start_delay_s", self.start_delay_s, 0.0, 1.0)
        _check_range("blank_s", self.blank_s, 0.0, 1.0)
        _check_range("blank_taper_s", self.blank_taper_s, 0.0, 1.0)
        band_high_hz = self.center_freq_hz * (1.0 + self.fractional_bandwidth / 2.0)
        object.__setattr__(self, "band_high_hz", band_high_hz)
        if self.sample_rate_hz < 2.0 * band_high_hz:
            raise ValueError(
                f"sample_rate_hz={self.sample_rate_hz!r} is below twice the band's upper edge "
                f"center_freq_hz*(1+fractional_bandwidth/2)={band_high_hz:.6g} Hz; "
                f"raise sample_rate_hz to at least {2.0 * band_high_hz:.6g} Hz, or lower "
                f"center_freq_hz or fractional_bandwidth"
            )
        if self.decimation != "auto" and (
            isinstance(self.decimation, bool)
            or not isinstance(self.decimation, numbers.Integral)
            or self.decimation < 1
        ):
            raise ValueError(
                f"decimation={self.decimation!r} must be 'auto' or an integer >= 1"
            )
        _check_range("tgc_db_per_cm", self.tgc_db_per_cm, -10.0, 30.0)
        if self.tgc_curve_db is not None:
            object.__setattr__(self, "tgc_curve_db", _validate_curve(self.tgc_curve_db))
        _check_range("auto_tgc_rate", self.auto_tgc_rate, 0.0, 1.0, low_open=True)
        _check_range("auto_tgc_max_db", self.auto_tgc_max_db, 0.0, 80.0)
        _check_range("auto_tgc_smooth_m", self.auto_tgc_smooth_m, 0.0, 1.0)
        _check_range("dynamic_range_db", self.dynamic_range_db, 1.0, 120.0)
        _check_range("gain_db", self.gain_db, -60.0, 60.0)
        if self.reference not in ("tracking", "fixed"):
            raise ValueError(
                f"reference={self.reference!r} must be 'tracking' or 'fixed'"
            )
        _check_range("reference_level", self.reference_level, 0.0, math.inf, low_open=True,
                     high_open=True)
        _check_range("reference_percentile", self.reference_percentile, 50.0, 100.0)
        _check_range("reference_rate", self.reference_rate, 0.0, 1.0, low_open=True)
        _check_range("persistence", self.persistence, 0.0, 1.0, high_open=True)
        if self.persistence_on not in ("envelope", "image"):
            raise ValueError(
                f"persistence_on={self.persistence_on!r} must be 'envelope' or 'image'"
            )
        if self.adc_bits is not None and (
            isinstance(self.adc_bits, bool)
            or not isinstance(self.adc_bits, numbers.Integral)
            or not 2 <= self.adc_bits <= 16
        ):
            raise ValueError(
                f"adc_bits={self.adc_bits!r} must be None (the container width) or an "
                f"integer in [2, 16]"
            )
        if self.input_format not in INPUT_FORMATS:
            raise ValueError(
                f"input_format={self.input_format!r} must be one of {INPUT_FORMATS}"
            )

    @property
    def band_edges_hz(self) -> tuple[float, float]:
        """The -6 dB pass band (low, high) in Hz: f0*(1 -/+ fractional_bandwidth/2)."""
        half = self.center_freq_hz * self.fractional_bandwidth / 2.0
        return self.center_freq_hz - half, self.center_freq_hz + half


def _validate_curve(curve: object) -> tuple[tuple[float, float], ...]:
    """Check a TGC curve of (depth_m, gain_db) points and return it as a tuple of tuples."""
    try:
        points = tuple((float(d), float(g)) for d, g in curve)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(
            f"tgc_curve_db={curve!r} must be a sequence of (depth_m, gain_db) pairs"
        ) from None
    if not points:
        raise ValueError("tgc_curve_db=() must hold at least one (depth_m, gain_db) pair")
    depths = [d for d, _ in points]
    if not all(math.isfinite(d) and math.isfinite(g) for d, g in points):
        raise ValueError(f"tgc_curve_db={curve!r} must hold finite numbers only")
    if any(b <= a for a, b in itertools.pairwise(depths)):
        raise ValueError(
            f"tgc_curve_db depths {depths!r} must be strictly increasing (metres)"
        )
    if any(abs(g) > 80.0 for _, g in points):
        raise ValueError(f"tgc_curve_db gains must lie in [-80, 80] dB, got {curve!r}")
    return points
