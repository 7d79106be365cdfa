"""The port picker shown by ``sonobridge view`` without a PORT."""

from __future__ import annotations

from PySide6 import QtWidgets

from sonobridge.device import PortInfo, list_candidate_ports


class PortPicker(QtWidgets.QDialog):
    """Lists discovered boards (VID/PID, product) and the simulator's phantoms."""

    def __init__(self, ports: list[PortInfo] | None = None,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("sonobridge — choose a board")
        self.ports = ports if ports is not None else list_candidate_ports()
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(QtWidgets.QLabel("Boards found on this computer, and the simulated "
                                          "board with each phantom:"))
        self.list = QtWidgets.QListWidget()
        for p in self.ports:
            ids = f"  [{p.vid:04X}:{p.pid:04X}]" if p.vid is not None and p.pid is not None else ""
            what = p.known_as or p.product or p.description
            self.list.addItem(f"{p.device}{ids}  {what}")
        first_board = next((i for i, p in enumerate(self.ports) if p.likely_board), 0)
        if self.ports:
            self.list.setCurrentRow(first_board)
        self.list.itemDoubleClicked.connect(lambda _item: self.accept())
        layout.addWidget(self.list)
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
        self.resize(640, 360)

    def selected_port(self) -> str | None:
        """The typed port if any, else the highlighted one."""
        text = self.custom.text().strip()
        if text:
            return text
        row = self.list.currentRow()
        return self.ports[row].device if 0 <= row < len(self.ports) else None
