"""Transmit ring-down blanking: zero the first samples after transmit, with a cosine taper."""

from __future__ import annotations

import numpy as np


def blanking_window(
    n_samples: int,
    sample_rate_hz: float,
    blank_s: float,
    taper_s: float = 0.5e-6,
    start_delay_s: float = 0.0,
) -> np.ndarray:
    """Return the float32 gain ramp (length <= ``n_samples``) that blanks the ring-down.

    Time is counted from transmit: sample ``k`` is at ``start_delay_s + k / sample_rate_hz``.
    The gain is 0 before ``blank_s``, rises as a raised cosine over ``taper_s`` and is 1 after;
    the returned array stops where the gain reaches 1 (it may be empty: nothing to blank).
    """
    t_s = start_delay_s + np.arange(n_samples) / sample_rate_hz
    end_s = blank_s + taper_s
    n = int(np.searchsorted(t_s, end_s, side="left"))
    if blank_s <= 0.0 and taper_s <= 0.0:
        n = 0
    t_s = t_s[:n]
    if taper_s > 0.0:
        ramp = np.clip((t_s - blank_s) / taper_s, 0.0, 1.0)
        window = 0.5 - 0.5 * np.cos(np.pi * ramp)
    else:
        window = (t_s >= blank_s).astype(np.float64)
    return window.astype(np.float32)


def blank(
    x: np.ndarray,
    window: np.ndarray,
    *,
    axis: int = -1,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Multiply the first ``len(window)`` samples along ``axis`` by ``window`` (in place: out=x).

    ``x`` is ``(..., n_samples)`` for ``axis=-1``; ``window`` comes from :func:`blanking_window`.
    """
    x = np.asarray(x)
    if out is None:
        out = x.copy()
    elif out is not x:
        np.copyto(out, x)
    n = min(len(window), out.shape[axis])
    if n == 0:
        return out
    moved = np.moveaxis(out, axis, -1)
    moved[..., :n] *= window[:n]
    return out
