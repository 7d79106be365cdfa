"""The command side every board shares: the state machine, the NAK table and the RETRY cache.

A board answers GET_INFO, GET_STATUS, PING, STOP, CONFIGURE, START and RESET the same way
whatever it streams: BUSY while streaming, CONFIGURE checked by the protocol's rules, RESET only
with the capability, a remembered reply for a RETRY, a NAK for every rejected frame. Its own
part is what CONFIGURE, START and STOP do to its acquisition, and its STATUS. A subclass
overrides only those hooks (``on_configure``, ``on_start``, ``on_stop``, ``start_refusal``,
``status_reply``); replies wait in ``_replies`` for the board's ``pull``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace

from sonobridge.protocol import (
    UNSOLICITED,
    Ack,
    Capability,
    Configure,
    Decoder,
    DeviceInfo,
    DeviceState,
    ErrorCode,
    GetInfo,
    GetStatus,
    Message,
    Nak,
    Ping,
    Pong,
    Rejected,
    RejectReason,
    Reset,
    Start,
    Status,
    Stop,
)
from sonobridge.protocol.constants import PARTIAL_FRAME_TIMEOUT_S
from sonobridge.protocol.rules import RetryCache, check_configure


class ResetMark:
    """Queued after the ACK of RESET: the board reboots once the ACK is on its way."""


RESET = ResetMark()

#: the NAK a frame gets that arrived intact but cannot be used
REJECT_NAKS = {RejectReason.VERSION: ErrorCode.UNSUPPORTED_VERSION,
               RejectReason.FLAGS: ErrorCode.UNSUPPORTED_FLAG,
               RejectReason.TYPE: ErrorCode.UNKNOWN_TYPE,
               RejectReason.LENGTH: ErrorCode.BAD_LENGTH}


class CommandResponder:
    """Commands in, replies queued (see the module docstring)."""

    state: int
    config_id: int
    _boot_s: float

    @property
    def info(self) -> DeviceInfo:
        """What the board announces in DEVICE_INFO."""
        raise NotImplementedError

    # -- what every board does -------------------------------------------------------------------

    def boot_receiver(self, *, announce: bool = False) -> None:
        """At power-on: empty reply queue, a fresh receiver and RETRY memory, and the
        unsolicited DEVICE_INFO of a board that rebooted by itself if ``announce``."""
        self._replies: deque[Message | ResetMark] = deque()
        # a device's receiver: a truncated command must not hold the next one hostage
        self._decoder = Decoder(on_reject=self._on_reject,
                                partial_timeout_s=PARTIAL_FRAME_TIMEOUT_S)
        self._retry = RetryCache()
        if announce:
            self._replies.append(replace(self.info, request_seq=UNSOLICITED))

    def feed(self, data: bytes, now_s: float) -> None:
        """Take bytes the host sent at ``now_s`` (none: a timer tick); replies go to pull.

        The engine calls this every tick, with or without bytes, so a partial command held
        across the idle gap (``PARTIAL_FRAME_TIMEOUT_S``) is abandoned on time and what
        arrived behind it is answered.
        """
        for msg in self._decoder.feed(data, now_s):
            self._replies.extend(
                self._retry.replies(msg, lambda m, seq: self.respond(m, seq, now_s)))

    def device_time_us(self, now_s: float) -> int:
        """The device clock (µs since boot) at host time ``now_s``."""
        return max(0, round((now_s - self._boot_s) * 1e6))

    def respond(self, msg: Message, seq: int, now_s: float) -> list:
        """The replies to one command (a RETRY of the last one never gets here)."""
        t = msg.MSG_TYPE
        if isinstance(msg, GetInfo):
            return [replace(self.info, request_seq=seq)]
        if isinstance(msg, GetStatus):
            return [self.status_reply(seq, now_s)]
        if isinstance(msg, Ping):
            return [Pong(request_seq=seq, token=msg.token,
                         device_time_us=self.device_time_us(now_s), data=msg.data)]
        if isinstance(msg, Stop):
            self.state = DeviceState.IDLE
            self.on_stop(now_s)
            return [Ack(seq, t)]
        if isinstance(msg, Configure):
            if self.state == DeviceState.STREAMING:
                return [self.nak(seq, t, ErrorCode.BUSY, text="STOP before CONFIGURE")]
            if v := check_configure(msg, self.info):
                return [self.nak(seq, t, v.code, v.field_id, v.message)]
            self.config_id = (self.config_id + 1) & 0xFFFF
            return [Ack(seq, t), *self.on_configure(msg, now_s)]
        if isinstance(msg, Start):
            if self.state == DeviceState.STREAMING:
                return [self.nak(seq, t, ErrorCode.BUSY, text="already streaming")]
            refused = self.start_refusal()
            if refused is not None:
                return [self.nak(seq, t, refused[0], text=refused[1])]
            self.on_start(msg.n_frames, now_s)
            return [Ack(seq, t)]
        if isinstance(msg, Reset):
            if not self.info.capabilities & Capability.RESET:
                return [self.nak(seq, t, ErrorCode.UNSUPPORTED, text="no RESET capability")]
            return [Ack(seq, t), RESET]
        return [self.nak(seq, t, ErrorCode.UNKNOWN_TYPE, text=f"{t.name} is not a command")]

    def nak(self, seq: int, msg_type: int, code: ErrorCode, field_id: int = 0,
            text: str = "") -> Nak:
        """A NAK (a simulated faulty firmware overrides this)."""
        return Nak(request_seq=seq, request_type=msg_type, error_code=code, field_id=field_id,
                   text=text)

    def _on_reject(self, r: Rejected) -> None:
        self._replies.append(self.nak(r.seq, r.msg_type, REJECT_NAKS[r.reason],
                                      text=r.detail[:200]))

    # -- what each board does its own way --------------------------------------------------------

    def status_reply(self, request_seq: int, now_s: float) -> Status:
        """STATUS now."""
        raise NotImplementedError

    def on_configure(self, msg: Configure, now_s: float) -> list[Message]:
        """Take a valid CONFIGURE (``config_id`` is already counted); extra replies, if any."""
        return []

    def start_refusal(self) -> tuple[ErrorCode, str] | None:
        """Why START cannot go ahead now (a hardware fault), or None."""
        return None

    def on_start(self, n_frames: int, now_s: float) -> None:
        """Begin streaming (``n_frames`` 0: until STOP); set ``state`` to STREAMING."""
        raise NotImplementedError

    def on_stop(self, now_s: float) -> None:
        """Streaming stopped (``state`` is already IDLE)."""
