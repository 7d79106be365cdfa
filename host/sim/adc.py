"""Receive chain after the transducer: TGC curve, thermal and ADC noise, quantization, formats.

Analog values are volts at the ADC input. The ADC spans ``±full_scale_v``: code
``round(v / full_scale_v * 2**(bits-1))`` clipped to ``-2**(bits-1) .. 2**(bits-1)-1``, so a
signal beyond full scale saturates exactly like the real converter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sonobridge.protocol import SampleFormat
from sonobridge.protocol.rules import tgc_gain_db
from sonobridge.protocol.samples import MAX_ADC_BITS


def tgc_curve_db(points_db: Sequence[float] | np.ndarray, n_samples: int) -> np.ndarray:
    """Per-sample TGC gain in dB ``(n_samples,)`` float64 from evenly spread gain points.

    The protocol's semantics, from :func:`sonobridge.protocol.rules.tgc_gain_db`: point ``k`` of
    ``count`` applies at sample ``k·(n_samples−1)/(count−1)``, linear in between.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    return tgc_gain_db(np.asarray(points_db, dtype=np.float64).reshape(-1), n_samples)


@dataclass(frozen=True)
class Adc:
    """A ``bits``-bit ADC spanning ±``full_scale_v``, with the receive chain's two noise sources.

    ``thermal_noise_v_rms`` is the preamp/probe noise referred to the TGC input (the TGC
    amplifies it together with the echoes); ``noise_lsb_rms`` is the converter's own noise,
    added after the gain. :class:`~sonobridge.sim.acoustics.EchoSynth` adds both (see
    :meth:`noise_v_rms`); :meth:`digitize` only quantizes, so it is deterministic.
    """

    bits: int = 10
    sample_rate_hz: float = 40e6
    full_scale_v: float = 1.0
    thermal_noise_v_rms: float = 3e-4
    noise_lsb_rms: float = 0.5

    def __post_init__(self) -> None:
        if not 2 <= self.bits <= 16:
            raise ValueError(f"Adc.bits must be in 2..16, got {self.bits}")
        if self.full_scale_v <= 0 or self.sample_rate_hz <= 0:
            raise ValueError("Adc.full_scale_v and sample_rate_hz must be positive")
        if self.thermal_noise_v_rms < 0 or self.noise_lsb_rms < 0:
            raise ValueError("Adc noise levels must be >= 0")

    @property
    def lsb_v(self) -> float:
        """Volts per code step at the ADC's native resolution."""
        return self.full_scale_v / 2 ** (self.bits - 1)

    def effective_bits(self, sample_format: int) -> int:
        """Bits that survive in ``sample_format``: narrower formats keep the top bits."""
        fmt = SampleFormat(sample_format)
        return min(self.bits, MAX_ADC_BITS[fmt])

    def noise_v_rms(self, gain_db: np.ndarray | float) -> np.ndarray:
        """Total noise at the ADC input in volts for a TGC gain (thermal·gain ⊕ ADC noise)."""
        gain = 10.0 ** (np.asarray(gain_db, dtype=np.float64) / 20.0)
        thermal = self.thermal_noise_v_rms * gain
        return np.sqrt(thermal * thermal + (self.noise_lsb_rms * self.lsb_v) ** 2)

    def codes(self, analog_v: np.ndarray, bits: int | None = None) -> np.ndarray:
        """Signed codes (float32, integral values) of ``analog_v``, rounded and clipped."""
        b = self.bits if bits is None else bits
        half = 2 ** (b - 1)
        out = np.multiply(analog_v, np.float32(half / self.full_scale_v), dtype=np.float32)
        np.rint(out, out=out)
        return np.clip(out, -half, half - 1, out=out)

    def digitize(
        self, analog_v: np.ndarray, sample_format: int = SampleFormat.I16
    ) -> np.ndarray:
        """Quantize volts ``(..., n_samples)`` to the wire dtype of ``sample_format``.

        I16 → int16 two's complement (zero = 0); U16_OB → uint16, U8 → uint8 and PACKED12 →
        uint16 values 0..4095, all offset binary (zero = ``2**(bits-1)``), where ``bits`` is
        :meth:`effective_bits` (what the board reports as ``adc_bits``).
        """
        fmt = SampleFormat(sample_format)
        bits = self.effective_bits(fmt)
        c = self.codes(analog_v, bits)
        if fmt == SampleFormat.I16:
            return c.astype(np.int16)
        c += np.float32(2 ** (bits - 1))
        return c.astype(np.uint8 if fmt == SampleFormat.U8 else np.uint16)

    def to_volts(self, samples: np.ndarray, sample_format: int = SampleFormat.I16) -> np.ndarray:
        """Inverse of :meth:`digitize` up to quantization: samples back to volts (float64)."""
        bits = self.effective_bits(sample_format)
        s = np.asarray(samples, dtype=np.float64)
        if SampleFormat(sample_format) != SampleFormat.I16:
            s = s - 2 ** (bits - 1)
        return s * (self.full_scale_v / 2 ** (bits - 1))


class NoisePool:
    """Precomputed unit Gaussian noise rows, scaled per sample, drawn per frame by random rows.

    Drawing fresh noise for a 128 × 4096 frame costs several ms; picking ``n_lines`` distinct
    rows from a pool of ``n_rows`` costs one gather. Frames reuse rows, so averaging many more
    than ``n_rows / n_lines`` frames stops lowering the noise (documented in docs/sim.md).
    """

    def __init__(
        self, std: np.ndarray, n_rows: int, rng: np.random.Generator
    ) -> None:
        std = np.asarray(std, dtype=np.float32).reshape(-1)
        self.n_rows = int(n_rows)
        self.rows = rng.standard_normal((self.n_rows, std.size), dtype=np.float32)
        self.rows *= std

    def draw(self, n_lines: int, rng: np.random.Generator, out: np.ndarray | None = None
             ) -> np.ndarray:
        """``(n_lines, n_samples)`` noise: distinct random rows while the pool has enough."""
        if n_lines <= self.n_rows:
            idx = rng.choice(self.n_rows, n_lines, replace=False)
        else:
            idx = rng.integers(0, self.n_rows, n_lines)
        return np.take(self.rows, idx, axis=0, out=out)
