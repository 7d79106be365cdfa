"""The serial link: opens any port pyserial can, acquires its bytes, reconnects.

``PORT`` may be a device path (``/dev/ttyACM0``), a COM name (``COM3``), any pyserial URL
(``socket://host:port``, ``loop://``), or ``sim://…`` for the simulated board. The port is read
by an acquisition reader (:mod:`.acquisition`: its own process where the OS allows) into a
bounded buffer; a daemon thread here delivers the chunks to the listeners with their host
timestamps. When the port vanishes the thread reports it, closes the port, and retries opening
it every ``retry_s`` until it comes back.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import serial

from .acquisition import DEFAULT_CAPACITY, Event, ProcessReader, Reader, start_reader
from .errors import Disconnected, PortError
from .listeners import ListenerSet

log = logging.getLogger("sonobridge.link")

# The sim:// scheme is served by sonobridge.sim; registering its package is the only thing the
# device layer knows about the simulator (and likewise for replay:// and sonobridge.record).
if "sonobridge.sim.urlhandler" not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.append("sonobridge.sim.urlhandler")
# replay://FILE serves a recording as a board (sonobridge.record)
if "sonobridge.record.urlhandler" not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.append("sonobridge.record.urlhandler")

ByteListener = Callable[[bytes, int], None]

#: what a port is opened at when nothing else is asked for (USB CDC boards ignore it)
DEFAULT_BAUDRATE = 115200
#: opening (or leaving) an RP2040's USB CDC port at this rate reboots it into its bootloader
#: (the Pico SDK's and the pic0rick's reset-to-BOOTSEL convention), so it is never used
BOOTLOADER_BAUDRATE = 1200


@dataclass
class LinkCounters:
    """Raw link counters."""

    bytes_in: int = 0
    bytes_out: int = 0
    disconnects: int = 0
    reconnects: int = 0
    connected: bool = False
    #: bytes the acquisition buffer had no room for (the host fell behind), and how often
    bytes_dropped_host: int = 0
    overflows: int = 0


def open_port(port: str, baudrate: int = DEFAULT_BAUDRATE, timeout_s: float = 0.05
              ) -> serial.SerialBase:
    """Open ``port`` with pyserial; failures become a :class:`PortError` that says what to do.

    DTR is asserted (pyserial's default, made explicit): a pic0rick's firmware waits for it.
    """
    if baudrate == BOOTLOADER_BAUDRATE:
        raise PortError(f"refusing to open {port} at {BOOTLOADER_BAUDRATE} baud: on an RP2040 "
                        "board (a pic0rick, a Pico) that rate reboots it into its USB "
                        "bootloader. Pick another --baud (USB CDC boards ignore it).")
    try:
        return serial.serial_for_url(port, baudrate=baudrate, timeout=timeout_s,
                                     write_timeout=2.0, exclusive=True, dsrdtr=False)
    except ValueError as exc:
        raise PortError(f"cannot open {port!r}: {exc}") from exc
    except serial.SerialException as exc:
        code = exc.errno if isinstance(exc.errno, int) else None
        text = str(exc)
        if code == errno.ENOENT or "No such file" in text or "FileNotFoundError" in text:
            hint = "Is the board plugged in? `sonobridge ports` lists the boards it can see."
        elif code == errno.EACCES or "Permission denied" in text or "PermissionError" in text:
            hint = ("No permission. On Linux: `sudo usermod -aG dialout $USER`, then log out "
                    "and back in.")
        elif code == errno.EBUSY or "lock" in text.lower() or "busy" in text.lower():
            hint = "Another program has the port open (a serial monitor?). Close it first."
        else:
            hint = "Check the port name with `sonobridge ports`."
        raise PortError(f"cannot open {port}: {text}. {hint}") from exc


class SerialLink:
    """A port, its acquisition reader, and the thread that hands the bytes on.

    The reader (:mod:`.acquisition`) only copies bytes into a bounded buffer; this link's
    thread takes them from there and calls the listeners, so a slow listener delays the
    listeners, never a read of the port. ``on_gap(n_bytes, host_ns)`` is told where the buffer
    overflowed and bytes were dropped; ``on_idle(host_ns)`` that nothing arrived for a while
    (50 ms); ``on_state`` gets ``"disconnected"``,
    ``"reconnected"`` and ``"failed"`` (with the reason as ``on_failure``'s argument).
    """

    def __init__(
        self,
        port: str,
        on_bytes: ByteListener,
        *,
        on_state: Callable[[str], None] | None = None,
        on_gap: Callable[[int, int], None] | None = None,
        on_failure: Callable[[str], None] | None = None,
        on_idle: Callable[[int], None] | None = None,
        baudrate: int = DEFAULT_BAUDRATE,
        reconnect: bool = True,
        retry_s: float = 0.2,
        acquisition: str = "auto",
        buffer_bytes: int = DEFAULT_CAPACITY,
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self.reconnect = reconnect
        self.retry_s = retry_s
        self.acquisition = acquisition
        self.buffer_bytes = buffer_bytes
        self.counters = LinkCounters()
        #: what the OS granted the reader (priority), once it said
        self.reader_note = ""
        #: the acquisition reader in use: "process" (the port's descriptor) or "thread"
        self.reader_kind = ""
        self._gap_logged_ns = -(1 << 62)
        self._gap_bytes = self._gap_count = 0
        self._on_bytes = on_bytes
        self._on_state = on_state or (lambda state: None)
        self._on_gap = on_gap or (lambda n, host_ns: None)
        self._on_failure = on_failure or (lambda reason: None)
        self._on_idle = on_idle or (lambda host_ns: None)
        self.taps = ListenerSet("byte tap")
        self._ser: serial.SerialBase | None = None
        self._write_lock = threading.Lock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        """Open the port (raising :class:`PortError`) and start reading."""
        ser = open_port(self.port, self.baudrate)
        try:
            with contextlib.suppress(serial.SerialException, OSError):
                ser.reset_input_buffer()  # stale bytes from a previous session
            reader = start_reader(ser, self.acquisition, self.buffer_bytes)
        except BaseException:
            with contextlib.suppress(serial.SerialException, OSError):
                ser.close()
            raise
        self._ser = ser
        self.reader_kind = _kind(reader)
        self.counters.connected = True
        self._thread = threading.Thread(target=self._run, args=(ser, reader),
                                        name="sonobridge-link", daemon=True)
        self._thread.start()

    def add_tap(self, tap: ByteListener) -> None:
        """Also deliver every received chunk to ``tap(data, host_time_ns)`` (e.g. a recorder)."""
        self.taps.add(tap)

    def remove_tap(self, tap: ByteListener) -> None:
        """Stop delivering to ``tap``."""
        self.taps.remove(tap)

    @property
    def connected(self) -> bool:
        """True while the port is open."""
        return self.counters.connected

    def write(self, data: bytes) -> None:
        """Send bytes; raises :class:`Disconnected` if the port is gone."""
        with self._write_lock:
            ser = self._ser
            if ser is None:
                raise Disconnected(f"{self.port} is disconnected; waiting for it to come back")
            try:
                ser.write(data)
                error = None
            except (serial.SerialException, OSError, ConnectionError) as exc:
                error = exc
        if error is not None:
            self._lost(ser, error)
            raise Disconnected(f"{self.port} went away while writing: {error}") from error
        self.counters.bytes_out += len(data)

    def reset_input(self) -> None:
        """Drop bytes the OS holds but the reader has not taken yet."""
        ser = self._ser
        if ser is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                ser.reset_input_buffer()

    def close(self) -> None:
        """Stop reading and close the port."""
        self._closed.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=3)
        ser, self._ser = self._ser, None
        if ser is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                ser.close()
        self.counters.connected = False

    def _lost(self, ser: serial.SerialBase, exc: BaseException | str) -> None:
        with self._write_lock:
            if self._ser is not ser:
                return  # the other thread already handled it
            self._ser = None
        with contextlib.suppress(serial.SerialException, OSError):
            ser.close()
        self.counters.connected = False
        self.counters.disconnects += 1
        log.warning("%s disconnected: %s", self.port, exc)
        self._on_state("disconnected")

    def _run(self, ser: serial.SerialBase, reader: Reader) -> None:
        """The link thread: hand on what the reader took; reconnect; never die silently."""
        try:
            while not self._closed.is_set():
                if reader is None:
                    if not self.reconnect:
                        return
                    got = self._try_reopen()
                    if got is not None:
                        ser, reader = got
                    continue
                if self._ser is not ser:  # a failed write closed it
                    reader.stop()
                    reader = None
                    continue
                events = reader.events(0.05)
                if not events:
                    self._on_idle(time.monotonic_ns())
                for event in events:
                    if event.kind == "data":
                        self.taps.call(event.data, event.host_ns)
                        self._on_bytes(event.data, event.host_ns)
                        # counted once handed on, so bytes_in also says what the decoder saw
                        self.counters.bytes_in += event.n_bytes
                    elif event.kind == "dropped":
                        self.counters.bytes_dropped_host += event.n_bytes
                        self.counters.overflows += 1
                        self._log_gap(event)
                        self._on_gap(event.n_bytes, event.host_ns)
                    elif event.kind == "note":
                        self.reader_note = event.data.decode("utf-8", "replace")
                        log.info("%s: %s", self.port, self.reader_note)
                    else:  # closed
                        reader.stop()
                        reader = None
                        if not self._closed.is_set():
                            self._lost(ser, event.data.decode("utf-8", "replace"))
                        break
        except BaseException as exc:  # a bug here must not leave a silent, "connected" link
            log.exception("%s: the link thread stopped", self.port)
            self.counters.connected = False
            self._on_failure(f"the receive thread stopped: {type(exc).__name__}: {exc}")
        finally:
            if reader is not None:
                reader.stop()

    def _log_gap(self, event: Event) -> None:
        """Say that the host fell behind: at most once a second (a long stall of an
        in-process board leaves a gap per sweep), with the bytes since the last time."""
        self._gap_bytes += event.n_bytes
        self._gap_count += 1
        if event.host_ns - self._gap_logged_ns < 1_000_000_000:
            return
        more = f" in {self._gap_count} gaps" if self._gap_count > 1 else ""
        log.warning("%s: the host fell behind; %d bytes dropped from the acquisition "
                    "buffer%s", self.port, self._gap_bytes, more)
        self._gap_logged_ns = event.host_ns
        self._gap_bytes = self._gap_count = 0

    def _try_reopen(self) -> tuple[serial.SerialBase, Reader] | None:
        if self._closed.wait(self.retry_s):
            return None
        try:
            ser = open_port(self.port, self.baudrate)
        except PortError:
            return None
        try:
            reader = start_reader(ser, self.acquisition, self.buffer_bytes)
        except (OSError, ValueError) as exc:
            log.warning("%s: cannot start the reader: %s", self.port, exc)
            with contextlib.suppress(serial.SerialException, OSError):
                ser.close()
            return None
        with self._write_lock:
            self._ser = ser
        self.reader_kind = _kind(reader)
        self.counters.connected = True
        self.counters.reconnects += 1
        log.info("%s is back", self.port)
        self._on_state("reconnected")
        return ser, reader


def _kind(reader: Reader) -> str:
    return "process" if isinstance(reader, ProcessReader) else "thread"
