"""The live viewer window: B-mode, A-mode, M-mode, controls and an honest status bar.

The GUI thread only draws. Frames are processed by
:class:`~sonobridge.viewer.pipeline.FramePipeline` on its own thread. Device commands
(configure, start, stop) run on short worker threads, so a slow board never freezes the
window. Nothing crosses threads through Qt signals: worker threads
post to a queue and leave frames in the pipeline's mailbox, and a 5 ms GUI timer collects
both. Emitting PySide6 signals from Python threads corrupts reference counts in some
releases (a "deallocating None" abort was seen with 6.12).
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from sonobridge.device import Device, DeviceError
from sonobridge.dsp import beam_coordinates, beam_xy

from .pipeline import DisplayFrame, FramePipeline

log = logging.getLogger("sonobridge.viewer")

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

COLORMAPS = ("grey", "hot", "viridis", "magma", "cividis")
#: the A-mode, M-mode and PW panels are redrawn at most this often (the B-mode every frame)
SIDE_PANEL_INTERVAL_S = 1 / 15
TGC_SLIDERS = 8


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


class ViewerWindow(QtWidgets.QMainWindow):
    """The main window for one connected board."""

    #: callable(device) -> a recorder with ``stop()``; the app sets it when recording is available
    recorder_factory: Callable[[Device], object] | None = None

    def __init__(self, device: Device, *, center_freq_hz: float | None = None) -> None:
        super().__init__()
        # the reader thread must get the GIL back promptly after each read, or the board's
        # buffer fills while the GUI paints: switch threads every 1 ms instead of every 5 ms
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        self.device = device
        info = device.info
        self.setWindowTitle(f"sonobridge — {info.board_name} on {device.port}")
        self.frames_drawn = 0
        self._panels_drawn_s = 0.0
        self.latencies_ms: deque[float] = deque(maxlen=2000)
        self.last_frame: DisplayFrame | None = None
        self._drawn_frame_ns: int | None = None
        self._busy = threading.Lock()
        self._events: queue.SimpleQueue[tuple[str, ...]] = queue.SimpleQueue()
        f0 = center_freq_hz or float(info.transducer_freq_hz or 5e6)
        self.pipeline = FramePipeline(device, center_freq_hz=f0)
        device.on_state = lambda state: self._events.put(("link", state))

        self._build_views()
        self._build_controls()
        self._build_status()
        self._build_shortcuts()
        self.resize(1280, 800)

        self._poll_timer = QtCore.QTimer(self)
        self._poll_timer.timeout.connect(self._poll)
        self._poll_timer.start(5)
        self._stats_timer = QtCore.QTimer(self)
        self._stats_timer.timeout.connect(self._update_status)
        self._stats_timer.start(500)
        self._status_stop = threading.Event()
        threading.Thread(target=self._poll_status, name="sonobridge-status", daemon=True).start()
        self.pipeline.start()

    # -- layout ----------------------------------------------------------------------------------

    def _build_views(self) -> None:
        central = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        self.banner = QtWidgets.QLabel()
        self.banner.setStyleSheet("background:#b00020; color:white; font-weight:bold; "
                                  "padding:6px;")
        self.banner.setVisible(False)
        layout.addWidget(self.banner)

        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        self.bmode_plot = pg.PlotWidget(title="B-mode")
        self.bmode_plot.setLabel("bottom", "lateral", units="cm")
        self.bmode_plot.setLabel("left", "depth", units="cm")
        self.bmode_plot.invertY(True)
        self.bmode_plot.setAspectLocked(True)
        self.bmode_plot.setBackground("k")
        self.bmode_image = TimedImageItem()
        self.bmode_image.setLookupTable(colormap_lut("grey"))
        self.bmode_image.setLevels((0, 255))
        self.bmode_plot.addItem(self.bmode_image)
        # colour flow (red toward the probe, blue away) drawn over the grey B-mode
        self.flow_image = pg.ImageItem()
        self.flow_image.setZValue(1)
        self.bmode_plot.addItem(self.flow_image)
        self.gate_marker = pg.ScatterPlotItem(symbol="s", size=9, brush=None,
                                              pen=pg.mkPen("#00e676", width=2))
        self.gate_marker.setZValue(2)
        self.bmode_plot.addItem(self.gate_marker)
        self.line_marker = pg.PlotCurveItem(pen=pg.mkPen("#ffcc00", width=1,
                                                         style=QtCore.Qt.PenStyle.DashLine))
        self.bmode_plot.addItem(self.line_marker)
        self.bmode_plot.scene().sigMouseClicked.connect(self._on_bmode_click)
        split.addWidget(self.bmode_plot)

        right = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self.amode_plot = pg.PlotWidget(title="A-mode (selected line)")
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
        self.rf_curve.setDownsampling(auto=True, method="peak")
        self.rf_curve.setClipToView(True)
        right.addWidget(self.amode_plot)
        self.mmode_plot = pg.PlotWidget(title="M-mode (selected line)")
        self.mmode_plot.setLabel("bottom", "sweep (frames)")
        self.mmode_plot.setLabel("left", "depth", units="cm")
        self.mmode_plot.invertY(True)
        self.mmode_image = pg.ImageItem()
        self.mmode_image.setLookupTable(colormap_lut("grey"))
        self.mmode_image.setLevels((0, 255))
        self.mmode_plot.addItem(self.mmode_image)
        self._mmode_rect = QtCore.QRectF()
        # the trace sweeps left to right over the old one, like a scanner's M-mode: the ring
        # buffer is drawn as it is, no reordering per frame
        self.mmode_cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen("#ffcc00"))
        self.mmode_plot.addItem(self.mmode_cursor)
        tabs = QtWidgets.QTabWidget()
        tabs.addTab(self.mmode_plot, "M-mode")
        self.pw_plot = pg.PlotWidget(title="PW Doppler at the gate (Shift+click the B-mode)")
        self.pw_plot.setLabel("bottom", "spectra")
        self.pw_plot.setLabel("left", "velocity toward the probe", units="m/s")
        self.pw_image = pg.ImageItem()
        self.pw_image.setLookupTable(colormap_lut("grey"))
        self.pw_plot.addItem(self.pw_image)
        self.pw_cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen("#ffcc00"))
        self.pw_plot.addItem(self.pw_cursor)
        self.pw_plot.addItem(pg.InfiniteLine(angle=0, pos=0, pen=pg.mkPen("#888")))
        self._pw_rect = QtCore.QRectF()
        tabs.addTab(self.pw_plot, "PW Doppler")
        self.tabs = tabs
        right.addWidget(tabs)
        split.addWidget(right)
        split.setSizes([720, 480])
        layout.addWidget(split, 1)
        self.setCentralWidget(central)

    def _build_controls(self) -> None:
        dock = QtWidgets.QDockWidget("Controls", self)
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.NoDockWidgetFeatures)
        panel = QtWidgets.QWidget()
        form = QtWidgets.QVBoxLayout(panel)

        self.start_button = QtWidgets.QPushButton("Start (Space)")
        self.start_button.setCheckable(True)
        self.start_button.clicked.connect(self._on_start_clicked)
        form.addWidget(self.start_button)

        image_box = QtWidgets.QGroupBox("Image (host)")
        grid = QtWidgets.QFormLayout(image_box)
        self.gain_slider = self._slider(-30, 30, 0, self._on_image_settings)
        self.dr_slider = self._slider(20, 90, 50, self._on_image_settings)
        self.persist_slider = self._slider(0, 90, 0, self._on_image_settings)
        self.cmap_combo = QtWidgets.QComboBox()
        self.cmap_combo.addItems(COLORMAPS)
        self.cmap_combo.currentTextChanged.connect(self._on_colormap)
        grid.addRow("gain (dB)", self.gain_slider)
        grid.addRow("dynamic range (dB)", self.dr_slider)
        grid.addRow("persistence (%)", self.persist_slider)
        grid.addRow("colour map", self.cmap_combo)
        self.flow_check = QtWidgets.QCheckBox("colour flow (with ensembles)")
        self.flow_check.setChecked(True)
        self.flow_check.toggled.connect(self._on_image_settings)
        grid.addRow(self.flow_check)
        self.flow_threshold = self._slider(-60, 0, -24, self._on_image_settings)
        grid.addRow("flow threshold (dB)", self.flow_threshold)
        form.addWidget(image_box)

        tgc_box = QtWidgets.QGroupBox("TGC (sent to the board)")
        tgc = QtWidgets.QVBoxLayout(tgc_box)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("slope (dB/cm)"))
        self.tgc_slope = QtWidgets.QDoubleSpinBox()
        self.tgc_slope.setRange(0.0, 6.0)
        self.tgc_slope.setSingleStep(0.25)
        self.tgc_slope.setValue(0.0)
        self.tgc_slope.valueChanged.connect(self._schedule_tgc)
        row.addWidget(self.tgc_slope)
        tgc.addLayout(row)
        sliders = QtWidgets.QHBoxLayout()
        self.tgc_sliders: list[QtWidgets.QSlider] = []
        for _ in range(TGC_SLIDERS):
            s = QtWidgets.QSlider(QtCore.Qt.Orientation.Vertical)
            s.setRange(-10, 40)
            s.setValue(0)
            s.setToolTip("gain at this depth (dB), shallow → deep")
            s.valueChanged.connect(self._schedule_tgc)
            sliders.addWidget(s)
            self.tgc_sliders.append(s)
        tgc.addLayout(sliders)
        self._tgc_timer = QtCore.QTimer(self)
        self._tgc_timer.setSingleShot(True)
        self._tgc_timer.timeout.connect(self._send_tgc)
        form.addWidget(tgc_box)

        acq_box = QtWidgets.QGroupBox("Acquisition (sent to the board)")
        acq = QtWidgets.QFormLayout(acq_box)
        self.depth_spin = QtWidgets.QDoubleSpinBox()
        self.depth_spin.setRange(0.5, 100.0)
        self.depth_spin.setSuffix(" cm")
        self.prf_spin = QtWidgets.QSpinBox()
        self.prf_spin.setRange(1, 1_000_000)
        self.prf_spin.setSuffix(" Hz")
        self.lines_spin = QtWidgets.QSpinBox()
        self.lines_spin.setRange(1, 65535)
        acq.addRow("depth", self.depth_spin)
        acq.addRow("PRF", self.prf_spin)
        acq.addRow("lines / frame", self.lines_spin)
        self.ensemble_spin = QtWidgets.QSpinBox()
        self.ensemble_spin.setRange(1, max(1, self.device.info.ensemble_max))
        self.ensemble_spin.setToolTip("firings per line; 2 or more turns on Doppler")
        acq.addRow("ensemble", self.ensemble_spin)
        self.apply_button = QtWidgets.QPushButton("Apply")
        self.apply_button.clicked.connect(self._on_apply)
        acq.addRow(self.apply_button)
        self.error_label = QtWidgets.QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color:#d32f2f;")
        acq.addRow(self.error_label)
        form.addWidget(acq_box)

        self.record_button = QtWidgets.QPushButton("Record (R)")
        self.record_button.setCheckable(True)
        self.record_button.clicked.connect(self._on_record_clicked)
        self.record_button.setEnabled(self.recorder_factory is not None)
        if self.recorder_factory is None:
            self.record_button.setToolTip("recording is not available in this installation")
        form.addWidget(self.record_button)
        self.snapshot_button = QtWidgets.QPushButton("Snapshot PNG (S)")
        self.snapshot_button.clicked.connect(lambda: self.snapshot())
        form.addWidget(self.snapshot_button)
        form.addStretch(1)
        dock.setWidget(panel)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self._sync_acquisition_controls()

    def _slider(self, lo: int, hi: int, value: int, slot: Callable[[], None]) -> QtWidgets.QSlider:
        s = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        s.setRange(lo, hi)
        s.setValue(value)
        s.valueChanged.connect(slot)
        return s

    def _build_status(self) -> None:
        bar = self.statusBar()
        info = self.device.info
        self.status_board = QtWidgets.QLabel(f"{info.board_name}  fw {info.firmware_version}")
        self.status_rates = QtWidgets.QLabel()
        self.status_errors = QtWidgets.QLabel()
        self.status_device = QtWidgets.QLabel()
        for w in (self.status_board, self.status_rates, self.status_errors, self.status_device):
            bar.addPermanentWidget(w)

    def _build_shortcuts(self) -> None:
        keys = {
            "Space": self.toggle_streaming,
            "S": lambda: self.snapshot(),
            "R": self._toggle_record_shortcut,
            "+": lambda: self.gain_slider.setValue(self.gain_slider.value() + 3),
            "-": lambda: self.gain_slider.setValue(self.gain_slider.value() - 3),
            "Ctrl+Q": self.close,
        }
        for key, slot in keys.items():
            QtGui.QShortcut(QtGui.QKeySequence(key), self, activated=slot)

    # -- streaming and commands ------------------------------------------------------------------

    def toggle_streaming(self) -> None:
        """Start or stop the board."""
        self.start_button.setChecked(not self.device.streaming)
        self._on_start_clicked()

    def start_streaming(self) -> None:
        """Start the board (asynchronously)."""
        self.start_button.setChecked(True)
        self._on_start_clicked()

    def _on_start_clicked(self) -> None:
        want = self.start_button.isChecked()
        self._run_command("start" if want else "stop",
                          self.device.start if want else self.device.stop)

    def _run_command(self, what: str, fn: Callable[[], object]) -> None:
        """Run a device command on a worker thread; the result comes back as a signal."""

        def work() -> None:
            with self._busy:
                try:
                    fn()
                    error = ""
                except DeviceError as exc:
                    error = str(exc)
                except Exception as exc:  # reported in the UI, never silently dropped
                    log.exception("%s failed", what)
                    error = f"{type(exc).__name__}: {exc}"
            self._events.put(("command", what, error))

        threading.Thread(target=work, name=f"sonobridge-{what}", daemon=True).start()

    def _on_command_done(self, what: str, error: str) -> None:
        self.error_label.setText(f"{what}: {error}" if error else "")
        self.start_button.setChecked(self.device.streaming)
        self.start_button.setText("Stop (Space)" if self.device.streaming else "Start (Space)")
        if what == "configure" and not error:
            self._sync_acquisition_controls()

    def _sync_acquisition_controls(self) -> None:
        cfg = self.device.config
        info = self.device.info
        if cfg is None:
            from sonobridge.device import AcquisitionConfig

            cfg = AcquisitionConfig.default_for(info)
        self.depth_spin.blockSignals(True)
        self.depth_spin.setValue(round(cfg.depth_range_m(info)[1] * 100, 1))
        self.depth_spin.blockSignals(False)
        self.prf_spin.setValue(cfg.prf_hz)
        self.lines_spin.setValue(cfg.lines_per_frame)
        self.ensemble_spin.setValue(cfg.ensemble_size)
        # show the board's TGC curve on the sliders (resampled to their depths), slope 0
        curve = np.interp(np.linspace(0, 1, TGC_SLIDERS),
                          np.linspace(0, 1, len(cfg.tgc_db)) if len(cfg.tgc_db) > 1 else [0, 1],
                          list(cfg.tgc_db) if len(cfg.tgc_db) > 1 else [cfg.tgc_db[0]] * 2)
        for slider, value in zip(self.tgc_sliders, curve, strict=True):
            slider.blockSignals(True)
            slider.setValue(round(float(value)))
            slider.blockSignals(False)
        self.tgc_slope.blockSignals(True)
        self.tgc_slope.setValue(0.0)
        self.tgc_slope.blockSignals(False)

    def apply_acquisition(self, depth_cm: float | None = None, prf_hz: int | None = None,
                          lines: int | None = None, ensemble: int | None = None) -> None:
        """Reconfigure the board (validated first; errors appear under the controls)."""
        changes: dict[str, object] = {}
        if ensemble is not None:
            changes["ensemble_size"] = int(ensemble)
        if depth_cm is not None:
            changes["depth_m"] = depth_cm / 100
        if prf_hz is not None:
            changes["prf_hz"] = int(prf_hz)
        if lines is not None:
            changes["lines_per_frame"] = int(lines)
        self._run_command("configure", lambda: self.device.configure(**changes))

    def _on_apply(self) -> None:
        self.apply_acquisition(self.depth_spin.value(), self.prf_spin.value(),
                               self.lines_spin.value(), self.ensemble_spin.value())

    def tgc_points_db(self) -> tuple[float, ...]:
        """The TGC curve the controls describe: slope × depth + per-depth offsets, in dB."""
        info = self.device.info
        cfg = self.device.config
        depth_cm = self.depth_spin.value() if cfg is None else cfg.depth_range_m(info)[1] * 100
        n = min(TGC_SLIDERS, max(1, info.tgc_points_max))
        depths = np.linspace(0, depth_cm, n)
        offsets = np.array([s.value() for s in self.tgc_sliders[:n]], dtype=float)
        gain = self.tgc_slope.value() * depths + offsets
        lo, hi = info.gain_min_cdb / 100, info.gain_max_cdb / 100
        return tuple(float(g) for g in np.clip(gain, lo, hi))

    def _schedule_tgc(self) -> None:
        self._tgc_timer.start(300)  # send once the user stops moving the sliders

    def _send_tgc(self) -> None:
        points = self.tgc_points_db()
        self._run_command("configure", lambda: self.device.configure(tgc_db=points))

    # -- recording -------------------------------------------------------------------------------

    def _toggle_record_shortcut(self) -> None:
        if self.record_button.isEnabled():
            self.record_button.setChecked(not self.record_button.isChecked())
            self._on_record_clicked()

    def _on_record_clicked(self) -> None:
        if self.recorder_factory is None:
            return
        if self.record_button.isChecked():
            try:
                self._recorder = self.recorder_factory(self.device)
            except Exception as exc:
                self.record_button.setChecked(False)
                self.error_label.setText(f"record: {exc}")
                return
            self.record_button.setText("Stop recording (R)")
        else:
            recorder = getattr(self, "_recorder", None)
            if recorder is not None:
                recorder.stop()  # type: ignore[attr-defined]
            self._recorder = None
            self.record_button.setText("Record (R)")

    # -- drawing ---------------------------------------------------------------------------------

    def _poll(self) -> None:
        """Collect what the worker threads posted, and draw the newest frame."""
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            if event[0] == "link":
                self._on_link_state(event[1])
            else:
                self._on_command_done(event[1], event[2])
        self._draw()

    def _draw(self) -> None:
        frame = self.pipeline.take()
        if frame is None:
            return
        x0, x1, z0, z1 = (v * 100 for v in frame.extent_m)
        self.bmode_image.setImage(frame.image, autoLevels=False)
        if self.last_frame is None or self.last_frame.extent_m != frame.extent_m:
            self.bmode_image.setRect(QtCore.QRectF(x0, z0, x1 - x0, z1 - z0))
            self.bmode_plot.setRange(xRange=(x0, x1), yRange=(z0, z1), padding=0.02)
        self._draw_line_marker(frame)
        self._draw_doppler_overlay(frame)
        self._drawn_frame_ns = frame.frame_time_ns
        self.bmode_image.on_paint = self._record_latency
        # the side panels are read by eye, not measured: 15 updates a second are plenty, and
        # skipping the rest halves the painting the GUI thread does at 30 frames/s
        now = time.monotonic()
        if now - self._panels_drawn_s >= SIDE_PANEL_INTERVAL_S or frame.index < 2:
            self._panels_drawn_s = now
            self._draw_panels(frame)
        self.last_frame = frame
        self.frames_drawn += 1

    def _draw_panels(self, frame: DisplayFrame) -> None:
        """A-mode, M-mode and PW Doppler."""
        depth_cm = frame.depth_m * 100
        self.rf_curve.setData(frame.rf_depth_m * 100, frame.rf)
        self.env_curve.setData(depth_cm, frame.envelope)
        now = time.monotonic()
        if now - self._amode_scaled_s > 1.0 or self.last_frame is None \
                or self.last_frame.depth_m.size != frame.depth_m.size:
            peak = max(1e-3, float(np.abs(frame.rf).max()), float(frame.envelope.max()))
            self.amode_plot.setRange(xRange=(depth_cm[0], depth_cm[-1]),
                                     yRange=(-1.1 * peak, 1.1 * peak), padding=0)
            self._amode_scaled_s = now
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
        self._draw_pw(frame)

    def _draw_doppler_overlay(self, frame: DisplayFrame) -> None:
        x0, x1, z0, z1 = (v * 100 for v in frame.extent_m)
        if frame.flow is not None:
            self.flow_image.setImage(frame.flow, autoLevels=False)
            self.flow_image.setRect(QtCore.QRectF(x0, z0, x1 - x0, z1 - z0))
            self.flow_image.setVisible(True)
        else:
            self.flow_image.setVisible(False)

    def _draw_pw(self, frame: DisplayFrame) -> None:
        if frame.pw is None:
            self.gate_marker.setData([], [])
            return
        conv = self.pipeline.converter
        if conv is not None and frame.selected_line < len(conv.positions):
            x, z = beam_xy(conv.kind, conv.positions[frame.selected_line], frame.gate_depth_m)
            self.gate_marker.setData([float(x) * 100], [float(z) * 100])
        v = frame.pw_velocity_m_s
        self.pw_image.setImage(frame.pw.T, autoLevels=False, levels=frame.pw_levels)
        rect = QtCore.QRectF(0, float(v[0]), frame.pw.shape[0], float(v[-1] - v[0]))
        if rect != self._pw_rect:
            self.pw_image.setRect(rect)
            self.pw_plot.setRange(xRange=(0, frame.pw.shape[0]), yRange=(v[0], v[-1]),
                                  padding=0)
            self._pw_rect = rect
        self.pw_cursor.setValue(frame.pw_write)

    def _record_latency(self, painted_ns: int) -> None:
        if self._drawn_frame_ns:
            self.latencies_ms.append((painted_ns - self._drawn_frame_ns) / 1e6)
            self._drawn_frame_ns = None

    def _draw_line_marker(self, frame: DisplayFrame) -> None:
        conv = self.pipeline.converter
        if conv is None:
            return
        if frame.selected_line >= len(conv.positions):
            return
        x, z = beam_xy(conv.kind, conv.positions[frame.selected_line],
                       np.array([frame.extent_m[2], frame.extent_m[3]]))
        self.line_marker.setData(x * 100, z * 100)

    def _on_bmode_click(self, event: object) -> None:
        conv = self.pipeline.converter
        if conv is None:
            return
        pos = self.bmode_plot.getViewBox().mapSceneToView(event.scenePos())  # type: ignore[attr-defined]
        mods = event.modifiers()  # type: ignore[attr-defined]
        if mods & QtCore.Qt.KeyboardModifier.ShiftModifier:
            self.place_gate_at(pos.x() / 100, pos.y() / 100)
        else:
            self.select_line_at(pos.x() / 100, pos.y() / 100)

    def place_gate_at(self, x_m: float, z_m: float) -> int | None:
        """Put the PW Doppler range gate at a point of the B-mode (metres)."""
        line = self.select_line_at(x_m, z_m)
        if line is None:
            return None
        conv = self.pipeline.converter
        # on a sector the gate sits at the clicked range along the beam
        depth = float(beam_coordinates(conv.kind, x_m, z_m)[1]) if conv is not None else z_m
        self.pipeline.update_settings(gate_depth_m=depth)
        self.tabs.setCurrentWidget(self.pw_plot)
        return line

    def select_line_at(self, x_m: float, z_m: float) -> int | None:
        """Select the line nearest a point of the B-mode (metres); returns its index."""
        conv = self.pipeline.converter
        if conv is None:
            return None
        row, col = conv.world_to_pixel(np.array([x_m]), np.array([z_m]))
        line, _ = conv.pixel_to_line(np.round(row).astype(int), np.round(col).astype(int))
        index = int(np.asarray(line).ravel()[0])
        if index < 0:
            return None
        self.pipeline.update_settings(selected_line=index)
        return index

    # -- settings --------------------------------------------------------------------------------

    def _on_image_settings(self) -> None:
        self.pipeline.update_settings(gain_db=float(self.gain_slider.value()),
                                      dynamic_range_db=float(self.dr_slider.value()),
                                      persistence=self.persist_slider.value() / 100,
                                      color_flow=self.flow_check.isChecked(),
                                      flow_threshold_db=float(self.flow_threshold.value()))

    def _on_colormap(self, name: str) -> None:
        lut = colormap_lut(name)
        self.bmode_image.setLookupTable(lut)
        self.mmode_image.setLookupTable(lut)

    # -- status ----------------------------------------------------------------------------------

    def _poll_status(self) -> None:
        """Ask the board for STATUS every 2 s (temperature, HV, its own dropped lines)."""
        while not self._status_stop.wait(2.0):
            if self.device.state != "connected" or not self._busy.acquire(blocking=False):
                continue
            try:
                self.device.status()
            except DeviceError:
                pass
            finally:
                self._busy.release()

    def display_skipped(self) -> int:
        """Frames never drawn because the display (or its DSP) was slower than the board."""
        return self.pipeline.skipped + self.device.stats.frames_dropped_queue

    def _update_status(self) -> None:
        s = self.device.stats
        self.status_rates.setText(f"{s.frames_per_s:5.1f} frames/s  {s.lines_per_s:6.0f} lines/s"
                                  f"  {s.mb_per_s:5.2f} MB/s")
        skipped = self.pipeline.skipped + s.frames_dropped_queue
        host = f" ({s.lines_lost_host} by this host)" if s.lines_lost_host else ""
        self.status_errors.setText(f"CRC errors {s.crc_errors}  lost lines {s.lines_missing}"
                                   f"{host}  skipped for display {skipped}")
        if s.temperature_c is not None:
            self.status_device.setText(f"{s.temperature_c:.1f} °C  HV {s.hv_v:.1f} V")

    def _on_link_state(self, state: str) -> None:
        if state == "disconnected":
            self.banner.setText(f"Board disconnected from {self.device.port}: waiting for it to "
                                "come back (check the cable). Frames received so far are kept.")
            self.banner.setVisible(True)
        elif state == "connected":
            self.banner.setVisible(False)
        elif state == "failed":
            self.banner.setText(f"The connection to {self.device.port} failed: "
                                f"{self.device.failure}. Frames received so far are kept.")
            self.banner.setVisible(True)

    # -- snapshot and shutdown -------------------------------------------------------------------

    def snapshot(self, path: str | Path | None = None) -> Path:
        """Save the window as a PNG; returns the path."""
        if path is None:
            path = Path.cwd() / time.strftime("sonobridge-%Y%m%d-%H%M%S.png")
        path = Path(path)
        if not self.grab().save(str(path), "PNG"):
            raise OSError(f"could not write {path}")
        self.statusBar().showMessage(f"saved {path}", 3000)
        return path

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Stop threads before the window goes."""
        self._status_stop.set()
        self._stats_timer.stop()
        self._poll_timer.stop()
        self.device.on_state = None
        self.pipeline.stop()
        recorder = getattr(self, "_recorder", None)
        if recorder is not None:
            recorder.stop()  # type: ignore[attr-defined]
        super().closeEvent(event)
