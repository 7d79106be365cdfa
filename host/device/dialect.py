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
from typing import Protocol

from sonobridge.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Decoder,
    DeviceInfo,
    GetInfo,
    Message,
    Rejected,
    Stop,
    StreamDecoder,
    encode,
)
from sonobridge.protocol.limits import device_info_problems

from .errors import CommandTimeout, HandshakeError, ImpossibleInfo, ProtocolMismatch

__all__ = ["DIALECTS", "HOST_PARTIAL_TIMEOUT_S", "CommandChannel", "Dialect", "ProtocolV1",
           "StreamDecoder", "get_dialect", "protocol_mismatch"]

#: a partial frame the board left unfinished for this long is given up on, so a board that
#: died mid-frame (a brown-out) cannot hold back the replies and the DEVICE_INFO that follow.
#: Below the client's command timeout (0.5 s), so the reply to the first try gets through;
#: four times a board's own 50 ms, and far beyond a pause inside a frame on any link (the
#: reader process stamps each read, so a busy host does not stretch the gaps it sees).
HOST_PARTIAL_TIMEOUT_S = 0.2


class CommandChannel(Protocol):
    """What a handshake may use of the client: commands and the facts for its error messages.

    The dialect only calls down into this; it never reaches into the client's internals.
    """

    @property
    def port(self) -> str:
        """The port name, for error messages."""

    @property
    def bytes_received(self) -> int:
        """Bytes the decoder has seen on this connection."""

    @property
    def rejected_versions(self) -> frozenset[int]:
        """Protocol versions of intact frames the decoder rejected."""

    def command(self, msg: Message, *, expect: type | tuple[type, ...] = Ack,
                retries: int | None = None) -> Message:
        """Send a command and return its reply (raises on NAK or timeout)."""


class Dialect(Protocol):
    """A wire format the device client can speak."""

    name: str

    def new_decoder(self, on_reject: Callable[[Rejected], None]) -> StreamDecoder:
        """A fresh decoder for one connection."""

    def encode(self, message: Message, seq: int, flags: int = 0) -> bytes:
        """The bytes of a command (dialects without commands raise ``NotImplementedError``)."""

    def handshake(self, channel: CommandChannel) -> DeviceInfo:
        """Identify the board, leave it stopped, and return its ``DeviceInfo``.

        Raises a DeviceError if it fails.
        """


def protocol_mismatch(port: str, version: int) -> ProtocolMismatch:
    """The error for a board speaking protocol ``version``, saying which side to update."""
    if version > PROTOCOL_VERSION:
        what = (f"update sonobridge (`pip install -U sonobridge`): the board speaks protocol "
                f"v{version}, this sonobridge speaks v{PROTOCOL_VERSION}")
    else:
        what = (f"update the board's firmware to a protocol v{PROTOCOL_VERSION} build: it "
                f"speaks v{version}")
    return ProtocolMismatch(f"protocol version mismatch on {port}: {what}")


class ProtocolV1:
    """sonobridge wire protocol v1 (docs/protocol.md)."""

    name = "sonobridge-v1"

    def new_decoder(self, on_reject: Callable[[Rejected], None]) -> StreamDecoder:
        """The streaming v1 decoder."""
        return Decoder(on_reject=on_reject, partial_timeout_s=HOST_PARTIAL_TIMEOUT_S)

    def encode(self, message: Message, seq: int, flags: int = 0) -> bytes:
        """A v1 frame."""
        return encode(message, seq, flags=flags)

    def handshake(self, channel: CommandChannel) -> DeviceInfo:
        """GET_INFO, check the protocol version and the info, STOP a stream left running."""
        try:
            info = channel.command(GetInfo(), expect=DeviceInfo, retries=2)
        except CommandTimeout as exc:
            rejected = channel.rejected_versions
            if rejected:
                raise protocol_mismatch(channel.port, max(rejected)) from exc
            raise HandshakeError(
                f"no sonobridge board answered on {channel.port}: nothing came back to GET_INFO "
                f"({channel.bytes_received} bytes received, none of them a valid "
                "protocol v1 frame). Is this the right port (`sonobridge ports`), is the board "
                "powered, and does it run protocol v1 firmware?") from exc
        assert isinstance(info, DeviceInfo)
        if info.protocol_version != PROTOCOL_VERSION:
            raise protocol_mismatch(channel.port, info.protocol_version)
        problems = device_info_problems(info)
        if problems:
            raise ImpossibleInfo(
                f"the board on {channel.port} ({info.board_name or 'unnamed'}, firmware "
                f"{info.firmware_version}) announced an impossible DEVICE_INFO: "
                f"{'; '.join(problems)}. Its firmware is faulty: update or fix it.")
        # a board left streaming by a previous session: stop it so we start from a known state
        channel.command(Stop(), expect=Ack)
        return info


DIALECTS: dict[str, Dialect] = {ProtocolV1.name: ProtocolV1()}


def get_dialect(name: str) -> Dialect:
    """Look up a dialect by name, with the choices in the error."""
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown dialect {name!r}; known: {', '.join(DIALECTS)}") from None
