"""Colour flow drawn over B-mode: one RGB picture, as a DICOM export or a still would show it.

Plain NumPy. :func:`flow_over_bmode` blends a :func:`~.flow_colormap.flow_rgba` overlay onto a
grey B-mode picture of the same pixel grid: where the overlay is transparent (alpha 0: power
below the threshold, no flow, outside the sector) the grey shows through unchanged.
"""

from __future__ import annotations

import numpy as np


def flow_over_bmode(grey: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """RGB ``(h, w, 3)`` uint8: the grey ``(h, w)`` uint8 picture with the RGBA ``(h, w, 4)``
    uint8 overlay blended in by its alpha."""
    g = np.asarray(grey)
    f = np.asarray(flow)
    if g.ndim != 2 or g.dtype != np.uint8:
        raise ValueError(f"grey must be a 2-D uint8 picture, got {g.dtype} {g.shape}")
    if f.shape != (*g.shape, 4) or f.dtype != np.uint8:
        raise ValueError(f"flow must be uint8 of shape {(*g.shape, 4)}, got {f.dtype} {f.shape}")
    alpha = f[..., 3:4].astype(np.uint16)
    base = np.repeat(g[..., None], 3, axis=-1).astype(np.uint16)
    mixed = (f[..., :3].astype(np.uint16) * alpha + base * (255 - alpha) + 127) // 255
    return mixed.astype(np.uint8)
