"""The port picker shown by ``sonobridge view`` without a PORT."""

from __future__ import annotations

from PySide6 import QtWidgets

from sonobridge.device import PortInfo, list_candidate_ports


def _label(p: PortInfo) -> str:
    ids = f"  [{p.vid:04X}:{p.pid:04X}]" if p.vid is not None and p.pid is not None else ""
    what = p.known_as or p.product or p.description
    return f"{p.device}{ids}  {what}"


class PortPicker(QtWidgets.QDialog):
    """Lists likely boards (VID/PID, product) and the simulator's phantoms; all ports on request.

    A port such as ``/dev/ttyS0`` (a motherboard UART) is almost never a board, so ports
    that do not look like one are hidden until "show all serial ports" is ticked.
    """

    def __init__(self, ports: list[PortInfo] | None = None,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("sonobridge — choose a board")
        self.ports = ports if ports is not None else list_candidate_ports()
        self.shown: list[PortInfo] = []
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(QtWidgets.QLabel("Boards found on this computer, and the simulated "
                                          "board with each phantom:"))
        self.list = QtWidgets.QListWidget()
        self.list.itemDoubleClicked.connect(lambda _item: self.accept())
        layout.addWidget(self.list)
        hidden = sum(not p.likely_board for p in self.ports)
        self.show_all = QtWidgets.QCheckBox(f"show all serial ports ({hidden} that do not look "
                                            "like a board)")
        self.show_all.setEnabled(hidden > 0)
        self.show_all.toggled.connect(self._fill)
        layout.addWidget(self.show_all)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("or type a port / URL:"))
        self.custom = QtWidgets.QLineEdit()
        self.custom.setPlaceholderText("/dev/ttyACM0, COM3, socket://host:port, sim://?phantom=cyst")
        row.addWidget(self.custom)
        layout.addLayout(row)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Open
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._fill()
        self.resize(640, 360)

    def _fill(self) -> None:
        """List the likely boards first, then (when asked) every other port."""
        row = self.list.currentRow()
        selected = self.shown[row].device if 0 <= row < len(self.shown) else None
        likely = [p for p in self.ports if p.likely_board]
        others = [p for p in self.ports if not p.likely_board]
        self.shown = likely + (others if self.show_all.isChecked() else [])
        self.list.clear()
        for p in self.shown:
            self.list.addItem(_label(p))
        devices = [p.device for p in self.shown]
        if self.shown:
            self.list.setCurrentRow(devices.index(selected) if selected in devices else 0)

    def selected_port(self) -> str | None:
        """The typed port if any, else the highlighted one."""
        text = self.custom.text().strip()
        if text:
            return text
        row = self.list.currentRow()
        return self.shown[row].device if 0 <= row < len(self.shown) else None
