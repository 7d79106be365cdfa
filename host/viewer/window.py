"""The live viewer window: B-mode, A-mode, M-mode, controls and an honest status bar.

What the window shows follows the board's preset (``presets.py``): the B-mode with its side
panels for a scanner, the A-mode and M-mode alone for a single fixed element, the echogram for
a sonar.

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
import os
import queue
import secrets
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
from sonobridge.dsp import beam_coordinates
from sonobridge.protocol import MsgType

from .bmode_view import BModeView
from .colormaps import COLORMAPS, apply_colormap
from .controls import TGC_SLIDERS, ControlsPanel
from .echogram_view import EchogramView
from .pipeline import DisplayFrame, DisplaySettings, FramePipeline
from .presets import preset_for
from .side_panels import SidePanels
from .status_bar import StatusFields

log = logging.getLogger("sonobridge.viewer")

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

#: the A-mode, M-mode and PW panels are redrawn at most this often (the B-mode every frame)
SIDE_PANEL_INTERVAL_S = 1 / 15
#: the --lite display preset for slow hosts (docs/viewer.md): side panels twice a second, and
#: a B-mode of fewer pixels (scan conversion, setImage and painting scale with them)
LITE_PANEL_INTERVAL_S = 1 / 2
LITE_OUT_SHAPE = (384, 384)

__all__ = ["COLORMAPS", "SIDE_PANEL_INTERVAL_S", "TGC_SLIDERS", "ViewerWindow"]


class ViewerWindow(QtWidgets.QMainWindow):
    """The main window for one connected board."""

    #: callable(device) -> a recorder with ``stop()``; the app sets it when recording is available
    recorder_factory: Callable[[Device], object] | None = None

    def __init__(self, device: Device, *, center_freq_hz: float | None = None,
                 sound_speed_m_s: float | None = None, lite: bool = False) -> None:
        super().__init__()
        self.lite = lite
        self._panel_interval_s = LITE_PANEL_INTERVAL_S if lite else SIDE_PANEL_INTERVAL_S
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
        self.preset = preset_for(info, device.dialect.name, sound_speed_m_s)
        self.pipeline = FramePipeline(
            device, DisplaySettings(out_shape=LITE_OUT_SHAPE) if lite else None,
            center_freq_hz=f0, preset=self.preset)
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
        #: the thread asking for STATUS; None for a board without it (a pic0rick, an Open
        #: Echo), which is never asked (each ask would only be refused)
        self.status_poller: threading.Thread | None = None
        if device.supports(MsgType.GET_STATUS):
            self.status_poller = threading.Thread(target=self._poll_status,
                                                  name="sonobridge-status", daemon=True)
            self.status_poller.start()
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
        self.bmode = BModeView()
        self.bmode.scene().sigMouseClicked.connect(self._on_bmode_click)
        split.addWidget(self.bmode)
        self.panels = SidePanels(self.preset)
        split.addWidget(self.panels)
        split.setSizes([720, 480])
        self.echogram = EchogramView(self.preset)
        split.addWidget(self.echogram)
        # only the preset's views are shown: no empty B-mode for a board without a sweep
        self.bmode.setVisible(self.preset.bmode)
        self.panels.setVisible(not self.preset.echogram)
        self.echogram.setVisible(self.preset.echogram)
        #: the picture drawn every frame, whose paint the latency is measured at
        self.main_image = (self.bmode.image if self.preset.bmode else
                           self.echogram.image if self.preset.echogram else
                           self.panels.mmode_image)
        layout.addWidget(split, 1)
        self.setCentralWidget(central)
        # the parts' items under the names tools and tests use
        self.bmode_plot, self.bmode_image = self.bmode, self.bmode.image
        self.flow_image, self.line_marker = self.bmode.flow_image, self.bmode.line_marker
        self.gate_marker = self.bmode.gate_marker
        self.tabs, self.pw_plot = self.panels.tabs, self.panels.pw_plot
        self.amode_plot, self.mmode_image = self.panels.amode_plot, self.panels.mmode_image

    def _build_controls(self) -> None:
        dock = QtWidgets.QDockWidget("Controls", self)
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.NoDockWidgetFeatures)
        c = self.controls = ControlsPanel(self.device.info, self.preset,
                                          can_record=self.recorder_factory is not None)
        c.start_button.clicked.connect(self._on_start_clicked)
        for slider in (c.gain_slider, c.dr_slider, c.persist_slider, c.flow_threshold):
            slider.valueChanged.connect(self._on_image_settings)
        c.flow_check.toggled.connect(self._on_image_settings)
        c.cmap_combo.currentTextChanged.connect(self._on_colormap)
        c.tgc_slope.valueChanged.connect(self._schedule_tgc)
        for slider in c.tgc_sliders:
            slider.valueChanged.connect(self._schedule_tgc)
        c.apply_button.clicked.connect(self._on_apply)
        c.record_button.clicked.connect(self._on_record_clicked)
        c.snapshot_button.clicked.connect(self._on_snapshot_clicked)
        self._tgc_timer = QtCore.QTimer(self)
        self._tgc_timer.setSingleShot(True)
        self._tgc_timer.timeout.connect(self._send_tgc)
        # the controls under the names tools and tests use
        self.start_button, self.gain_slider, self.tgc_slope = (c.start_button, c.gain_slider,
                                                               c.tgc_slope)
        self.depth_spin, self.ensemble_spin = c.depth_spin, c.ensemble_spin
        self.error_label, self.record_button = c.error_label, c.record_button
        dock.setWidget(c)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self._sync_acquisition_controls()

    def _build_status(self) -> None:
        self.status = StatusFields(self.statusBar(), self.device.info,
                                   dialect=self.device.dialect.name,
                                   nominal=self.device.dialect.nominal_fields(),
                                   preset=self.preset,
                                   has_status=self.device.supports(MsgType.GET_STATUS))
        self.status_board, self.status_rates = self.status.board, self.status.rates

    def _build_shortcuts(self) -> None:
        keys = {
            "Space": self.toggle_streaming,
            "S": self._on_snapshot_clicked,
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
        """Run a device command on a worker thread; its result is posted to the event queue,
        which the GUI timer collects (never a Qt signal from another thread)."""

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
        self._shown_config = self.device.config
        self.controls.show_config(self.device.config or self.device.default_config(),
                                  self.device.info)

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
        c = self.controls
        # a control the board cannot change is greyed out and not sent (a fixed line length
        # has no depth to set; it is shown in the preset's unit, not in cm)
        self.apply_acquisition(c.depth_cm(), c.prf_spin.value(), c.lines_spin.value(),
                               c.ensemble_spin.value())

    def tgc_points_db(self) -> tuple[float, ...]:
        """The TGC curve the controls describe: slope × depth + per-depth offsets, in dB."""
        return self.controls.tgc_points_db(self.device.config, self.device.info)

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
        if self.device.config is not self._shown_config:
            # configured outside the controls (a script, --depth-cm): show what the board has
            self._sync_acquisition_controls()
        self._draw()

    def _draw(self) -> None:
        frame = self.pipeline.take()
        if frame is None:
            return
        self._drawn_frame_ns = frame.frame_time_ns
        self.main_image.on_paint = self._record_latency
        if self.preset.echogram:
            self.echogram.draw(frame)
        elif not self.preset.bmode:
            self.panels.draw(frame)  # they are the picture: every frame (a few per second)
        else:
            converter = self.pipeline.converter
            self.bmode.draw(frame, converter)
            self.bmode.draw_gate(frame, converter)
            # the side panels are read by eye, not measured: 15 updates a second are plenty,
            # and skipping the rest halves the painting the GUI thread does at 30 frames/s
            now = time.monotonic()
            if now - self._panels_drawn_s >= self._panel_interval_s or frame.index < 2:
                self._panels_drawn_s = now
                self.panels.draw(frame)
        self.last_frame = frame
        self.frames_drawn += 1

    def _record_latency(self, painted_ns: int) -> None:
        if self._drawn_frame_ns:
            self.latencies_ms.append((painted_ns - self._drawn_frame_ns) / 1e6)
            self._drawn_frame_ns = None

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
        c = self.controls
        self.pipeline.update_settings(gain_db=float(c.gain_slider.value()),
                                      dynamic_range_db=float(c.dr_slider.value()),
                                      persistence=c.persist_slider.value() / 100,
                                      color_flow=c.flow_wanted,
                                      flow_threshold_db=float(c.flow_threshold.value()))

    def _on_colormap(self, name: str) -> None:
        apply_colormap(self.bmode_image, name)
        apply_colormap(self.mmode_image, name)
        self.echogram.set_colormap(name)

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
        self.status.show(s, self.pipeline.skipped + s.frames_dropped_queue)

    def refresh_status(self) -> None:
        """Write fresh statistics into the status bar now (a snapshot must not show stale ones)."""
        self._update_status()

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

    def snapshot(self, path: str | Path | None = None, *, force: bool = True) -> Path:
        """Save the window as a PNG (whole or not at all); returns the path.

        Without ``force`` an existing file is left alone (FileExistsError).
        """
        if path is None:
            path = Path.cwd() / time.strftime("sonobridge-%Y%m%d-%H%M%S.png")
        path = Path(path)
        _save_png_atomically(self.grab(), path, force=force)
        # the status bar's message area is what the permanent fields leave, so a long path
        # was cut off there: the full path goes to the controls, where it wraps
        self.controls.notice_label.setText(f"saved {path}")
        self.statusBar().showMessage(f"saved {path.name}", 5000)
        return path

    def _on_snapshot_clicked(self) -> None:
        try:
            self.snapshot()
        except OSError as exc:  # a read-only folder, a full disk: said in the window
            self.error_label.setText(f"snapshot: {exc}")
            return
        if self.error_label.text().startswith("snapshot: "):
            self.error_label.setText("")  # an earlier failure is no longer true

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


def _save_png_atomically(pixmap: QtGui.QPixmap, path: Path, *, force: bool) -> None:
    """Write ``pixmap`` to ``path`` through a temporary file, so a failure leaves no partial PNG."""
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder")
    if not force and path.exists():
        raise FileExistsError(f"{path} already exists (pass --force to overwrite it)")
    # named here rather than by mkstemp, so Qt creates it with the user's usual permissions
    tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        if not pixmap.save(str(tmp), "PNG"):
            raise OSError(f"could not write {path}")
        if force:
            os.replace(tmp, path)
        else:
            try:
                # link() refuses to replace a file that appeared meanwhile; replace() would not
                os.link(tmp, path)
            except FileExistsError:
                raise FileExistsError(f"{path} already exists (pass --force to overwrite it)"
                                      ) from None
            except OSError:  # a file system without hard links
                if path.exists():
                    raise FileExistsError(f"{path} already exists (pass --force to overwrite "
                                          "it)") from None
                os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
