"""What the engine drives: the device side of one board, fed and pulled in real time."""

from __future__ import annotations

from typing import Protocol

from sonobridge.protocol import DeviceInfo


class Board(Protocol):
    """A board as the engine sees it: bytes in, frames out, a power switch."""

    @property
    def info(self) -> DeviceInfo:
        """What the board announces in DEVICE_INFO."""

    @property
    def acquiring(self) -> bool:
        """True while it streams."""

    state: int

    def power_on(self, now_s: float, *, announce: bool = False) -> None:
        """(Re)boot: idle, sequence numbers from 0; ``announce`` sends an unsolicited
        DEVICE_INFO, as a board that rebooted by itself does."""

    def feed(self, data: bytes, now_s: float) -> None:
        """The host's bytes (possibly none: a timer tick) that arrived by ``now_s``."""

    def pull(self, now_s: float, budget_bytes: float = ...) -> list[tuple[int, bytes]]:
        """``(seq, frame bytes)`` ready to go out by ``now_s``, within ``budget_bytes``."""
