"""Wire dialects: how a board's bytes become sonobridge messages, and commands become bytes.

The device client works on ``sonobridge.protocol`` messages (``EchoLine``, ``FrameEnd``, ``Ack``…)
and never on bytes. A dialect is the translation layer. ``ProtocolV1`` is the native one. A
board that speaks something else (Open Echo's 0xAA-framed u8 lines at 250 kbaud, pic0rick's
text shell with hex dumps) gets a dialect that emits the same messages: its decoder turns
each line into an ``EchoLine`` (and each sweep end into a ``FrameEnd``), and its ``handshake``
builds the ``DeviceInfo`` that board cannot send itself. ``open_device(port,
dialect=...)`` then gives the same ``Device`` and ``Frame`` interface, so the viewer, the
recorder and the DSP work unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from sonobridge.protocol import Decoder, DecoderStats, Message, Rejected, encode

if TYPE_CHECKING:
    from .client import Device


#: a partial frame the board left unfinished for this long is given up on, so a board that
#: died mid-frame (a brown-out) cannot hold back the replies and the DEVICE_INFO that follow.
#: Below the client's command timeout (0.5 s), so the reply to the first try gets through;
#: four times a board's own 50 ms, and far beyond a pause inside a frame on any link (the
#: reader process stamps each read, so a busy host does not stretch the gaps it sees).
HOST_PARTIAL_TIMEOUT_S = 0.2


class StreamDecoder(Protocol):
    """What a dialect's decoder offers (``sonobridge.protocol.Decoder`` is the model)."""

    stats: DecoderStats

    def feed(self, data: bytes, now_s: float | None = None) -> list[Message]:
        """Bytes in any chunking, arrived at ``now_s`` → messages, never raising."""

    def expire(self, now_s: float) -> list[Message]:
        """Give up on a partial frame idle since before ``now_s`` − its timeout."""

    def reset(self) -> None:
        """Forget partial input (after a reconnect)."""


class Dialect(Protocol):
    """A wire format the device client can speak."""

    name: str

    def new_decoder(self, on_reject: Callable[[Rejected], None]) -> StreamDecoder:
        """A fresh decoder for one connection."""

    def encode(self, message: Message, seq: int, flags: int = 0) -> bytes:
        """The bytes of a command (dialects without commands raise ``NotImplementedError``)."""

    def handshake(self, device: Device) -> None:
        """Identify the board and set ``device.info``; raise a DeviceError if it fails."""


class ProtocolV1:
    """sonobridge wire protocol v1 (docs/protocol.md)."""

    name = "sonobridge-v1"

    def new_decoder(self, on_reject: Callable[[Rejected], None]) -> StreamDecoder:
        """The streaming v1 decoder."""
        return Decoder(on_reject=on_reject, partial_timeout_s=HOST_PARTIAL_TIMEOUT_S)

    def encode(self, message: Message, seq: int, flags: int = 0) -> bytes:
        """A v1 frame."""
        return encode(message, seq, flags=flags)

    def handshake(self, device: Device) -> None:
        """GET_INFO, check the protocol version, STOP a stream left running."""
        device._handshake_v1()


DIALECTS: dict[str, Dialect] = {ProtocolV1.name: ProtocolV1()}


def get_dialect(name: str) -> Dialect:
    """Look up a dialect by name, with the choices in the error."""
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown dialect {name!r}; known: {', '.join(DIALECTS)}") from None
