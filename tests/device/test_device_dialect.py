"""The v1 handshake calls down into a narrow command channel, never into the client."""

from __future__ import annotations

import dataclasses

import pytest

from sonobridge.device import ClientState
from sonobridge.device.dialect import CommandChannel, ProtocolV1
from sonobridge.device.errors import (
    CommandTimeout,
    HandshakeError,
    ImpossibleInfo,
    ProtocolMismatch,
)
from sonobridge.protocol import (
    PROTOCOL_VERSION,
    Ack,
    DeviceInfo,
    GetInfo,
    Message,
    RejectReason,
    Stop,
)

from .hostile_board import DEFAULT_INFO


class FakeChannel:
    """Only what ``CommandChannel`` promises: commands, the port and two facts."""

    def __init__(self, info: DeviceInfo | None, rejected: frozenset[int] = frozenset()) -> None:
        self.port = "fake0"
        self.bytes_received = 123
        self.rejected_versions = rejected
        self.info = info
        self.sent: list[Message] = []

    def command(self, msg: Message, *, expect: type | tuple[type, ...] = Ack,
                retries: int | None = None) -> Message:
        self.sent.append(msg)
        if isinstance(msg, GetInfo):
            if self.info is None:
                raise CommandTimeout("GET_INFO: no reply")
            return self.info
        return Ack(request_seq=0, request_type=int(msg.MSG_TYPE))


def _handshake(channel: CommandChannel) -> DeviceInfo:
    return ProtocolV1().handshake(channel)


def test_handshake_returns_the_info_and_stops_a_stream_left_running() -> None:
    channel = FakeChannel(DEFAULT_INFO)
    assert _handshake(channel) == DEFAULT_INFO
    assert [type(m) for m in channel.sent] == [GetInfo, Stop]


def test_silence_is_a_handshake_error_naming_the_port_and_bytes() -> None:
    with pytest.raises(HandshakeError, match=r"no sonobridge board answered on fake0.*123 bytes"):
        _handshake(FakeChannel(None))


@pytest.mark.parametrize("version", [PROTOCOL_VERSION + 1, PROTOCOL_VERSION - 1])
def test_rejected_versions_or_a_foreign_info_are_a_mismatch(version: int) -> None:
    with pytest.raises(ProtocolMismatch, match=f"on fake0: .*v{version}"):
        _handshake(FakeChannel(None, frozenset({version})))
    info = dataclasses.replace(DEFAULT_INFO, protocol_version=version)
    with pytest.raises(ProtocolMismatch, match=f"on fake0: .*v{version}"):
        _handshake(FakeChannel(info))


def test_an_impossible_info_is_refused_before_stop() -> None:
    channel = FakeChannel(dataclasses.replace(DEFAULT_INFO, hv_min_mv=50_000, hv_max_mv=10_000))
    with pytest.raises(ImpossibleInfo, match="impossible DEVICE_INFO"):
        _handshake(channel)
    assert [type(m) for m in channel.sent] == [GetInfo]


def test_states_and_reasons_still_compare_as_strings() -> None:
    assert ClientState.CONNECTED == "connected"
    assert RejectReason.VERSION == "version"
    assert {"length": 1}[RejectReason.LENGTH] == 1
