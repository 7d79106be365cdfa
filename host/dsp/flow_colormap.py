"""Colour-flow colours: velocity → RGBA, red toward the transducer, blue away, power-gated.

The map runs from full speed away (bright blue, then cyan at the limit) through dark at zero to
full speed toward (bright red, then yellow at the limit), so aliased flow, which jumps from one
end to the other, shows up as yellow beside cyan. Pixels whose power is below the threshold,
whose speed is below ``min_velocity_m_s`` or whose velocity is NaN are transparent (alpha 0),
so the colour overlay can be drawn straight over the B-mode image.

Plain NumPy, no GUI: ``flow_colormap(n)`` is a lookup table for an image widget with levels
``(−v_max, +v_max)``; :func:`flow_rgba` applies the same table itself.
"""

from __future__ import annotations

import math

import numpy as np

#: fraction of full speed where the ramp reaches full red/blue; beyond it, toward yellow/cyan
_KNEE = 0.8
#: brightness of the slowest flow, so slow flow is still visible over black
_MIN_LEVEL = 0.2


def flow_colormap(n: int = 256) -> np.ndarray:
    """Lookup table ``(n, 4)`` uint8 RGBA: entry 0 = −v_max (away, blue) … n−1 = +v_max (red).

    Entry ``i`` is the colour of velocities in ``[2i/n − 1, 2(i+1)/n − 1)·v_max``; for even n
    the upper half is red (toward), the lower half blue (away). Alpha is 255 throughout.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 2 <= n <= 65536:
        raise ValueError(f"n={n!r} must be an integer in 2..65536 (table entries)")
    t = (2.0 * np.arange(n) + 1.0) / n - 1.0  # bin centres in (−1, 1)
    mag = np.abs(t)
    level = _MIN_LEVEL + (1.0 - _MIN_LEVEL) * np.minimum(mag / _KNEE, 1.0)
    hot = 0.85 * np.clip((mag - _KNEE) / (1.0 - _KNEE), 0.0, 1.0)
    lut = np.zeros((n, 4), np.float64)
    toward, away = t > 0, t < 0
    lut[toward, 0] = level[toward]
    lut[away, 2] = level[away]
    lut[:, 1] = hot
    lut[:, 3] = 1.0
    return np.round(lut * 255.0).astype(np.uint8)


def flow_rgba(velocity_m_s: np.ndarray, v_max_m_s: float, *, power: np.ndarray | None = None,
              power_threshold: float | None = None, min_velocity_m_s: float = 0.0,
              lut: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """RGBA ``(..., 4)`` uint8 for a velocity image: positive (toward) red, negative blue.

    ``v_max_m_s`` is full scale (normally the Nyquist velocity; ``(1 + |shift|)·v_nyq`` with a
    baseline shift); faster values saturate. ``power`` (same shape, any units, e.g.
    ``FlowEstimate.power`` or its dB) below ``power_threshold`` (same units) is transparent, as
    is ``|v| < min_velocity_m_s`` and NaN. ``lut`` defaults to ``flow_colormap(256)``.
    """
    v = np.asarray(velocity_m_s)
    if not (isinstance(v_max_m_s, (int, float, np.floating, np.integer))
            and math.isfinite(v_max_m_s) and v_max_m_s > 0):
        raise ValueError(f"v_max_m_s={v_max_m_s!r} must be a finite number > 0 (m/s)")
    if not math.isfinite(min_velocity_m_s) or min_velocity_m_s < 0:
        raise ValueError(f"min_velocity_m_s={min_velocity_m_s!r} must be finite and >= 0")
    table = _LUT if lut is None else np.asarray(lut)
    if table.ndim != 2 or table.shape[1] != 4 or table.dtype != np.uint8 or table.shape[0] < 2:
        raise ValueError(f"lut must be uint8 (n, 4) with n >= 2, got {table.dtype} {table.shape}")
    if (power is None) != (power_threshold is None):
        raise ValueError("give both power and power_threshold, or neither")
    n = table.shape[0]
    finite = np.isfinite(v)
    t = np.where(finite, v, 0.0) / float(v_max_m_s)
    idx = np.clip(np.floor((t + 1.0) * (n / 2.0)), 0, n - 1).astype(np.intp)
    if out is None:
        out = np.empty((*v.shape, 4), np.uint8)
    elif out.shape != (*v.shape, 4) or out.dtype != np.uint8:
        raise ValueError(f"out must be uint8 of shape {(*v.shape, 4)}, got {out.dtype} "
                         f"{out.shape}")
    np.take(table, idx, axis=0, out=out)
    hide = ~finite
    if min_velocity_m_s > 0:
        hide |= np.abs(np.where(finite, v, 0.0)) < min_velocity_m_s
    if power is not None:
        p = np.asarray(power)
        if p.shape != v.shape:
            raise ValueError(f"power has shape {p.shape}; velocity has {v.shape}")
        hide |= ~(p >= power_threshold)  # NaN power is hidden too
    out[..., 3][hide] = 0
    return out


_LUT = flow_colormap(256)
_LUT.flags.writeable = False
