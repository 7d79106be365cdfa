"""The port picker lists boards and the simulator, and returns what the user chose."""

from __future__ import annotations

from sonobridge.device import PortInfo
from sonobridge.viewer.picker import PortPicker


def test_picker_lists_boards_and_the_simulator_and_hides_other_ports(qtbot):
    ports = [
        PortInfo("/dev/ttyS0", "n/a", "serial"),
        PortInfo("/dev/ttyACM0", "Pico", "usb", vid=0x2E8A, pid=0x000A, product="Pico",
                 known_as="Raspberry Pi RP2040 (Pico SDK CDC)"),
        PortInfo("sim://?phantom=cyst", "simulated board: cyst", "sim"),
    ]
    picker = PortPicker(ports)
    qtbot.addWidget(picker)
    texts = [picker.list.item(i).text() for i in range(picker.list.count())]
    assert len(texts) == 2 and not any("ttyS0" in t for t in texts)  # a UART is no board
    assert "[2E8A:000A]" in texts[0] and "RP2040" in texts[0]
    assert picker.selected_port() == "/dev/ttyACM0"  # the first likely board is preselected
    picker.list.setCurrentRow(1)
    assert picker.selected_port() == "sim://?phantom=cyst"
    picker.custom.setText("COM7")
    assert picker.selected_port() == "COM7"


def test_show_all_lists_every_port_after_the_boards_and_keeps_the_choice(qtbot):
    ports = [
        PortInfo("/dev/ttyS0", "n/a", "serial"),
        PortInfo("/dev/ttyACM0", "Pico", "usb", vid=0x2E8A, pid=0x000A,
                 known_as="Raspberry Pi RP2040 (Pico SDK CDC)"),
        PortInfo("sim://?phantom=cyst", "simulated board: cyst", "sim"),
    ]
    picker = PortPicker(ports)
    qtbot.addWidget(picker)
    assert "1 that do not look like a board" in picker.show_all.text()
    picker.list.setCurrentRow(1)
    picker.show_all.setChecked(True)
    texts = [picker.list.item(i).text() for i in range(picker.list.count())]
    assert len(texts) == 3 and texts[2].startswith("/dev/ttyS0")
    assert picker.selected_port() == "sim://?phantom=cyst"
    picker.list.setCurrentRow(2)
    assert picker.selected_port() == "/dev/ttyS0"
    picker.show_all.setChecked(False)
    assert picker.list.count() == 2 and picker.selected_port() == "/dev/ttyACM0"


def test_show_all_is_off_when_nothing_is_hidden(qtbot):
    picker = PortPicker([PortInfo("sim://?phantom=cyst", "simulated board: cyst", "sim")])
    qtbot.addWidget(picker)
    assert not picker.show_all.isEnabled()


def test_picker_default_lists_the_simulated_phantoms(qtbot):
    picker = PortPicker()
    qtbot.addWidget(picker)
    devices = [p.device for p in picker.ports]
    assert "sim://?phantom=wire" in devices and "sim://?phantom=cyst" in devices
