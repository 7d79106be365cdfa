"""Port discovery: which serial ports look like ultrasound boards, plus the simulator."""

from __future__ import annotations

from dataclasses import dataclass

from serial.tools import list_ports

#: USB VID/PID pairs of boards and USB-serial chips hobby ultrasound boards are built on
KNOWN_USB: dict[tuple[int, int | None], str] = {
    (0x2E8A, 0x000A): "Raspberry Pi RP2040 (Pico SDK CDC)",
    (0x2E8A, 0x0009): "Raspberry Pi RP2350 (Pico SDK CDC)",
    (0x2E8A, 0x0005): "Raspberry Pi RP2040 (MicroPython)",
    (0xCAFE, 0x4001): "TinyUSB CDC example VID/PID",
    (0x2341, None): "Arduino",
    (0x1A86, 0x7523): "WCH CH340 USB-serial",
    (0x0403, 0x6001): "FTDI FT232R USB-serial",
    (0x0403, 0x6015): "FTDI FT231X USB-serial",
    (0x10C4, 0xEA60): "Silicon Labs CP210x USB-serial",
    (0x0483, 0x5740): "STM32 virtual COM port",
    (0x16C0, 0x0483): "Teensy USB serial",
}

#: which dialect a USB id suggests (a hint: detection probes it first, and still checks)
LIKELY_DIALECT: dict[tuple[int, int | None], str] = {
    # a pic0rick on its stock firmware shows up as a plain Pico SDK CDC device
    (0x2E8A, 0x000A): "pic0rick-shell",
    (0x2E8A, 0x0009): "pic0rick-shell",
    # the Open Echo shield sits on an Arduino Uno (R3: 16U2 or a CH340 clone; R4)
    (0x2341, None): "open-echo",
    (0x1A86, 0x7523): "open-echo",
}

#: what ``sonobridge ports`` calls the board behind a likely dialect
BOARD_NAMES = {"pic0rick-shell": "pic0rick? (stock shell)",
               "open-echo": "Open Echo? (TUSS4470 shield)"}

#: device names the OS gives USB CDC ACM ports (Linux, macOS), the class the firmware uses
_CDC_ACM_NAMES = ("/dev/ttyACM", "/dev/cu.usbmodem", "/dev/tty.usbmodem")


@dataclass(frozen=True)
class PortInfo:
    """A candidate port."""

    device: str
    description: str
    kind: str  # "usb", "serial" or "sim"
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    product: str | None = None
    known_as: str | None = None
    #: the dialect the USB id suggests (None: no hint)
    likely_dialect: str | None = None

    @property
    def likely_name(self) -> str:
        """The board this port probably is, for people (empty if nothing suggests one)."""
        return BOARD_NAMES.get(self.likely_dialect or "", "")

    @property
    def likely_board(self) -> bool:
        """True for the simulator, and for a USB port that is a known board or USB-serial chip
        or a CDC ACM device (what a board with its own VID/PID shows up as); never for a legacy
        serial port (``/dev/ttyS0``) without USB ids."""
        if self.kind == "sim":
            return True
        if self.kind != "usb" or self.vid is None:
            return False
        return self.known_as is not None or any(cdc in self.device for cdc in _CDC_ACM_NAMES)


def _known(vid: int | None, pid: int | None) -> str | None:
    if vid is None:
        return None
    return KNOWN_USB.get((vid, pid)) or KNOWN_USB.get((vid, None))


def dialect_hint(vid: int | None, pid: int | None) -> str | None:
    """The dialect a USB VID:PID suggests, if any."""
    if vid is None:
        return None
    return LIKELY_DIALECT.get((vid, pid)) or LIKELY_DIALECT.get((vid, None))


def usb_ids(port: str) -> tuple[int | None, int | None]:
    """The USB VID and PID of ``port`` if it is a USB serial port on this machine."""
    for p in list_ports.comports():
        if p.device == port:
            return p.vid, p.pid
    return None, None


def list_serial_ports() -> list[PortInfo]:
    """Serial ports on this machine, likely boards first."""
    found = []
    for p in list_ports.comports():
        found.append(PortInfo(
            device=p.device, description=p.description or "",
            kind="usb" if p.vid is not None else "serial",
            vid=p.vid, pid=p.pid, serial_number=p.serial_number, product=p.product,
            known_as=_known(p.vid, p.pid), likely_dialect=dialect_hint(p.vid, p.pid),
        ))
    return sorted(found, key=lambda p: (not p.likely_board, p.device))


def list_sim_ports() -> list[PortInfo]:
    """The simulated board's URLs, one per builtin phantom."""
    import importlib

    # looked up by name, like the sim:// handler's registration: the device layer imports
    # nothing of the simulator, which describes its own URLs
    sim_ports = importlib.import_module("sonobridge.sim.urlhandler.protocol_sim").sim_ports
    return [PortInfo(device=url, description=text, kind="sim") for url, text in sim_ports()]


def list_candidate_ports(include_sim: bool = True) -> list[PortInfo]:
    """Real ports (likely boards first), then the simulator's."""
    ports = list_serial_ports()
    if include_sim:
        ports += list_sim_ports()
    return ports
