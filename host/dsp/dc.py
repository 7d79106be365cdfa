"""DC removal: subtract each line's mean so the ADC offset does not leak into the band."""

from __future__ import annotations

import numpy as np


def remove_dc(
    x: np.ndarray,
    *,
    axis: int = -1,
    start: int = 0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Subtract the mean of ``x[..., start:]`` along ``axis`` from every sample of each line.

    ``start`` skips the transmit ring-down, whose large swing would bias the mean. Shapes are
    unchanged; units are those of ``x``. Works in place when ``out is x``.
    """
    x = np.asarray(x)
    moved = np.moveaxis(x, axis, -1)
    n = moved.shape[-1]
    start = start if 0 <= start < n else 0
    acc = np.float64 if x.dtype == np.float64 else np.float32
    mean = moved[..., start:].mean(axis=-1, keepdims=True, dtype=acc)
    return np.subtract(x, np.moveaxis(mean, -1, axis), out=out)
