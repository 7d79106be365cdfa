"""pyserial URL handler: ``replay://PATH?speed=1&loop=0`` serves a recording in-process.

Once ``sonobridge.record.urlhandler`` is in ``serial.protocol_handler_packages``,
``serial.serial_for_url("replay:///data/session.h5")`` (and so ``open_device`` and every
``PORT`` argument) opens a recording as if it were a board. ``PATH`` is a raw capture or an
HDF5 recording; ``replay:///abs/path`` and ``replay://relative/path`` both work. Options:

* ``speed``: playback speed (1 = the recorded timing; ``0`` or ``inf`` = as fast as the host
  reads);
* ``loop``: 1 = start over at the end;
* ``link``: cap throughput like the simulator's link profiles (``usb-hs`` …);
* ``name``: several independent replays of the same file in one process.

The replay board lives while the port is open (several opens of one URL share it); closing
the last port stops it.
"""

from __future__ import annotations

import math
import threading
import urllib.parse
from dataclasses import dataclass

from serial.serialutil import SerialException

from sonobridge.board.serial_port import QueueSerial
from sonobridge.record.replay import create_replay_engine
from sonobridge.record.urlhandler import register

__all__ = ["ReplayOptions", "Serial", "engine_for", "parse_url", "register", "replay_url"]

_registry: dict[str, tuple[object, int]] = {}
_registry_lock = threading.Lock()


@dataclass(frozen=True)
class ReplayOptions:
    """What a ``replay://`` URL asks for."""

    path: str
    speed: float = 1.0
    loop: bool = False
    link: str = "unlimited"


def replay_url(path: str, *, speed: float = 1.0, loop: bool = False, name: str = "") -> str:
    """The ``replay://`` URL of a file (absolute path)."""
    import os

    query = {"speed": "0" if math.isinf(speed) else f"{speed:g}", "loop": int(loop)}
    if name:
        query["name"] = name
    return f"replay://{urllib.parse.quote(os.path.abspath(path))}?" \
           f"{urllib.parse.urlencode(query)}"


def parse_url(url: str) -> tuple[str, ReplayOptions]:
    """Registry key and options of a ``replay://`` URL; unknown options are an error."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "replay":
        raise SerialException(f"expected a replay:// URL, got {url!r}")
    path = urllib.parse.unquote(parts.netloc + parts.path)
    if not path:
        raise SerialException(f"replay:// URL without a file: {url!r}; e.g. "
                              "replay:///data/session.h5?speed=1")
    speed, loop, link, name = 1.0, False, "unlimited", ""
    for key, values in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items():
        value = values[-1]
        try:
            if key == "speed":
                speed = float(value)
                if speed == 0:
                    speed = math.inf
                if not speed > 0:
                    raise ValueError("speed must be > 0 (0 = as fast as possible)")
            elif key == "loop":
                loop = value not in ("", "0", "false", "no")
            elif key == "link":
                link = value
            elif key == "name":
                name = value
            else:
                raise SerialException(f"unknown replay:// option {key!r}; known: speed, loop, "
                                      "link, name")
        except ValueError as exc:
            raise SerialException(f"bad replay:// option {key}={value!r}: {exc}") from exc
    opts = ReplayOptions(path, speed, loop, link)
    return name or f"{path}?{parts.query}", opts


def engine_for(url: str) -> object | None:
    """The running replay engine behind a ``replay://`` URL (for tests)."""
    key, _ = parse_url(url)
    with _registry_lock:
        entry = _registry.get(key)
    return None if entry is None else entry[0]


class Serial(QueueSerial):
    """A pyserial port backed by an in-process replay board."""

    def open(self) -> None:
        """Start (or attach to) the replay named by the URL."""
        from sonobridge.board.queue_transport import QueueTransport

        self._check_openable()
        key, opts = parse_url(self.portstr)
        with _registry_lock:
            entry = _registry.get(key)
            if entry is None:
                try:
                    engine = create_replay_engine(opts.path, QueueTransport(), speed=opts.speed,
                                                  loop=opts.loop, link=opts.link).start()
                except (OSError, ValueError) as exc:
                    raise SerialException(f"could not open port {self.portstr}: {exc}"
                                          ) from exc
                entry = (engine, 0)
            engine = entry[0]
            _registry[key] = (engine, entry[1] + 1)
        self._attach(key, engine, engine.transport)  # type: ignore[attr-defined]

    def close(self) -> None:
        """Detach; the last port to close stops the replay."""
        if not self.is_open:
            return
        self.is_open = False
        with _registry_lock:
            engine, users = _registry.get(self._key, (None, 0))
            if engine is self._engine:
                if users <= 1:
                    del _registry[self._key]
                else:
                    _registry[self._key] = (engine, users - 1)
                    return
        self._engine.stop()  # type: ignore[attr-defined]
