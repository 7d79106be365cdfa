"""The status bar's fields: the board, the rates, every loss by cause, the board's health.

Only what is known is shown: a board on another firmware's dialect states no firmware version
and has no STATUS, so its field names the dialect, and no temperature or voltage appears
(never a 0 °C that nobody measured).
"""

from __future__ import annotations

from PySide6 import QtWidgets

from sonobridge.device import DeviceStats
from sonobridge.protocol import DeviceInfo

from .presets import SCANNER, ViewPreset

#: the dialect of our own firmware, whose boards announce their DEVICE_INFO and STATUS
NATIVE_DIALECT = "sonobridge-v1"


class StatusFields:
    """Labels added to a window's status bar, and how the statistics are written in them."""

    def __init__(self, bar: QtWidgets.QStatusBar, info: DeviceInfo, *,
                 dialect: str = NATIVE_DIALECT, nominal: dict[str, str] | None = None,
                 preset: ViewPreset = SCANNER, has_status: bool = True) -> None:
        if dialect in ("", NATIVE_DIALECT):
            self.board = QtWidgets.QLabel(f"{info.board_name}  fw {info.firmware_version}")
        else:
            # its "firmware version" is a placeholder the dialect filled in: not shown
            self.board = QtWidgets.QLabel(f"{info.board_name} ({dialect})  {preset.name}")
        assumed = "".join(f"\n  {name}: {why}" for name, why in (nominal or {}).items())
        self.board.setToolTip(f"dialect {dialect or NATIVE_DIALECT}; view: "
                              f"{preset.description}"
                              + (f"\nassumed, not stated by the board:{assumed}" if assumed
                                 else ""))
        self.rates = QtWidgets.QLabel()
        self.errors = QtWidgets.QLabel()
        self.device = QtWidgets.QLabel()
        self.has_status = has_status
        #: our CRC only guards frames of our own protocol (an Open Echo's XOR failures and a
        #: pic0rick's damaged dumps are counted as lines lost on the link)
        self._crc = dialect in ("", NATIVE_DIALECT)
        if not has_status:
            self.device.setToolTip("this board has no STATUS command: its temperature, high "
                                   "voltage and own dropped lines are not known")
        for w in (self.board, self.rates, self.errors, self.device):
            bar.addPermanentWidget(w)

    def show(self, s: DeviceStats, skipped_for_display: int) -> None:
        """Write a statistics snapshot into the fields."""
        self.rates.setText(f"{s.frames_per_s:5.1f} frames/s  {s.lines_per_s:6.0f} lines/s"
                           f"  {s.mb_per_s:5.2f} MB/s")
        a = s.account  # the same figures and causes every tool prints; in full as a tooltip
        crc = f"CRC errors {s.crc_errors}  " if self._crc else ""
        self.errors.setText(f"{crc}lost lines {a.lines_lost} (link "
                            f"{a.lines_lost_link}, device {a.lines_lost_device}, host "
                            f"{a.lines_lost_host})  skipped for display {skipped_for_display}")
        self.errors.setToolTip(a.text())
        if not self.has_status:
            self.device.setText("temperature, HV: not reported")
        elif s.temperature_c is not None:
            implausible = "  (implausible: see the log)" if s.status_problems else ""
            self.device.setText(f"{s.temperature_c:.1f} °C  HV {s.hv_v:.1f} V{implausible}")
