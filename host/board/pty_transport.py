"""A real pseudo-terminal, opened by the host exactly like ``/dev/ttyACM0``."""

from __future__ import annotations

import contextlib
import errno
import os
import select
import time
import tty
from pathlib import Path


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
