"""HIL-FRM: how the board answers frames it cannot use (docs/protocol.md, section 3)."""

from __future__ import annotations

import binascii
import struct

import pytest

from sonobridge.hil.board import HilSession, fail_on
from sonobridge.hil.checks import Expected, base_configure, describe_reply, reply_problem
from sonobridge.protocol import (
    SYNC,
    Ack,
    ErrorCode,
    Flags,
    MsgType,
    Ping,
    Pong,
    Start,
    Status,
    encode_frame,
    encode_payload,
)

REPLY_TIMEOUT_S = 0.5


def _expect(hil: HilSession, what: str, msg_type: int, payload: bytes, expected: Expected,
            **frame: int) -> str | None:
    r = hil.send_frame(msg_type, payload, timeout_s=REPLY_TIMEOUT_S, **frame)
    return reply_problem(what, r.reply, expected, msg_type)


@pytest.mark.requirement("HIL-FRM-1")
def test_bad_length(hil: HilSession) -> None:
    """Payloads that do not fit the command's layout: NAK BAD_LENGTH."""
    bad = Expected(ErrorCode.BAD_LENGTH)
    cfg = encode_payload(base_configure(hil.info))
    start = encode_payload(Start(n_frames=1))
    cases = [
        ("CONFIGURE with 99 payload bytes", MsgType.CONFIGURE, cfg[:-1]),
        ("CONFIGURE with 101 payload bytes", MsgType.CONFIGURE, cfg + b"\0"),
        ("CONFIGURE with an empty payload", MsgType.CONFIGURE, b""),
        ("START with 3 payload bytes", MsgType.START, start[:3]),
        ("START with 5 payload bytes", MsgType.START, start + b"\0"),
        ("GET_STATUS with 1 payload byte", MsgType.GET_STATUS, b"\0"),
        ("STOP with 4 payload bytes", MsgType.STOP, b"\0" * 4),
        ("GET_INFO with 1 payload byte", MsgType.GET_INFO, b"\0"),
        ("PING with 2 payload bytes", MsgType.PING, b"\0\0"),
        ("PING with 1021 data bytes", MsgType.PING, b"\0" * (4 + 1021)),
    ]
    fail_on([p for what, t, payload in cases if (p := _expect(hil, what, t, payload, bad))])


@pytest.mark.requirement("HIL-FRM-2")
def test_unknown_type(hil: HilSession) -> None:
    """Types that are not commands: NAK UNKNOWN_TYPE."""
    unknown = Expected(ErrorCode.UNKNOWN_TYPE)
    cases = [
        ("message type 0x00", 0x00, b""),
        ("message type 0x08 (unassigned)", 0x08, b""),
        ("message type 0x7F (unassigned)", 0x7F, b""),
        ("message type 0xFF (unassigned)", 0xFF, b""),
        ("ACK (0x82, a device-to-host type)", MsgType.ACK, encode_payload(Ack(1, 1))),
    ]
    fail_on([p for what, t, payload in cases if (p := _expect(hil, what, t, payload, unknown))])


@pytest.mark.requirement("HIL-FRM-3")
def test_flags(hil: HilSession) -> None:
    """Must-understand flags (bits 4-7): NAK UNSUPPORTED_FLAG. Advisory bits: ignored."""
    p = []
    for flags in (0x10, 0x20, 0x40, 0x80):
        p.append(_expect(hil, f"GET_STATUS with must-understand flag 0x{flags:02X}",
                         MsgType.GET_STATUS, b"", Expected(ErrorCode.UNSUPPORTED_FLAG),
                         flags=flags))
    for flags in (Flags.SIMULATED, 0x04, 0x08):
        r = hil.send_frame(MsgType.GET_STATUS, b"", flags=int(flags), timeout_s=REPLY_TIMEOUT_S)
        if not isinstance(r.reply, Status):
            p.append(f"board answered GET_STATUS with advisory flag 0x{int(flags):02X} with "
                     f"{describe_reply(r.reply)}; advisory flags must be ignored (expected "
                     "STATUS)")
    fail_on([x for x in p if x])


@pytest.mark.requirement("HIL-FRM-4")
def test_unsupported_version(hil: HilSession) -> None:
    """Frames of another protocol version: NAK UNSUPPORTED_VERSION (sent as a v1 frame)."""
    fail_on([p for v in (0, 2, 255) if (p := _expect(
        hil, f"GET_STATUS in a version {v} frame", MsgType.GET_STATUS, b"",
        Expected(ErrorCode.UNSUPPORTED_VERSION), version=v))])


@pytest.mark.requirement("HIL-FRM-5")
def test_damaged_frames_ignored(hil: HilSession) -> None:
    """Junk, CRC errors, truncation and absurd lengths get no reply; the next PING does."""
    dev = hil.dev
    s_crc, s_hdr, s_cut, s_len, s_ping = (dev.next_seq() for _ in range(5))
    bad_crc = bytearray(encode_frame(MsgType.GET_STATUS, b"", s_crc))
    bad_crc[-1] ^= 0x01
    bad_hdr = bytearray(encode_frame(MsgType.GET_STATUS, b"", s_hdr))
    bad_hdr[14] ^= 0xFF
    cut = encode_frame(MsgType.GET_STATUS, b"", s_cut)[:10]
    head = struct.pack("<2sBBIIBB", SYNC, 1, MsgType.GET_STATUS, 0xFFFFFFF0, s_len, 0, 0)
    huge = head + struct.pack("<H", binascii.crc_hqx(head, 0xFFFF))
    junk = bytes((i * 37 + 11) & 0xFF for i in range(48)) + SYNC + b"\x01\x05junk"
    ping = encode_frame(MsgType.PING, encode_payload(Ping(token=0xC0FFEE)), s_ping)
    with hil.tap() as tap:
        dev.send_raw(junk + bytes(bad_crc) + bytes(bad_hdr) + cut + huge + ping)
        got = tap.reply_to(s_ping, REPLY_TIMEOUT_S)
        replies = {getattr(m, "request_seq", None): m for _, m in tap.messages}
    p = []
    if got is None or not isinstance(got[1], Pong):
        p.append("board did not answer a valid PING sent right after junk bytes and damaged "
                 f"frames (got {describe_reply(got[1] if got else None)}): its parser does not "
                 "resynchronise")
    for seq, what in ((s_crc, "a frame with a bad CRC-32"), (s_hdr, "a frame with a bad header "
                      "CRC"), (s_cut, "a truncated frame"), (s_len, "a header announcing "
                      "0xFFFFFFF0 payload bytes")):
        if seq in replies:
            p.append(f"board answered {what} with {describe_reply(replies[seq])}; damaged "
                     "frames must be dropped silently")
    fail_on(p)
