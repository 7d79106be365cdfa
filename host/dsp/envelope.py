"""Envelope detection: the magnitude of the baseband analytic signal."""

from __future__ import annotations

import numpy as np


def envelope(iq: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """Return |iq| as float32 (same shape as ``iq``, linear amplitude in full-scale units)."""
    iq = np.asarray(iq)
    if out is None:
        out = np.empty(iq.shape, dtype=np.float32 if iq.dtype != np.complex128 else np.float64)
    return np.abs(iq, out=out)
