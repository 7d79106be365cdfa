"""The client's receive path, without a port: bytes → messages → lines, sweeps and counts.

:class:`~sonobridge.device.client.Device` feeds it from the serial reader thread; the recorder's
``convert`` feeds it chunks from a raw capture, so a converted capture and a live session
count and assemble exactly alike.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sonobridge.protocol import UNSOLICITED, DeviceInfo, EchoLine, FrameEnd, Log, Message, Status
from sonobridge.protocol.decoder import seq_gap
from sonobridge.protocol.limits import device_info_problems, line_limit_problem

from .dialect import StreamDecoder
from .frames import Frame, FrameAssembler
from .listeners import ListenerSet

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
    #: lost because the host fell behind and its acquisition buffer overflowed
    lines_lost_host: int = 0
    #: intact ECHO_LINEs (and FRAME_ENDs) dropped: their sizes exceed what the board announced
    lines_malformed: int = 0
    device_resets: int = 0


class Receiver:
    """Decodes chunks, assembles sweeps, counts losses, and hands on replies and resets.

    ``on_frame`` runs after the frame listeners; ``on_reply`` gets every message that answers
    a command (it has a ``request_seq``); ``on_reset`` gets the unsolicited DEVICE_INFO of a
    board that rebooted by itself. All of it happens on the caller's thread.

    Every size in an ECHO_LINE is checked against the board's latest DEVICE_INFO before
    anything is allocated for it (:func:`sonobridge.protocol.rules.line_limit_problem`); a line
    that exceeds it, or arrives before any DEVICE_INFO, is dropped and counted as malformed.
    """

    #: no sweep buffer is allocated beyond this, whatever the board announced
    max_frame_bytes = 1 << 30

    def __init__(self, decoder: StreamDecoder, *,
                 on_frame: FrameListener | None = None,
                 on_reply: Callable[[Message], None] | None = None,
                 on_reset: Callable[[DeviceInfo], None] | None = None) -> None:
        self.decoder = decoder
        self.assembler = FrameAssembler(self._frame_done, on_lost=self._frame_lost)
        self.counts = ReceiveCounts()
        self.line_listeners = ListenerSet("line listener")
        self.frame_listeners = ListenerSet("frame listener")
        self.on_frame = on_frame
        self.on_reply = on_reply
        self.on_reset = on_reset
        self.first_info: DeviceInfo | None = None
        self.last_status: Status | None = None
        self.logs: deque[str] = deque(maxlen=50)
        #: the board's announced limits: the latest DEVICE_INFO seen (or given by the owner)
        self.limits: DeviceInfo | None = None
        self._last_seq: int | None = None
        self._host_gap = False
        #: messages missing (by sequence number) not yet placed at a line or FRAME_END
        self._gap_link = self._gap_host = 0
        self._lost_to_host = False
        self._malformed_logged = 0

    def feed(self, data: bytes, host_ns: int) -> None:
        """One chunk as the port delivered it, at host time ``host_ns``."""
        for msg in self.decoder.feed(data, host_ns / 1e9):
            self._handle(msg, host_ns)

    def tick(self, host_ns: int) -> None:
        """Nothing arrived lately: let the decoder give up on a long-unfinished frame."""
        for msg in self.decoder.expire(host_ns / 1e9):
            self._handle(msg, host_ns)

    def _handle(self, msg: Message, host_ns: int) -> None:
        """One decoded message: count it, place it, or hand it on."""
        seq = msg.seq
        if seq is not None:
            gap = seq_gap(self._last_seq, seq) or 0  # a reset loses nothing countable
            self._last_seq = seq
            if self._host_gap:  # what is missing here was dropped by the host
                self._gap_host += gap
                self._host_gap = False
            else:
                self._gap_link += gap
        if isinstance(msg, (EchoLine, FrameEnd)):
            problem = self._limit_problem(msg)
            if problem is not None:  # the gap stays pending for the next good message
                self._malformed(msg, problem)
                return
            # the gap before a reply is counted at the next line or FRAME_END, whose
            # sweep (or the sweeps before it) it emptied
            gap, host_gap = self._gap_link, self._gap_host
            self._gap_link = self._gap_host = 0
        if isinstance(msg, EchoLine):
            self.counts.lines_received += 1
            self.line_listeners.call(msg, host_ns)
            self._lost_to_host = host_gap > 0
            self.assembler.add_line(msg, host_ns, gap, host_gap)
        elif isinstance(msg, FrameEnd):
            self._lost_to_host = host_gap > 0
            self.assembler.add_frame_end(msg, host_ns, gap, host_gap)
        elif isinstance(msg, Log):
            self.logs.append(msg.text)
            log.log(msg.level if msg.level in (10, 20, 30, 40) else 20, "device: %s",
                    msg.text)
        else:
            if isinstance(msg, DeviceInfo) and not device_info_problems(msg):
                self.limits = msg  # an impossible one bounds nothing: keep the last good
                if self.first_info is None:
                    self.first_info = msg
            if isinstance(msg, DeviceInfo) and msg.request_seq == UNSOLICITED:
                # the board rebooted on its own (brown-out, watchdog, RESET)
                self.counts.device_resets += 1
                self.assembler.flush()
                if self.on_reset is not None:
                    self.on_reset(msg)
                return
            if isinstance(msg, Status):
                self.last_status = msg
            if self.on_reply is not None and getattr(msg, "request_seq", None) is not None:
                self.on_reply(msg)

    def restart(self) -> None:
        """After the link came back: hand on the partial sweep, forget partial input."""
        self.assembler.flush()
        self.decoder.reset()
        self._last_seq = None
        self._gap_link = self._gap_host = 0

    def host_gap(self, n_bytes: int) -> None:
        """The host dropped ``n_bytes`` here (its acquisition buffer overflowed).

        The frame in progress cannot be completed across the gap, so the decoder forgets it;
        the sequence gap that shows at the next message is the host's loss, not the link's.
        """
        self.decoder.reset()  # its own seq tracking restarts too: no false link gap there
        self._host_gap = True

    @property
    def listener_errors(self) -> int:
        """Exceptions raised by line and frame listeners so far."""
        return self.line_listeners.errors + self.frame_listeners.errors

    def _limit_problem(self, msg: EchoLine | FrameEnd) -> str | None:
        """Why ``msg`` claims more than the board announced (or this host allows), if it does."""
        if isinstance(msg, FrameEnd):
            info = self.limits
            if info is not None and msg.lines_per_frame > info.max_lines_per_frame:
                return (f"claims lines_per_frame = {msg.lines_per_frame}, above its DEVICE_INFO "
                        f"max_lines_per_frame {info.max_lines_per_frame}")
            return None
        problem = line_limit_problem(msg, self.limits)
        frame_bytes = msg.lines_per_frame * msg.ensemble_size * msg.samples.nbytes
        if problem is None and frame_bytes > self.max_frame_bytes:
            problem = (f"makes a sweep of {frame_bytes / 2**20:.0f} MiB, above this "
                       f"host's limit of {self.max_frame_bytes / 2**20:.0f} MiB")
        return problem

    def _malformed(self, msg: EchoLine | FrameEnd, problem: str) -> None:
        self.counts.lines_malformed += 1
        name = self.limits.board_name if self.limits is not None else "the board"
        # the first few are worth reading; a flood of them must not flood the log
        if self._malformed_logged < 5 or self.counts.lines_malformed % 1000 == 0:
            self._malformed_logged += 1
            log.warning("%s sent an %s (seq %s) that %s; dropped as malformed (%d so far)",
                        name, msg.MSG_TYPE.name, msg.seq, problem, self.counts.lines_malformed)

    def _frame_done(self, frame: Frame) -> None:
        c = self.counts
        if frame.complete:
            c.frames_complete += 1
        else:
            c.frames_incomplete += 1
        c.lines_missing += frame.n_missing
        c.lines_lost_link += frame.lost_link
        c.lines_lost_device += frame.lost_device
        c.lines_lost_host += frame.lost_host
        self.frame_listeners.call(frame)
        if self.on_frame is not None:
            self.on_frame(frame)

    def _frame_lost(self, frame_index: int, per_sweep: int, device_sent: int | None,
                    n_sweeps: int = 1) -> None:
        """Sweeps of which no line arrived (``device_sent`` None: nor their FRAME_ENDs)."""
        c = self.counts
        c.frames_lost += n_sweeps
        expected = per_sweep * n_sweeps
        c.lines_missing += expected
        dropped = 0 if device_sent is None else max(0, expected - device_sent)
        c.lines_lost_device += dropped
        if self._lost_to_host:
            c.lines_lost_host += expected - dropped
        else:
            c.lines_lost_link += expected - dropped
