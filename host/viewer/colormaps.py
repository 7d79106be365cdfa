"""The colour maps the viewer offers for grey-scale images, as 256-entry lookup tables."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

COLORMAPS = ("grey", "hot", "viridis", "magma", "cividis")


def colormap_lut(name: str) -> np.ndarray:
    """A 256-entry RGB lookup table for a colour map name."""
    if name == "grey":
        ramp = np.arange(256, dtype=np.uint8)
        return np.stack([ramp, ramp, ramp], axis=1)
    if name == "hot":
        x = np.linspace(0, 1, 256)
        rgb = np.clip(np.stack([3 * x, 3 * x - 1, 3 * x - 2], axis=1), 0, 1)
        return (rgb * 255).astype(np.uint8)
    return pg.colormap.get(name).getLookupTable(nPts=256, alpha=False)


def apply_colormap(item: pg.ImageItem, name: str) -> None:
    """Draw ``item`` through a colour map; a uint8 item's levels stay None (all of 0..255).

    Grey needs no table: with no levels and no table pyqtgraph hands the bytes to Qt as an
    8-bit grey image, instead of building a 256-entry colour table on every frame it draws.
    """
    item.setLookupTable(None if name == "grey" else colormap_lut(name))
