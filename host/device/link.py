"""The serial link: opens any port pyserial can, reads on a background thread, reconnects.

``PORT`` may be a device path (``/dev/ttyACM0``), a COM name (``COM3``), any pyserial URL
(``socket://host:port``, ``loop://``), or ``sim://…`` for the simulated board. Reading never
blocks the caller: a daemon thread delivers chunks to the listeners with a host timestamp.
When the port vanishes the thread reports it, closes the port, and retries opening it every
``retry_s`` until it comes back.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import serial

from .errors import Disconnected, PortError

log = logging.getLogger("sonobridge.link")

# The sim:// scheme is served by host.sim; registering its package is the only thing the device
# layer knows about the simulator (and likewise for replay:// and host.record).
if "host.sim.urlhandler" not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.append("host.sim.urlhandler")
# replay://FILE serves a recording as a board (host.record)
if "host.record.urlhandler" not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.append("host.record.urlhandler")

ByteListener = Callable[[bytes, int], None]
#: at most this much is read before it is handed on, bounding latency and chunk memory
_MAX_CHUNK = 1 << 20


@dataclass
class LinkCounters:
    """Raw link counters."""

    bytes_in: int = 0
    bytes_out: int = 0
    disconnects: int = 0
    reconnects: int = 0
    connected: bool = False


def open_port(port: str, baudrate: int = 115200, timeout_s: float = 0.05) -> serial.SerialBase:
    """Open ``port`` with pyserial; failures become a :class:`PortError` that says what to do."""
    try:
        return serial.serial_for_url(port, baudrate=baudrate, timeout=timeout_s,
                                     write_timeout=2.0, exclusive=True)
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
    """A port plus its reader thread (see the module docstring)."""

    def __init__(
        self,
        port: str,
        on_bytes: ByteListener,
        *,
        on_state: Callable[[str], None] | None = None,
        baudrate: int = 115200,
        reconnect: bool = True,
        retry_s: float = 0.2,
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self.reconnect = reconnect
        self.retry_s = retry_s
        self.counters = LinkCounters()
        self._on_bytes = on_bytes
        self._on_state = on_state or (lambda state: None)
        self._taps: list[ByteListener] = []
        self._ser: serial.SerialBase | None = None
        self._write_lock = threading.Lock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        """Open the port (raising :class:`PortError`) and start reading."""
        self._ser = open_port(self.port, self.baudrate)
        self.counters.connected = True
        self._thread = threading.Thread(target=self._read_loop, name="sonobridge-reader",
                                        daemon=True)
        self._thread.start()

    def add_tap(self, tap: ByteListener) -> None:
        """Also deliver every received chunk to ``tap(data, host_time_ns)`` (e.g. a recorder)."""
        self._taps.append(tap)

    def remove_tap(self, tap: ByteListener) -> None:
        """Stop delivering to ``tap``."""
        self._taps.remove(tap)

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
        """Drop bytes received but not yet read (stale data from a previous session)."""
        ser = self._ser
        if ser is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                ser.reset_input_buffer()

    def close(self) -> None:
        """Stop reading and close the port."""
        self._closed.set()
        ser, self._ser = self._ser, None
        if ser is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                ser.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self.counters.connected = False

    def _lost(self, ser: serial.SerialBase, exc: BaseException) -> None:
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

    def _read_loop(self) -> None:
        while not self._closed.is_set():
            ser = self._ser
            if ser is None:
                if not self.reconnect:
                    return
                self._try_reopen()
                continue
            try:
                fd = getattr(ser, "fd", None)
                data = self._read_fd(fd) if isinstance(fd, int) else self._read_pyserial(ser)
            except Exception as exc:  # any failure of a port read means the link is broken
                # (pyserial raises SerialException, OSError, or TypeError/AttributeError when
                # the port is closed under it)
                if self._closed.is_set():
                    return
                self._lost(ser, exc)
                continue
            if data:
                now = time.monotonic_ns()
                for tap in list(self._taps):
                    try:
                        tap(data, now)
                    except Exception:  # a broken listener must not stop the reader
                        log.exception("byte tap failed")
                self._on_bytes(data, now)
                # counted once handed on, so bytes_in also says what the decoder has seen
                self.counters.bytes_in += len(data)

    @staticmethod
    def _read_pyserial(ser: serial.SerialBase) -> bytes:
        """Portable read: whatever is waiting, or block up to the timeout for one byte."""
        waiting = ser.in_waiting
        data = ser.read(waiting if waiting > 0 else 1)
        if data and not waiting:
            more = ser.in_waiting
            if more:
                data += ser.read(more)
        return data

    @staticmethod
    def _read_fd(fd: int) -> bytes:
        """POSIX fast path: wait once, then drain the tty in 4 KiB reads without pyserial.

        The tty layer hands out at most 4 KiB per read; at 35 MB/s that is ~9000 reads a second,
        and pyserial's per-call overhead (ioctl + select + checks) would cost most of a core.
        """
        ready, _, _ = select.select([fd], [], [], 0.05)
        if not ready:
            return b""
        parts = []
        total = 0
        while total < _MAX_CHUNK:
            try:
                part = os.read(fd, 1 << 16)
            except BlockingIOError:
                break
            if not part:
                if not parts:  # readable but empty: the device is gone
                    raise serial.SerialException("device reports readiness to read but "
                                                 "returned no data (device disconnected?)")
                break
            parts.append(part)
            total += len(part)
        return b"".join(parts)

    def _try_reopen(self) -> None:
        if self._closed.wait(self.retry_s):
            return
        try:
            ser = open_port(self.port, self.baudrate)
        except PortError:
            return
        with self._write_lock:
            self._ser = ser
        self.counters.connected = True
        self.counters.reconnects += 1
        log.info("%s is back", self.port)
        self._on_state("reconnected")
