"""The ``open-echo`` dialect: an Open Echo (TUSS4470 shield) on its stock firmware.

The board only talks: from reset it sends one 0xAA frame per ping, at its own pace, and reads
nothing. So the dialect does everything on the host side:

* **Handshake.** It listens until the decoder (:class:`~sonobridge.protocol.boards.open_echo.
  OpenEchoDecoder`) has locked onto a frame format (v1 or v2, and N), and builds the nominal
  ``DeviceInfo`` of that build (``open_echo.device_info``). Nothing is sent to the board.
* **START / STOP** only open and close a gate on the host: pings that arrive while it is
  closed are decoded and counted (``stats.frames_ok``) but not handed on. The gate numbers the
  pings it lets through into sweeps of ``lines_per_frame`` (the host's grouping; the board has
  none), so M-mode and the echogram get ``FrameEnd``\\ s like any board's.
* **CONFIGURE** accepts only what the board does by itself (the build's N, format and ping
  rate) plus the host-side ``lines_per_frame``; anything else is a :class:`ConfigError` that
  says the board has no commands. STATUS, PING and RESET are refused the same way.
* **Losses.** The board sends no counter. The bytes the decoder had to throw away between two
  good frames while streaming (a frame failing its XOR, a frame cut short) are counted as
  that many frame lengths, rounded: pings lost on the link. The gate skips a sequence number
  for each, so each is counted as ``lines_lost_link`` in its sweep.
"""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import ClassVar

from sonobridge.protocol import (
    Ack,
    Configure,
    DeviceInfo,
    EchoLine,
    FrameEnd,
    GetInfo,
    Message,
    MsgType,
    Rejected,
    Start,
    Stop,
    next_seq,
)
from sonobridge.protocol.boards import open_echo
from sonobridge.protocol.boards.open_echo import (
    BURST_CYCLES,
    DEFAULT_SAMPLE_PERIOD_S,
    VARIANTS,
    OpenEchoDecoder,
    OpenEchoStats,
    OpenEchoVariant,
    device_info,
    nominal_ping_period_s,
)
from sonobridge.protocol.messages import payload_fields

from .config import AcquisitionConfig
from .dialect import TRANSLATED_COMMANDS, CommandChannel, unsupported
from .errors import ConfigError, HandshakeError

#: how long the handshake listens for the first frames: the R4 joins WiFi for about 1 s and
#: pings every ~0.25 s after; detection needs a frame and the next one's first byte
HANDSHAKE_S = 3.0
#: the decoder decides on held bytes after this idle gap (an R4 pauses ~0.17 s between frames)
PARTIAL_TIMEOUT_S = 0.5
#: frames whose arrival times are kept for the ping rate, and how many the handshake waits
#: for (two gaps; a board that sends fewer in HANDSHAKE_S gets its build's nominal rate)
RATE_FRAMES = 8
RATE_FRAMES_MIN = 3
#: what every refusal says
NO_COMMANDS = ("the Open Echo has no commands: its firmware streams on its own and reads "
               "nothing from the port")


class SweepGate:
    """The board's pings as the session's lines: numbered into sweeps while streaming.

    A ``StreamDecoder`` around an :class:`OpenEchoDecoder`. Thread use: ``feed``/``expire``
    run on the receive thread; ``begin``/``end`` on the command thread (plain attribute
    writes, read once per ping).
    """

    def __init__(self, inner: OpenEchoDecoder) -> None:
        self.inner = inner
        self.stats: OpenEchoStats = inner.stats
        self.lines_per_frame = 1
        self.streaming = False
        #: sweeps left in a finite run (0: until STOP)
        self.sweeps_left = 0
        #: set once the first frame decoded (the handshake waits for it)
        self.first_frame = threading.Event()
        #: arrival times (the reader's clock, s) of the last few frames, gated or not: the
        #: board's own ping rate, which it does not announce
        self.arrivals: deque[float] = deque(maxlen=RATE_FRAMES)
        self.frame_seen = threading.Condition()
        #: pings decoded while the gate was closed (not requested, so not lost)
        self.pings_ignored = 0
        self._frame = 0
        self._line = 0
        self._seq = 0
        #: ``bytes_discarded`` at the last good frame while streaming
        self._discard_mark = 0

    def begin(self, lines_per_frame: int, n_frames: int = 0) -> None:
        """Open the gate: the next ping starts sweep 0 (as a board's START does)."""
        self._frame = self._line = 0
        self.lines_per_frame = lines_per_frame
        self.sweeps_left = n_frames
        self._discard_mark = self.stats.bytes_discarded
        self.streaming = True

    def end(self) -> None:
        """Close the gate."""
        self.streaming = False

    def feed(self, data: bytes, now_s: float | None = None) -> list[Message]:
        """Bytes in any chunking → the session's lines and sweep ends."""
        # frames decided while the format was still being detected come in one burst (the
        # decoder holds the longest candidate's bytes first): their times say nothing
        timed = now_s is not None and self.inner.locked is not None
        messages = self.inner.feed(data, now_s)
        if timed and messages:
            with self.frame_seen:
                self.arrivals.extend(now_s for m in messages if isinstance(m, EchoLine))
                self.frame_seen.notify_all()
        return self._gate(messages)

    def ping_rate_hz(self) -> float | None:
        """The board's ping rate from the frames' arrival (None: too few frames yet)."""
        with self.frame_seen:
            times = list(self.arrivals)
        gaps = [b - a for a, b in itertools.pairwise(times) if b > a]
        return 1.0 / statistics.median(gaps) if len(gaps) >= 2 else None

    def expire(self, now_s: float) -> list[Message]:
        """Let the decoder decide on bytes held over an idle gap."""
        return self._gate(self.inner.expire(now_s))

    def reset(self) -> None:
        """Forget partial input and the detected format (after a reconnect)."""
        self.inner.reset()
        self._discard_mark = self.stats.bytes_discarded
        self.first_frame.clear()  # the format is detected again: a handshake waits for it
        self.arrivals.clear()

    def _gate(self, messages: list[Message]) -> list[Message]:
        out: list[Message] = []
        locked = self.inner.locked
        if self.streaming and locked is not None and any(
                isinstance(m, EchoLine) for m in messages):
            # bytes thrown away since the last good frame are pings lost on the link (a
            # failed XOR, a frame cut short): each takes its place in the sweep, and a skipped
            # seq tells the receiver so
            thrown = self.stats.bytes_discarded - self._discard_mark
            self._discard_mark = self.stats.bytes_discarded
            for _ in range(round(thrown / locked.length)):
                self._seq = next_seq(self._seq)
                self._advance(out)
        for msg in messages:
            if not isinstance(msg, EchoLine):
                continue  # the decoder's own FrameEnds: the gate makes the session's
            self.first_frame.set()
            if not self.streaming:
                self.pings_ignored += 1
                continue
            msg.frame_index, msg.line_index = self._frame, self._line
            msg.lines_per_frame = self.lines_per_frame
            self._emit(msg, out)
            self._advance(out)
        if not self.streaming:
            self._discard_mark = self.stats.bytes_discarded
        return out

    def _emit(self, msg: Message, out: list[Message]) -> None:
        msg.seq = self._seq
        self._seq = next_seq(self._seq)
        out.append(msg)

    def _advance(self, out: list[Message]) -> None:
        """One ping slot of the sweep used (received or lost); end the sweep when full."""
        self._line += 1
        if self._line < self.lines_per_frame:
            return
        self._emit(FrameEnd(frame_index=self._frame, lines_sent=self.lines_per_frame,
                            lines_per_frame=self.lines_per_frame), out)
        self._frame += 1
        self._line = 0
        if self.sweeps_left:
            self.sweeps_left -= 1
            if not self.sweeps_left:
                self.streaming = False  # a finite run ends by itself, as START n_frames does


class OpenEchoDialect:
    """An Open Echo: frames detected (or forced to v1/v2), host-side START/STOP, no commands."""

    board: ClassVar[str] = "Open Echo"
    #: the TUSS4470's logarithmic amplifier hands the ADC the echo's envelope
    envelope_samples: ClassVar[bool] = True
    device_clock: ClassVar[bool] = False
    settings_note: ClassVar[str] = (
        f"{NO_COMMANDS[0].upper()}{NO_COMMANDS[1:]}: only lines_per_frame (the pings the host "
        "groups into one sweep) can change")

    def __init__(self, version: str = "auto") -> None:
        self.version = version
        self.name = "open-echo" if version == "auto" else f"open-echo-{version}"
        self.gate: SweepGate | None = None
        self.info: DeviceInfo | None = None
        #: the build the handshake recognised
        self.variant: OpenEchoVariant | None = None
        self._fixed: Configure | None = None
        self._default: AcquisitionConfig | None = None
        #: pings per second measured at the handshake (None: too few frames to tell)
        self.measured_rate_hz: float | None = None
        self._lines_per_frame = 1

    def new_decoder(self, on_reject: Callable[[Rejected], None]) -> SweepGate:
        """The Open Echo decoder behind the session's gate (``on_reject``: nothing to reject)."""
        del on_reject
        self.gate = SweepGate(OpenEchoDecoder(self.version, partial_timeout_s=PARTIAL_TIMEOUT_S))
        return self.gate

    def encode(self, message: Message, seq: int, flags: int = 0) -> bytes:
        """The board reads nothing: there are no command bytes."""
        raise NotImplementedError(NO_COMMANDS)

    def handshake(self, channel: CommandChannel) -> DeviceInfo:
        """Listen for frames until the format and the ping rate are known; the build's info."""
        gate = self._gate()
        gate.end()
        deadline = time.monotonic() + HANDSHAKE_S
        with gate.frame_seen:
            gate.frame_seen.wait_for(lambda: len(gate.arrivals) >= RATE_FRAMES_MIN,
                                     HANDSHAKE_S)
        if not gate.first_frame.wait(max(0.0, deadline - time.monotonic())) or \
                gate.inner.locked is None:
            st = gate.stats
            text = f"; its last text line: {gate.inner.last_text!r}" if gate.inner.last_text \
                else ""
            raise HandshakeError(
                f"no Open Echo frames on {channel.port} in {HANDSHAKE_S:.0f} s "
                f"({channel.bytes_received} bytes received: {st.frames_bad} frames failed "
                f"their XOR, {st.header_errors} false syncs, {st.text_lines} text lines"
                f"{text}). Is the board powered and running its stock firmware, and is the "
                "baud rate 250000 (--baud 250000)?")
        locked = gate.inner.locked
        rate = gate.ping_rate_hz()
        self.variant = build_for(locked.version, locked.n_samples, rate)
        self.measured_rate_hz = rate
        self.info = device_info(self.variant, prf_hz=None if rate is None else
                                max(1, round(rate)))
        self._default = replace(AcquisitionConfig.default_for(self.info),
                                pulse_cycles=BURST_CYCLES)
        self._fixed = self._default.to_message()
        return self.info

    def default_config(self, info: DeviceInfo) -> AcquisitionConfig:
        """What the build does by itself (its N, its burst, its own ping rate)."""
        if self._default is None:
            raise HandshakeError("no Open Echo found yet: open the device first")
        return self._default

    def perform(self, channel: CommandChannel, message: Message) -> Message | None:
        """CONFIGURE checked against the build, START/STOP on the host's gate; else refused."""
        gate = self._gate()
        if isinstance(message, Configure):
            self._check(message)
            self._lines_per_frame = message.lines_per_frame
        elif isinstance(message, Start):
            gate.begin(self._lines_per_frame, message.n_frames)
        elif isinstance(message, Stop):
            gate.end()
        elif isinstance(message, GetInfo) and self.info is not None:
            return self.info
        else:
            return unsupported(message, NO_COMMANDS)
        return Ack(request_seq=0, request_type=int(message.MSG_TYPE))

    def nominal_fields(self) -> dict[str, str]:
        """Every DEVICE_INFO value this board cannot state, and why it was assumed."""
        fields = dict(open_echo.NOMINAL_FIELDS)
        if self.measured_rate_hz is not None:
            why = (f"the pings' arrival at the handshake: {self.measured_rate_hz:.2f}/s (the "
                   "board paces itself and announces nothing)")
            fields["prf_min_hz"] = fields["prf_max_hz"] = why
        return fields

    def supports(self, msg_type: MsgType) -> bool:
        """Only what the host does alone: CONFIGURE (checked), START, STOP, GET_INFO."""
        return msg_type in TRANSLATED_COMMANDS

    def in_flight(self) -> int:
        """Nothing: STOP closes the host's gate at once (the board never stops talking)."""
        return 0

    def close(self) -> None:
        """Close the gate; nothing runs beside the client."""
        if self.gate is not None:
            self.gate.end()

    def _gate(self) -> SweepGate:
        if self.gate is None:
            raise RuntimeError("new_decoder() was not called for this connection")
        return self.gate

    def _check(self, message: Configure) -> None:
        """Raise ConfigError for the first field the board cannot take (it has no commands)."""
        fixed = self._fixed
        if fixed is None:
            raise HandshakeError("configure() before the handshake found the board")
        for name in payload_fields(message):
            if name == "lines_per_frame":
                continue  # the host's grouping of pings into sweeps
            value, board = getattr(message, name), getattr(fixed, name)
            if value != board:
                build = self.variant.name if self.variant else "an unknown build"
                raise ConfigError(name, value, f"{board} only", (
                    f"{name} = {value} cannot be set: {NO_COMMANDS}. This build "
                    f"({build}) works with {name} = {board}; only lines_per_frame, the pings "
                    "the host groups into one sweep, can change"))


def build_for(version: str, n_samples: int, rate_hz: float | None) -> OpenEchoVariant:
    """The known build sending ``n_samples`` in ``version`` whose nominal ping rate is nearest
    ``rate_hz`` (an Uno R3 and an R4 send the same frames; the R4 pings slower), or a
    described unknown build."""
    builds = [v for v in VARIANTS if v.version == version and v.n_samples == n_samples]
    if not builds:
        return OpenEchoVariant(f"{version}-{n_samples}", version, n_samples,  # type: ignore
                               DEFAULT_SAMPLE_PERIOD_S, 10 if version == "v1" else 8, n_samples)
    if rate_hz is None:
        return builds[0]
    return min(builds, key=lambda v: abs(1 / nominal_ping_period_s(v) - rate_hz))


def auto() -> OpenEchoDialect:
    """The ``open-echo`` dialect: v1 or v2 detected."""
    return OpenEchoDialect("auto")


def v1() -> OpenEchoDialect:
    """The ``open-echo-v1`` dialect: frames taken as format v1 only."""
    return OpenEchoDialect("v1")


def v2() -> OpenEchoDialect:
    """The ``open-echo-v2`` dialect: frames taken as format v2 only."""
    return OpenEchoDialect("v2")
