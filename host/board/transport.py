"""The device's end of the wire, as the engine uses it."""

from __future__ import annotations

from typing import Protocol


class Transport(Protocol):
    """The device's end of the wire, used only from the engine thread (non-blocking)."""

    def wait(self, timeout_s: float, want_write: bool) -> None:
        """Block until host data arrives, the wire is writable (if asked) or the timeout."""

    def read_host(self) -> bytes:
        """Bytes the host sent since the last call (may be empty)."""

    def write_device(self, data: bytes) -> int:
        """Send as much of ``data`` as the wire takes now; return how many bytes went."""

    def unplug(self) -> None:
        """Disappear like an unplugged USB device."""

    def plug(self) -> None:
        """Come back (after :meth:`unplug`)."""

    def close(self) -> None:
        """Release everything."""
