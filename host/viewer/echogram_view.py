"""The echogram preset's picture: a fish finder's waterfall and the A-mode of the latest ping.

Each ping is a column, depth runs down in metres, the newest ping is at the right edge and
older ones scroll left. Beside it, sharing its depth axis, the latest ping's envelope (an
A-scope, as on a fish finder): amplitude to the right, depth down.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6 import QtCore

from .bmode_view import TimedImageItem
from .colormaps import apply_colormap
from .pipeline import DisplayFrame
from .presets import ViewPreset


class EchogramView(pg.GraphicsLayoutWidget):
    """Echogram (left, wide) and the latest ping's A-mode (right), depth axes linked."""

    def __init__(self, preset: ViewPreset) -> None:
        super().__init__()
        self.setBackground("k")
        unit = preset.depth_unit
        self._to_unit = 1.0 / preset.depth_unit_m
        self.plot = self.addPlot(row=0, col=0, title="Echogram (newest ping on the right)")
        self.plot.setLabel("left", f"depth ({unit}, {preset.medium} "
                                   f"{preset.sound_speed_m_s:g} m/s)")
        self.plot.setLabel("bottom", "pings ago")
        self.plot.invertY(True)
        self.plot.setMenuEnabled(False)
        self.image = TimedImageItem()
        apply_colormap(self.image, "grey")
        self.plot.addItem(self.image)
        self.ascope = self.addPlot(row=0, col=1, title="A-mode (latest ping)")
        self.ascope.setLabel("bottom", "envelope (ADC range)")
        self.ascope.invertY(True)
        self.ascope.setYLink(self.plot)
        self.ascope.setXRange(0, 1, padding=0.02)
        self.ascope.hideAxis("left")
        self.ascope.setMouseEnabled(x=False, y=True)
        self.ci.layout.setColumnStretchFactor(0, 4)
        self.ci.layout.setColumnStretchFactor(1, 1)
        self.curve = self.ascope.plot(pen=pg.mkPen("#ffcc00", width=1))
        self._rect = QtCore.QRectF()

    def draw(self, frame: DisplayFrame) -> None:
        """The echogram (already in time order) and the latest ping's envelope."""
        history = frame.mmode.shape[1]
        depth = frame.mmode_depth_m * self._to_unit
        # each row is the block of samples starting at its depth: the last block ends where
        # the line does
        bottom = float(frame.depth_m[-1]) * self._to_unit
        self.image.setImage(frame.mmode, autoLevels=False)
        rect = QtCore.QRectF(-history, float(depth[0]), history, bottom - float(depth[0]))
        if rect != self._rect:
            self.image.setRect(rect)
            self.plot.setRange(xRange=(-history, 0), yRange=(float(depth[0]), bottom),
                               padding=0)
            self._rect = rect
        self.curve.setData(frame.envelope, frame.depth_m * self._to_unit)

    def set_colormap(self, name: str) -> None:
        """Draw the echogram through this colour map."""
        apply_colormap(self.image, name)
