"""The side panels: A-mode of the selected line above, M-mode and PW Doppler in tabs below.

For a single fixed element (the ``a-mode/m-mode`` preset) they are the whole picture: the
A-mode of the latest firing and the M-mode of every firing, with no PW Doppler tab (one
element firing a few times a second has no Doppler).
"""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from .bmode_view import TimedImageItem
from .colormaps import apply_colormap
from .pipeline import DisplayFrame
from .presets import SCANNER, ViewPreset


class SidePanels(QtWidgets.QSplitter):
    """A-mode, M-mode and PW Doppler of the selected line (see the module docstring)."""

    def __init__(self, preset: ViewPreset = SCANNER) -> None:
        super().__init__(QtCore.Qt.Orientation.Vertical)
        which = "latest firing" if preset.lines_are_firings else "selected line"
        self.amode_plot = pg.PlotWidget(title=f"A-mode ({which})")
        self.amode_plot.setLabel("bottom", "depth", units="cm")
        self.amode_plot.setLabel("left", "amplitude (full scale)")
        self.amode_plot.addLegend(offset=(-10, 10))
        self.rf_curve = self.amode_plot.plot(pen=pg.mkPen("#4fa3ff", width=1), name="RF")
        self.env_curve = self.amode_plot.plot(pen=pg.mkPen("#ffcc00", width=2), name="envelope")
        # a fixed range, rescaled at most once a second: autoranging every frame repaints the
        # axes each time, which costs more than the curves themselves
        self.amode_plot.disableAutoRange()
        self.amode_plot.setYRange(-1, 1)
        self._amode_scaled_s = 0.0
        self._amode_samples = -1
        self.rf_curve.setDownsampling(auto=True, method="peak")
        self.rf_curve.setClipToView(True)
        self.addWidget(self.amode_plot)

        self.mmode_plot = pg.PlotWidget(
            title="M-mode (firings over time)" if preset.lines_are_firings
            else "M-mode (selected line)")
        self.mmode_plot.setLabel("bottom", "firings" if preset.lines_are_firings
                                 else "sweep (frames)")
        self.mmode_plot.setLabel("left", "depth", units="cm")
        self.mmode_plot.invertY(True)
        # timed: with no B-mode, the M-mode is the picture whose paint the latency measures
        self.mmode_image = TimedImageItem()
        apply_colormap(self.mmode_image, "grey")
        self.mmode_plot.addItem(self.mmode_image)
        self._mmode_rect = QtCore.QRectF()
        # the trace sweeps left to right over the old one, like a scanner's M-mode: the ring
        # buffer is drawn as it is, no reordering per frame
        self.mmode_cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen("#ffcc00"))
        self.mmode_plot.addItem(self.mmode_cursor)
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.addTab(self.mmode_plot, "M-mode")

        self.pw_plot = pg.PlotWidget(title="PW Doppler at the gate (Shift+click the B-mode)")
        self.pw_plot.setLabel("bottom", "spectra")
        self.pw_plot.setLabel("left", "velocity toward the probe", units="m/s")
        self.pw_image = pg.ImageItem()
        apply_colormap(self.pw_image, "grey")
        self.pw_plot.addItem(self.pw_image)
        self.pw_cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen("#ffcc00"))
        self.pw_plot.addItem(self.pw_cursor)
        self.pw_plot.addItem(pg.InfiniteLine(angle=0, pos=0, pen=pg.mkPen("#888")))
        self._pw_rect = QtCore.QRectF()
        pw_tab = self.tabs.addTab(self.pw_plot, "PW Doppler")
        # the gate is placed on the B-mode: without one there is no PW Doppler to show
        self.tabs.setTabVisible(pw_tab, preset.bmode)
        self.addWidget(self.tabs)

    def draw(self, frame: DisplayFrame) -> None:
        """Redraw all three panels from ``frame``."""
        depth_cm = frame.depth_m * 100
        self.rf_curve.setData(frame.rf_depth_m * 100, frame.rf)
        self.env_curve.setData(depth_cm, frame.envelope)
        now = time.monotonic()
        if now - self._amode_scaled_s > 1.0 or self._amode_samples != frame.depth_m.size:
            peak = max(1e-3, float(np.abs(frame.rf).max()), float(frame.envelope.max()))
            self.amode_plot.setRange(xRange=(depth_cm[0], depth_cm[-1]),
                                     yRange=(-1.1 * peak, 1.1 * peak), padding=0)
            self._amode_scaled_s = now
            self._amode_samples = frame.depth_m.size
        self.mmode_image.setImage(frame.mmode, autoLevels=False)
        history = frame.mmode.shape[1]
        m_depth = frame.mmode_depth_m * 100
        rect = QtCore.QRectF(0, m_depth[0], history, m_depth[-1] - m_depth[0])
        if rect != self._mmode_rect:
            self.mmode_image.setRect(rect)
            self.mmode_plot.setRange(xRange=(0, history), yRange=(m_depth[0], m_depth[-1]),
                                     padding=0)
            self._mmode_rect = rect
        self.mmode_cursor.setValue(frame.mmode_write)
        if frame.pw is not None:
            self._draw_pw(frame)

    def _draw_pw(self, frame: DisplayFrame) -> None:
        v = frame.pw_velocity_m_s
        self.pw_image.setImage(frame.pw.T, autoLevels=False, levels=frame.pw_levels)
        rect = QtCore.QRectF(0, float(v[0]), frame.pw.shape[0], float(v[-1] - v[0]))
        if rect != self._pw_rect:
            self.pw_image.setRect(rect)
            self.pw_plot.setRange(xRange=(0, frame.pw.shape[0]), yRange=(v[0], v[-1]),
                                  padding=0)
            self._pw_rect = rect
        self.pw_cursor.setValue(frame.pw_write)
