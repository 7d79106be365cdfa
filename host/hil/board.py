"""The board under test and the session around it: start it, watch it, talk to it raw.

A *target* is where the board lives: a real port (``--port``), the C firmware's host build
(``--firmware-host``) or the simulated board in its own process on a pseudo-terminal (the
default). Every target ends up as a port name the ordinary device client opens, so the tests
cannot tell them apart.

:class:`HilSession` wraps the opened :class:`~sonobridge.device.Device` with what tests need beyond
the client: a line and frame recorder on the reader thread, a log of link states, a raw *wire
tap* that decodes every byte the board sends (race-free waiting for replies to hand-built
frames), and ``drain`` to wait until the board is idle and everything it sent has arrived.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sonobridge.device import (
    AcquisitionConfig,
    CommandTimeout,
    Device,
    DeviceError,
    DeviceStats,
    Frame,
    NakError,
    open_device,
)
from sonobridge.device.dialect import AUTO
from sonobridge.hil.checks import frames_timeout_s
from sonobridge.protocol import (
    Ack,
    Decoder,
    DeviceInfo,
    DeviceState,
    EchoLine,
    Message,
    MsgType,
    Nak,
    Pong,
    Status,
    encode_frame,
)

#: where ``make -C hardware/firmware host`` puts the firmware's host build, in the repository
FIRMWARE_HOST_RELPATH = Path("hardware") / "firmware" / "build" / "sonobridge-fw-host"
FIRMWARE_HOST_PROFILE = Path("hardware") / "boards" / "firmware-host.toml"
FIRMWARE_HOST_HINT = "run `make -C hardware/firmware host`"


def repository() -> Path | None:
    """The sonobridge checkout holding ``hardware/``, or None (installed from a wheel).

    The editable install runs from ``<repo>/host/hil``; an installed wheel has no firmware
    sources next to it, so the working directory is tried as well (a checkout's root).
    """
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (root / "hardware" / "firmware").is_dir():
            return root
    return None


class TargetUnavailable(Exception):
    """The board cannot be started here (e.g. no firmware host build): a reason to skip."""


# -- targets ------------------------------------------------------------------------------------


class Target:
    """Where the board under test lives; ``port`` is what ``open_device`` opens."""

    kind = "hardware"
    port = ""

    def describe(self) -> dict[str, Any]:
        """What the report says about the target."""
        return {"kind": self.kind, "port": self.port}

    @property
    def default(self) -> AcquisitionConfig:
        """The board's default configuration (its dialect's: the only one a fixed board runs)."""
        return self.dev.default_config()

    def close(self) -> None:
        """Release whatever was started."""


class PortTarget(Target):
    """A board on a port the tester named (a device path, COM name or pyserial URL)."""

    def __init__(self, port: str) -> None:
        self.port = port
        self.kind = "simulator (sim:// URL)" if port.startswith("sim://") else "hardware"


@dataclass
class SimSettings:
    """How the suite starts the simulated board."""

    phantom: str = "wire"
    link: str = "unlimited"
    faults: str = ""
    seed: int = 1
    profile: str = "sim"
    #: send buffer depth in milliseconds at the rated throughput (0: the profile's own)
    buffer_ms: float = 250.0


@dataclass(frozen=True)
class HilOptions:
    """The command-line options the tests use (see ``sonobridge.hil.plugin``)."""

    port: str | None
    #: None: what the board needs (``open_device``'s per-board default)
    baud: int | None
    firmware_host: str | None
    duration_s: float
    throughput_bps: float | None
    sim: SimSettings
    unplug: bool
    soak_minutes: float
    #: the board's wire format (``sonobridge.device.dialect.DIALECTS``), or "auto": detected
    dialect: str = AUTO
    #: a board whose RP2040 image the suite runs on the emulator (None: not the emulator)
    rp2040_emu: str | None = None

    @property
    def simulated(self) -> bool:
        """True when the suite started the simulated board itself."""
        return self.port is None and self.firmware_host is None and self.rp2040_emu is None


#: a real-time priority low in the range: above every ordinary process, below the kernel's own
BOARD_RT_PRIORITY = 10


def raise_board_priority(pid: int) -> str:
    """Schedule a board program like the board's own CPU would run it; say what was granted.

    A program that stands for a board (the firmware's host build) shares this machine's cores
    with the test and whatever else runs. Descheduled, it fires late, and the line timing it
    reports is then the host's, not the firmware's. Real-time scheduling keeps it on time;
    it sleeps between firings, so it cannot take a core (and Linux caps real-time tasks at
    95 % anyway). Without permission it says so, and its timing may suffer under load.
    """
    try:
        os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(BOARD_RT_PRIORITY))
        return f"real-time (SCHED_FIFO {BOARD_RT_PRIORITY}), as a board's own CPU"
    except (AttributeError, OSError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, pid, -10)
        return "niceness -10 (no permission for real-time scheduling)"
    except (AttributeError, OSError):
        return ("normal priority (no permission to raise it): under load its own delays can "
                "show as line-timing faults")


class ProcessTarget(Target):
    """A board served by a program that prints its port as the first line of stdout."""

    kind = "firmware-host"

    def __init__(self, argv: list[str], startup_s: float = 20.0, kind: str | None = None
                 ) -> None:
        if kind is not None:
            self.kind = kind
        self.argv = argv
        self.output: deque[str] = deque(maxlen=50)
        self._closing = False
        self._drains: list[threading.Thread] = []
        try:
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         stdin=subprocess.DEVNULL, text=True, bufsize=1)
        except OSError as exc:
            raise RuntimeError(f"cannot start {argv[0]}: {exc}") from exc
        # stderr is read from the start (a full pipe would block the program); stdout's first
        # line is the port, the rest is kept for diagnostics like stderr
        self._drain_thread(self.proc.stderr)
        self.priority = raise_board_priority(self.proc.pid)
        self.port = self._first_line(startup_s)
        self._drain_thread(self.proc.stdout)

    def _first_line(self, timeout_s: float) -> str:
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.close()
                    raise RuntimeError(f"{' '.join(self.argv)} printed no port within "
                                       f"{timeout_s:g} s")
                if sel.select(left):
                    line = self.proc.stdout.readline()
                    if not line:
                        code = self.proc.wait(5)
                        for thread in self._drains:
                            thread.join(1.0)
                        raise RuntimeError(f"{' '.join(self.argv)} exited with status {code} "
                                           f"before printing its port: {' '.join(self.output)}")
                    if line.strip():
                        return line.strip()
        finally:
            sel.close()

    def _drain_thread(self, stream: Any) -> None:
        def drain() -> None:
            for line in stream:
                self.output.append(line.rstrip())

        thread = threading.Thread(target=drain, name="hil-target-output", daemon=True)
        thread.start()
        self._drains.append(thread)

    def died(self) -> str | None:
        """Why the program ended before :meth:`close`, or None while it runs."""
        code = self.proc.poll()
        if code is None or self._closing:
            return None
        tail = " | ".join(list(self.output)[-5:])
        return f"{self.argv[0]} exited with status {code} during the tests: {tail}"

    def describe(self) -> dict[str, Any]:
        """Port, command line and the priority the board program got."""
        return {"kind": self.kind, "port": self.port, "command": " ".join(self.argv),
                "priority": self.priority}

    @property
    def default(self) -> AcquisitionConfig:
        """The board's default configuration (its dialect's: the only one a fixed board runs)."""
        return self.dev.default_config()

    def close(self) -> None:
        """Interrupt the program (SIGINT), then kill it if it does not exit."""
        self._closing = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for thread in self._drains:
            thread.join(1.0)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def sim_profile_file(profile: str, buffer_ms: float, directory: Path) -> str:
    """``profile`` with a send buffer of ``buffer_ms`` at its rated throughput (if deeper).

    A simulator process on a shared machine is descheduled for longer than the builtin board's
    7 ms of buffer at 35 MB/s, which a real board's DMA never is. The deeper buffer keeps the
    verdict about the link and the host rather than the CI machine's scheduler.
    """
    from sonobridge.sim.profile import load_profile

    prof = load_profile(profile)
    want = int(prof.info.rated_throughput_bps * buffer_ms / 1000)
    if buffer_ms <= 0 or want <= prof.send_buffer_bytes:
        return profile
    text = Path(prof.source).read_text(encoding="utf-8")
    line = f"send_buffer_bytes = {want}"
    text, n = re.subn(r"(?m)^send_buffer_bytes\s*=.*$", line, text)
    if not n:
        text, n = re.subn(r"(?m)^\[board\][ \t]*$", f"[board]\n{line}", text)
    if not n:
        text += f"\n[board]\n{line}\n"
    out = directory / f"{Path(prof.source).stem}-hil.toml"
    out.write_text(text, encoding="utf-8")
    return str(out)


class SimTarget(ProcessTarget):
    """The simulated board in its own process (``sonobridge sim``), on a pseudo-terminal."""

    kind = "simulator"

    def __init__(self, settings: SimSettings, workdir: Path,
                 link_path: str | Path | None = None) -> None:
        self.settings = settings
        self.profile_file = sim_profile_file(settings.profile, settings.buffer_ms, workdir)
        argv = [sys.executable, "-m", "sonobridge", "sim", "--pty", "--phantom", settings.phantom,
                "--profile", self.profile_file, "--link", settings.link,
                "--seed", str(settings.seed)]
        if settings.faults:
            argv += ["--faults", settings.faults]
        if link_path:
            argv += ["--link-path", str(link_path)]
        super().__init__(argv)

    def describe(self) -> dict[str, Any]:
        """Port plus every simulator setting."""
        s = self.settings
        return {"kind": self.kind, "port": self.port, "phantom": s.phantom, "link": s.link,
                "faults": s.faults or "none", "seed": s.seed, "profile": s.profile,
                "send_buffer": (f"{s.buffer_ms:g} ms at the rated throughput"
                                if self.profile_file != s.profile else "the profile's own"),
                "command": " ".join(self.argv[1:])}


def firmware_host_argv(path: str | None, buffer_ms: float = 0.0) -> list[str]:
    """The firmware host build's command line; TargetUnavailable when it was not built.

    The send buffer is the one its board profile (``hardware/boards/firmware-host.toml``)
    declares, so the profile is the single home of that number, not the binary's default;
    ``buffer_ms`` deepens it to that long at the profile's rated throughput, as
    :func:`sim_profile_file` does for the simulator: the pseudo-terminal's kernel path on a
    shared machine stalls for longer than the profile's buffer lasts, which USB never does.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    repo = repository()
    if path and path != "auto":
        binary = Path(path)
    elif repo is None:
        raise TargetUnavailable(
            f"firmware host build: this sonobridge is installed without its repository, so "
            f"there is no {FIRMWARE_HOST_RELPATH}: give --firmware-host PATH to a built "
            f"binary, or run from a checkout after `make -C hardware/firmware host`")
    else:
        binary = repo / FIRMWARE_HOST_RELPATH
    if not binary.is_file():
        shown = binary.relative_to(repo) if repo and binary.is_relative_to(repo) else binary
        raise TargetUnavailable(f"hardware/firmware host build not found at {shown}: "
                                f"{FIRMWARE_HOST_HINT}")
    if not os.access(binary, os.X_OK):
        raise TargetUnavailable(f"{binary} is not executable: {FIRMWARE_HOST_HINT}")
    if repo is None:
        # without the repository's board profile the program keeps its own buffer default
        return [str(binary)]
    profile = repo / FIRMWARE_HOST_PROFILE
    board = tomllib.loads(profile.read_text(encoding="utf-8")).get("board", {})
    buffer_bytes = board.get("send_buffer_bytes")
    if not isinstance(buffer_bytes, int) or buffer_bytes <= 0:
        raise RuntimeError(f"{FIRMWARE_HOST_PROFILE}: [board] send_buffer_bytes must be a "
                           f"positive integer, got {buffer_bytes!r}")
    if buffer_ms > 0:
        from sonobridge.sim.profile import load_profile

        rated = load_profile(str(profile)).info.rated_throughput_bps
        buffer_bytes = max(buffer_bytes, int(rated * buffer_ms / 1000))
    return [str(binary), "--buffer", str(buffer_bytes)]


#: the emulator's launcher in the repository, and each board's make target and image
RP2040_EMU_RELPATH = "hardware/firmware/emu/run-emu.sh"
RP2040_IMAGES = {
    "pic0rick": ("pic0rick", "hardware/firmware/build-pic0rick/sonobridge-pic0rick.bin"),
    "rp2040-reference": ("rp2040", "hardware/firmware/build-rp2040/sonobridge-rp2040.bin"),
}


def rp2040_emu_argv(board: str) -> list[str]:
    """The command that serves ``board``'s built image on the emulated RP2040 (its first line
    of output is the pty); TargetUnavailable when it cannot run here."""
    repo = repository()
    target, image = RP2040_IMAGES[board]
    hint = f"make -C hardware/firmware {target} emu-deps"
    if repo is None:
        raise TargetUnavailable("the RP2040 emulator runs from a checkout of the repository "
                                f"(it needs the firmware's sources): {hint} there")
    if not (repo / image).is_file():
        raise TargetUnavailable(f"no {board} image at {image}: {hint}")
    if not (repo / "hardware/firmware/emu/node_modules/rp2040js").is_dir():
        raise TargetUnavailable(f"the emulator rp2040js is not installed: {hint}")
    return [str(repo / RP2040_EMU_RELPATH), board, str(repo / image)]


# -- what the reader thread sees ----------------------------------------------------------------


class LineRecorder:
    """Collects one tuple per ECHO_LINE (see ``checks.LINE_RECORD``) while capturing."""

    def __init__(self) -> None:
        self._sink: list[tuple] | None = None

    def on_line(self, line: EchoLine, host_ns: int) -> None:
        """Client line listener (reader thread)."""
        sink = self._sink
        if sink is not None:
            sink.append((line.seq if line.seq is not None else -1, line.frame_index,
                         line.line_index, line.ensemble_index, line.ensemble_size,
                         line.lines_per_frame, line.timestamp_us, line.config_id, host_ns))

    @contextlib.contextmanager
    def capture(self) -> Iterator[list[tuple]]:
        """Record lines into the yielded list until the block ends."""
        sink: list[tuple] = []
        self._sink = sink
        try:
            yield sink
        finally:
            self._sink = None


@dataclass
class FrameCapture:
    """Frames handed on by the client while capturing: counts, and the first ``keep`` frames."""

    keep: int = 0
    complete: int = 0
    incomplete: int = 0
    indexes: list[int] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    predicate: Callable[[Frame], bool] | None = None

    def add(self, frame: Frame) -> None:
        """Count (and maybe keep) one frame."""
        with self.cond:
            if frame.complete:
                self.complete += 1
            else:
                self.incomplete += 1
            self.indexes.append(frame.index)
            if len(self.frames) < self.keep and (self.predicate is None or self.predicate(frame)):
                self.frames.append(frame)
            self.cond.notify_all()

    @property
    def total(self) -> int:
        """Frames seen."""
        return self.complete + self.incomplete

    def wait(self, predicate: Callable[[FrameCapture], bool], timeout_s: float) -> bool:
        """Wait until ``predicate(self)`` holds; False on timeout."""
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self), timeout_s)


class FrameRecorder:
    """Dispatches the client's frame listener to the active :class:`FrameCapture`."""

    def __init__(self) -> None:
        self._sink: FrameCapture | None = None

    def on_frame(self, frame: Frame) -> None:
        """Client frame listener (reader thread)."""
        sink = self._sink
        if sink is not None:
            sink.add(frame)

    @contextlib.contextmanager
    def capture(self, keep: int = 0, predicate: Callable[[Frame], bool] | None = None
                ) -> Iterator[FrameCapture]:
        """Count frames (keeping the first ``keep`` that satisfy ``predicate``)."""
        cap = FrameCapture(keep=keep, predicate=predicate)
        self._sink = cap
        try:
            yield cap
        finally:
            self._sink = None


class StateLog:
    """Every ``on_state`` the client reported, waitable."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str]] = []
        self._cond = threading.Condition()

    def on_state(self, state: str) -> None:
        """Client ``on_state`` callback."""
        with self._cond:
            self.events.append((time.monotonic(), state))
            self._cond.notify_all()

    def mark(self) -> int:
        """A position to wait from."""
        with self._cond:
            return len(self.events)

    def wait_for(self, states: tuple[str, ...], since: int, timeout_s: float) -> int | None:
        """Index of the first event in ``states`` at or after ``since``; None on timeout."""
        def found() -> int | None:
            for i in range(since, len(self.events)):
                if self.events[i][1] in states:
                    return i
            return None

        with self._cond:
            self._cond.wait_for(lambda: found() is not None, timeout_s)
            return found()


class WireTap:
    """Decodes every byte the board sends with a separate decoder (messages, not lines)."""

    def __init__(self) -> None:
        self.decoder = Decoder()
        self.messages: list[tuple[float, Message]] = []
        self.lines = 0
        self._cond = threading.Condition()

    def feed(self, data: bytes, host_ns: int) -> None:
        """Raw listener (reader thread)."""
        now = time.perf_counter()
        msgs = self.decoder.feed(data)
        with self._cond:
            for m in msgs:
                if isinstance(m, EchoLine):
                    self.lines += 1
                else:
                    self.messages.append((now, m))
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[Message], bool], timeout_s: float
                 ) -> tuple[float, Message] | None:
        """The first decoded message satisfying ``predicate`` (waits up to ``timeout_s``)."""
        def find() -> tuple[float, Message] | None:
            return next(((t, m) for t, m in self.messages if predicate(m)), None)

        with self._cond:
            self._cond.wait_for(lambda: find() is not None, timeout_s)
            return find()

    def reply_to(self, seq: int, timeout_s: float) -> tuple[float, Message] | None:
        """The reply naming ``seq`` as its ``request_seq``."""
        return self.wait_for(lambda m: getattr(m, "request_seq", None) == seq, timeout_s)


# -- the session --------------------------------------------------------------------------------


@dataclass
class RawReply:
    """A hand-built frame's outcome: its seq, the reply (None if none) and the round trip."""

    seq: int
    reply: Message | None
    rtt_s: float | None


class HilSession:
    """The opened board plus recorders; one per test session."""

    def __init__(self, dev: Device, target: Target) -> None:
        self.dev = dev
        self.target = target
        self.lines = LineRecorder()
        self.frames = FrameRecorder()
        self.states = StateLog()
        dev.add_line_listener(self.lines.on_line)
        dev.add_frame_listener(self.frames.on_frame)
        dev.on_state = self.states.on_state

    @classmethod
    def open(cls, target: Target, baudrate: int | None = None, dialect: str = AUTO
             ) -> HilSession:
        """Open the target's port with the ordinary client (detecting its dialect) and handshake."""
        return cls(open_device(target.port, baudrate=baudrate, dialect=dialect), target)

    @property
    def info(self) -> DeviceInfo:
        """DEVICE_INFO from the handshake."""
        assert self.dev.info is not None
        return self.dev.info

    @property
    def default(self) -> AcquisitionConfig:
        """The board's default configuration (its dialect's: the only one a fixed board runs)."""
        return self.dev.default_config()

    def close(self) -> None:
        """Close the port."""
        self.dev.close()

    # commands ------------------------------------------------------------------------------

    def command(self, msg: Message, timeout_s: float | None = None) -> Message:
        """Send a command through the client and return whatever the board answered."""
        return self.dev.command(msg, expect=(Ack, Nak, Status, Pong, DeviceInfo), check=False,
                                timeout_s=timeout_s)

    @contextlib.contextmanager
    def tap(self) -> Iterator[WireTap]:
        """Decode everything the board sends until the block ends."""
        tap = WireTap()
        self.dev.link.add_tap(tap.feed)
        try:
            yield tap
        finally:
            self.dev.link.remove_tap(tap.feed)

    def send_frame(self, msg_type: int, payload: bytes, *, flags: int = 0, version: int = 1,
                   seq: int | None = None, timeout_s: float = 0.5) -> RawReply:
        """Send a hand-built frame and wait for the reply naming its seq (race-free)."""
        with self.tap() as tap:
            seq = self.dev.next_seq() if seq is None else seq
            t0 = time.perf_counter()
            self.dev.send_raw(encode_frame(msg_type, payload, seq, flags=flags, version=version))
            got = tap.reply_to(seq, timeout_s)
        if got is None:
            return RawReply(seq, None, None)
        return RawReply(seq, got[1], got[0] - t0)

    @property
    def has_status(self) -> bool:
        """Whether the board answers GET_STATUS (a board on its stock firmware may not)."""
        return self.dev.supports(MsgType.GET_STATUS)

    def drain(self, timeout_s: float = 5.0) -> Status | None:
        """Wait until the board is idle with an empty send buffer (so all it sent has arrived).

        Replies overtake queued lines, so a STATUS saying "idle, buffer empty" arrives after
        every line the board sent before it. A board without STATUS is drained when its
        dialect has nothing in flight (or, without that, when the link is quiet); None then.
        """
        if not self.has_status:
            if not self.dev.settle(limit_s=timeout_s):
                raise AssertionError(f"board still sending {timeout_s:g} s after the "
                                     "acquisition should have ended")
            return None
        deadline = time.monotonic() + timeout_s
        tick = threading.Event()
        while True:
            st = self.dev.status()
            if st.state != DeviceState.STREAMING and st.buffer_fill_permille == 0:
                return st
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"board still busy {timeout_s:g} s after the acquisition should have ended: "
                    f"STATUS state {st.state}, send buffer {st.buffer_fill_permille / 10:.1f} % "
                    "full")
            tick.wait(0.01)

    def lines_within(self, seconds: float) -> int:
        """Lines that reach the client in the next ``seconds`` (a board that is idle sends none).

        A measurement window, not a wait for something: nothing ends it early.
        """
        with self.lines.capture() as sink:
            threading.Event().wait(seconds)
        return len(sink)

    def stop_and_drain(self, timeout_s: float = 5.0) -> Status | None:
        """STOP, then :meth:`drain`; the partial sweep is handed on."""
        self.dev.stop()
        st = self.drain(timeout_s)
        self.dev.flush()
        return st

    def ensure_idle(self) -> str | None:
        """Best effort between tests: stop and drain; returns a problem text or None."""
        try:
            if self.dev.link.connected:
                self.stop_and_drain(timeout_s=3.0)
            return None
        except (DeviceError, AssertionError) as exc:
            return str(exc)

    def snapshot(self) -> tuple[DeviceStats, Status | None]:
        """Counters now (client statistics and, if the board answers, its STATUS)."""
        st: Status | None = None
        if self.has_status:
            try:
                st = self.dev.status()
            except DeviceError:
                st = None
        return self.dev.stats, st

    def trouble_since(self, snap: tuple[DeviceStats, Status | None]) -> str:
        """What went wrong on the link or in the board since ``snap`` ('' if nothing)."""
        s0, st0 = snap
        s1, st1 = self.snapshot()
        parts = []
        if st0 is not None and st1 is not None:
            dropped = (st1.dropped_lines - st0.dropped_lines) & 0xFFFFFFFF
            if dropped and st1.dropped_lines >= st0.dropped_lines:
                parts.append(f"the board dropped {dropped} lines (send buffer overflow)")
        for name, text in (("crc_errors", "CRC errors"), ("header_errors", "header errors"),
                           ("seq_gaps", "frames missing from the sequence numbers"),
                           ("disconnects", "disconnects"), ("device_resets", "board reboots")):
            n = getattr(s1, name) - getattr(s0, name)
            if n:
                parts.append(f"{n} {text}")
        return f" ({'; '.join(parts)})" if parts else ""

    def configure(self, cfg: AcquisitionConfig) -> AcquisitionConfig:
        """Send a full configuration (validated by the client first)."""
        return self.dev.configure(cfg)


@dataclass
class Capture:
    """Complete frames of one configuration, stacked ``(n_frames, n_lines, n_samples)``."""

    samples: np.ndarray
    sample_format: int
    adc_bits: int
    what: str


def capture_frames(hil: HilSession, cfg: AcquisitionConfig, n: int, what: str) -> Capture:
    """Configure, START n_frames=n, keep the complete frames."""
    cfg = must(f"the CONFIGURE for {what}", hil.configure, cfg)
    per = cfg.lines_per_frame * cfg.ensemble_size
    snap = hil.snapshot()
    with hil.frames.capture(keep=n, predicate=lambda f: f.complete) as cap:
        must(f"START n_frames={n}", hil.dev.start, n_frames=n)
        cap.wait(lambda c: c.total >= n, frames_timeout_s(n, per, cfg.prf_hz))
        hil.drain()
    if not cap.frames:
        pytest.fail(f"no complete frame arrived for {what}: {cap.incomplete} incomplete"
                    f"{hil.trouble_since(snap)}")
    f0 = cap.frames[0]
    return Capture(np.stack([f.samples for f in cap.frames]), f0.sample_format, f0.adc_bits,
                   what)


def must(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a client method; a NAK or a missing reply fails the test naming ``what``."""
    try:
        return fn(*args, **kwargs)
    except NakError as exc:
        raise AssertionError(f"board refused {what}: {exc}") from exc
    except CommandTimeout as exc:
        raise AssertionError(f"board did not answer {what}: {exc}") from exc


def fail_on(problems: list[str]) -> None:
    """Fail the test with every problem, one per line."""
    if problems:
        pytest.fail("\n".join(problems))
