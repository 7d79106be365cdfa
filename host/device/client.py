"""The device client: what every tool uses to talk to a board, simulated or real.

    from sonobridge.device import open_device
    with open_device("sim://?phantom=cyst") as dev:
        print(dev.info.board_name)
        dev.configure(depth_m=0.05, prf_hz=2000)
        dev.start()
        for frame in dev.frames(timeout=2.0, count=10):
            print(frame.index, frame.samples.shape, frame.complete)
        print(dev.stats.summary())

Threads: an acquisition reader (its own process where the OS allows, see
``acquisition.py``) only copies the port's bytes into a buffer holding over a second of data;
the link's receive thread decodes them and assembles frames into a bounded queue (oldest
dropped and counted when the consumer is slow); listeners registered with
:meth:`Device.add_line_listener` see every line on the receive thread and are never skipped.
A listener that raises is counted, logged by name, and removed after repeated failures. If the
receive thread stops, or the board changes protocol mid-session, the state becomes
``"failed"`` and every call raises :class:`DeviceFailed` saying why.
A supervisor thread re-handshakes after a disconnect or a device reset, and resumes streaming
if it was on. Commands carry sequence numbers, wait for ACK/NAK, and are retried (same seq,
RETRY flag) a bounded number of times.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from typing import Any

from sonobridge.protocol import (
    Ack,
    DecoderStats,
    DeviceInfo,
    Flags,
    GetStatus,
    Message,
    MsgType,
    Nak,
    Ping,
    Pong,
    Rejected,
    RejectReason,
    Reset,
    Start,
    Status,
    Stop,
    next_seq,
)
from sonobridge.protocol.boards.open_echo import BAUDRATE as OPEN_ECHO_BAUDRATE
from sonobridge.protocol.limits import status_problems
from sonobridge.protocol.rules import reply_matches
from sonobridge.protocol.structs import CONFIGURE_FIELD_IDS

from .accounting import LOSS_CAUSES, LossAccount, adjust_for_stop, stop_cut
from .acquisition import DEFAULT_CAPACITY
from .config import AcquisitionConfig, validate
from .detect import Probe, detect
from .dialect import AUTO, Dialect, ProtocolV1, get_dialect
from .errors import (
    CommandTimeout,
    ConfigError,
    DeviceError,
    DeviceFailed,
    FrameTimeout,
    ImpossibleInfo,
    NakError,
    ProtocolMismatch,
)
from .frames import Frame
from .link import DEFAULT_BAUDRATE, LinkCounters, SerialLink
from .listeners import ListenerSet
from .ports import dialect_hint, usb_ids
from .receiver import FrameListener, LineListener, ReceiveCounts, Receiver

log = logging.getLogger("sonobridge.device")

V1_NAME = ProtocolV1.name

_FIELD_NAMES = {v: k for k, v in CONFIGURE_FIELD_IDS.items()}


class ClientState(str, Enum):
    """The client's connection state (not the board's ``DeviceState``).

    A ``str`` enum (Python 3.10 has no ``StrEnum``): ``dev.state == "connected"`` keeps
    working, and ``on_state`` gets the value.
    """

    def __str__(self) -> str:
        """The value, as a ``StrEnum`` (Python 3.11+) prints it."""
        return str(self.value)

    CLOSED = "closed"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    FAILED = "failed"


@dataclass
class ClientCounts:
    """What the client itself counts: commands, their retries and refusals, frames skipped."""

    commands: int = 0
    command_retries: int = 0
    naks: int = 0
    #: replies whose seq matched a waiting command but whose type did not (ignored)
    stray_replies: int = 0
    #: the frames the consumer of ``frames()`` never saw because it was too slow (recorders and
    #: line listeners still got them)
    frames_dropped_queue: int = 0


class _Counter:
    """A read-only flat name for one counter of a composed part: ``stats.crc_errors``."""

    def __init__(self, part: str, name: str = "") -> None:
        self.part = part
        self.name = name

    def __set_name__(self, owner: type, attr: str) -> None:
        self.name = self.name or attr

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        return getattr(getattr(obj, self.part), self.name)

    def __set__(self, obj: object, value: object) -> None:
        raise AttributeError(f"{self.name} is read-only here: it is {self.part}.{self.name}")


@dataclass
class DeviceStats:
    """A snapshot of the link, decoder, receive-path and client counters, and the last STATUS.

    The parts are copies of each layer's own counters (``link``, ``decoder``, ``receive``,
    ``client``); the flat names (``stats.crc_errors``, ``stats.lines_lost_host``, …) read them,
    and :meth:`as_dict` gives them as one flat dict for reports and recordings.
    """

    port: str = ""
    #: the wire dialect the board speaks ("sonobridge-v1", "pic0rick-shell", "open-echo", …)
    dialect: str = ""
    elapsed_s: float = 0.0
    mb_per_s: float = 0.0
    lines_per_s: float = 0.0
    frames_per_s: float = 0.0
    link: LinkCounters = field(default_factory=LinkCounters)
    decoder: DecoderStats = field(default_factory=DecoderStats)
    receive: ReceiveCounts = field(default_factory=ReceiveCounts)
    client: ClientCounts = field(default_factory=ClientCounts)
    #: exceptions raised by line, frame and byte listeners (caught; see ``listeners.py``)
    listener_errors: int = 0
    #: firings the last sweep lacks because STOP ended it early (never acquired, so not lost);
    #: the parts above keep the receive path's own figures, :attr:`account` moves these out
    lines_cut_by_stop: int = 0
    #: from the most recent STATUS (None until one arrived); ``device_dropped_lines`` is the
    #: board's counter since it booted, over every session
    device_dropped_lines: int | None = None
    #: the board's counter in the last STATUS before this session's first START (None: no
    #: STATUS then), so ``device_dropped_lines`` minus it is what the board dropped since
    device_dropped_at_start: int | None = None
    temperature_c: float | None = None
    hv_v: float | None = None
    buffer_fill: float | None = None
    #: STATUS values that cannot be true (shown flagged, never as facts)
    status_problems: list[str] = field(default_factory=list)
    #: "connected", "disconnected", "failed", ...; ``failure`` says why it failed
    state: str = ""
    failure: str = ""
    logs: list[str] = field(default_factory=list)

    connected = _Counter("link")
    bytes_in = _Counter("link")
    bytes_out = _Counter("link")
    disconnects = _Counter("link")
    reconnects = _Counter("link")
    #: bytes the acquisition buffer had no room for, and how often it overflowed
    bytes_dropped_host = _Counter("link")
    host_overflows = _Counter("link", "overflows")
    lines_received = _Counter("receive")
    frames_complete = _Counter("receive")
    frames_incomplete = _Counter("receive")
    frames_lost = _Counter("receive")
    lines_missing = _Counter("receive")
    lines_lost_link = _Counter("receive")
    lines_lost_device = _Counter("receive")
    lines_lost_host = _Counter("receive")
    lines_malformed = _Counter("receive")
    device_resets = _Counter("receive")
    crc_errors = _Counter("decoder")
    header_errors = _Counter("decoder")
    seq_gaps = _Counter("decoder")
    seq_resets = _Counter("decoder")
    bytes_discarded = _Counter("decoder")
    unsupported = _Counter("decoder")
    commands = _Counter("client")
    command_retries = _Counter("client")
    naks = _Counter("client")
    stray_replies = _Counter("client")
    frames_dropped_queue = _Counter("client")

    @property
    def mean_mb_per_s(self) -> float:
        """Megabytes per second received, averaged over the whole session."""
        return self.bytes_in / self.elapsed_s / 1e6 if self.elapsed_s > 0 else 0.0

    @property
    def mean_lines_per_s(self) -> float:
        """Lines per second, averaged over the whole session."""
        return self.lines_received / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def mean_frames_per_s(self) -> float:
        """Sweeps per second (complete or not), averaged over the whole session."""
        frames = self.frames_complete + self.frames_incomplete
        return frames / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def account(self) -> LossAccount:
        """Where the session's expected lines went: received, lost by cause, cut by STOP."""
        counts = {name: getattr(self, name) for name in
                  ("lines_received", "lines_missing", "frames_incomplete", *LOSS_CAUSES)}
        return LossAccount.from_counts(adjust_for_stop(counts, self.lines_cut_by_stop))

    @property
    def malformed(self) -> int:
        """Frames dropped as malformed: by the decoder, and lines whose sizes break the limits."""
        return self.decoder.malformed + self.receive.lines_malformed

    def as_dict(self) -> dict[str, Any]:
        """Every figure under its flat name, as a plain dict (JSON reports, HDF5 attributes)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name not in _PARTS:
                value = getattr(self, f.name)
                out[f.name] = list(value) if isinstance(value, list) else value
        for name, attr in vars(DeviceStats).items():
            if isinstance(attr, _Counter | property) and name != "account":
                out[name] = getattr(self, name)
        return out

    def summary(self) -> str:
        """A few human-readable lines."""
        parts = [
            f"{self.elapsed_s:.1f} s, {self.bytes_in / 1e6:.1f} MB in "
            f"({self.mean_mb_per_s:.2f} MB/s on average), "
            f"{self.frames_complete} complete frames, "
            f"{self.frames_incomplete} incomplete, {self.frames_lost} lost, "
            f"{self.lines_received} lines",
            self.account.text(),
            (f"CRC errors {self.crc_errors}, header errors {self.header_errors}, sequence gaps "
             f"{self.seq_gaps}, malformed {self.malformed}") if self.dialect in ("", V1_NAME)
            # a board's own format has its own faults (false syncs, stale dumps…): its words
            else f"{self.dialect}: {self.decoder.summary()}",
            f"disconnects {self.disconnects}, reconnects {self.reconnects}, device resets "
            f"{self.device_resets}, frames skipped for display {self.frames_dropped_queue}",
        ]
        if self.host_overflows:
            parts.append(f"this host fell behind {self.host_overflows} times: "
                         f"{self.bytes_dropped_host} bytes dropped from its acquisition buffer "
                         "(close other programs, or record without the viewer)")
        if self.listener_errors:
            parts.append(f"listener errors: {self.listener_errors} (see the log)")
        if self.temperature_c is not None:
            parts.append(f"device: {self.temperature_c:.1f} °C, HV {self.hv_v:.1f} V, buffer "
                         f"{100 * (self.buffer_fill or 0):.0f}% full; {self._board_drops()}")
        if self.status_problems:
            parts.append("device STATUS is implausible: " + "; ".join(self.status_problems))
        if self.failure:
            parts.append(f"failed: {self.failure}")
        return "\n".join(parts)

    def _board_drops(self) -> str:
        """The board's own dropped-lines counter, said so it cannot be mistaken for ours."""
        total = self.device_dropped_lines
        # why it differs from lines_lost_device: the board counts at acquisition since it
        # booted, the client per sweep when its FRAME_END arrives
        since_boot = (f"its STATUS counts {total} dropped lines since it booted (every "
                      "session; a sweep still in its send buffer is counted there before "
                      "lines_lost_device above, which counts each sweep when its FRAME_END "
                      "arrives)")
        base = self.device_dropped_at_start
        if base is None or total is None or self.device_resets:  # a reboot restarts it
            return since_boot
        return (f"the board dropped {(total - base) & 0xFFFFFFFF} lines since this session's "
                f"START by its STATUS; {since_boot}")


_PARTS = ("link", "decoder", "receive", "client")


class _Waiter:
    __slots__ = ("command_type", "event", "reply")

    def __init__(self, command_type: int | None = None) -> None:
        #: the command's type, to match the reply by (None: any reply with the seq)
        self.command_type = command_type
        self.event = threading.Event()
        self.reply: Message | None = None


class Device:
    """A connected board. Create it with :func:`open_device`."""

    def __init__(
        self,
        port: str,
        *,
        baudrate: int | None = None,
        reconnect: bool = True,
        command_timeout_s: float = 0.5,
        retries: int = 3,
        queue_frames: int = 8,
        dialect: str = AUTO,
        acquisition: str = "auto",
        buffer_bytes: int = DEFAULT_CAPACITY,
    ) -> None:
        self.port = port
        self._auto = dialect == AUTO
        #: the dialect the USB id suggests (probed first), for ports on this machine
        self.hint = usb_hint(port) if self._auto else None
        # until detection picked one, a v1 decoder stands in (it is fed nothing meanwhile)
        self.dialect: Dialect = ProtocolV1() if self._auto else get_dialect(dialect)
        if baudrate is None:
            baudrate = preferred_baudrate(self.hint if self._auto else dialect)
        self.command_timeout_s = command_timeout_s
        self.retries = retries
        self.info: DeviceInfo | None = None
        self.config: AcquisitionConfig | None = None
        self.streaming = False
        self.on_state: Callable[[str], None] | None = None
        self.state = ClientState.CLOSED
        #: why the client failed (state "failed"), and the error every call then raises
        self.failure: DeviceError | None = None
        self._decoder = self.dialect.new_decoder(self._on_reject)
        self._rx = Receiver(self._decoder, on_frame=self._queue_frame, on_reply=self._on_reply,
                            on_reset=lambda _info: self._resync.set())
        self._rejected_versions: set[int] = set()
        self._frames: deque[Frame] = deque(maxlen=max(1, queue_frames))
        self._frames_cond = threading.Condition()
        self._waiters: dict[int, _Waiter] = {}
        self._waiters_lock = threading.Lock()
        self._command_lock = threading.Lock()
        self._seq = 0
        self._opened_s = time.monotonic()
        self._rate_mark: tuple[float, int, int, int] = (self._opened_s, 0, 0, 0)
        self._rates: tuple[float, float, float] | None = None
        #: STOP sent since the last START, and the last sweep handed on: a sweep STOP cut short
        #: is reported as ``lines_cut_by_stop`` (the recorder and ``convert`` use the same rule)
        self._stop_sent = False
        self._last_frame: tuple[Any, bool] | None = None
        self._dropped_at_start: int | None = None
        self._started = False
        self._counts = ClientCounts()
        self._gap_listeners = ListenerSet("gap listener")
        #: told where a flush happened (see :meth:`flush`), so a raw capture can say it
        self._flush_listeners = ListenerSet("flush listener")
        self._flush_requests: list[threading.Event] = []
        self._flush_lock = threading.Lock()
        self._rx_thread: int | None = None
        self._resync = threading.Event()
        self._version_probe = False
        self._closing = threading.Event()
        self._supervisor: threading.Thread | None = None
        #: while detection runs, every byte goes to it instead of the decoder
        self._probe: Probe | None = None
        self.link = SerialLink(port, self._on_bytes, on_state=self._on_link_state,
                               on_gap=self._on_gap, on_failure=self._on_link_failure,
                               on_idle=self._on_idle,
                               baudrate=baudrate, reconnect=reconnect,
                               acquisition=acquisition, buffer_bytes=buffer_bytes)

    # -- lifecycle -------------------------------------------------------------------------------

    def open(self) -> Device:
        """Open the port and handshake; raises a :class:`DeviceError` that says what to do."""
        self.link.open()
        try:
            if self._auto:
                self._detect()
            self._handshake()
        except BaseException:
            self.dialect.close()
            self.link.close()
            raise
        self._set_state(ClientState.CONNECTED)
        self._supervisor = threading.Thread(target=self._supervise, name="sonobridge-supervisor",
                                            daemon=True)
        self._supervisor.start()
        return self

    def close(self) -> None:
        """Stop streaming (best effort) and close the port."""
        if self._closing.is_set():
            return
        if self.streaming and self.link.connected:
            with contextlib.suppress(DeviceError):
                self.stop()
        self._closing.set()
        self._resync.set()
        self.dialect.close()
        self.link.close()
        self._rx.assembler.flush()
        self._set_state(ClientState.CLOSED)

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _detect(self) -> None:
        """Probe the board on the open link and switch to the dialect it speaks."""
        self._probe = probe = Probe()
        try:
            name = detect(self.port, probe, self.link.write, self.hint)
            self.dialect = get_dialect(name)
            self._decoder = self.dialect.new_decoder(self._on_reject)
            self._rx.decoder = self._decoder  # set before the probe stops taking bytes
        finally:
            self._probe = None
        log.info("%s speaks %s", self.port, name)

    def _handshake(self) -> None:
        self.info = self.dialect.handshake(self)
        # a board that cannot send DEVICE_INFO is bounded by what its dialect built
        self._rx.limits = self.info
        self.streaming = False

    def default_config(self) -> AcquisitionConfig:
        """The configuration ``configure()`` starts from when none was set: a sensible one
        within the board's limits, or the only one a board with fixed settings runs."""
        return self.dialect.default_config(self._require_info())

    def supports(self, msg_type: MsgType) -> bool:
        """Whether the board can carry out commands of this type (``MsgType.GET_STATUS``…).

        A board on its own stock firmware may have no STATUS, PING or RESET at all.
        """
        return self.dialect.supports(msg_type)

    def write(self, data: bytes) -> None:
        """Send bytes as they are (a dialect's own commands)."""
        self.link.write(data)

    # -- the narrow channel a dialect's handshake uses (dialect.CommandChannel) ------------------

    @property
    def bytes_received(self) -> int:
        """Bytes the decoder has seen on this connection."""
        return self._decoder.stats.bytes_in

    @property
    def rejected_versions(self) -> frozenset[int]:
        """Protocol versions of intact frames the decoder rejected."""
        return frozenset(self._rejected_versions)

    # -- commands --------------------------------------------------------------------------------

    def command(self, msg: Message, *, expect: type | tuple[type, ...] = Ack, check: bool = True,
                timeout_s: float | None = None, retries: int | None = None) -> Message:
        """Send a command and return its reply (``NAK`` raises :class:`NakError` if ``check``)."""
        self._check_usable()
        timeout_s = self.command_timeout_s if timeout_s is None else timeout_s
        retries = self.retries if retries is None else retries
        with self._command_lock:
            local = self.dialect.perform(self, msg)
            if local is not None:  # carried out by the dialect (a board without frames)
                self._counts.commands += 1
                return self._checked(msg, local, expect, check)
            seq = self._seq
            self._seq = next_seq(self._seq)
            waiter = _Waiter(int(msg.MSG_TYPE))
            with self._waiters_lock:
                self._waiters[seq] = waiter
            try:
                for attempt in range(retries + 1):
                    flags = Flags.RETRY if attempt else 0
                    self.link.write(self.dialect.encode(msg, seq, flags))
                    self._counts.commands += 1
                    if waiter.event.wait(timeout_s):
                        break
                    self._check_usable()
                    self._counts.command_retries += 1
                else:
                    raise CommandTimeout(
                        f"{msg.MSG_TYPE.name}: no reply from {self.port} after {retries + 1} "
                        f"tries of {timeout_s} s. Is the board still connected and powered?")
            finally:
                with self._waiters_lock:
                    self._waiters.pop(seq, None)
        reply = waiter.reply
        if reply is None:  # woken without a reply: the client failed meanwhile
            self._check_usable()
        return self._checked(msg, reply, expect, check)

    def _checked(self, msg: Message, reply: Message | None, expect: type | tuple[type, ...],
                 check: bool) -> Message:
        """The reply to ``msg``, or the error it means (a NAK raises if ``check``)."""
        if isinstance(reply, Nak):
            self._counts.naks += 1
            if check:
                raise NakError(msg.MSG_TYPE.name, reply.error_code,
                               _FIELD_NAMES.get(reply.field_id), reply.text)
            return reply
        if not isinstance(reply, expect):
            raise DeviceError(f"{msg.MSG_TYPE.name}: unexpected reply {reply!r}")
        return reply

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (for tests that need malformed frames)."""
        self.link.write(data)

    def next_seq(self) -> int:
        """Take a sequence number for a frame built with :func:`send_raw`."""
        with self._command_lock:
            seq = self._seq
            self._seq = next_seq(self._seq)
        return seq

    def request_raw(self, frame: bytes, seq: int, timeout_s: float) -> Message | None:
        """Send a hand-built frame carrying ``seq`` and return its reply (None on timeout).

        The waiter is registered before the frame goes out, so a fast reply is never missed.
        Use :meth:`next_seq` for ``seq``; for malformed frames built with ``encode_frame``.
        """
        waiter = _Waiter()
        with self._waiters_lock:
            self._waiters[seq] = waiter
        try:
            self.link.write(frame)
            waiter.event.wait(timeout_s)
            return waiter.reply
        finally:
            with self._waiters_lock:
                self._waiters.pop(seq, None)

    def configure(self, config: AcquisitionConfig | None = None, **changes: object
                  ) -> AcquisitionConfig:
        """Validate against the board's limits, then send CONFIGURE (stopping/restarting a stream).

        Pass a full :class:`AcquisitionConfig`, or change fields of the current one by name
        (``prf_hz=2000``), plus ``depth_m=`` and ``sector_deg=``. Raises
        :class:`~sonobridge.device.errors.ConfigError` naming the field, value and allowed range.
        """
        info = self._require_info()
        try:
            base = config or self.config or self.dialect.default_config(info)
            cfg = base.changed(info, **changes)
            msg = validate(cfg, info)
        except ConfigError as exc:
            note = self.dialect.settings_note
            if not note:
                raise
            # a board on its own firmware: say what it can set at all, not only the range
            raise ConfigError(exc.field, exc.value, exc.allowed, f"{exc}. {note}") from exc
        was_streaming = self.streaming
        if was_streaming:
            self.stop()
        self.command(msg, expect=Ack)
        self.config = cfg
        if was_streaming:
            self.start()
        return cfg

    def start(self, n_frames: int = 0) -> None:
        """Start streaming (configuring the board's defaults first if nothing was configured)."""
        if self.config is None:
            self.configure()
        self.flush()
        if not self._started:
            st = self.last_status  # the board's counter is since boot: remember where it stood
            self._dropped_at_start = None if st is None else st.dropped_lines
            self._started = True
            # the first rate window starts here: the handshake and configuration before it
            # (a second, on a board that must be listened to first) carry no data
            rc, link = self._rx.counts, self.link.counters
            self._rate_mark = (time.monotonic(), link.bytes_in, rc.lines_received,
                               rc.frames_complete + rc.frames_incomplete)
        self.command(Start(n_frames=n_frames), expect=Ack)
        self._stop_sent = False
        # a finite run is not resumed after a reconnect: it would repeat frames
        self.streaming = n_frames == 0

    def stop(self) -> None:
        """Stop streaming. Lines already queued on the board still arrive after this returns;
        :meth:`flush` (or the next :meth:`start`) hands on the unfinished sweep."""
        self.streaming = False
        self.command(Stop(), expect=Ack)
        self._stop_sent = True

    def settle(self, quiet_s: float = 0.2, limit_s: float = 10.0) -> bool:
        """After STOP, wait until what the board had queued has arrived (the link is quiet).

        A board's send buffer may hold seconds on a slow link; the sweeps in it (and the
        losses their FRAME_ENDs report) belong to this session. Returns False if bytes were
        still arriving after ``limit_s``. A board that never stops talking (an Open Echo)
        is settled when its dialect has nothing in flight.
        """
        deadline = time.monotonic() + limit_s
        last, since = self.link.counters.bytes_in, time.monotonic()
        tick = threading.Event()
        while time.monotonic() < deadline:
            in_flight = self.dialect.in_flight()
            if in_flight is not None:
                if in_flight == 0:
                    return True
                tick.wait(0.02)
                continue
            tick.wait(0.02)
            now_bytes = self.link.counters.bytes_in
            if now_bytes != last:
                last, since = now_bytes, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return True
        return False

    def flush(self, timeout_s: float = 1.0) -> None:
        """Hand on the sweep in progress now, as an incomplete frame if lines are missing.

        The receive thread does it between two chunks (this call waits for it, up to
        ``timeout_s``, then does it itself): the flush listeners learn exactly where it fell in
        the byte stream, so ``convert`` repeats it at the same place and counts the same.
        """
        if (self._rx_thread is None or threading.get_ident() == self._rx_thread
                or not self.link.connected or self._closing.is_set()):
            # nothing is being decoded meanwhile (or this is the receive thread): do it here
            self._flush_now(None)
            return
        done = threading.Event()
        with self._flush_lock:
            self._flush_requests.append(done)
        if done.wait(timeout_s):
            return
        with self._flush_lock:  # the receive thread is not running (closed, disconnected)
            if done not in self._flush_requests:
                done.wait()  # it took the request meanwhile; it is finishing it
                return
            self._flush_requests.remove(done)
        self._flush_now(None)

    def add_flush_listener(self, listener: Callable[[int | None], None]) -> None:
        """Call ``listener(before_host_ns)`` at every :meth:`flush`, on the thread doing it:
        the flush came just before the chunk read at ``before_host_ns`` was decoded (its raw
        listeners have seen it already), or, with None, after everything seen so far."""
        self._flush_listeners.add(listener)

    def remove_flush_listener(self, listener: Callable[[int | None], None]) -> None:
        """Stop calling a flush listener."""
        self._flush_listeners.remove(listener)

    def _flush_now(self, before_ns: int | None) -> None:
        self._rx.assembler.flush()
        self._flush_listeners.call(before_ns)

    def _run_flushes(self, before_ns: int | None) -> None:
        """Do the flushes asked for (on the receive thread), and wake who asked."""
        with self._flush_lock:
            requests, self._flush_requests = self._flush_requests, []
        if requests:
            try:
                self._flush_now(before_ns)
            finally:  # whoever asked must never wait forever
                for done in requests:
                    done.set()

    def status(self) -> Status:
        """Ask the board for STATUS."""
        reply = self.command(GetStatus(), expect=Status)
        assert isinstance(reply, Status)
        return reply

    def ping(self, data: bytes = b"") -> float:
        """Round-trip time of a PING, in seconds."""
        t0 = time.perf_counter()
        self.command(Ping(token=int(t0 * 1e6) & 0xFFFFFFFF, data=data), expect=Pong)
        return time.perf_counter() - t0

    def reset(self) -> None:
        """Reboot the board (RESET capability); the client re-handshakes by itself."""
        self.command(Reset(), expect=Ack)

    def _check_usable(self) -> None:
        """Raise the failure that ended this client, if one did."""
        if self.failure is not None:
            raise self.failure

    def _require_info(self) -> DeviceInfo:
        self._check_usable()
        if self.info is None:
            raise DeviceError("not connected: call open() first (or use open_device())")
        return self.info

    # -- frames ----------------------------------------------------------------------------------

    def frames(self, timeout: float = 5.0, count: int | None = None) -> Iterator[Frame]:
        """Yield frames as they complete; raise :class:`FrameTimeout` if none comes in time."""
        delivered = 0
        while count is None or delivered < count:
            deadline = time.monotonic() + timeout
            with self._frames_cond:
                while not self._frames:
                    self._check_usable()
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._closing.is_set():
                        raise FrameTimeout(
                            f"no frame from {self.port} in {timeout} s (state: {self.state}, "
                            f"streaming: {self.streaming}). Did you call start()? "
                            f"Link: {self._decoder.stats.summary()}")
                    self._frames_cond.wait(remaining)
                frame = self._frames.popleft()
            delivered += 1
            yield frame

    def add_line_listener(self, listener: LineListener) -> None:
        """Call ``listener(line, host_time_ns)`` for every line, on the receive thread."""
        self._rx.line_listeners.add(listener)

    def remove_line_listener(self, listener: LineListener) -> None:
        """Stop calling a line listener."""
        self._rx.line_listeners.remove(listener)

    def add_frame_listener(self, listener: FrameListener) -> None:
        """Call ``listener(frame)`` for every finished frame, on the receive thread."""
        self._rx.frame_listeners.add(listener)

    def remove_frame_listener(self, listener: FrameListener) -> None:
        """Stop calling a frame listener."""
        self._rx.frame_listeners.remove(listener)

    def add_raw_listener(self, listener: Callable[[bytes, int], None]) -> None:
        """Call ``listener(chunk, host_time_ns)`` with every received chunk (raw capture)."""
        self.link.add_tap(listener)

    def remove_raw_listener(self, listener: Callable[[bytes, int], None]) -> None:
        """Stop calling a raw listener."""
        self.link.remove_tap(listener)

    def add_gap_listener(self, listener: Callable[[int, int], None]) -> None:
        """Call ``listener(n_bytes, host_time_ns)`` where the host's acquisition buffer
        overflowed and bytes were dropped (a raw capture marks the hole with it)."""
        self._gap_listeners.add(listener)

    @property
    def last_status(self) -> Status | None:
        """The most recent STATUS the board sent (None until one arrived)."""
        return self._rx.last_status

    @property
    def decoder_stats(self) -> DecoderStats:
        """The decoder's own counters."""
        return self._decoder.stats

    @property
    def stats(self) -> DeviceStats:
        """A snapshot of everything counted so far."""
        rc = self._rx.counts
        d = self._decoder.stats
        link = self.link.counters
        now = time.monotonic()
        t0, b0, l0, f0 = self._rate_mark
        if now - t0 >= 1.0:
            frames = rc.frames_complete + rc.frames_incomplete
            dt = now - t0
            self._rates = ((link.bytes_in - b0) / dt / 1e6, (rc.lines_received - l0) / dt,
                           (frames - f0) / dt)
            self._rate_mark = (now, link.bytes_in, rc.lines_received, frames)
        last = self._last_frame
        cut = stop_cut(*last) if self._stop_sent and last is not None else 0
        s = DeviceStats(port=self.port, dialect=self.dialect.name,
                        elapsed_s=now - self._opened_s, link=replace(link),
                        decoder=replace(d), receive=replace(rc), client=replace(self._counts),
                        listener_errors=self._rx.listener_errors + self.link.taps.errors,
                        lines_cut_by_stop=cut, device_dropped_at_start=self._dropped_at_start)
        # before the first full 1-second window the session's mean stands in: a rate of 0
        # while data arrives would be false
        s.mb_per_s, s.lines_per_s, s.frames_per_s = (
            self._rates if self._rates is not None
            else (s.mean_mb_per_s, s.mean_lines_per_s, s.mean_frames_per_s))
        st = self.last_status
        if st is not None:
            s.device_dropped_lines = st.dropped_lines
            s.temperature_c = st.temperature_c
            s.hv_v = st.hv_mv / 1000
            s.buffer_fill = st.buffer_fill_permille / 1000
            s.status_problems = status_problems(st, self.info)
        s.state = self.state.value
        s.failure = str(self.failure) if self.failure is not None else ""
        s.logs = list(self._rx.logs)
        return s

    # -- reader thread ---------------------------------------------------------------------------

    def _on_bytes(self, data: bytes, now_ns: int) -> None:
        self._rx_thread = threading.get_ident()
        probe = self._probe
        if probe is not None:
            probe.feed(data)
            return
        if self._flush_requests:
            self._run_flushes(now_ns)
        self._rx.feed(data, now_ns)

    def _on_idle(self, now_ns: int) -> None:
        self._rx_thread = threading.get_ident()
        if self._flush_requests:
            self._run_flushes(None)
        self._rx.tick(now_ns)

    def _on_gap(self, n_bytes: int, now_ns: int) -> None:
        self._rx.host_gap(n_bytes)
        self._gap_listeners.call(n_bytes, now_ns)

    def _on_link_failure(self, reason: str) -> None:
        self._fail(DeviceFailed(f"{self.port}: {reason}. Close the device and open it again "
                                "(run with --debug and report this as a bug)."))

    def _fail(self, error: DeviceError) -> None:
        """Enter the failed state: every waiting and future call raises ``error``."""
        if self.failure is None:
            self.failure = error
        log.error("%s", error)
        with self._waiters_lock:
            waiters = list(self._waiters.values())
        for waiter in waiters:
            waiter.event.set()
        with self._frames_cond:
            self._frames_cond.notify_all()
        self._set_state(ClientState.FAILED)

    def _on_reply(self, msg: Message) -> None:
        """A reply (ACK, NAK, DEVICE_INFO, STATUS, PONG): wake whoever waits for it."""
        with self._waiters_lock:
            waiter = self._waiters.get(msg.request_seq)  # type: ignore[attr-defined]
        if waiter is None:
            return
        if waiter.command_type is not None and not reply_matches(msg, waiter.command_type):
            # the seq matches but the type does not: an answer to some earlier command
            self._counts.stray_replies += 1
            log.warning("%s: ignored a %s for seq %d, which is waiting for a reply to %s",
                        self.port, msg.MSG_TYPE.name, msg.request_seq,  # type: ignore
                        MsgType(waiter.command_type).name)
            return
        waiter.reply = msg
        waiter.event.set()

    def _queue_frame(self, frame: Frame) -> None:
        """Queue a finished frame for :meth:`frames`, dropping the oldest when full."""
        self._last_frame = (frame.present, frame.end_received)
        with self._frames_cond:
            if len(self._frames) == self._frames.maxlen:
                self._counts.frames_dropped_queue += 1
            self._frames.append(frame)
            self._frames_cond.notify_all()

    def _on_reject(self, rejected: Rejected) -> None:
        if rejected.reason == RejectReason.VERSION:
            self._rejected_versions.add(rejected.version)
            if self.state == ClientState.CONNECTED and not self._version_probe:
                # the board may have changed firmware under us: one handshake tells
                self._version_probe = True
                self._resync.set()

    def _on_link_state(self, state: str) -> None:
        if state == "disconnected":
            self._rx.assembler.flush()  # keep what arrived: hand the partial sweep on
            self._set_state(ClientState.DISCONNECTED)
        elif state == "reconnected":
            self._rx.restart()
            self._resync.set()

    def _set_state(self, state: ClientState) -> None:
        if self.failure is not None and state != ClientState.CLOSED:
            state = ClientState.FAILED  # only closing ends a failure
        self.state = state
        if self.on_state is not None:
            try:
                self.on_state(state.value)
            except Exception:  # the GUI's callback must not break the client
                log.exception("on_state callback failed")

    # -- supervisor thread -----------------------------------------------------------------------

    def _supervise(self) -> None:
        """Re-establish the session after a reconnect or a device reset."""
        while not self._closing.is_set():
            self._resync.wait()
            if self._closing.is_set():
                return
            self._resync.clear()
            try:
                self._restore(resume=self.streaming)
            except (ProtocolMismatch, ImpossibleInfo) as exc:
                # a board that changed protocol, or rebooted into a DEVICE_INFO that cannot be
                # true, mid-session: one attempt, then stop for good and say why
                self._fail(exc)
                return
            except DeviceError as exc:
                if self.failure is not None:
                    return
                log.warning("could not restore the session on %s: %s", self.port, exc)
                if self.link.connected:
                    time.sleep(0.2)
                    self._resync.set()
                continue
            self._version_probe = False
            self._set_state(ClientState.CONNECTED)

    def _restore(self, resume: bool) -> None:
        self._handshake()  # clears self.streaming: the board is stopped now
        if self.config is not None:
            self.command(validate(self.config, self._require_info()), expect=Ack)
        if resume:
            self.command(Start(), expect=Ack)
            self.streaming = True


def usb_hint(port: str) -> str | None:
    """The dialect the USB id of ``port`` suggests (None for URLs and unknown ids)."""
    if "://" in port:
        return None
    return dialect_hint(*usb_ids(port))


def preferred_baudrate(dialect: str | None) -> int:
    """The baud rate a board of ``dialect`` needs where it matters (a UART bridge)."""
    if dialect is not None and dialect.startswith("open-echo"):
        return OPEN_ECHO_BAUDRATE
    return DEFAULT_BAUDRATE


def open_device(port: str, *, baudrate: int | None = None, reconnect: bool = True,
                command_timeout_s: float = 0.5, retries: int = 3, queue_frames: int = 8,
                dialect: str = AUTO, acquisition: str = "auto",
                buffer_bytes: int = DEFAULT_CAPACITY) -> Device:
    """Open ``port`` (path, COM name, pyserial URL or ``sim://…``) and handshake.

    ``dialect`` names the board's wire format (``DIALECTS``); ``"auto"`` probes for it
    (``detect.py``). ``baudrate`` None takes what the board needs (250000 for an Open Echo,
    else 115200; USB CDC boards ignore it). ``acquisition`` picks the reader (``"auto"``: a
    reader process where the port has a file descriptor, else a thread); ``buffer_bytes`` is
    its buffer (see ``acquisition.py``).
    """
    return Device(port, baudrate=baudrate, reconnect=reconnect,
                  command_timeout_s=command_timeout_s, retries=retries,
                  queue_frames=queue_frames, dialect=dialect, acquisition=acquisition,
                  buffer_bytes=buffer_bytes).open()


