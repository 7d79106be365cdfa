"""The acquisition reader process: copy bytes from the port into a buffer, and nothing else.

It runs as its own small Python process (``python -I -S reader_process.py``), so the parent's
decoding, frame assembly, listeners, recording and display never delay a read of the port,
and the parent's GIL is not in its way. It imports only the standard library.

It inherits the port's file descriptor (a tty, pty or socket, opened by the parent, which
keeps writing commands to it) and a pipe to the parent. Everything it reads is forwarded as
records on that pipe::

    u8 kind | u32 length | i64 host_ns | payload (DATA and CLOSED only)

``DATA`` carries bytes as read, stamped with ``CLOCK_MONOTONIC`` (shared by all processes) at
the read. When the parent falls so far behind that ``capacity`` bytes wait for it, newly read
bytes are dropped and one ``DROPPED`` record (``length`` = bytes dropped) marks where: the
board's bytes keep flowing, and the loss is the host's, counted as such. ``CLOSED`` says the
port is gone (payload: the reason as UTF-8) and ends the process. ``NOTE`` (payload: text) is
said once, about the scheduling priority it got.

The parent stops it by closing the control pipe; the same EOF arrives if the parent dies.
"""

from __future__ import annotations

import os
import select
import signal
import struct
import sys
import time
from collections import deque

RECORD = struct.Struct("<BIq")
DATA, DROPPED, CLOSED, NOTE = 0, 1, 2, 3
#: the niceness asked for: ahead of ordinary work, far from real-time (a bug cannot lock a core)
NICENESS = -10
_READ = 1 << 16
#: bytes read per loop before they are handed on (bounds a record and the latency)
_BURST = 1 << 20


def raise_priority() -> str:
    """Ask the OS to schedule this process ahead of ordinary work; say what it granted."""
    if not hasattr(os, "setpriority"):
        return "reader process at normal priority (this OS has no setpriority)"
    try:
        os.setpriority(os.PRIO_PROCESS, 0, NICENESS)
        return f"reader process at niceness {NICENESS}"
    except OSError:
        return ("reader process at normal priority (raising it needs CAP_SYS_NICE or an "
                "RLIMIT_NICE entry in /etc/security/limits.conf)")


def serve(port_fd: int, out_fd: int, control_fd: int, capacity: int) -> None:
    """Read ``port_fd`` into records on ``out_fd`` until the port or the parent goes away."""
    pending: deque[bytes] = deque()
    pending_bytes = 0
    head = memoryview(b"")  # the part of pending[0] not yet written
    dropped = 0  # bytes dropped since the last DROPPED record went into ``pending``
    dropped_ns = 0
    port_open = True
    os.set_blocking(out_fd, False)
    os.set_blocking(port_fd, False)

    def put(record: bytes) -> None:
        nonlocal pending_bytes
        pending.append(record)
        pending_bytes += len(record)

    put(_record(NOTE, raise_priority().encode()))
    while True:
        readers = [control_fd, port_fd] if port_open else [control_fd]
        writers = [out_fd] if pending or len(head) else []
        if not port_open and not writers:
            return
        try:
            r, w, _ = select.select(readers, writers, [], 1.0)
        except InterruptedError:
            continue
        if control_fd in r and not os.read(control_fd, 64):
            return  # the parent closed the control pipe (or died)
        if port_fd in r:
            now = time.monotonic_ns()
            parts, total, why = _read_burst(port_fd)
            if total:
                data = b"".join(parts)
                room = capacity - pending_bytes
                if room > 0 and dropped:  # mark where the gap is, before what follows it
                    put(RECORD.pack(DROPPED, dropped, dropped_ns))
                    dropped = 0
                if room > 0:
                    kept = data[:room]
                    put(RECORD.pack(DATA, len(kept), now) + kept)
                if total > room:
                    if not dropped:
                        dropped_ns = now
                    dropped += total - max(room, 0)
            if why is not None:
                if dropped:
                    put(RECORD.pack(DROPPED, dropped, dropped_ns))
                    dropped = 0
                put(_record(CLOSED, why.encode("utf-8", "replace")))
                port_open = False
        if out_fd in w:
            try:
                while True:
                    if not len(head):
                        if not pending:
                            break
                        head = memoryview(pending.popleft())
                    n = os.write(out_fd, head)
                    pending_bytes -= n
                    head = head[n:]
            except BlockingIOError:
                pass
            except OSError:
                return  # the parent is gone
            if dropped and pending_bytes < capacity:
                # room again: say where the gap is now, not only when more bytes come
                put(RECORD.pack(DROPPED, dropped, dropped_ns))
                dropped = 0


def _read_burst(fd: int) -> tuple[list[bytes], int, str | None]:
    """Drain what the port has now; the third item says why the port is gone, if it is."""
    parts: list[bytes] = []
    total = 0
    while total < _BURST:
        try:
            part = os.read(fd, _READ)
        except (BlockingIOError, InterruptedError):
            break
        except OSError as exc:
            return parts, total, f"read failed: {exc}"
        if not part:
            if not parts:  # readable but empty: the device (or the socket's peer) is gone
                return parts, total, "the port reports data but returned none (unplugged?)"
            break
        parts.append(part)
        total += len(part)
    return parts, total, None


def _record(kind: int, payload: bytes) -> bytes:
    return RECORD.pack(kind, len(payload), time.monotonic_ns()) + payload


def main(argv: list[str]) -> int:
    """``reader_process.py PORT_FD OUT_FD CONTROL_FD CAPACITY_BYTES``."""
    port_fd, out_fd, control_fd, capacity = (int(a) for a in argv[1:5])
    # the terminal's Ctrl-C reaches the whole process group: the parent decides when to stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(port_fd, out_fd, control_fd, capacity)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
