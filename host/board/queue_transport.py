"""In-process buffers, behind the ``sim://`` and ``replay://`` pyserial URLs."""

from __future__ import annotations

import threading
import time
from collections import deque


class QueueTransport:
    """In-process wire for the ``sim://`` URL handler; the host side calls the ``host_*``s.

    Two behaviours when the host does not read in time:

    * ``drop_when_full=False`` (``replay://``): like an OS serial buffer, the device's writes
      stop going through beyond ``HOST_BUFFER`` bytes (back-pressure: the board waits).
    * ``drop_when_full=True`` (``sim://``): the buffer is the *host's* memory, as the
      acquisition reader's buffer is for a real port, so the board is never held back; beyond
      ``buffer_bytes`` new bytes are dropped and the place and size of each gap is kept.
      The host takes the gaps with :meth:`host_read_chunk` and counts them as its own loss
      (a board in the client's process that is not read in time is this host falling behind,
      never the link).
    """

    #: like an OS serial buffer: beyond this the device's writes do not go through
    HOST_BUFFER = 1 << 20

    def __init__(self, *, drop_when_full: bool = False, buffer_bytes: int | None = None) -> None:
        self._cond = threading.Condition()
        self._to_device = bytearray()
        self._to_host = bytearray()
        self.connected = True
        self.drop_when_full = drop_when_full
        self.buffer_bytes = buffer_bytes if buffer_bytes is not None else self.HOST_BUFFER
        if self.buffer_bytes <= 0:
            raise ValueError(f"buffer_bytes must be positive, not {self.buffer_bytes}")
        #: bytes ever appended to / taken from the host's buffer (gap positions use these)
        self._appended = 0
        self._taken = 0
        #: [stream position, bytes dropped there, CLOCK_MONOTONIC ns of the first drop]
        self._gaps: deque[list[int]] = deque()
        #: bytes dropped because the host did not read (or run the board) in time
        self.bytes_dropped = 0

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
        """Append to the host's receive buffer, up to its capacity (see the class docstring)."""
        with self._cond:
            if not self.connected:
                return 0
            n = max(0, min(len(data), self.buffer_bytes - len(self._to_host)))
            if n > 0:
                self._to_host += data[:n]
                self._appended += n
                self._cond.notify_all()
            if not self.drop_when_full or n == len(data):
                return n
            self._gap(len(data) - n)
            return len(data)  # taken: the board goes on as if the host had read it

    def host_dropped(self, n_bytes: int) -> None:
        """Bytes the board sent but this host did not run it in time to take: a gap here."""
        with self._cond:
            if self.connected and n_bytes > 0:
                self._gap(n_bytes)

    def _gap(self, lost: int) -> None:
        self.bytes_dropped += lost
        if self._gaps and self._gaps[-1][0] == self._appended:
            self._gaps[-1][1] += lost  # nothing arrived since the last drop: one gap
        else:
            self._gaps.append([self._appended, lost, time.monotonic_ns()])
            self._cond.notify_all()

    def unplug(self) -> None:
        """The host's next read or write fails; bytes in flight are lost."""
        with self._cond:
            self.connected = False
            self._discard_host_bytes()
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
        data, _, _ = self.host_read_chunk(size, timeout_s)
        return data

    def host_read_chunk(self, size: int, timeout_s: float | None) -> tuple[bytes, int, int]:
        """Up to ``size`` bytes that precede the next gap, then that gap: ``(data, n, ns)``.

        Waits at most ``timeout_s`` for bytes or a gap. ``n`` is the number of bytes dropped
        right after ``data`` (0 if the read did not reach a gap) and ``ns`` when the drop
        began (``CLOCK_MONOTONIC``).
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while not self._to_host and not self._gaps:
                if not self.connected:
                    raise ConnectionError("device disconnected")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return b"", 0, 0
                self._cond.wait(remaining)
            if self._gaps:
                size = min(size, self._gaps[0][0] - self._taken)
            data = bytes(self._to_host[:size])
            del self._to_host[:size]
            self._taken += len(data)
            if self._gaps and self._gaps[0][0] == self._taken:
                _, n, ns = self._gaps.popleft()
                return data, n, ns
            return data, 0, 0

    def host_in_waiting(self) -> int:
        """Bytes ready for the host."""
        with self._cond:
            if not self.connected:
                raise ConnectionError("device disconnected")
            return len(self._to_host)

    def host_reset_input(self) -> None:
        """Discard unread device → host bytes."""
        with self._cond:
            self._discard_host_bytes()

    def _discard_host_bytes(self) -> None:
        # discarded bytes take their gaps with them: nothing is left to cut
        self._taken += len(self._to_host)
        self._to_host.clear()
        self._gaps.clear()
