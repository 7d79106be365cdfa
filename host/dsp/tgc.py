"""Time-gain compensation: gain over depth from a dB/cm slope, a user curve, or the data itself."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import uniform_filter1d


def tgc_gain_db(
    depth_m: np.ndarray,
    *,
    db_per_cm: float = 0.0,
    curve_db: Sequence[tuple[float, float]] | None = None,
) -> np.ndarray:
    """Return the TGC gain in dB at each depth (float64, shape of ``depth_m``).

    ``db_per_cm`` is a two-way slope: gain = db_per_cm * depth_cm, so it cancels a round-trip
    attenuation of that many dB per cm of depth. ``curve_db`` is a sequence of
    (depth_m, gain_db) points, linearly interpolated and held flat beyond its ends; it adds to
    the slope.
    """
    depth_m = np.asarray(depth_m, dtype=np.float64)
    gain_db = db_per_cm * 100.0 * depth_m
    if curve_db is not None:
        points = np.asarray(curve_db, dtype=np.float64).reshape(-1, 2)
        gain_db = gain_db + np.interp(depth_m, points[:, 0], points[:, 1])
    return gain_db


def db_to_gain(gain_db: np.ndarray) -> np.ndarray:
    """Convert amplitude gain in dB to a linear float32 factor (10**(dB/20))."""
    return np.power(10.0, np.asarray(gain_db, dtype=np.float64) / 20.0).astype(np.float32)


def apply_gain(
    x: np.ndarray,
    gain: np.ndarray,
    *,
    axis: int = -1,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Multiply ``x`` (real or complex, ``(..., n_samples)``) by a linear ``gain`` over ``axis``."""
    x = np.asarray(x)
    gain = np.asarray(gain)
    shape = [1] * x.ndim
    shape[axis] = gain.shape[0]
    return np.multiply(x, gain.reshape(shape), out=out)


def auto_tgc_db(
    envelope: np.ndarray,
    depth_m: np.ndarray,
    *,
    smooth_m: float = 5e-3,
    max_db: float = 40.0,
    valid_from: int = 0,
) -> np.ndarray:
    """Return the dB correction that flattens the per-depth median of ``envelope`` (one frame).

    ``envelope``: ``(n_lines, n_samples)`` linear amplitude; ``depth_m``: ``(n_samples,)``.
    The median over lines at each depth (robust to a few bright reflectors) is taken in dB,
    smoothed over ``smooth_m`` of depth and compared with its median over depth; the correction
    is clipped to ±``max_db``. Samples before ``valid_from`` (the blanked ring-down) get the
    correction of the first valid depth. Smoothing over time is the caller's job.
    """
    envelope = np.asarray(envelope)
    n = envelope.shape[-1]
    valid_from = min(max(valid_from, 0), n - 1)
    profile = np.median(envelope[:, valid_from:], axis=0)
    level_db = 20.0 * np.log10(np.maximum(profile, 1e-12))
    if n > 1 and smooth_m > 0.0:
        step_m = abs(float(depth_m[-1] - depth_m[0])) / (n - 1)
        width = round(smooth_m / step_m) if step_m > 0 else 1
        if width > 1:
            level_db = uniform_filter1d(level_db, size=min(width, level_db.size), mode="nearest")
    target_db = float(np.median(level_db))
    correction = np.clip(target_db - level_db, -max_db, max_db)
    full = np.empty(n, dtype=np.float64)
    full[valid_from:] = correction
    full[:valid_from] = correction[0]
    return full
