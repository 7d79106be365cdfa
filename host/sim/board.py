"""The simulated board: the complete device side of protocol v1, as bytes in and bytes out.

``SimBoard`` knows nothing about ptys, threads or link speeds. The board-side engine
(``sonobridge.board.engine``) feeds it the host's bytes with :meth:`SimBoard.feed` and pulls
the device's frames with :meth:`SimBoard.pull`, passing the current time. Acquisition follows
the configured PRF on that clock. Lines the link cannot take wait in a bounded send buffer,
and when it is full they are dropped and counted, exactly as a real board with a slow USB link
behaves; the engine notes why the link takes less than is due (its speed, a stall, a host that
does not read), so the board's log names the true cause.

Every frame the board sends can be kept as ground truth (``record_truth=True``), so tests can
compare what the host received bit for bit.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from sonobridge.board.engine import HostDrop
from sonobridge.board.responder import CommandResponder, ResetMark
from sonobridge.protocol import (
    Capability,
    Configure,
    DeviceInfo,
    DeviceState,
    EchoLine,
    ErrorCode,
    Flags,
    FrameEnd,
    Log,
    LogLevel,
    Message,
    Nak,
    Status,
    encode,
    next_seq,
)
from sonobridge.protocol.constants import (
    frame_len,
    sample_nbytes,
)
from sonobridge.protocol.rules import nominal_positions
from sonobridge.protocol.samples import MAX_ADC_BITS
from sonobridge.protocol.structs import ECHO_LINE_HEADER_SIZE

from .profile import BoardProfile

#: STATUS.fault_flags bits
FAULT_HV = 0x01
FAULT_ADC = 0x02
FAULT_OVERTEMP = 0x04
FAULT_OVERFLOW = 0x08

_FRAME_END_LEN = frame_len(16)

#: why the send buffer overflowed, by the cause the engine notes (:meth:`SimBoard.note_link`)
OVERFLOW_CAUSES = {
    "limited": "link too slow for this PRF and line size",
    "stalled": "the link stalled",
    "refused": "the host is not reading the port in time",
    "injected": "injected overflow fault",
    "late": "this host did not run the simulated board for over a second",
}

#: in the send queue: a line acquired while this host did not run an in-process board, sent
#: as a gap the host counts as its own loss (see ``SimBoard.late_is_host_loss``)
_HOST_GAP = object()


@dataclass(frozen=True)
class RenderRequest:
    """Everything a physics model needs to produce one sweep's samples."""

    config: Configure
    info: DeviceInfo
    frame_index: int
    #: firing times in seconds on the device clock, ``(lines_per_frame * ensemble_size,)``
    firing_times_s: np.ndarray
    #: beam position of each line (µrad or µm per ``info.sweep_kind``), ``(lines_per_frame,)``
    positions: np.ndarray


class FrameRenderer(Protocol):
    """Produces the samples of one sweep; implemented by the phantom physics.

    A renderer may also define ``prepare(config, info)`` for slow one-time work per
    configuration. The board runs it on a worker thread when a configuration is accepted and
    holds acquisition back until it is done, as a real board waits for its front end to
    settle, so commands are still answered at once.
    """

    def render(self, request: RenderRequest) -> np.ndarray:
        """Samples ``(lines_per_frame * ensemble_size, samples_per_line)`` in the wire dtype.

        Rows are in firing order: all ensemble firings of line 0, then line 1, and so on.
        """
        ...


class SimBoard(CommandResponder):
    """A simulated ultrasound board speaking protocol v1 (see the module docstring)."""

    def __init__(
        self,
        profile: BoardProfile,
        renderer: FrameRenderer,
        *,
        seed: int = 0,
        overflow_rate: float = 0.0,
        wrong_nak: bool = False,
        hv_fault: bool = False,
        record_truth: bool = False,
        now_s: float = 0.0,
    ) -> None:
        if not 0.0 <= overflow_rate < 1.0:
            raise ValueError(f"overflow_rate must be in [0, 1), got {overflow_rate}")
        self.profile = profile
        self.renderer = renderer
        self.overflow_rate = overflow_rate
        self.wrong_nak = wrong_nak
        self.hv_fault = hv_fault
        self.record_truth = record_truth
        #: (seq, message) of every frame sent, when ``record_truth`` is set
        self.truth: list[tuple[int, Message]] = []
        self.boots = 0
        #: why the link takes less than is due (see :meth:`note_link`)
        self.link_cause = "limited"
        #: set for a board in the client's own process (``sim://``): lines it cannot keep
        #: because the host did not run it in time are sent as gaps (:class:`HostDrop`) and
        #: counted by the client as its own loss, not dropped as the device's
        self.late_is_host_loss = False
        self._skip_cause = "limited"
        self._rng = np.random.default_rng(seed)
        self._prepare_lock = threading.Lock()
        self._flags = Flags.SIMULATED if profile.info.capabilities & Capability.SIMULATED else 0
        self.power_on(now_s)

    # -- lifecycle -------------------------------------------------------------------------------

    def power_on(self, now_s: float, *, announce: bool = False) -> None:
        """Boot (or reboot): sequence 0, power-up configuration, idle, empty buffers."""
        self.boots += 1
        self._boot_s = now_s
        self._seq = 0
        self.config = self.profile.defaults
        self.config_id = 0
        self.state = DeviceState.IDLE
        self.fault_flags = FAULT_HV if self.hv_fault else 0
        self.dropped_lines = 0
        self.lines_sent = 0
        self._stream: deque[tuple[Message, int]] = deque()
        self._stream_bytes = 0
        self._overflow_logged = False
        self._prepare(self.config)
        self.boot_receiver(announce=announce)

    def _prepare(self, config: Configure) -> None:
        """Start the renderer's one-time work for ``config`` in the background."""
        ready = threading.Event()
        self._ready = ready
        prepare = getattr(self.renderer, "prepare", None)
        if prepare is None:
            ready.set()
            return

        def work() -> None:
            try:
                with self._prepare_lock:
                    # a configuration replaced while this one waited needs no preparing
                    if self.config is config:
                        prepare(config, self.info)
            finally:
                ready.set()

        threading.Thread(target=work, name="sim-prepare", daemon=True).start()

    def wait_ready(self, timeout_s: float | None = None) -> bool:
        """Block until the renderer is prepared for the current configuration."""
        return self._ready.wait(timeout_s)

    @property
    def info(self) -> DeviceInfo:
        """What the board announces in DEVICE_INFO."""
        return self.profile.info

    @property
    def acquiring(self) -> bool:
        """True while streaming with the front end ready (firings are happening)."""
        return self.state == DeviceState.STREAMING and self._ready.is_set()

    @property
    def pending_bytes(self) -> int:
        """Bytes waiting in the device's send buffer."""
        return self._stream_bytes

    @property
    def seq(self) -> int:
        """Sequence number of the next frame the board sends."""
        return self._seq

    # -- host → device ---------------------------------------------------------------------------

    def feed(self, data: bytes, now_s: float) -> None:
        """Take bytes the host sent at ``now_s`` (see :meth:`CommandResponder.feed`)."""
        self._now = now_s
        super().feed(data, now_s)

    # -- the simulated board's own part of the commands ------------------------------------------

    def on_configure(self, msg: Configure, now_s: float) -> list[Message]:
        """Keep the configuration and start the renderer's one-time work for it."""
        self.config = replace(msg, seq=None, flags=0)
        self._prepare(self.config)
        return []

    def start_refusal(self) -> tuple[ErrorCode, str] | None:
        """A faulty high-voltage supply refuses START."""
        if self.fault_flags & FAULT_HV:
            return ErrorCode.HARDWARE_FAULT, "high-voltage supply fault: check the pulser supply"
        return None

    def on_start(self, n_frames: int, now_s: float) -> None:
        """Fire from now on the PRF grid."""
        self._start(n_frames, now_s)

    def nak(self, seq: int, msg_type: int, code: ErrorCode, field_id: int = 0,
            text: str = "") -> Nak:
        """A NAK; with the ``wrong-nak`` fault, a buggy firmware's code."""
        if self.wrong_nak:
            code = ErrorCode(code % len(ErrorCode) + 1)
        return super().nak(seq, msg_type, code, field_id, text)

    def status_reply(self, request_seq: int, now_s: float) -> Status:
        """STATUS now."""
        return self._status(request_seq, now_s)

    def _status(self, request_seq: int, now_s: float) -> Status:
        capacity = max(1, self.profile.send_buffer_bytes)
        hv = self.config.hv_mv if self.state == DeviceState.STREAMING else 0
        state = DeviceState.FAULT if self.fault_flags & FAULT_HV else self.state
        return Status(
            request_seq=request_seq, state=state, fault_flags=self.fault_flags,
            temperature_cdeg=round(self.profile.temperature_c * 100),
            hv_mv=hv, device_time_us=self.device_time_us(now_s),
            dropped_lines=self.dropped_lines & 0xFFFFFFFF,
            lines_sent=self.lines_sent & 0xFFFFFFFF,
            buffer_fill_permille=min(1000, self._stream_bytes * 1000 // capacity),
            config_id=self.config_id,
        )

    # -- acquisition -----------------------------------------------------------------------------

    def _start(self, n_frames: int, now_s: float) -> None:
        cfg = self.config
        self.state = DeviceState.STREAMING
        self._t_start = now_s
        self._n_frames = n_frames
        self._fired = 0
        self._per_frame = cfg.lines_per_frame * cfg.ensemble_size
        self._positions = np.round(nominal_positions(cfg)).astype(np.int64)
        self._sample_rate = round(self.info.adc_rate_hz / cfg.decimation)
        nbytes = sample_nbytes(cfg.sample_format, cfg.samples_per_line) or 0
        self._line_bytes = frame_len(ECHO_LINE_HEADER_SIZE + nbytes)
        # U8 carries the top 8 bits of a wider ADC, packed 12-bit at most 12
        self._adc_bits = min(self.info.adc_bits, MAX_ADC_BITS[cfg.sample_format])
        self._frame_samples: np.ndarray | None = None
        self._frame_sent = 0
        self._overflow_logged = False

    def _advance(self, now_s: float, *, hold: bool = False) -> bool:
        """Acquire every firing due by ``now_s`` into the send buffer (or drop it if full).

        With ``hold``, stop instead at the first line that does not fit (returning True), so
        the caller can send first and come back: the link was sending all along.
        """
        if self.state != DeviceState.STREAMING:
            return False
        if not self._ready.is_set():
            self._t_start = now_s  # the front end is still settling: the sweep starts later
            return False
        cfg = self.config
        due = math.floor((now_s - self._t_start) * cfg.prf_hz) + 1
        if self._n_frames:
            due = min(due, self._n_frames * self._per_frame)
        capacity = self.profile.send_buffer_bytes
        while self._fired < due:
            if hold and self._stream and self._stream_bytes + self._line_bytes > capacity:
                return True
            k = self._fired
            frame, idx = divmod(k, self._per_frame)
            if idx == 0:
                self._frame_sent = 0
                # a full buffer cannot drain while we acquire, so a frame that cannot start
                # would be dropped whole: count it without rendering it
                if self._stream_bytes + self._line_bytes > capacity:
                    self._frame_samples = None
                    self._skip_cause = self.link_cause
                else:
                    self._frame_samples = self._render(frame)
            line, ens = divmod(idx, cfg.ensemble_size)
            overflow = self._stream_bytes + self._line_bytes > capacity
            injected = self.overflow_rate and self._rng.random() < self.overflow_rate
            if overflow or injected or self._frame_samples is None:
                cause = (self.link_cause if overflow else
                         self._skip_cause if self._frame_samples is None else "injected")
                self._log_overflow(cause)
                if cause == "late" and self.late_is_host_loss:
                    self._stream.append((_HOST_GAP, self._line_bytes))  # holds no memory
                    self.lines_sent += 1
                    self._frame_sent += 1
                else:
                    self.dropped_lines += 1
                    self.fault_flags |= FAULT_OVERFLOW
            else:
                t_fire = self._t_start + k / cfg.prf_hz
                msg = EchoLine(
                    self._frame_samples[idx], self._sample_rate,
                    frame_index=frame & 0xFFFFFFFF, line_index=line,
                    lines_per_frame=cfg.lines_per_frame,
                    beam_position=int(self._positions[line]), sweep_kind=self.info.sweep_kind,
                    ensemble_index=ens, ensemble_size=cfg.ensemble_size,
                    start_delay_samples=cfg.start_delay_samples,
                    timestamp_us=self.device_time_us(t_fire), config_id=self.config_id,
                    adc_bits=self._adc_bits, sample_format=cfg.sample_format,
                )
                self._queue(msg, self._line_bytes)
                self.lines_sent += 1
                self._frame_sent += 1
            self._fired += 1
            if idx == self._per_frame - 1:
                t_end = self._t_start + (k + 1) / cfg.prf_hz
                self._queue(FrameEnd(frame & 0xFFFFFFFF, self._frame_sent & 0xFFFF,
                                     cfg.lines_per_frame, self.device_time_us(t_end)),
                            _FRAME_END_LEN)
                if self._n_frames and frame + 1 >= self._n_frames:
                    self.state = DeviceState.IDLE
                    return False
        return False

    def _render(self, frame: int) -> np.ndarray:
        cfg = self.config
        k0 = frame * self._per_frame
        times = self._t_start - self._boot_s + (k0 + np.arange(self._per_frame)) / cfg.prf_hz
        samples = self.renderer.render(RenderRequest(
            config=cfg, info=self.info, frame_index=frame, firing_times_s=times,
            positions=self._positions))
        if samples.shape != (self._per_frame, cfg.samples_per_line):
            raise RuntimeError(f"renderer returned {samples.shape}, expected "
                               f"{(self._per_frame, cfg.samples_per_line)}")
        return samples

    def _queue(self, msg: Message, nbytes: int) -> None:
        self._stream.append((msg, nbytes))
        self._stream_bytes += nbytes

    def note_link(self, cause: str) -> None:
        """Why the link takes less than is due now: one of :data:`OVERFLOW_CAUSES`' keys.

        The engine says it before each :meth:`pull`, so the log names the true cause of an
        overflow rather than always blaming the link's speed.
        """
        self.link_cause = cause

    def _log_overflow(self, cause: str) -> None:
        if not self._overflow_logged:
            self._overflow_logged = True
            why = OVERFLOW_CAUSES.get(cause, OVERFLOW_CAUSES["limited"])
            self._replies.append(Log(level=LogLevel.WARNING,
                                     text=f"send buffer full: dropping lines ({why})"))

    # -- device → host ---------------------------------------------------------------------------

    def pull(self, now_s: float, budget_bytes: float = math.inf) -> list[tuple[int, bytes]]:
        """Acquire what is due, then hand out whole frames worth up to ``budget_bytes``.

        Replies go before queued lines, as a device answers commands while streaming. The
        last frame may overshoot the budget; the caller carries the debt. A late call (the
        host's CPU ran something else) does not overflow the send buffer while the budget
        lasts: acquiring and sending alternate, as they overlap on a board.
        """
        out: list[tuple[int, bytes]] = []
        used = 0.0
        while True:
            held = self._advance(now_s, hold=True)
            used = self._send(out, used, budget_bytes, now_s)
            if not held:
                return out
            if used >= budget_bytes:
                self._advance(now_s)  # the link is done for now: what does not fit is dropped
                return out

    def _send(self, out: list[tuple[int, bytes]], used: float, budget_bytes: float,
              now_s: float) -> float:
        """Encode replies, then queued lines, into ``out`` while ``used < budget_bytes``."""
        while used < budget_bytes:
            if self._replies:
                msg = self._replies.popleft()
                if isinstance(msg, ResetMark):
                    self.power_on(now_s, announce=True)
                    continue
            elif self._stream:
                msg, nbytes = self._stream.popleft()
                if msg is _HOST_GAP:  # it takes its sequence number, and no link time
                    out.append((self._seq, HostDrop(nbytes)))
                    self._seq = next_seq(self._seq)
                    continue
                self._stream_bytes -= nbytes
            else:
                break
            seq = self._seq
            frame = encode(msg, seq, flags=self._flags)
            self._seq = next_seq(seq)
            if self.record_truth:
                self.truth.append((seq, msg))
            out.append((seq, frame))
            used += len(frame)
        return used

    def next_due_s(self) -> float | None:
        """Host time of the next firing, or None when idle (for the transport's sleep)."""
        if self.state != DeviceState.STREAMING:
            return None
        return self._t_start + self._fired / self.config.prf_hz
