"""Image-quality metrics: contrast, CNR, gCNR, FWHM resolution and speckle SNR."""

from __future__ import annotations

import numpy as np


def _values(region: np.ndarray, name: str) -> np.ndarray:
    """Flatten a region to float64 and refuse an empty one."""
    values = np.asarray(region, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError(f"{name} region is empty")
    return values


def contrast_db(inside: np.ndarray, outside: np.ndarray) -> float:
    """Return 20*log10(mean(inside) / mean(outside)) for two envelope regions (< 0: darker)."""
    mean_in = _values(inside, "inside").mean()
    mean_out = _values(outside, "outside").mean()
    return float(20.0 * np.log10(mean_in / mean_out))


def cnr(inside: np.ndarray, outside: np.ndarray) -> float:
    """Return |mean_in - mean_out| / sqrt(var_in + var_out) (contrast-to-noise ratio)."""
    a, b = _values(inside, "inside"), _values(outside, "outside")
    return float(abs(a.mean() - b.mean()) / np.sqrt(a.var() + b.var()))


def gcnr(inside: np.ndarray, outside: np.ndarray, bins: int = 256) -> float:
    """Return the generalized CNR, 1 - overlap of the two value histograms (0 = same, 1 = apart).

    Rodriguez-Molares et al., IEEE TUFFC 2020: gCNR = 1 - sum(min(p_in, p_out)) with both
    histograms normalised to probabilities over common bins. It is invariant to monotonic
    transforms, so envelope, log image and uint8 image give (almost) the same value.
    """
    a, b = _values(inside, "inside"), _values(outside, "outside")
    low = min(a.min(), b.min())
    high = max(a.max(), b.max())
    if high <= low:
        return 0.0
    edges = np.linspace(low, high, bins + 1)
    p_in, _ = np.histogram(a, bins=edges)
    p_out, _ = np.histogram(b, bins=edges)
    overlap = np.minimum(p_in / a.size, p_out / b.size).sum()
    return float(1.0 - overlap)


def speckle_snr(envelope: np.ndarray) -> float:
    """Return mean/std of an envelope region; fully developed speckle (Rayleigh) gives 1.91."""
    values = _values(envelope, "envelope")
    return float(values.mean() / values.std())


def fwhm(profile: np.ndarray, coords: np.ndarray) -> float:
    """Return the full width at half maximum of a 1-D ``profile`` in the units of ``coords``.

    The half-maximum crossings on each side of the peak are linearly interpolated between
    samples. ``coords`` must be monotonic. Raises ValueError if the profile does not fall below
    half its maximum on both sides.
    """
    profile = np.asarray(profile, dtype=np.float64)
    coords = np.asarray(coords, dtype=np.float64)
    if profile.ndim != 1 or profile.shape != coords.shape:
        raise ValueError(
            f"profile and coords must be 1-D of equal length, got {profile.shape} and "
            f"{coords.shape}"
        )
    peak = int(np.argmax(profile))
    half = profile[peak] / 2.0
    below_left = np.nonzero(profile[:peak] < half)[0]
    below_right = np.nonzero(profile[peak:] < half)[0]
    if below_left.size == 0 or below_right.size == 0:
        raise ValueError("profile does not fall below half maximum on both sides of its peak")
    i = below_left[-1]  # profile[i] < half <= profile[i + 1]
    left = coords[i] + (half - profile[i]) / (profile[i + 1] - profile[i]) * (
        coords[i + 1] - coords[i])
    j = peak + below_right[0]  # profile[j - 1] >= half > profile[j]
    right = coords[j - 1] + (profile[j - 1] - half) / (profile[j - 1] - profile[j]) * (
        coords[j] - coords[j - 1])
    return float(abs(right - left))


def axial_fwhm(envelope: np.ndarray, depth_m: np.ndarray) -> float:
    """Return the axial FWHM (metres) along depth of the line holding the envelope's maximum.

    ``envelope``: ``(n_lines, n_samples)`` linear amplitude; ``depth_m``: ``(n_samples,)``.
    """
    envelope = np.asarray(envelope)
    line, _ = np.unravel_index(int(np.argmax(envelope)), envelope.shape)
    return fwhm(envelope[line], depth_m)


def lateral_fwhm(envelope: np.ndarray, positions: np.ndarray) -> float:
    """Return the lateral FWHM across lines at the depth of the envelope's maximum.

    Units are those of ``positions`` (metres for linear scans, radians for sector scans);
    lines may be in any order.
    """
    envelope = np.asarray(envelope)
    positions = np.asarray(positions, dtype=np.float64)
    _, sample = np.unravel_index(int(np.argmax(envelope)), envelope.shape)
    order = np.argsort(positions)
    return fwhm(envelope[order, sample], positions[order])


def peak_position(profile: np.ndarray, coords: np.ndarray) -> float:
    """Return the sub-sample position of the maximum of ``profile`` (3-point parabola fit)."""
    profile = np.asarray(profile, dtype=np.float64)
    coords = np.asarray(coords, dtype=np.float64)
    k = int(np.argmax(profile))
    if k == 0 or k == profile.size - 1:
        return float(coords[k])
    y0, y1, y2 = profile[k - 1], profile[k], profile[k + 1]
    denom = y0 - 2.0 * y1 + y2
    offset = 0.0 if denom == 0 else 0.5 * (y0 - y2) / denom
    step = (coords[k + 1] - coords[k - 1]) / 2.0
    return float(coords[k] + offset * step)
