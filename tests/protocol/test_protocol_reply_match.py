"""A reply answers a command only if its type fits as well as its sequence number."""

from __future__ import annotations

import pytest

from sonobridge.protocol import Ack, DeviceInfo, MsgType, Nak, Pong, Status
from sonobridge.protocol.rules import reply_matches


@pytest.mark.parametrize(("reply", "command", "expected"), [
    (Ack(request_seq=1, request_type=MsgType.CONFIGURE), MsgType.CONFIGURE, True),
    (Ack(request_seq=1, request_type=MsgType.START), MsgType.CONFIGURE, False),
    (Nak(request_seq=1, request_type=MsgType.GET_INFO), MsgType.GET_INFO, True),
    (Nak(request_seq=1, request_type=MsgType.PING), MsgType.GET_INFO, False),
    (DeviceInfo(request_seq=1), MsgType.GET_INFO, True),
    (DeviceInfo(request_seq=1), MsgType.GET_STATUS, False),
    (Status(request_seq=1), MsgType.GET_STATUS, True),
    (Status(request_seq=1), MsgType.PING, False),
    (Pong(request_seq=1), MsgType.PING, True),
    (Pong(request_seq=1), MsgType.STOP, False),
    (Ack(request_seq=1, request_type=MsgType.STOP), MsgType.PING, False),
])
def test_reply_matches_by_type(reply, command: int, expected: bool) -> None:
    assert reply_matches(reply, int(command)) is expected
