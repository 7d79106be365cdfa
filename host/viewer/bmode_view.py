"""The B-mode view: the scan-converted image, the colour-flow overlay, the selected line and
the PW Doppler gate, with axes in centimetres."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from sonobridge.dsp import ScanConverter, beam_xy

from .colormaps import apply_colormap
from .pipeline import DisplayFrame


class TimedImageItem(pg.ImageItem):
    """An ImageItem that records when it was last painted (for the latency measurement)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.painted_ns = 0
        self.on_paint: Callable[[int], None] | None = None

    def paint(self, painter: QtGui.QPainter, *args: object) -> None:
        """Paint, then stamp the time."""
        super().paint(painter, *args)
        self.painted_ns = time.monotonic_ns()
        if self.on_paint is not None:
            self.on_paint(self.painted_ns)


class BModeView(pg.PlotWidget):
    """The B-mode plot and what is drawn over it."""

    def __init__(self) -> None:
        super().__init__(title="B-mode")
        self.setLabel("bottom", "lateral", units="cm")
        self.setLabel("left", "depth", units="cm")
        self.invertY(True)
        self.setAspectLocked(True)
        self.setBackground("k")
        self.image = TimedImageItem()
        apply_colormap(self.image, "grey")
        self.addItem(self.image)
        # colour flow (red toward the probe, blue away) drawn over the grey B-mode
        self.flow_image = pg.ImageItem()
        self.flow_image.setZValue(1)
        self.addItem(self.flow_image)
        self.gate_marker = pg.ScatterPlotItem(symbol="s", size=9, brush=None,
                                              pen=pg.mkPen("#00e676", width=2))
        self.gate_marker.setZValue(2)
        self.addItem(self.gate_marker)
        self.line_marker = pg.PlotCurveItem(pen=pg.mkPen("#ffcc00", width=1,
                                                         style=QtCore.Qt.PenStyle.DashLine))
        self.addItem(self.line_marker)
        self._extent: tuple[float, float, float, float] | None = None
        # where the markers were last put (their setData is not free)
        self._line_at: tuple[float, ...] | None = None
        self._gate_at: tuple[float, float] | None = None

    def draw(self, frame: DisplayFrame, converter: ScanConverter | None) -> None:
        """The image, its colour-flow overlay and the selected line's marker."""
        x0, x1, z0, z1 = (v * 100 for v in frame.extent_m)
        self.image.setImage(frame.image, autoLevels=False)
        if self._extent != frame.extent_m:
            self.image.setRect(QtCore.QRectF(x0, z0, x1 - x0, z1 - z0))
            self.setRange(xRange=(x0, x1), yRange=(z0, z1), padding=0.02)
            self._extent = frame.extent_m
        if frame.flow is not None:
            self.flow_image.setImage(frame.flow, autoLevels=False)
            self.flow_image.setRect(QtCore.QRectF(x0, z0, x1 - x0, z1 - z0))
            self.flow_image.setVisible(True)
        else:
            self.flow_image.setVisible(False)
        if converter is not None and frame.selected_line < len(converter.positions):
            x, z = beam_xy(converter.kind, converter.positions[frame.selected_line],
                           np.array([frame.extent_m[2], frame.extent_m[3]]))
            # setData recomputes bounds and repaints: only when the line moved
            if self._line_at != (key := (float(x[0]), float(z[0]), float(x[1]), float(z[1]))):
                self._line_at = key
                self.line_marker.setData(x * 100, z * 100)

    def draw_gate(self, frame: DisplayFrame, converter: ScanConverter | None) -> None:
        """The PW Doppler range gate on the selected line (hidden without a spectrum)."""
        at: tuple[float, float] | None = None
        if frame.pw is not None and converter is not None \
                and frame.selected_line < len(converter.positions):
            x, z = beam_xy(converter.kind, converter.positions[frame.selected_line],
                           frame.gate_depth_m)
            at = (float(x) * 100, float(z) * 100)
        elif frame.pw is not None:
            return  # no converter yet: leave the gate where it is
        if at == self._gate_at:
            return
        self._gate_at = at
        if at is None:
            self.gate_marker.setData([], [])
        else:
            self.gate_marker.setData([at[0]], [at[1]])
