"""The status bar's fields: the board, the rates, every loss by cause, the board's health."""

from __future__ import annotations

from PySide6 import QtWidgets

from sonobridge.device import DeviceStats
from sonobridge.protocol import DeviceInfo


class StatusFields:
    """Labels added to a window's status bar, and how the statistics are written in them."""

    def __init__(self, bar: QtWidgets.QStatusBar, info: DeviceInfo) -> None:
        self.board = QtWidgets.QLabel(f"{info.board_name}  fw {info.firmware_version}")
        self.rates = QtWidgets.QLabel()
        self.errors = QtWidgets.QLabel()
        self.device = QtWidgets.QLabel()
        for w in (self.board, self.rates, self.errors, self.device):
            bar.addPermanentWidget(w)

    def show(self, s: DeviceStats, skipped_for_display: int) -> None:
        """Write a statistics snapshot into the fields."""
        self.rates.setText(f"{s.frames_per_s:5.1f} frames/s  {s.lines_per_s:6.0f} lines/s"
                           f"  {s.mb_per_s:5.2f} MB/s")
        a = s.account  # the same figures and causes every tool prints; in full as a tooltip
        self.errors.setText(f"CRC errors {s.crc_errors}  lost lines {a.lines_lost} (link "
                            f"{a.lines_lost_link}, device {a.lines_lost_device}, host "
                            f"{a.lines_lost_host})  skipped for display {skipped_for_display}")
        self.errors.setToolTip(a.text())
        if s.temperature_c is not None:
            implausible = "  (implausible: see the log)" if s.status_problems else ""
            self.device.setText(f"{s.temperature_c:.1f} °C  HV {s.hv_v:.1f} V{implausible}")
