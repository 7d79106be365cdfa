"""A pyserial port over an in-process :class:`~sonobridge.board.queue_transport.QueueTransport`.

The ``sim://`` and ``replay://`` URL handlers differ only in how they find or start the board
behind the URL (their ``open`` and ``close``). The byte plumbing, and the modem-line stubs
pyserial expects, live here once.
"""

from __future__ import annotations

from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from .queue_transport import QueueTransport


class QueueSerial(SerialBase):
    """pyserial's port interface over a QueueTransport; subclasses set ``_transport`` in open."""

    _transport: QueueTransport

    def _check_openable(self) -> None:
        """pyserial's preconditions for ``open``."""
        if self.is_open:
            raise SerialException("Port is already open.")
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")

    def _attach(self, key: str, engine: object, transport: QueueTransport) -> None:
        """Become the open port of the board ``engine`` serves (registered under ``key``)."""
        self._key = key
        self._engine = engine
        self._transport = transport
        self.is_open = True

    def _reconfigure_port(self) -> None:
        """Nothing to configure: baud rate and framing do not apply in-process."""

    @property
    def in_waiting(self) -> int:
        """Bytes ready to read."""
        self._check()
        try:
            return self._transport.host_in_waiting()
        except ConnectionError as exc:
            raise SerialException(f"device disconnected: {exc}") from exc

    def read(self, size: int = 1) -> bytes:
        """Read up to ``size`` bytes, waiting at most ``timeout`` for the first."""
        self._check()
        try:
            return self._transport.host_read(size, self._timeout)
        except ConnectionError as exc:
            raise SerialException(f"device disconnected: {exc}") from exc

    def read_chunk(self, size: int) -> tuple[bytes, int, int]:
        """Up to ``size`` bytes (all there are, not one by one), then the gap that follows.

        Returns ``(data, gap_bytes, gap_ns)``: ``gap_bytes`` were dropped right after ``data``
        because this host did not read in time (see ``QueueTransport``), 0 if none. Waits
        at most ``timeout`` for something. The acquisition reader uses it where it exists.
        """
        self._check()
        try:
            return self._transport.host_read_chunk(size, self._timeout)
        except ConnectionError as exc:
            raise SerialException(f"device disconnected: {exc}") from exc

    def write(self, data: bytes) -> int:
        """Send bytes to the board."""
        self._check()
        try:
            self._transport.host_write(bytes(data))
        except ConnectionError as exc:
            raise SerialException(f"device disconnected: {exc}") from exc
        return len(data)

    def reset_input_buffer(self) -> None:
        """Discard unread bytes."""
        self._check()
        self._transport.host_reset_input()

    def reset_output_buffer(self) -> None:
        """Writes are delivered at once; nothing to discard."""
        self._check()

    @property
    def out_waiting(self) -> int:
        """Always 0: writes are delivered at once."""
        return 0

    def _update_break_state(self) -> None:
        """No break condition in-process."""

    def _update_rts_state(self) -> None:
        """No modem lines in-process."""

    def _update_dtr_state(self) -> None:
        """No modem lines in-process."""

    @property
    def cts(self) -> bool:
        """Always asserted."""
        return True

    @property
    def dsr(self) -> bool:
        """Always asserted."""
        return True

    @property
    def ri(self) -> bool:
        """Never ringing."""
        return False

    @property
    def cd(self) -> bool:
        """Always asserted."""
        return True

    def _check(self) -> None:
        if not self.is_open:
            raise PortNotOpenError()
