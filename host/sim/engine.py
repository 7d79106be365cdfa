"""Runs a :class:`SimBoard` against a real byte transport, in real time, on its own thread.

The engine is the board's USB chip and cable: every millisecond it hands the host's bytes to the
board, lets the board acquire what is due, and moves frames out no faster than the link profile
allows, through the fault injector. Three transports are provided:

* :class:`PtyTransport`: a real pseudo-terminal, opened by the host exactly like
  ``/dev/ttyACM0``;
* :class:`QueueTransport`: in-process buffers, behind the ``sim://`` pyserial URL;
* :class:`SocketTransport`: one TCP client at a time, reachable as pyserial's ``socket://``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sonobridge.protocol import DeviceState
from sonobridge.protocol.constants import PARTIAL_FRAME_TIMEOUT_S

from .board import SimBoard
from .link import FaultEvent, FaultInjector, FaultPlan, TokenBucket, link_profile


class Transport(Protocol):
    """The device's end of the wire, used only from the engine thread (non-blocking)."""

    def wait(self, timeout_s: float, want_write: bool) -> None:
        """Block until host data arrives, the wire is writable (if asked) or the timeout."""

    def read_host(self) -> bytes:
        """Bytes the host sent since the last call (may be empty)."""

    def write_device(self, data: bytes) -> int:
        """Send as much of ``data`` as the wire takes now; return how many bytes went."""

    def unplug(self) -> None:
        """Disappear like an unplugged USB device."""

    def plug(self) -> None:
        """Come back (after :meth:`unplug`)."""

    def close(self) -> None:
        """Release everything."""


class PtyTransport:
    """A pseudo-terminal. ``path`` is the slave the host opens; ``link_path`` a stable symlink."""

    def __init__(self, link_path: str | Path | None = None) -> None:
        self.link_path = Path(link_path) if link_path else None
        self.master = self.slave = -1
        self.path = ""
        self.plug()

    def plug(self) -> None:
        """Create a fresh pty in raw mode (and point the symlink at it)."""
        self.master, self.slave = os.openpty()
        # raw mode on our side too: until the host opens the port, the line discipline would
        # otherwise echo and translate bytes; keeping the slave open avoids EIO on the master
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        if self.link_path:
            tmp = self.link_path.with_name(self.link_path.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self.path)
            tmp.replace(self.link_path)

    def unplug(self) -> None:
        """Close both ends: the host's reads and writes fail with EIO."""
        for fd in (self.master, self.slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master = self.slave = -1

    def close(self) -> None:
        """Unplug and remove the symlink."""
        self.unplug()
        if self.link_path:
            with contextlib.suppress(FileNotFoundError):
                self.link_path.unlink()

    def wait(self, timeout_s: float, want_write: bool) -> None:
        """select() on the master."""
        if self.master < 0:
            time.sleep(timeout_s)
            return
        with contextlib.suppress(OSError, ValueError):
            select.select([self.master], [self.master] if want_write else [], [], timeout_s)

    def read_host(self) -> bytes:
        """Non-blocking read of what the host wrote."""
        if self.master < 0:
            return b""
        try:
            return os.read(self.master, 1 << 16)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError as exc:
            if exc.errno == errno.EIO:  # no host has the port open: nothing to read
                return b""
            raise

    def write_device(self, data: bytes) -> int:
        """Non-blocking write; 0 when the host is not reading and the pty buffer is full."""
        if self.master < 0 or not data:
            return 0
        try:
            return os.write(self.master, data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            if exc.errno == errno.EIO:
                return 0
            raise


class QueueTransport:
    """In-process wire for the ``sim://`` URL handler; the host side calls the ``host_*``s."""

    #: like an OS serial buffer: beyond this the device's writes do not go through
    HOST_BUFFER = 1 << 20

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._to_device = bytearray()
        self._to_host = bytearray()
        self.connected = True

    # device side (engine thread)
    def wait(self, timeout_s: float, want_write: bool) -> None:
        """Wait for host data (or the timeout)."""
        with self._cond:
            if not self._to_device:
                self._cond.wait(timeout_s)

    def read_host(self) -> bytes:
        """Take what the host wrote."""
        with self._cond:
            data = bytes(self._to_device)
            self._to_device.clear()
            return data

    def write_device(self, data: bytes) -> int:
        """Append to the host's receive buffer, up to its capacity."""
        with self._cond:
            if not self.connected:
                return 0
            n = min(len(data), self.HOST_BUFFER - len(self._to_host))
            if n > 0:
                self._to_host += data[:n]
                self._cond.notify_all()
            return max(0, n)

    def unplug(self) -> None:
        """The host's next read or write fails; bytes in flight are lost."""
        with self._cond:
            self.connected = False
            self._to_host.clear()
            self._to_device.clear()
            self._cond.notify_all()

    def plug(self) -> None:
        """The port may be opened again."""
        with self._cond:
            self.connected = True
            self._cond.notify_all()

    def close(self) -> None:
        """Wake any waiter."""
        self.unplug()

    # host side (pyserial thread)
    def host_write(self, data: bytes) -> None:
        """Host → device bytes."""
        with self._cond:
            if not self.connected:
                raise ConnectionError("device disconnected")
            self._to_device += data
            self._cond.notify_all()

    def host_read(self, size: int, timeout_s: float | None) -> bytes:
        """Up to ``size`` device → host bytes, waiting at most ``timeout_s`` for the first."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while not self._to_host:
                if not self.connected:
                    raise ConnectionError("device disconnected")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return b""
                self._cond.wait(remaining)
            data = bytes(self._to_host[:size])
            del self._to_host[:size]
            return data

    def host_in_waiting(self) -> int:
        """Bytes ready for the host."""
        with self._cond:
            if not self.connected:
                raise ConnectionError("device disconnected")
            return len(self._to_host)

    def host_reset_input(self) -> None:
        """Discard unread device → host bytes."""
        with self._cond:
            self._to_host.clear()


class SocketTransport:
    """A TCP server for one client at a time (pyserial: ``socket://HOST:PORT``)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = socket.create_server((host, port))
        self._server.setblocking(False)
        self.address = self._server.getsockname()
        self._client: socket.socket | None = None
        self._plugged = True

    def _accept(self) -> None:
        if self._client is None and self._plugged:
            try:
                self._client, _ = self._server.accept()
                self._client.setblocking(False)
                self._client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except BlockingIOError:
                pass

    def wait(self, timeout_s: float, want_write: bool) -> None:
        """select() on the listening socket and the client."""
        self._accept()
        rl = [self._client or self._server]
        wl = [self._client] if (want_write and self._client) else []
        with contextlib.suppress(OSError, ValueError):
            select.select(rl, wl, [], timeout_s)

    def read_host(self) -> bytes:
        """Non-blocking receive; a closed client is dropped and the next one accepted."""
        self._accept()
        if self._client is None:
            return b""
        try:
            data = self._client.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            data = b""
        if not data:
            self._drop_client()
        return data

    def write_device(self, data: bytes) -> int:
        """Non-blocking send."""
        if self._client is None or not data:
            return 0
        try:
            return self._client.send(data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:
            self._drop_client()
            return 0

    def _drop_client(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError):
                self._client.close()
            self._client = None

    def unplug(self) -> None:
        """Drop the client and refuse new ones until :meth:`plug`."""
        self._plugged = False
        self._drop_client()

    def plug(self) -> None:
        """Accept clients again."""
        self._plugged = True

    def close(self) -> None:
        """Stop listening."""
        self._drop_client()
        self._server.close()


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


class SimEngine:
    """Drives a board over a transport in real time (see the module docstring)."""

    def __init__(
        self,
        board: SimBoard,
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
        self.error: BaseException | None = None

    @property
    def events(self) -> list[FaultEvent]:
        """Every fault injected so far."""
        return self.injector.events

    def start(self) -> SimEngine:
        """Start serving on a daemon thread."""
        self.stats.started_s = self.clock()
        self._thread = threading.Thread(target=self._run, name="sim-engine", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the transport."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.transport.close()

    def __enter__(self) -> SimEngine:
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
        if self._carry or now < self._stall_until:
            board.pull(now, 0)  # keep acquiring into the device buffer
        else:
            frames = board.pull(now, self.bucket.budget(now))
            if frames:
                wire = self.injector.apply(frames, now)
                self.bucket.spend(len(wire))
                self.stats.frames_sent += len(frames)
                n = self.transport.write_device(wire)
                self.stats.bytes_sent += n
                self._carry = wire[n:]
        tick = 0.001 if board.state == DeviceState.STREAMING or self._carry else 0.02
        if self._last_rx is not None:
            # wake just after the idle gap that would expire a partial command, not up to an
            # idle tick later: the reply to what came behind it is then due at once
            expiry = self._last_rx + PARTIAL_FRAME_TIMEOUT_S - now
            if expiry > -0.001:
                tick = min(tick, max(expiry, 0.0) + 0.0005)
        return tick

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
