"""Wire dialects: how a board's bytes become sonobridge messages, and commands become bytes.

The device client works on ``sonobridge.protocol`` messages (``EchoLine``, ``FrameEnd``, ``Ack``…)
and never on bytes. A dialect is the translation layer, one instance per connection.
``ProtocolV1`` is the native one. A board that speaks something else (Open Echo's 0xAA-framed
lines, the pic0rick's text shell with hex dumps; ``open_echo_dialect.py``,
``pic0rick_dialect.py``) gets a dialect that emits the same messages: its decoder turns each
firing into an ``EchoLine`` (and each sweep end into a ``FrameEnd``), its ``handshake`` builds
the ``DeviceInfo`` that board cannot send itself, and its ``perform`` carries out the commands
the board has no frame for (CONFIGURE as ``write dac``, START as a loop of ``start acq`` +
``read``, or a clear refusal). ``open_device(port)`` picks the dialect by probing
(``detect.py``), ``dialect=`` forces one, and the viewer, the recorder and the DSP work
unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Protocol

from sonobridge.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Decoder,
    DeviceInfo,
    ErrorCode,
    GetInfo,
    Message,
    MsgType,
    Nak,
    Rejected,
    Stop,
    StreamDecoder,
    encode,
)
from sonobridge.protocol.limits import device_info_problems

from .config import AcquisitionConfig
from .errors import CommandTimeout, HandshakeError, ImpossibleInfo, ProtocolMismatch

__all__ = [
    "AUTO",
    "DIALECTS",
    "HOST_PARTIAL_TIMEOUT_S",
    "TRANSLATED_COMMANDS",
    "CommandChannel",
    "Dialect",
    "ProtocolV1",
    "StreamDecoder",
    "dialect_names",
    "get_dialect",
    "protocol_mismatch",
    "unsupported",
]

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

    def write(self, data: bytes) -> None:
        """Send bytes as they are (a board's own commands)."""


class Dialect(Protocol):
    """A wire format the device client can speak; one instance serves one connection."""

    name: str
    #: what ``board_name`` a report shows before the handshake (e.g. "pic0rick")
    board: ClassVar[str]
    #: added to every refused setting: what this board can set at all ("" = its limits say)
    settings_note: ClassVar[str]
    #: the samples are the board's own envelope (a magnitude, no zero level), not RF
    envelope_samples: ClassVar[bool]
    #: the lines carry the board's own timestamps (``EchoLine.timestamp_us``)
    device_clock: ClassVar[bool]

    def new_decoder(self, on_reject: Callable[[Rejected], None]) -> StreamDecoder:
        """The decoder for this connection (the dialect may keep it, to follow the board)."""

    def encode(self, message: Message, seq: int, flags: int = 0) -> bytes:
        """The bytes of a command (dialects without commands raise ``NotImplementedError``)."""

    def handshake(self, channel: CommandChannel) -> DeviceInfo:
        """Identify the board, leave it stopped, and return its ``DeviceInfo``.

        Raises a DeviceError if it fails.
        """

    def perform(self, channel: CommandChannel, message: Message) -> Message | None:
        """Carry out a command the board has no frame for and return the reply (an ``Ack``, a
        ``Nak``); None: the command goes on the wire as a frame (``encode``)."""

    def supports(self, msg_type: MsgType) -> bool:
        """Whether this board can carry out commands of this type at all."""

    def default_config(self, info: DeviceInfo) -> AcquisitionConfig:
        """The configuration used when nobody asks for another (the board's own, if fixed)."""

    def in_flight(self) -> int | None:
        """Firings asked for and not answered yet; None: only the link's silence tells."""

    def nominal_fields(self) -> dict[str, str]:
        """DEVICE_INFO fields the dialect assumed (the board did not say), and why."""

    def close(self) -> None:
        """Stop what the dialect runs for the connection (a streaming loop)."""


#: the commands a board on its own firmware is given at most: the dialect carries them out
#: (GET_INFO from the facts it built, CONFIGURE checked or translated, START/STOP)
TRANSLATED_COMMANDS = frozenset({MsgType.GET_INFO, MsgType.CONFIGURE, MsgType.START,
                                 MsgType.STOP})


def unsupported(message: Message, text: str) -> Nak:
    """The NAK a dialect answers for a command its board cannot carry out."""
    return Nak(request_seq=0, request_type=int(message.MSG_TYPE),
               error_code=ErrorCode.UNSUPPORTED, text=text[:120])


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
    board: ClassVar[str] = "sonobridge board"
    settings_note: ClassVar[str] = ""
    envelope_samples: ClassVar[bool] = False
    device_clock: ClassVar[bool] = True

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

    def perform(self, channel: CommandChannel, message: Message) -> Message | None:
        """Every command is a v1 frame."""
        return None

    def supports(self, msg_type: MsgType) -> bool:
        """The board says what it cannot do with a NAK."""
        return True

    def default_config(self, info: DeviceInfo) -> AcquisitionConfig:
        """A sensible configuration within the limits the board announced."""
        return AcquisitionConfig.default_for(info)

    def in_flight(self) -> int | None:
        """The board's send buffer is invisible from here: the link's silence tells."""
        return None

    def nominal_fields(self) -> dict[str, str]:
        """None: the board announced its DEVICE_INFO itself."""
        return {}

    def close(self) -> None:
        """Nothing runs beside the client."""


#: the name that makes ``open_device`` probe for the dialect (``detect.py``)
AUTO = "auto"

#: dialect name → ``"module:factory"`` (imported when asked for) and a one-line description
DIALECTS: dict[str, tuple[str, str]] = {
    ProtocolV1.name: ("sonobridge.device.dialect:ProtocolV1",
                      "sonobridge protocol v1 (our firmware, the simulator, replays)"),
    "pic0rick-shell": ("sonobridge.device.pic0rick_dialect:stock",
                       "pic0rick stock firmware: the run> text shell, 8 ns pulse ticks"),
    "pic0rick-shell-old": ("sonobridge.device.pic0rick_dialect:old",
                           "pic0rick older shell (rp2040_shell): 4 ns pulse ticks, 250 MHz"),
    "open-echo": ("sonobridge.device.open_echo_dialect:auto",
                  "Open Echo (TUSS4470 shield): 0xAA frames, format v1 or v2 detected"),
    "open-echo-v1": ("sonobridge.device.open_echo_dialect:v1",
                     "Open Echo, frame format v1 (big-endian u16 samples) forced"),
    "open-echo-v2": ("sonobridge.device.open_echo_dialect:v2",
                     "Open Echo, frame format v2 (u8 samples) forced"),
}


def dialect_names() -> list[str]:
    """Every name ``--dialect`` accepts: ``auto`` first, then the dialects."""
    return [AUTO, *DIALECTS]


def get_dialect(name: str) -> Dialect:
    """A fresh dialect for one connection, by name (ValueError with the choices if unknown)."""
    import importlib

    try:
        target = DIALECTS[name][0]
    except KeyError:
        raise ValueError(f"unknown dialect {name!r}; choose one of "
                         f"{', '.join(dialect_names())}") from None
    module, _, factory = target.partition(":")
    return getattr(importlib.import_module(module), factory)()
