"""pyserial URL handler: ``sim://?phantom=cyst&link=usb-fs&seed=1&faults=...`` in-process.

Registered by ``sonobridge.device`` through ``serial.protocol_handler_packages``, so
``serial.serial_for_url("sim://?phantom=cyst")`` opens a simulated board exactly like a real
port. Options: ``phantom``, ``profile``, ``link``, ``faults``, ``seed``, ``truth`` (1 = keep
ground truth), ``name`` (several boards in one process), and ``board`` and ``variant`` (a twin
of another board, ``sim://?board=open-echo&variant=uno-r4``).

The board runs on threads of this process, so what it loses because this host did not read
it, or did not run it, in time is reported as the host's loss, never the link's (see
``in_process_transport`` and ``docs/sim.md``). Options go after a ``?``: ``sim://cyst`` is an
error that shows ``sim://?phantom=cyst``.

The simulated board lives on when the port is closed after a disconnect fault, so the device
client's reconnect finds it again (rebooted, as a replugged USB board would be). A normal close
without a pending disconnect stops it.
"""

from __future__ import annotations

import threading
import urllib.parse

from serial.serialutil import SerialException

from sonobridge.board.engine import BoardEngine
from sonobridge.board.queue_transport import QueueTransport
from sonobridge.board.serial_port import QueueSerial
from sonobridge.sim.server import SimOptions, create_engine

_registry: dict[str, BoardEngine] = {}
_registry_lock = threading.Lock()


def sim_ports() -> list[tuple[str, str]]:
    """URLs of the simulated board with each builtin phantom, and a description of each."""
    from sonobridge.sim.phantom import builtin_phantoms

    return [(f"sim://?phantom={name}", f"simulated board: {text}")
            for name, text in builtin_phantoms().items()]


def parse_url(url: str) -> tuple[str, SimOptions]:
    """Registry key and options of a ``sim://`` URL; unknown options are an error."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "sim":
        raise SerialException(f"expected a sim:// URL, got {url!r}")
    stray = (parts.netloc + parts.path).strip("/")
    if stray:  # sim://cyst or sim://phantom=cyst: options must follow a "?"
        fix = stray if "=" in stray else f"phantom={stray}"
        if parts.query:
            fix += f"&{parts.query}"
        raise SerialException(f"bad sim:// URL {url!r}: options go after a '?', as in "
                              f"sim://?{fix} (nothing may come between sim:// and the '?')")
    opts = SimOptions()
    name = ""
    for key, values in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items():
        value = values[-1]
        if key in ("phantom", "profile", "link", "faults", "board", "variant"):
            setattr(opts, key, value)
        elif key == "seed":
            opts.seed = int(value)
        elif key == "truth":
            opts.record_truth = value not in ("", "0", "false", "no")
        elif key == "name":
            name = value
        else:
            raise SerialException(f"unknown sim:// option {key!r}; known: phantom, profile, "
                                  "link, faults, seed, truth, name, board, variant")
    try:
        opts.validate()
    except ValueError as exc:
        raise SerialException(f"bad sim:// URL {url!r}: {exc}") from exc
    key = name or urllib.parse.urlunsplit(("sim", "", "", parts.query, ""))
    return key, opts


#: the in-process port's buffer: this host's memory, like the acquisition reader's buffer
#: (16 MiB: half a second at the usb-hs profile's 35 MB/s)
HOST_BUFFER_BYTES = 16 << 20


def in_process_transport() -> QueueTransport:
    """The wire of an in-process board: it never waits for the host; the host counts its gaps.

    The board shares this process, so when the client does not read in time the loss is this
    host's, never the simulated link's: the transport drops what overflows and reports where
    (``QueueTransport(drop_when_full=True)``); the acquisition reader turns that into the same
    ``dropped`` event as its own overflow, and the client counts ``lines_lost_host``.
    """
    return QueueTransport(drop_when_full=True, buffer_bytes=HOST_BUFFER_BYTES)


def engine_for(url: str) -> BoardEngine | None:
    """The running simulated board behind a ``sim://`` URL (for tests and ground truth)."""
    key, _ = parse_url(url)
    with _registry_lock:
        return _registry.get(key)


class Serial(QueueSerial):
    """A pyserial port backed by an in-process simulated board."""

    def open(self) -> None:
        """Attach to (or start) the simulated board named by the URL."""
        self._check_openable()
        key, opts = parse_url(self.portstr)
        with _registry_lock:
            engine = _registry.get(key)
            if engine is None:
                engine = create_engine(opts, in_process_transport())
                engine.board.late_is_host_loss = True  # type: ignore[attr-defined]
                engine.start()
                _registry[key] = engine
        transport = engine.transport
        assert isinstance(transport, QueueTransport)
        if not transport.connected:
            raise SerialException(2, f"could not open port {self.portstr}: the simulated board "
                                     "is unplugged (disconnect fault); it comes back shortly")
        self._attach(key, engine, transport)

    def close(self) -> None:
        """Detach; stop the board unless it is in the middle of a simulated unplug."""
        if not self.is_open:
            return
        self.is_open = False
        engine = self._engine
        if engine.transport.connected:  # type: ignore[attr-defined]
            with _registry_lock:
                if _registry.get(self._key) is engine:
                    del _registry[self._key]
            engine.stop()
