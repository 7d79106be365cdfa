"""Acquisition: the port's bytes go into a host-side buffer first, so decoding never delays a read.

A board's send buffer holds milliseconds of data (the firmware host build: 256 KiB, 13 ms at
20 MB/s; an RP2040 has 264 KB of RAM in all), and a USB CDC link stops taking data as soon as
the tty's buffer is full. So whatever reads the port must be ready again within milliseconds,
whatever else the host is doing. Two readers give the same events:

* :class:`ProcessReader` (POSIX ports with a file descriptor: ttys, ptys, sockets) runs
  ``reader_process.py`` as its own process. It only copies bytes; the decoder, frame assembly,
  listeners, recording and display run in this process and may fall behind and catch up. A
  separate process, not a thread: a reader thread waits for the GIL while the decoder holds
  it (tried: it still lost lines), and the OS schedules a process that sleeps in ``select``
  promptly, more so at the raised priority it asks for.
* :class:`ThreadReader` for everything else (``sim://``, ``replay://`` and other in-process
  URL handlers, Windows COM ports): a thread with the same bounded buffer. It takes all the
  port holds per read, whatever the transport (``_chunk_reader``), and passes on the gaps an
  in-process board's port reports (bytes dropped because this host did not read in time).

Both buffer up to ``capacity`` bytes (default :data:`DEFAULT_CAPACITY`, over a second at the
USB 2.0 high-speed limit). Beyond it new bytes are dropped and reported as a ``dropped`` event
at the place of the gap: the host's loss, never blamed on the board.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import serial

from . import reader_process as rp

#: 64 MiB: 1.2 s at USB 2.0 high speed's 53 MB/s bulk limit, the fastest a CDC board can send
DEFAULT_CAPACITY = 64 << 20
#: the worker's pipe is enlarged to this where the OS allows (fewer wake-ups per MB)
_PIPE_SIZE = 1 << 20
_WORKER = Path(rp.__file__)
#: the reader thread's read size and the most it takes per call (as the reader process does)
_READ = 1 << 16
_BURST = 1 << 20


@dataclass(frozen=True, slots=True)
class Event:
    """What the reader saw: ``kind`` is ``"data"``, ``"dropped"``, ``"closed"`` or ``"note"``.

    ``data`` holds the bytes (data), the reason or note as text (closed, note); ``n_bytes`` is
    the size of the data or of the gap (dropped).
    """

    kind: str
    host_ns: int
    data: bytes = b""
    n_bytes: int = 0


class Reader(Protocol):
    """A running acquisition reader."""

    def events(self, timeout_s: float) -> list[Event]:
        """What arrived since the last call, waiting up to ``timeout_s`` for something."""

    def stop(self) -> None:
        """Stop reading (the port itself stays open: its owner closes it)."""


def port_fd(ser: serial.SerialBase) -> int | None:
    """The OS file descriptor a reader process can read ``ser`` through, if there is one."""
    if os.name != "posix":
        return None
    fd = getattr(ser, "fd", None)
    if isinstance(fd, int):
        return fd
    sock = getattr(ser, "_socket", None)  # pyserial's socket:// keeps its socket here
    if sock is not None:
        with contextlib.suppress(OSError, ValueError):
            return sock.fileno()
    return None


def start_reader(ser: serial.SerialBase, mode: str = "auto",
                 capacity: int = DEFAULT_CAPACITY) -> Reader:
    """A reader for ``ser``: ``"process"`` where the port has a descriptor, else ``"thread"``."""
    if mode not in ("auto", "process", "thread"):
        raise ValueError(f"acquisition mode {mode!r}: use 'auto', 'process' or 'thread'")
    if capacity <= 0:
        raise ValueError(f"acquisition buffer capacity must be positive, not {capacity}")
    fd = port_fd(ser) if mode != "thread" else None
    if fd is not None:
        return ProcessReader(fd, capacity)
    if mode == "process":
        raise ValueError(f"{ser.port}: no file descriptor for a reader process; use 'thread'")
    return ThreadReader(ser, capacity)


class ProcessReader:
    """``reader_process.py`` in its own process, reading ``fd`` (see the module docstring)."""

    def __init__(self, fd: int, capacity: int) -> None:
        out_r, out_w = os.pipe()
        ctl_r, ctl_w = os.pipe()
        with contextlib.suppress(AttributeError, OSError):
            import fcntl
            fcntl.fcntl(out_w, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        try:
            # -I -S: no site, no user paths: a bare interpreter starts in tens of milliseconds
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(_WORKER), str(fd), str(out_w), str(ctl_r),
                 str(capacity)],
                pass_fds=(fd, out_w, ctl_r), stdin=subprocess.DEVNULL, close_fds=True)
        except BaseException:
            for p in (out_r, out_w, ctl_r, ctl_w):
                os.close(p)
            raise
        os.close(out_w)
        os.close(ctl_r)
        self._out = out_r
        self._ctl: int | None = ctl_w
        self._buf = bytearray()
        self._eof = False

    def events(self, timeout_s: float) -> list[Event]:
        """Parse the records that arrived on the pipe."""
        if self._eof:
            return [Event("closed", time.monotonic_ns(), b"the reader process ended")]
        ready, _, _ = select.select([self._out], [], [], timeout_s)
        if not ready:
            return []
        chunk = os.read(self._out, 4 << 20)
        if not chunk:
            self._eof = True
            code = self._proc.poll()
            return [Event("closed", time.monotonic_ns(),
                          f"the reader process ended (exit code {code})".encode())]
        buf = self._buf
        buf += chunk
        out: list[Event] = []
        pos = 0
        header = rp.RECORD.size
        with memoryview(buf) as mv:
            while len(buf) - pos >= header:
                kind, n, host_ns = rp.RECORD.unpack_from(buf, pos)
                if kind == rp.DROPPED:
                    out.append(Event("dropped", host_ns, n_bytes=n))
                    pos += header
                    continue
                if len(buf) - pos - header < n:
                    break
                data = bytes(mv[pos + header: pos + header + n])
                pos += header + n
                if kind == rp.DATA:
                    out.append(Event("data", host_ns, data, n))
                else:
                    out.append(Event("closed" if kind == rp.CLOSED else "note", host_ns, data))
        del buf[:pos]
        return out

    def stop(self) -> None:
        """Close the control pipe (the worker exits), reap it, close our pipe end."""
        ctl, self._ctl = self._ctl, None
        if ctl is None:
            return
        os.close(ctl)
        try:
            self._proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        os.close(self._out)
        self._eof = True


class ThreadReader:
    """The same bounded buffer, filled by a thread that takes all the port holds per read."""

    def __init__(self, ser: serial.SerialBase, capacity: int) -> None:
        self._ser = ser
        self._capacity = capacity
        self._queue: deque[Event] = deque()
        self._queued = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._dropped = 0
        self._dropped_ns = 0
        self._thread = threading.Thread(target=self._run, name="sonobridge-acquisition",
                                        daemon=True)
        self._thread.start()

    def events(self, timeout_s: float) -> list[Event]:
        """Everything queued (waiting up to ``timeout_s`` for the first)."""
        with self._cond:
            if not self._queue:
                self._cond.wait(timeout_s)
            out = list(self._queue)
            self._queue.clear()
            self._queued = 0
            if self._dropped:  # room again: the gap goes after what was queued before it
                out.append(Event("dropped", self._dropped_ns, n_bytes=self._dropped))
                self._dropped = 0
            return out

    def stop(self) -> None:
        """Let the thread end at its next read timeout."""
        self._stopping = True
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    def _put(self, event: Event) -> None:
        with self._cond:
            if event.kind == "data":
                room = self._capacity - self._queued
                if room > 0 and self._dropped:  # mark the gap before what follows it
                    self._queue.append(Event("dropped", self._dropped_ns,
                                             n_bytes=self._dropped))
                    self._dropped = 0
                if event.n_bytes > room:
                    if not self._dropped:
                        self._dropped_ns = event.host_ns
                    self._dropped += event.n_bytes - max(room, 0)
                    if room <= 0:
                        return
                    event = Event("data", event.host_ns, event.data[:room], room)
                self._queued += event.n_bytes
            elif self._dropped:  # the gap goes before whatever follows it
                self._queue.append(Event("dropped", self._dropped_ns, n_bytes=self._dropped))
                self._dropped = 0
            self._queue.append(event)
            self._cond.notify_all()

    def _run(self) -> None:
        read = _chunk_reader(self._ser)
        while not self._stopping:
            try:
                data, gap, gap_ns = read()
            except Exception as exc:  # any failed read means the port is broken (pyserial
                # raises SerialException, OSError, or TypeError when closed under it)
                if not self._stopping:
                    self._put(Event("closed", time.monotonic_ns(), str(exc).encode()))
                return
            if data:
                self._put(Event("data", time.monotonic_ns(), data, len(data)))
            if gap:  # the port itself dropped bytes the host did not take in time
                self._put(Event("dropped", gap_ns, n_bytes=gap))


ChunkRead = Callable[[], tuple[bytes, int, int]]


def _chunk_reader(ser: serial.SerialBase) -> ChunkRead:
    """How a thread takes everything ``ser`` holds in one go: ``() -> (data, gap, gap_ns)``.

    Each call waits up to the port's timeout for the first byte, then takes all that is there
    (up to :data:`_BURST`), never one byte per call: pyserial's ``read(n)`` waits for ``n``
    bytes, and ``in_waiting`` is exact for ttys and COM ports but only 0 or 1 for
    ``socket://``, which read that way 1-2 bytes per call (issue 14).
    """
    read_chunk = getattr(ser, "read_chunk", None)
    if callable(read_chunk):  # the in-process board's port (sim://, replay://): gaps included
        return lambda: read_chunk(_BURST)
    if getattr(ser, "_socket", None) is not None:  # pyserial's socket:// (Windows, or forced)
        return lambda: (_read_socket(ser), 0, 0)

    def read_waiting() -> tuple[bytes, int, int]:
        waiting = ser.in_waiting
        parts = [ser.read(min(waiting, _BURST) if waiting > 0 else 1)]
        total = len(parts[0])
        while parts[0] and total < _BURST:
            more = ser.in_waiting
            if more <= 0:
                break
            part = ser.read(min(more, _BURST - total))
            if not part:
                break
            parts.append(part)
            total += len(part)
        return b"".join(parts), 0, 0

    return read_waiting


def _read_socket(ser: serial.SerialBase) -> bytes:
    """What pyserial's socket holds now, read from the socket itself (it is non-blocking)."""
    sock = ser._socket  # pyserial's socket:// keeps it here (port_fd uses it too)
    if sock is None:
        raise serial.SerialException("the socket is closed")
    # (with no timeout, still come back now and then so that stop() is noticed)
    ready, _, _ = select.select([sock], [], [], 0.05 if ser.timeout is None else ser.timeout)
    if not ready:
        return b""
    parts: list[bytes] = []
    total = 0
    while total < _BURST:
        try:
            part = sock.recv(_READ)
        except (BlockingIOError, InterruptedError):
            break
        if not part:
            if not parts:  # readable but empty: the peer closed the connection
                raise serial.SerialException("socket disconnected")
            break
        parts.append(part)
        total += len(part)
    return b"".join(parts)
