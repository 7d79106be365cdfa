"""In-process buffers, behind the ``sim://`` and ``replay://`` pyserial URLs."""

from __future__ import annotations

import threading
import time


class QueueTransport:
    """In-process wire for the ``sim://`` URL handler; the host side calls the ``host_*``s."""

    #: like an OS serial buffer: beyond this the device's writes do not go through
    HOST_BUFFER = 1 << 20

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._to_device = bytearray()
        self._to_host = bytearray()
        self.connected = True

    # device side (engine thread)
    def wait(self, timeout_s: float, want_write: bool) -> None:
        """Wait for host data (or the timeout)."""
        with self._cond:
            if not self._to_device:
                self._cond.wait(timeout_s)

    def read_host(self) -> bytes:
        """Take what the host wrote."""
        with self._cond:
            data = bytes(self._to_device)
            self._to_device.clear()
            return data

    def write_device(self, data: bytes) -> int:
        """Append to the host's receive buffer, up to its capacity."""
        with self._cond:
            if not self.connected:
                return 0
            n = min(len(data), self.HOST_BUFFER - len(self._to_host))
            if n > 0:
                self._to_host += data[:n]
                self._cond.notify_all()
            return max(0, n)

    def unplug(self) -> None:
        """The host's next read or write fails; bytes in flight are lost."""
        with self._cond:
            self.connected = False
            self._to_host.clear()
            self._to_device.clear()
            self._cond.notify_all()

    def plug(self) -> None:
        """The port may be opened again."""
        with self._cond:
            self.connected = True
            self._cond.notify_all()

    def close(self) -> None:
        """Wake any waiter."""
        self.unplug()

    # host side (pyserial thread)
    def host_write(self, data: bytes) -> None:
        """Host → device bytes."""
        with self._cond:
            if not self.connected:
                raise ConnectionError("device disconnected")
            self._to_device += data
            self._cond.notify_all()

    def host_read(self, size: int, timeout_s: float | None) -> bytes:
        """Up to ``size`` device → host bytes, waiting at most ``timeout_s`` for the first."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while not self._to_host:
                if not self.connected:
                    raise ConnectionError("device disconnected")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return b""
                self._cond.wait(remaining)
            data = bytes(self._to_host[:size])
            del self._to_host[:size]
            return data

    def host_in_waiting(self) -> int:
        """Bytes ready for the host."""
        with self._cond:
            if not self.connected:
                raise ConnectionError("device disconnected")
            return len(self._to_host)

    def host_reset_input(self) -> None:
        """Discard unread device → host bytes."""
        with self._cond:
            self._to_host.clear()
