"""The client's receive path, without a port: bytes → messages → lines, sweeps and counts.

:class:`~host.device.client.Device` feeds it from the serial reader thread; the recorder's
``convert`` feeds it chunks from a raw capture, so a converted capture and a live session
count and assemble exactly alike.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from host.protocol import UNSOLICITED, DeviceInfo, EchoLine, FrameEnd, Log, Message, Status
from host.protocol.decoder import seq_gap

from .dialect import StreamDecoder
from .frames import Frame, FrameAssembler

log = logging.getLogger("sonobridge.device")

LineListener = Callable[[EchoLine, int], None]
FrameListener = Callable[[Frame], None]


@dataclass
class ReceiveCounts:
    """Lines and sweeps received, and every missing firing with its attributed cause."""

    lines_received: int = 0
    frames_complete: int = 0
    frames_incomplete: int = 0
    #: sweeps of which not one line arrived (known from their FRAME_END)
    frames_lost: int = 0
    lines_missing: int = 0
    lines_lost_link: int = 0
    lines_lost_device: int = 0
    device_resets: int = 0


class Receiver:
    """Decodes chunks, assembles sweeps, counts losses, and hands on replies and resets.

    ``on_frame`` runs after the frame listeners; ``on_reply`` gets every message that answers
    a command (it has a ``request_seq``); ``on_reset`` gets the unsolicited DEVICE_INFO of a
    board that rebooted by itself. All of it happens on the caller's thread.
    """

    def __init__(self, decoder: StreamDecoder, *,
                 on_frame: FrameListener | None = None,
                 on_reply: Callable[[Message], None] | None = None,
                 on_reset: Callable[[DeviceInfo], None] | None = None) -> None:
        self.decoder = decoder
        self.assembler = FrameAssembler(self._frame_done, on_lost=self._frame_lost)
        self.counts = ReceiveCounts()
        self.line_listeners: list[LineListener] = []
        self.frame_listeners: list[FrameListener] = []
        self.on_frame = on_frame
        self.on_reply = on_reply
        self.on_reset = on_reset
        self.first_info: DeviceInfo | None = None
        self.last_status: Status | None = None
        self.logs: deque[str] = deque(maxlen=50)
        self._last_seq: int | None = None

    def feed(self, data: bytes, host_ns: int) -> None:
        """One chunk as the port delivered it, at host time ``host_ns``."""
        for msg in self.decoder.feed(data):
            seq = msg.seq
            gap = 0
            if seq is not None:
                gap = seq_gap(self._last_seq, seq) or 0  # a reset loses nothing countable
                self._last_seq = seq
            if isinstance(msg, EchoLine):
                self.counts.lines_received += 1
                for listener in self.line_listeners:
                    listener(msg, host_ns)
                self.assembler.add_line(msg, host_ns, gap)
            elif isinstance(msg, FrameEnd):
                self.assembler.add_frame_end(msg, host_ns, gap)
            elif isinstance(msg, Log):
                self.logs.append(msg.text)
                log.log(msg.level if msg.level in (10, 20, 30, 40) else 20, "device: %s",
                        msg.text)
            else:
                if isinstance(msg, DeviceInfo) and self.first_info is None:
                    self.first_info = msg
                if isinstance(msg, DeviceInfo) and msg.request_seq == UNSOLICITED:
                    # the board rebooted on its own (brown-out, watchdog, RESET)
                    self.counts.device_resets += 1
                    self.assembler.flush()
                    if self.on_reset is not None:
                        self.on_reset(msg)
                    continue
                if isinstance(msg, Status):
                    self.last_status = msg
                if self.on_reply is not None and getattr(msg, "request_seq", None) is not None:
                    self.on_reply(msg)

    def restart(self) -> None:
        """After the link came back: hand on the partial sweep, forget partial input."""
        self.assembler.flush()
        self.decoder.reset()
        self._last_seq = None

    def _frame_done(self, frame: Frame) -> None:
        c = self.counts
        if frame.complete:
            c.frames_complete += 1
        else:
            c.frames_incomplete += 1
        c.lines_missing += frame.n_missing
        c.lines_lost_link += frame.lost_link
        c.lines_lost_device += frame.lost_device
        for listener in self.frame_listeners:
            listener(frame)
        if self.on_frame is not None:
            self.on_frame(frame)

    def _frame_lost(self, frame_index: int, expected: int, device_sent: int) -> None:
        """A sweep of which nothing arrived but its FRAME_END."""
        c = self.counts
        c.frames_lost += 1
        c.lines_missing += expected
        dropped = max(0, expected - device_sent)
        c.lines_lost_device += dropped
        c.lines_lost_link += expected - dropped
