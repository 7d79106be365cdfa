"""Persistence: first-order IIR averaging of successive frames to smooth speckle and noise."""

from __future__ import annotations

import numpy as np


def persist(
    average: np.ndarray,
    frame: np.ndarray,
    weight: float,
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Return ``weight * average + (1 - weight) * frame`` (in place when ``out is average``).

    ``weight`` in [0, 1) is how much of the history is kept per frame; 0 returns ``frame``.
    A step change reaches 1 - weight**n of its final value after n frames.
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"weight={weight!r} is outside the allowed range [0, 1)")
    if out is None:
        out = np.empty(np.broadcast_shapes(np.shape(average), np.shape(frame)),
                       dtype=np.result_type(average, frame))
    if weight == 0.0:
        np.copyto(out, frame)
        return out
    # out = frame + weight * (average - frame): two passes, no temporary.
    np.subtract(average, frame, out=out)
    np.multiply(out, np.float32(weight) if out.dtype == np.float32 else weight, out=out)
    np.add(out, frame, out=out)
    return out
