"""The port picker lists boards and the simulator, and returns what the user chose."""

from __future__ import annotations

from sonobridge.device import PortInfo
from sonobridge.viewer.picker import PortPicker


def test_picker_lists_boards_first_and_the_simulator(qtbot):
    ports = [
        PortInfo("/dev/ttyS0", "n/a", "serial"),
        PortInfo("/dev/ttyACM0", "Pico", "usb", vid=0x2E8A, pid=0x000A, product="Pico",
                 known_as="Raspberry Pi RP2040 (Pico SDK CDC)"),
        PortInfo("sim://?phantom=cyst", "simulated board: cyst", "sim"),
    ]
    picker = PortPicker(ports)
    qtbot.addWidget(picker)
    texts = [picker.list.item(i).text() for i in range(picker.list.count())]
    assert "[2E8A:000A]" in texts[1] and "RP2040" in texts[1]
    assert picker.selected_port() == "/dev/ttyACM0"  # the first likely board is preselected
    picker.list.setCurrentRow(2)
    assert picker.selected_port() == "sim://?phantom=cyst"
    picker.custom.setText("COM7")
    assert picker.selected_port() == "COM7"


def test_picker_default_lists_the_simulated_phantoms(qtbot):
    picker = PortPicker()
    qtbot.addWidget(picker)
    devices = [p.device for p in picker.ports]
    assert "sim://?phantom=wire" in devices and "sim://?phantom=cyst" in devices
