"""The ``pic0rick-shell`` dialect: a pic0rick on its stock USB CDC text shell.

The wire format is :mod:`sonobridge.protocol.boards.pic0rick_shell`'s (its parser and command
builders); this module turns the client's commands into shell commands and the shell's
replies into the session's lines:

* **Handshake.** A newline (which also wakes a board waiting for DTR on a link without modem
  lines), then the ``run> `` prompt, twice. ``DeviceInfo`` is the board's nominal one
  (``pic0rick_shell.device_info``): 60 MS/s, 10 bits, 8000 samples, one fixed element, the
  gain range of the DAC codes mapped linearly onto the AD8331's 7.5–55.5 dB (nominal).
* **CONFIGURE** becomes ``write dac N`` for the single gain value (a TGC curve has one point
  on this board: the VGA's gain is static), and sets the pulse the streaming loop asks for:
  P = N = half a period of ``pulse_freq_hz`` in ns (the firmware truncates to its ticks),
  D = the firmware's own default. ``prf_hz`` paces the loop.
* **START** runs a loop on its own thread: ``start acq P N D`` + ``read`` per firing, one pair
  in flight and one queued (the shell reads its input in order), paced at ``prf_hz``.
  **STOP** ends the loop; pairs already sent still complete.
* **Each dump** is checked against the firing that asked for it (:class:`ShellDecoder`): a
  clean dump after a fresh capture becomes one ``EchoLine`` (u16, 10-bit offset binary around
  512) and a one-line sweep; a damaged dump is a line lost on the link; a dump with no fresh
  capture before it (the previous capture's, stale) or no dump within ``FIRING_TIMEOUT_S`` is
  a firing the board failed. The stock firmware's ``ADC timeout occured`` after every capture
  is counted as a warning, never as a fault.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from sonobridge.protocol import (
    Ack,
    Configure,
    DecoderStats,
    DeviceInfo,
    EchoLine,
    FrameEnd,
    GetInfo,
    Message,
    MsgType,
    Rejected,
    SampleFormat,
    Start,
    Stop,
    SweepKind,
    next_seq,
)
from sonobridge.protocol.boards import pic0rick_shell as shell

from .config import AcquisitionConfig
from .dialect import TRANSLATED_COMMANDS, CommandChannel, unsupported
from .errors import ConfigError, DeviceError, Disconnected, HandshakeError

log = logging.getLogger("sonobridge.device")

#: how long the handshake waits for each prompt: the firmware sleeps 0.4 s after DTR
PROMPT_TIMEOUT_S = 2.0
#: a firing whose dump has not arrived after this is given up (a slow board dumps 32 KB of
#: text in well under a second over USB full speed)
FIRING_TIMEOUT_S = 3.0
#: command pairs in flight: one being answered, one waiting in the board's input FIFO
PIPELINE = 2
#: the handshake waits for this much silence after the first prompt (an earlier session's
#: queued commands still printing), at most QUIET_LIMIT_S
QUIET_S = 0.1
QUIET_LIMIT_S = 5.0
#: the board has no STATUS, PING or RESET command
NO_SUCH_COMMAND = "the pic0rick shell has no such command (only start acq, read, write dac)"


@dataclass(slots=True)
class ShellDecoderStats(DecoderStats):
    """:class:`DecoderStats` plus the shell's own counters.

    ``frames_ok`` counts clean dumps taken as firings; ``frames_bad`` damaged dumps (lost on
    the link). ``adc_timeout_warnings`` is the stock firmware's harmless line after every
    capture. ``stale_dumps`` and ``missing_dumps`` are firings the board failed.
    """

    adc_timeout_warnings: int = 0
    stale_dumps: int = 0
    missing_dumps: int = 0
    #: dumps nobody asked for (a ``read`` typed outside the streaming loop)
    unrequested_dumps: int = 0
    unknown_commands: int = 0
    prompts: int = 0

    def summary(self) -> str:
        """One human-readable line."""
        return (f"{self.bytes_in} B in, {self.frames_ok} dumps ok, {self.frames_bad} damaged, "
                f"{self.stale_dumps} stale, {self.missing_dumps} missing, "
                f"{self.adc_timeout_warnings} 'ADC timeout occured' warnings (harmless), "
                f"{self.bytes_discarded} B discarded")


class ShellDecoder:
    """Shell output → one ``EchoLine`` and ``FrameEnd`` per requested firing.

    The streaming loop calls :meth:`requested` for every ``start acq`` + ``read`` pair it sends
    (with its send time on the monotonic clock the reader stamps chunks with); everything
    else happens on the receive thread: :meth:`feed` matches dumps to firings, and a firing
    whose dump has not come ``FIRING_TIMEOUT_S`` after it was sent is given up there or in
    :meth:`expire` (called while the link is idle), even after STOP ended the loop. Waiters
    (the handshake, ``write dac``, the loop) use :attr:`changed` with the counters.
    """

    def __init__(self) -> None:
        self.parser = shell.ShellParser()
        self.stats = ShellDecoderStats()
        self.changed = threading.Condition()
        #: send times of the pairs whose dumps are still due, oldest first
        self.outstanding: deque[float] = deque()
        #: a capture finished since the last dump (``Acquisition ended``)
        self._fresh = False
        self._abandoned = 0
        self._frame = 0
        self._seq = 0

    def restart(self) -> None:
        """A new START: sweeps count from 0 again, as protocol v1 says."""
        with self.changed:
            self._frame = 0

    def requested(self, now_s: float) -> None:
        """A ``start acq`` + ``read`` pair went out."""
        with self.changed:
            self.outstanding.append(now_s)

    def abandon(self) -> None:
        """The oldest pair's dump did not come in time: a firing the board failed."""
        with self.changed:
            if self.outstanding:
                self.outstanding.popleft()
                self._abandoned += 1
                self.stats.missing_dumps += 1
                log.warning("pic0rick: no dump %.1f s after start acq + read; counted as a "
                            "firing the board failed", FIRING_TIMEOUT_S)
            self.changed.notify_all()

    def _give_up_late(self, now_s: float | None) -> None:
        """Abandon the firings sent more than FIRING_TIMEOUT_S before ``now_s``."""
        while now_s is not None and self.outstanding and \
                now_s - self.outstanding[0] > FIRING_TIMEOUT_S:
            self.abandon()

    def feed(self, data: bytes, now_s: float | None = None) -> list[Message]:
        """Bytes in any chunking → the firings they complete, never raising."""
        out: list[Message] = []
        try:
            events = self.parser.feed(data)
            self.stats.bytes_in = self.parser.stats.bytes_in
            self.stats.bytes_discarded = self.parser.stats.bytes_discarded
            with self.changed:
                for event in events:
                    self._on_event(event, out)
                self._give_up_late(now_s)
                self._flush_abandoned(out)
                if events:
                    self.changed.notify_all()
        except Exception:  # a bug here must not stop the stream
            log.exception("pic0rick shell decoder")
            self.stats.decoder_errors += 1
            self.parser = shell.ShellParser()
        return out

    @property
    def pending_abandoned(self) -> int:
        """Firings given up whose empty sweeps are not handed on yet."""
        return self._abandoned

    def expire(self, now_s: float) -> list[Message]:
        """Hand on the firings abandoned while nothing arrived."""
        out: list[Message] = []
        with self.changed:
            self._give_up_late(now_s)
            self._flush_abandoned(out)
        return out

    def reset(self) -> None:
        """Forget partial output and the firings in flight (after a reconnect): they went
        down with the link, not with the board, so they are not counted as its failures."""
        self.stats.bytes_discarded += self.parser.buffered_bytes
        self.parser = shell.ShellParser()
        with self.changed:
            self._fresh = False
            self.outstanding.clear()

    def _on_event(self, event: shell.ShellEvent, out: list[Message]) -> None:
        st = self.stats
        if isinstance(event, shell.Prompt):
            st.prompts += 1
        elif isinstance(event, shell.AcqEnded):
            self._fresh = True
        elif isinstance(event, shell.AdcTimeoutWarning):
            st.adc_timeout_warnings += 1
        elif isinstance(event, shell.UnknownCommand):
            st.unknown_commands += 1
            # detection's probe leaves one such line behind; the loop's commands never do
            log.info("pic0rick: the shell did not know a command: %s", event.text)
        elif isinstance(event, shell.Dump):
            fresh, self._fresh = self._fresh, False
            if not self.outstanding:
                st.unrequested_dumps += 1
                return
            self.outstanding.popleft()
            if not fresh:  # the buffer of an earlier capture: never a new firing
                st.stale_dumps += 1
                self._sweep_end(0, out)
            elif not event.ok:  # the board captured; the text arrived damaged
                st.frames_bad += 1
                st.malformed += 1
                self._sweep_end(1, out)
            else:
                st.frames_ok += 1
                line = EchoLine(event.samples, int(shell.SAMPLE_RATE_HZ),
                                frame_index=self._frame, line_index=0, lines_per_frame=1,
                                sweep_kind=SweepKind.FIXED, adc_bits=shell.ADC_BITS,
                                sample_format=SampleFormat.U16_OB)
                self._emit(line, out)
                self._sweep_end(1, out)

    def _flush_abandoned(self, out: list[Message]) -> None:
        while self._abandoned:
            self._abandoned -= 1
            self._sweep_end(0, out)

    def _sweep_end(self, lines_sent: int, out: list[Message]) -> None:
        self._emit(FrameEnd(frame_index=self._frame, lines_sent=lines_sent, lines_per_frame=1),
                   out)
        self._frame += 1

    def _emit(self, msg: Message, out: list[Message]) -> None:
        msg.seq = self._seq
        self.stats.last_seq = self._seq
        self._seq = next_seq(self._seq)
        out.append(msg)


@dataclass(frozen=True)
class FiringPlan:
    """What each ``start acq`` asks for, and how often."""

    p_ns: int
    n_ns: int
    d_ns: int
    prf_hz: float

    def command(self) -> bytes:
        """The pair of commands one firing takes."""
        return shell.start_acq(self.p_ns, self.n_ns, self.d_ns) + shell.read()


def gain_code(gain_db: float) -> int:
    """The DAC code whose nominal gain (``dac_gain_db``) is nearest ``gain_db``."""
    span = shell.GAIN_MAX_DB - shell.GAIN_MIN_DB
    code = round((gain_db - shell.GAIN_MIN_DB) / span * shell.DAC_MAX_CODE)
    return min(max(code, 0), shell.DAC_MAX_CODE)


class Pic0rickDialect:
    """The stock pic0rick shell (or its older generation): see the module docstring."""

    board: ClassVar[str] = "pic0rick"
    envelope_samples: ClassVar[bool] = False  # the AD8331's output: RF around mid-scale
    device_clock: ClassVar[bool] = False  # the shell prints no time
    settings_note: ClassVar[str] = (
        "The pic0rick's stock shell sets one gain for the whole line (a TGC curve of one "
        "point), the pulse (from pulse_freq_hz) and the pace of its firings (prf_hz); it "
        "always captures 8000 samples at 60 MS/s")

    def __init__(self, variant: str = "stock") -> None:
        self.variant = shell.VARIANTS[variant]
        self.name = "pic0rick-shell" if variant == "stock" else f"pic0rick-shell-{variant}"
        self.decoder: ShellDecoder | None = None
        self.info: DeviceInfo | None = None
        self.plan: FiringPlan | None = None
        #: the DAC code written last in this session (None: unknown, write it)
        self.dac_code: int | None = None
        self._loop: threading.Thread | None = None
        self._stop_loop = threading.Event()

    def new_decoder(self, on_reject: Callable[[Rejected], None]) -> ShellDecoder:
        """The shell decoder (``on_reject``: the shell has no frames to reject)."""
        del on_reject
        self.decoder = ShellDecoder()
        return self.decoder

    def encode(self, message: Message, seq: int, flags: int = 0) -> bytes:
        """The shell has no frames: commands are carried out by :meth:`perform`."""
        raise NotImplementedError("the pic0rick shell takes text commands (see perform)")

    def handshake(self, channel: CommandChannel) -> DeviceInfo:
        """Two newlines, two prompts: the shell is there and answering; the loop is stopped."""
        self._stop()
        decoder = self._decoder()
        for attempt in range(2):
            seen = decoder.stats.prompts
            channel.write(b"\n")
            if not self._wait(lambda s=seen: decoder.stats.prompts > s, PROMPT_TIMEOUT_S):
                got = (f"{channel.bytes_received} bytes came back, none of them the prompt"
                       if channel.bytes_received else "nothing came back")
                raise HandshakeError(
                    f"no pic0rick prompt ('run> ') on {channel.port} after "
                    f"{'a' if attempt == 0 else 'a second'} newline ({got}). Is the board "
                    "plugged in and running its stock firmware? If it was just plugged in, "
                    "give it a second. Another board? Leave out --dialect to detect it.")
            if attempt == 0:
                self._wait_quiet(channel)
        self.info = shell.device_info(self.variant)
        self.dac_code = None
        return self.info

    def perform(self, channel: CommandChannel, message: Message) -> Message | None:
        """CONFIGURE as ``write dac`` + the firing plan, START/STOP the loop; else refused."""
        if isinstance(message, Configure):
            self._configure(channel, message)
        elif isinstance(message, Start):
            if self.plan is None:
                raise ConfigError("config", None, "a configuration",
                                  "configure() the pic0rick before start()")
            self._stop()
            self._decoder().restart()
            self._stop_loop.clear()
            self._loop = threading.Thread(target=self._run, args=(channel, message.n_frames),
                                          name="sonobridge-pic0rick", daemon=True)
            self._loop.start()
        elif isinstance(message, Stop):
            self._stop()
        elif isinstance(message, GetInfo) and self.info is not None:
            return self.info
        else:
            return unsupported(message, NO_SUCH_COMMAND)
        return Ack(request_seq=0, request_type=int(message.MSG_TYPE))

    def nominal_fields(self) -> dict[str, str]:
        """Every DEVICE_INFO value this board cannot state, and why it was assumed."""
        return dict(shell.NOMINAL_FIELDS)

    def default_config(self, info: DeviceInfo) -> AcquisitionConfig:
        """The nominal limits' default: 8000 samples, 5 MHz pulses, the lowest gain (the DAC's
        power-up code), 10 firings/s."""
        return AcquisitionConfig.default_for(info)

    def supports(self, msg_type: MsgType) -> bool:
        """CONFIGURE, START, STOP and GET_INFO (answered from the nominal facts)."""
        return msg_type in TRANSLATED_COMMANDS

    def in_flight(self) -> int:
        """Firings sent whose dumps are still due (each ends in a dump or is given up)."""
        decoder = self._decoder()
        with decoder.changed:
            return len(decoder.outstanding) + decoder.pending_abandoned

    def close(self) -> None:
        """Stop the streaming loop."""
        self._stop()

    # -- internals --------------------------------------------------------------------------

    def _decoder(self) -> ShellDecoder:
        if self.decoder is None:
            raise RuntimeError("new_decoder() was not called for this connection")
        return self.decoder

    def _wait(self, ready: Callable[[], bool], timeout_s: float) -> bool:
        decoder = self._decoder()
        with decoder.changed:
            return decoder.changed.wait_for(ready, timeout_s)

    def _wait_quiet(self, channel: CommandChannel) -> None:
        """Let a board still answering an earlier session's commands finish (bounded)."""
        deadline = time.monotonic() + QUIET_LIMIT_S
        last = channel.bytes_received
        while time.monotonic() < deadline:
            time.sleep(QUIET_S)  # silence is measured in time: nothing to wait on
            now = channel.bytes_received
            if now == last:
                return
            last = now

    def _configure(self, channel: CommandChannel, msg: Configure) -> None:
        if msg.tgc_count != 1:
            raise ConfigError("tgc_db", msg.tgc_db, "one gain value", (
                "the pic0rick's gain is one DAC value for the whole line (the AD8331 is not "
                "swept): give one TGC point"))
        code = gain_code(msg.tgc_db[0])
        if code != self.dac_code:
            decoder = self._decoder()
            seen = decoder.stats.prompts
            channel.write(shell.write_dac(code))
            if not self._wait(lambda: decoder.stats.prompts > seen, PROMPT_TIMEOUT_S):
                raise DeviceError(f"write dac {code}: no prompt came back from the pic0rick")
            self.dac_code = code
        half_ns = round(1e9 / (2 * msg.pulse_freq_hz))
        d_ns = self.variant.default_ticks * self.variant.tick_ns
        self.plan = FiringPlan(half_ns, half_ns, d_ns, float(msg.prf_hz))

    def _stop(self) -> None:
        self._stop_loop.set()
        loop, self._loop = self._loop, None
        if loop is not None and loop is not threading.current_thread():
            loop.join(timeout=2.0)

    def _run(self, channel: CommandChannel, n_frames: int) -> None:
        """The streaming loop: a pair per firing, paced, at most PIPELINE in flight."""
        plan = self.plan
        assert plan is not None
        decoder = self._decoder()
        command = plan.command()
        period = 1.0 / plan.prf_hz
        due = time.monotonic()
        sent = 0
        try:
            while not self._stop_loop.is_set() and (not n_frames or sent < n_frames):
                if self._stop_loop.wait(max(0.0, due - time.monotonic())):
                    return
                with decoder.changed:
                    # the receive thread gives up on late dumps, so this wait always ends
                    while len(decoder.outstanding) >= PIPELINE and not self._stop_loop.is_set():
                        decoder.changed.wait(0.1)
                if self._stop_loop.is_set():
                    return
                decoder.parser.expect_echo(shell.start_acq(plan.p_ns, plan.n_ns, plan.d_ns))
                decoder.parser.expect_echo(shell.read())
                now = time.monotonic()
                decoder.requested(now)
                channel.write(command)
                sent += 1
                due = max(due + period, now)
        except (Disconnected, DeviceError) as exc:
            # the supervisor re-handshakes and starts a new loop when the port is back
            log.warning("pic0rick: streaming loop stopped: %s", exc)


def stock() -> Pic0rickDialect:
    """The ``pic0rick-shell`` dialect (current stock firmware, 8 ns ticks)."""
    return Pic0rickDialect("stock")


def old() -> Pic0rickDialect:
    """The ``pic0rick-shell-old`` dialect (rp2040_shell, 4 ns ticks, 250 MHz)."""
    return Pic0rickDialect("old")
