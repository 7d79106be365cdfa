"""A small, self-contained point-scatterer RF model with known truth, for the DSP tests.

Each scatterer returns the two-way echo pulse p(t) = exp(-t²/(2σ²)) · cos(2π f0 t), weighted by
a Gaussian lateral beam profile. The pulse's amplitude spectrum is a Gaussian around f0 whose
full width at half amplitude (the -6 dB bandwidth of the two-way pulse) is B·f0, which fixes

    σ = sqrt(2 ln 2) / (π B f0)        and the axial envelope FWHM = 2 ln2/π · c/(B f0)
                                                                     ≈ 0.441 c / (B f0).

Geometry matches sonobridge.dsp.ScanConverter: 'linear' lines sit at lateral positions x_l (metres)
looking down +z, range = z; 'sector' lines leave the origin at angle θ_l (0 = down, positive to
the right), range = sqrt(x² + z²). Echo time in the record is 2·range/c - start_delay_s.

It is fast enough for tens of thousands of scatterers: each (scatterer, line) pair deposits a
complex phasor on the sample grid (linear split between the two nearest samples, compensated in
the spectrum), then one FFT convolution per frame applies the pulse envelope. A physics-based
simulator will replace this model; nothing in host/ depends on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scatterers:
    """Point scatterers: lateral x (m), depth z (m) and amplitude (any real units)."""

    x_m: np.ndarray
    z_m: np.ndarray
    amplitude: np.ndarray

    def __add__(self, other: Scatterers) -> Scatterers:
        return Scatterers(
            np.concatenate([self.x_m, other.x_m]),
            np.concatenate([self.z_m, other.z_m]),
            np.concatenate([self.amplitude, other.amplitude]),
        )


def pulse_sigma_s(center_freq_hz: float, bandwidth: float) -> float:
    """Return σ (s) of the Gaussian envelope whose -6 dB fractional bandwidth is ``bandwidth``."""
    return float(np.sqrt(2.0 * np.log(2.0)) / (np.pi * bandwidth * center_freq_hz))


def axial_fwhm_theory_m(center_freq_hz: float, bandwidth: float, sound_speed_m_s: float = 1540.0
                        ) -> float:
    """Return the theoretical axial envelope FWHM (m): 2 ln2/π · c/(B f0) ≈ 0.441 c/(B f0)."""
    return float(2.0 * np.log(2.0) / np.pi * sound_speed_m_s / (bandwidth * center_freq_hz))


def points(x_m: list[float], z_m: list[float], amplitude: float = 1.0) -> Scatterers:
    """Return wires (point targets) at the given positions."""
    x = np.asarray(x_m, dtype=np.float64)
    return Scatterers(x, np.asarray(z_m, dtype=np.float64), np.full(x.shape, amplitude))


def speckle(
    rng: np.random.Generator,
    x_range_m: tuple[float, float],
    z_range_m: tuple[float, float],
    density_per_mm2: float = 100.0,
    cysts: list[tuple[float, float, float]] = (),  # type: ignore[assignment]
) -> Scatterers:
    """Return uniformly random scatterers with Gaussian amplitudes over a rectangle.

    ``cysts``: (x_m, z_m, radius_m) discs left empty (anechoic).
    """
    area_mm2 = (x_range_m[1] - x_range_m[0]) * (z_range_m[1] - z_range_m[0]) * 1e6
    n = round(area_mm2 * density_per_mm2)
    x = rng.uniform(*x_range_m, n)
    z = rng.uniform(*z_range_m, n)
    keep = np.ones(n, dtype=bool)
    for cx, cz, radius in cysts:
        keep &= (x - cx) ** 2 + (z - cz) ** 2 > radius**2
    return Scatterers(x[keep], z[keep], rng.standard_normal(int(keep.sum())))


def simulate_rf(
    scatterers: Scatterers,
    positions: np.ndarray,
    kind: str = "linear",
    *,
    sample_rate_hz: float = 40e6,
    center_freq_hz: float = 5e6,
    bandwidth: float = 0.6,
    n_samples: int = 4096,
    sound_speed_m_s: float = 1540.0,
    start_delay_s: float = 0.0,
    beam_fwhm_m: float = 1e-3,
) -> np.ndarray:
    """Return float64 RF ``(n_lines, n_samples)`` for ``scatterers`` seen by lines at ``positions``.

    ``beam_fwhm_m`` is the two-way lateral FWHM of the beam's amplitude, constant with depth.
    """
    positions = np.asarray(positions, dtype=np.float64)
    n_lines = positions.size
    fs, f0, c = sample_rate_hz, center_freq_hz, sound_speed_m_s
    sigma_t = pulse_sigma_s(f0, bandwidth)
    sigma_lat = beam_fwhm_m / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    x, z = scatterers.x_m[np.newaxis, :], scatterers.z_m[np.newaxis, :]
    pos = positions[:, np.newaxis]
    if kind == "linear":
        lateral = x - pos
        rng_m = np.broadcast_to(z, lateral.shape)
    elif kind == "sector":
        r = np.hypot(x, z)
        lateral = r * np.sin(np.arctan2(x, z) - pos)
        rng_m = np.broadcast_to(r, lateral.shape)
    else:
        raise ValueError(f"kind={kind!r} must be 'linear' or 'sector'")
    line_idx, scat_idx = np.nonzero(np.abs(lateral) < 4.0 * sigma_lat)
    lat = lateral[line_idx, scat_idx]
    delay_s = 2.0 * rng_m[line_idx, scat_idx] / c - start_delay_s
    weight = scatterers.amplitude[scat_idx] * np.exp(-0.5 * (lat / sigma_lat) ** 2)
    phasor = weight * np.exp(-2j * np.pi * f0 * delay_s)

    half_kernel = int(np.ceil(6.0 * sigma_t * fs))
    n_fft = int(2 ** np.ceil(np.log2(n_samples + 2 * half_kernel + 2)))
    u = delay_s * fs
    base = np.floor(u).astype(np.int64)
    frac = u - base
    ok = (base >= -half_kernel) & (base < n_samples + half_kernel)
    base, frac, phasor, line_idx = base[ok], frac[ok], phasor[ok], line_idx[ok]
    # Samples before the record start are folded to the end of the padded buffer, which the
    # circular convolution brings back to the right place.
    flat0 = line_idx * n_fft + np.mod(base, n_fft)
    flat1 = line_idx * n_fft + np.mod(base + 1, n_fft)
    size = n_lines * n_fft
    dep = np.bincount(flat0, (1 - frac) * phasor.real, size) + np.bincount(
        flat1, frac * phasor.real, size
    )
    dep = dep + 1j * (
        np.bincount(flat0, (1 - frac) * phasor.imag, size)
        + np.bincount(flat1, frac * phasor.imag, size)
    )
    dep = dep.reshape(n_lines, n_fft)
    freq = np.fft.fftfreq(n_fft, 1.0 / fs)
    # Continuous Gaussian envelope spectrum, divided by the linear split's sinc² response.
    # The factor fs·σ·sqrt(2π) makes a unit scatterer on the beam axis peak at amplitude 1.
    kernel = (fs * sigma_t * np.sqrt(2.0 * np.pi) * np.exp(-2.0 * (np.pi * sigma_t * freq) ** 2)
              / np.sinc(freq / fs) ** 2)
    env = np.fft.ifft(np.fft.fft(dep, axis=-1) * kernel, axis=-1)[:, :n_samples]
    t = np.arange(n_samples) / fs
    return np.real(env * np.exp(2j * np.pi * f0 * t))


def to_codes(rf: np.ndarray, input_format: str, adc_bits: int | None = None) -> np.ndarray:
    """Quantise full-scale float RF (±1) to ADC codes of ``input_format``, clipping at the rails."""
    if input_format == "float":
        return rf.astype(np.float32)
    bits = {"u8": 8, "i16": 16, "u16": 16, "u12": 12}[input_format]
    bits = bits if adc_bits is None else adc_bits
    half = 2 ** (bits - 1)
    codes = np.clip(np.rint(rf * half), -half, half - 1)
    if input_format == "i16":
        return codes.astype(np.int16)
    dtype = np.uint8 if input_format == "u8" else np.uint16
    return (codes + half).astype(dtype)
