"""One TCP client at a time, reachable as pyserial's ``socket://``."""

from __future__ import annotations

import contextlib
import select
import socket


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
