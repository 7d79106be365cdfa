"""The controls dock's panel: host-side image settings, the TGC sent to the board, the
acquisition settings, and the start, record and snapshot buttons.

It holds the widgets and what they describe (the TGC curve, the board's configuration shown
on them); the window connects their signals to what they do. Only what the board can do is
offered: a control for a setting the board has no say in (a fixed line length, a single PRF,
a gain set by its firmware) is greyed out with a tooltip saying why, and a board with one
gain value gets one gain slider over its own range instead of a TGC curve.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtWidgets

from sonobridge.device import AcquisitionConfig
from sonobridge.protocol import DeviceInfo

from .colormaps import COLORMAPS
from .presets import SCANNER, ViewPreset

TGC_SLIDERS = 8


def _slider(lo: int, hi: int, value: int) -> QtWidgets.QSlider:
    s = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
    s.setRange(lo, hi)
    s.setValue(value)
    return s


class ControlsPanel(QtWidgets.QWidget):
    """The controls (see the module docstring)."""

    def __init__(self, info: DeviceInfo, preset: ViewPreset = SCANNER, *,
                 can_record: bool) -> None:
        super().__init__()
        self._preset = preset
        form = QtWidgets.QVBoxLayout(self)
        self.start_button = QtWidgets.QPushButton("Start (Space)")
        self.start_button.setCheckable(True)
        form.addWidget(self.start_button)

        image_box = QtWidgets.QGroupBox("Image (host)")
        grid = QtWidgets.QFormLayout(image_box)
        self.gain_slider = _slider(-30, 30, 0)
        self.dr_slider = _slider(20, 90, 50)
        self.persist_slider = _slider(0, 90, 0)
        self.cmap_combo = QtWidgets.QComboBox()
        self.cmap_combo.addItems(COLORMAPS)
        grid.addRow("gain (dB)", self.gain_slider)
        grid.addRow("dynamic range (dB)", self.dr_slider)
        grid.addRow("persistence (%)", self.persist_slider)
        grid.addRow("colour map", self.cmap_combo)
        self.flow_check = QtWidgets.QCheckBox("colour flow (with ensembles)")
        self.flow_check.setChecked(True)
        # what the user wants when the ensemble allows it (the box is unticked while it cannot)
        self._flow_wanted = True
        grid.addRow(self.flow_check)
        self.flow_threshold = _slider(-60, 0, -24)
        grid.addRow("flow threshold (dB)", self.flow_threshold)
        if not preset.bmode:  # colour flow is drawn over a B-mode
            grid.setRowVisible(self.flow_check, False)
            grid.setRowVisible(self.flow_threshold, False)
        if preset.envelope_samples:
            for slider in (self.dr_slider, self.persist_slider):
                slider.setEnabled(False)
                slider.setToolTip("the board sends its log amplifier's envelope: it is shown "
                                  "as it is (gain only), with no compression or persistence")
        form.addWidget(image_box)

        tgc_box = QtWidgets.QGroupBox("TGC (sent to the board)")
        tgc = QtWidgets.QVBoxLayout(tgc_box)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("slope (dB/cm)"))
        self.tgc_slope = QtWidgets.QDoubleSpinBox()
        self.tgc_slope.setRange(0.0, 6.0)
        self.tgc_slope.setSingleStep(0.25)
        self.tgc_slope.setValue(0.0)
        row.addWidget(self.tgc_slope)
        tgc.addLayout(row)
        sliders = QtWidgets.QHBoxLayout()
        self.tgc_sliders: list[QtWidgets.QSlider] = []
        for _ in range(TGC_SLIDERS):
            s = QtWidgets.QSlider(QtCore.Qt.Orientation.Vertical)
            s.setRange(-10, 40)
            s.setValue(0)
            s.setToolTip("gain at this depth (dB), shallow → deep")
            sliders.addWidget(s)
            self.tgc_sliders.append(s)
        tgc.addLayout(sliders)
        self._fit_gain_controls(tgc_box, row, info)
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
        self.ensemble_spin.setRange(1, max(1, info.ensemble_max))
        self.ensemble_spin.setToolTip("firings per line; 2 or more turns on Doppler")
        acq.addRow("ensemble", self.ensemble_spin)
        self._fit_acquisition_controls(info)
        self.apply_button = QtWidgets.QPushButton("Apply")
        acq.addRow(self.apply_button)
        self.error_label = QtWidgets.QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color:#d32f2f;")
        acq.addRow(self.error_label)
        form.addWidget(acq_box)

        self.record_button = QtWidgets.QPushButton("Record (R)")
        self.record_button.setCheckable(True)
        self.record_button.setEnabled(can_record)
        if not can_record:
            self.record_button.setToolTip("recording is not available in this installation")
        form.addWidget(self.record_button)
        self.snapshot_button = QtWidgets.QPushButton("Snapshot PNG (S)")
        form.addWidget(self.snapshot_button)
        # where "saved /full/path.png" goes: it wraps, the status bar's message area does not
        self.notice_label = QtWidgets.QLabel()
        self.notice_label.setWordWrap(True)
        self.notice_label.setTextInteractionFlags(
            QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addWidget(self.notice_label)
        form.addStretch(1)

    def _fit_gain_controls(self, box: QtWidgets.QGroupBox, slope_row: QtWidgets.QHBoxLayout,
                           info: DeviceInfo) -> None:
        """One gain slider for a one-point TGC; the box greyed out for a gain nobody sets."""
        lo, hi = info.gain_min_cdb / 100, info.gain_max_cdb / 100
        if hi <= lo:
            box.setTitle("Gain (set by the board's firmware)")
            box.setEnabled(False)
            box.setToolTip("this board's gain cannot be set from the host")
        elif info.tgc_points_max <= 1:
            # the whole line has one gain (a VGA that is not swept): no curve, no slope
            box.setTitle(f"Gain (sent to the board, {lo:g}–{hi:g} dB)")
            for i in range(slope_row.count()):
                widget = slope_row.itemAt(i).widget()
                if widget is not None:
                    widget.setVisible(False)
            for slider in self.tgc_sliders[1:]:
                slider.setVisible(False)
            first = self.tgc_sliders[0]
            first.setOrientation(QtCore.Qt.Orientation.Horizontal)
            first.setRange(int(np.ceil(lo)), int(np.floor(hi)))
            first.setToolTip("the board's gain for the whole line (dB)")

    def _fit_acquisition_controls(self, info: DeviceInfo) -> None:
        """Limit each control to what the board allows; grey out what it cannot change."""
        preset = self._preset
        fixed_line = info.min_samples_per_line == info.max_samples_per_line
        self.depth_spin.setSuffix(f" {preset.depth_unit}")
        if fixed_line:
            self.depth_spin.setRange(0.0, 1e5)
            self.depth_spin.setEnabled(False)
            self.depth_spin.setToolTip(
                f"this board records a fixed {info.max_samples_per_line} samples per line: its "
                f"depth is fixed ({preset.medium}, {preset.sound_speed_m_s:g} m/s)")
        self.prf_spin.setRange(max(1, info.prf_min_hz), max(1, info.prf_min_hz,
                                                             info.prf_max_hz))
        if info.prf_max_hz <= info.prf_min_hz:
            self.prf_spin.setEnabled(False)
            self.prf_spin.setToolTip("the board fires at its own pace")
        self.lines_spin.setRange(1, max(1, info.max_lines_per_frame))
        if preset.lines_are_firings:
            self.lines_spin.setToolTip("firings grouped into one frame (all of them are shown)")
        self.lines_spin.setEnabled(info.max_lines_per_frame > 1)
        self.ensemble_spin.setEnabled(info.ensemble_max > 1)

    def depth_cm(self) -> float | None:
        """The depth asked for in cm, or None when the board's depth cannot be set."""
        if not self.depth_spin.isEnabled():
            return None
        return self.depth_spin.value() * self._preset.depth_unit_m * 100

    def show_config(self, cfg: AcquisitionConfig, info: DeviceInfo) -> None:
        """Show the board's configuration (``Device.default_config()`` before the first)."""
        preset = self._preset
        depth = cfg.depth_range_m(info, preset.sound_speed_m_s)[1] / preset.depth_unit_m
        self.depth_spin.blockSignals(True)
        self.depth_spin.setValue(round(depth, 1))
        self.depth_spin.blockSignals(False)
        self.prf_spin.setValue(cfg.prf_hz)
        self.lines_spin.setValue(cfg.lines_per_frame)
        self.ensemble_spin.setValue(cfg.ensemble_size)
        self.show_flow_available(cfg.ensemble_size >= 2 and preset.bmode)
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

    @property
    def flow_wanted(self) -> bool:
        """Whether colour flow is asked for (kept while the box is unticked for ensemble 1)."""
        return self.flow_check.isChecked() if self.flow_check.isEnabled() else self._flow_wanted

    def show_flow_available(self, available: bool) -> None:
        """Enable colour flow with ensembles; without, untick and disable it (it does nothing)."""
        if available == self.flow_check.isEnabled():
            return
        # signals blocked: the pipeline keeps the user's choice (it draws no flow without
        # ensembles anyway), so flow appears on the first frame once the board has ensembles
        self.flow_check.blockSignals(True)
        if available:
            self.flow_check.setEnabled(True)
            self.flow_check.setToolTip("velocity overlay on the B-mode (see docs/doppler.md)")
            self.flow_check.setChecked(self._flow_wanted)
        else:
            self._flow_wanted = self.flow_check.isChecked()
            self.flow_check.setChecked(False)
            self.flow_check.setEnabled(False)
            self.flow_check.setToolTip("colour flow needs an ensemble of 2 or more firings per "
                                       "line: set ensemble ≥ 2 under Acquisition and Apply")
        self.flow_check.blockSignals(False)

    def tgc_points_db(self, cfg: AcquisitionConfig | None, info: DeviceInfo
                      ) -> tuple[float, ...]:
        """The TGC curve the controls describe: slope × depth + per-depth offsets, in dB."""
        depth_cm = self.depth_spin.value() if cfg is None else cfg.depth_range_m(info)[1] * 100
        n = min(TGC_SLIDERS, max(1, info.tgc_points_max))
        depths = np.linspace(0, depth_cm, n)
        offsets = np.array([s.value() for s in self.tgc_sliders[:n]], dtype=float)
        gain = self.tgc_slope.value() * depths + offsets
        lo, hi = info.gain_min_cdb / 100, info.gain_max_cdb / 100
        return tuple(float(g) for g in np.clip(gain, lo, hi))
