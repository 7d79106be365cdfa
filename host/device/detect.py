"""Which dialect a board speaks: probe it on the open link, and say what was tried.

``open_device(port)`` (no ``dialect=``) opens the port once and runs :func:`detect` before any
handshake. Every byte that arrives meanwhile goes to a :class:`Probe`, which feeds it to all
the dialects' parsers at once, so a board is recognised by whatever it sends, in whichever
step it sends it. The steps, in the order the USB id suggests (``ports.dialect_hint``;
without a hint, this order):

1. a protocol v1 GET_INFO: a sonobridge board answers with DEVICE_INFO (a board speaking
   another protocol version is recognised too, by its rejected frames);
2. a newline: a pic0rick's stock shell answers ``run> `` (a newline is harmless to the others);
3. listening: an Open Echo streams 0xAA frames with a valid XOR on its own.

The port is never reopened for a probe: opening an Arduino's port resets it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sonobridge.protocol import (
    Decoder,
    DeviceInfo,
    Flags,
    GetInfo,
    Rejected,
    RejectReason,
    encode,
)
from sonobridge.protocol.boards.open_echo import OpenEchoDecoder
from sonobridge.protocol.boards.pic0rick_shell import Prompt, ShellParser

from .errors import HandshakeError

#: the probe's GET_INFO carries a sequence number the client's first commands never use
PROBE_SEQ = 0xFFFF_FFF0
#: bytes of the board's first output kept to show in a failed detection
SHOWN_BYTES = 48


@dataclass(frozen=True)
class Step:
    """One thing detection does: send each of ``tries`` (or nothing) and listen ``wait_s``."""

    dialect: str
    what: str
    tries: tuple[bytes, ...]
    wait_s: float

    @property
    def total_s(self) -> float:
        """How long the step listens in all."""
        return self.wait_s * max(1, len(self.tries))


STEPS: dict[str, Step] = {
    # three tries, as the handshake makes: a lossy link may eat one (the retries carry the
    # RETRY flag, so a board that answered already only repeats its answer)
    "sonobridge-v1": Step("sonobridge-v1", "a protocol v1 GET_INFO",
                          (encode(GetInfo(), PROBE_SEQ),
                           *[encode(GetInfo(), PROBE_SEQ, flags=Flags.RETRY)] * 2), 0.3),
    # the stock firmware waits 0.4 s after DTR before its first prompt
    "pic0rick-shell": Step("pic0rick-shell", "a newline, for the pic0rick's 'run> ' prompt",
                           (b"\n",), 1.2),
    # an Uno pings every ~0.1 s, an R4 every ~0.25 s after ~1 s of WiFi join
    "open-echo": Step("open-echo", "listening for Open Echo 0xAA frames", (), 2.0),
}
DEFAULT_ORDER = ("sonobridge-v1", "pic0rick-shell", "open-echo")


@dataclass
class Probe:
    """Every dialect's parser on one byte stream; ``verdict`` is the first that recognised it."""

    verdict: str | None = None
    bytes_in: int = 0
    head: bytearray = field(default_factory=bytearray)
    changed: threading.Condition = field(default_factory=threading.Condition)
    rejected_versions: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._v1 = Decoder(on_reject=self._on_reject)
        self._shell = ShellParser()
        self._echo = OpenEchoDecoder()

    def feed(self, data: bytes) -> None:
        """Bytes as they arrived (any chunking)."""
        with self.changed:
            self.bytes_in += len(data)
            if len(self.head) < SHOWN_BYTES:
                self.head += data[: SHOWN_BYTES - len(self.head)]
            if self.verdict is None:
                self.verdict = self._recognise(data)
                if self.verdict is not None:
                    self.changed.notify_all()

    def _recognise(self, data: bytes) -> str | None:
        # each parser never raises on any input (their contract), so one cannot stop the others
        if any(isinstance(m, DeviceInfo) for m in self._v1.feed(data)) or \
                self.rejected_versions:
            return "sonobridge-v1"
        if any(isinstance(e, Prompt) for e in self._shell.feed(data)):
            return "pic0rick-shell"
        self._echo.feed(data)
        if self._echo.locked is not None and self._echo.stats.frames_ok:
            return "open-echo"
        return None

    def _on_reject(self, rejected: Rejected) -> None:
        if rejected.reason == RejectReason.VERSION:
            self.rejected_versions.add(rejected.version)

    def wait(self, timeout_s: float) -> str | None:
        """The verdict, waiting up to ``timeout_s`` for one."""
        with self.changed:
            self.changed.wait_for(lambda: self.verdict is not None, timeout_s)
            return self.verdict


def order_for(hint: str | None) -> list[Step]:
    """The steps, the hinted dialect's first."""
    names = list(DEFAULT_ORDER)
    if hint in names:
        names.remove(hint)
        names.insert(0, hint)
    return [STEPS[n] for n in names]


def detect(port: str, probe: Probe, write: Callable[[bytes], None],
           hint: str | None = None) -> str:
    """Run the steps until the probe recognises the board; its dialect's name.

    Raises :class:`HandshakeError` saying what was tried and what came back.
    """
    tried: list[str] = []
    for step in order_for(hint):
        for data in step.tries or (b"",):
            if probe.verdict is not None:
                break
            if data:
                write(data)
            probe.wait(step.wait_s)
        if probe.verdict is not None:
            break
        sent = f"{len(step.tries)} × " if len(step.tries) > 1 else ""
        tried.append(f"{sent}{step.what} ({step.total_s:g} s): nothing recognised")
    if probe.verdict is not None:
        return probe.verdict
    shown = bytes(probe.head)
    got = (f"{probe.bytes_in} bytes came back, starting {shown!r}" if probe.bytes_in
           else "Not one byte came back")
    hinted = f" (its USB id suggested {hint})" if hint else ""
    raise HandshakeError(
        f"no board recognised on {port}{hinted}. Tried: {'; '.join(tried)}. {got}. Is this "
        "the right port (`sonobridge ports`), is the board powered, and is the baud rate "
        "right (an Open Echo on a UART: --baud 250000)? To skip detection, name the board's "
        "dialect with --dialect (`sonobridge info --help` lists them).")
