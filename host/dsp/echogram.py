"""Echograms of envelope samples: a sonar's log-amplifier output shown as it is.

A board like the Open Echo hands the host its log amplifier's output, already an envelope on
a logarithmic scale. Detecting and compressing it again (as :class:`~sonobridge.dsp.Chain`
does with RF) would square the compression and flatten the picture, so these samples only
get a linear display gain and are reduced in depth by their peaks, so that a thin echo (a
sea floor a few samples thick) is never skipped by the decimation.
"""

from __future__ import annotations

import numpy as np

__all__ = ["envelope_to_grey", "peak_decimate"]


def envelope_to_grey(codes: np.ndarray, adc_bits: int, gain_db: float = 0.0) -> np.ndarray:
    """Envelope codes ``0 .. 2**adc_bits - 1`` → grey levels 0..255 (uint8), times ``gain_db``."""
    if not 1 <= adc_bits <= 16:
        raise ValueError(f"adc_bits={adc_bits!r} must be 1..16")
    full_scale = float((1 << adc_bits) - 1)
    scale = 255.0 / full_scale * 10.0 ** (gain_db / 20.0)
    grey = np.asarray(codes, dtype=np.float32) * np.float32(scale)
    return np.clip(grey, 0.0, 255.0, out=grey).astype(np.uint8)


def peak_decimate(x: np.ndarray, factor: int, axis: int = -1) -> np.ndarray:
    """Every ``factor`` samples along ``axis`` → their maximum (a last short block included)."""
    if factor < 1:
        raise ValueError(f"factor={factor!r} must be >= 1")
    x = np.asarray(x)
    if factor == 1:
        return x
    moved = np.moveaxis(x, axis, -1)
    n = moved.shape[-1]
    blocks = -(-n // factor)
    pad = blocks * factor - n
    if pad:
        # the short last block repeats its own last sample: it cannot raise the maximum
        moved = np.concatenate([moved, np.repeat(moved[..., -1:], pad, axis=-1)], axis=-1)
    out = moved.reshape(*moved.shape[:-1], blocks, factor).max(axis=-1)
    return np.moveaxis(out, -1, axis)
