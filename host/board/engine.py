"""Runs a :class:`~.board.Board` against a real byte transport, in real time, on its own thread.

The engine is the board's USB chip and cable: every millisecond it hands the host's bytes to the
board, lets the board acquire what is due, and moves frames out no faster than the link profile
allows, through the fault injector. The transports are ``pty_transport.py``,
``queue_transport.py`` and ``tcp_transport.py``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sonobridge.protocol import DeviceState
from sonobridge.protocol.constants import PARTIAL_FRAME_TIMEOUT_S

from .board import Board
from .link import FaultEvent, FaultInjector, FaultPlan, TokenBucket, link_profile
from .transport import Transport

#: a tick later than this is not caught up (a suspended or starved process): the board keeps
#: what its send buffer holds and drops the rest, rather than rendering and sending seconds
#: of frames at once
MAX_CATCH_UP_S = 1.0


class HostDrop(bytes):
    """In a board's ``pull`` output: a frame the host dropped, empty, with its wire size.

    A board in the client's own process (``sim://``) that the host did not run in time sends
    these for the lines it could not keep; the engine turns them into a gap in the transport
    (``QueueTransport.host_dropped``), which the client counts as its own loss.
    """

    def __new__(cls, n_bytes: int) -> HostDrop:
        """An empty frame standing for ``n_bytes`` dropped."""
        self = super().__new__(cls)
        self.n_bytes = n_bytes
        return self


@dataclass
class EngineStats:
    """What the simulated board put on the wire."""

    bytes_sent: int = 0
    frames_sent: int = 0
    started_s: float = 0.0
    disconnects: int = 0
    resets: int = 0
    #: engine clock when the port last came back after a disconnect fault
    replugged_s: float | None = None


class BoardEngine:
    """Drives a board over a transport in real time (see the module docstring)."""

    def __init__(
        self,
        board: Board,
        transport: Transport,
        *,
        link: str = "unlimited",
        faults: FaultPlan | None = None,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.board = board
        self.transport = transport
        self.profile = link_profile(link)
        self.faults = faults or FaultPlan()
        self.injector = FaultInjector(self.faults, seed=seed + 1)
        self.bucket = TokenBucket(self.profile.bytes_per_s)
        self.clock = clock
        self.stats = EngineStats()
        self.lock = threading.Lock()
        self._carry = b""
        self._last_rx: float | None = None
        self._stall_until = 0.0
        self._down_until: float | None = None
        self._first_start: float | None = None
        self._pending_events: list[tuple[float, str, float]] = sorted(
            [(at, "stall", d) for at, d in self.faults.stalls]
            + [(at, "disconnect", d) for at, d in self.faults.disconnects]
            + [(at, "reset", 0.0) for at in self.faults.resets]
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: engine clock when the next tick was planned (see ``_step``)
        self._due: float | None = None
        self.error: BaseException | None = None

    @property
    def events(self) -> list[FaultEvent]:
        """Every fault injected so far."""
        return self.injector.events

    def start(self) -> BoardEngine:
        """Start serving on a daemon thread."""
        self.stats.started_s = self.clock()
        self._thread = threading.Thread(target=self._run, name="board-engine", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the transport."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.transport.close()

    def __enter__(self) -> BoardEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                with self.lock:
                    timeout = self._step()
                self.transport.wait(timeout, bool(self._carry))
        except BaseException as exc:  # surfaced to tests and the CLI instead of dying silently
            self.error = exc
            raise

    def _step(self) -> float:
        """One engine tick; returns how long to wait before the next."""
        now = self.clock()
        # how much later than planned this tick came: the CPU was busy elsewhere (for sim://,
        # this very process). A real board's link goes on sending meanwhile, so the link may
        # catch up on that time; else the board would drop lines and blame the link.
        late = 0.0
        if self._due is not None and now > self._due:
            stalled = max(0.0, min(now, self._stall_until) - self._due)  # a stall sends nothing
            late = max(0.0, now - self._due - stalled)
        tick = self._tick(now, late)
        self._due = now + tick
        return tick

    def _tick(self, now: float, late: float) -> float:
        board = self.board
        if self._down_until is not None:
            if now < self._down_until:
                return min(0.01, self._down_until - now)
            self._down_until = None
            board.power_on(now)  # a replugged USB board has rebooted
            self.transport.plug()
            self.stats.replugged_s = now
        data = self.transport.read_host()
        if data:
            self._last_rx = now
        # every tick, bytes or not: the board's receiver times out a partial command by it
        board.feed(data, now)
        if self._first_start is None and board.acquiring:
            self._first_start = now  # fault times count from the first firing
        if self._first_start is not None:
            while self._pending_events and now >= self._first_start + self._pending_events[0][0]:
                _, kind, duration = self._pending_events.pop(0)
                self._fire(kind, duration, now)
                if kind == "disconnect":
                    return 0.001
        if self._carry:
            n = self.transport.write_device(self._carry)
            self._carry = self._carry[n:]
            self.stats.bytes_sent += n
        note = getattr(board, "note_link", None)  # lets a board's log name the cause
        if self._carry or now < self._stall_until:
            if note is not None:
                note("stalled" if now < self._stall_until else "refused")
            board.pull(now, 0)  # keep acquiring into the device buffer
        elif late > MAX_CATCH_UP_S:
            if note is not None:
                note("late")
            board.pull(now, 0)  # the buffer keeps what it can; the rest is dropped, not sent
        else:
            budget = self.bucket.budget(now)
            # the bucket already credits up to its burst for the time since the last tick
            catch_up = (max(0.0, late * self.profile.bytes_per_s - self.bucket.burst)
                        if math.isfinite(budget) else 0.0)
            if note is not None:
                note("limited")
            frames = board.pull(now, budget + catch_up)
            if frames:
                self.bucket.spend(max(0.0, self._deliver(frames, now) - catch_up))
        # after STOP a board may still hold seconds of lines for a slow link: keep the link's
        # pace until they are out, or the drain would crawl at the idle tick
        draining = getattr(board, "pending_bytes", 0) > 0
        tick = 0.001 if board.state == DeviceState.STREAMING or self._carry or draining else 0.02
        if self._last_rx is not None:
            # wake just after the idle gap that would expire a partial command, not up to an
            # idle tick later: the reply to what came behind it is then due at once
            expiry = self._last_rx + PARTIAL_FRAME_TIMEOUT_S - now
            if expiry > -0.001:
                tick = min(tick, max(expiry, 0.0) + 0.0005)
        return tick

    def _deliver(self, frames: list[tuple[int, bytes]], now: float) -> int:
        """Put frames on the wire (what does not go through is carried); returns their size.

        A :class:`HostDrop` among them becomes a gap in the transport at its place.
        """
        start = 0
        size = 0
        for i, (_, frame) in enumerate([*frames, (0, None)]):
            if frame is not None and not isinstance(frame, HostDrop):
                continue
            if i > start:
                wire = self.injector.apply(frames[start:i], now)
                self.stats.frames_sent += i - start
                if self._carry:  # the transport is full: keep the order
                    self._carry += wire
                else:
                    n = self.transport.write_device(wire)
                    self.stats.bytes_sent += n
                    self._carry = wire[n:]
                size += len(wire)
            if frame is not None:
                # only an in-process board sends these, over a QueueTransport that drops
                # rather than refuses (never a carry, so the gap is in its place)
                self.transport.host_dropped(frame.n_bytes)  # type: ignore[attr-defined]
            start = i + 1
        return size

    def _fire(self, kind: str, duration: float, now: float) -> None:
        board = self.board
        if kind == "stall":
            self._stall_until = now + duration
            self.injector.events.append(FaultEvent("stall", None, now, f"{duration} s"))
        elif kind == "reset":
            self.stats.resets += 1
            board.power_on(now, announce=True)
            self._carry = b""
            self.injector.events.append(FaultEvent("reset", None, now))
        elif kind == "disconnect":
            # cut a frame in half on the wire, then vanish
            frames = board.pull(now, 1)
            seq = frames[0][0] if frames else None
            if frames:
                half = frames[0][1][: len(frames[0][1]) // 2]
                self.transport.write_device(self._carry + half)
            self._carry = b""
            self.transport.unplug()
            self.stats.disconnects += 1
            self._down_until = now + duration
            self.injector.events.append(FaultEvent("disconnect", seq, now, f"down {duration} s"))
