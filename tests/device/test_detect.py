"""Dialect detection: a board is known by what it sends; a failure says what was tried."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sonobridge.device import detect as det
from sonobridge.device import open_device
from sonobridge.device.client import preferred_baudrate, usb_hint
from sonobridge.device.errors import HandshakeError
from sonobridge.device.ports import PortInfo, dialect_hint
from sonobridge.protocol import PROTOCOL_VERSION, DeviceInfo, encode, encode_frame
from sonobridge.protocol.boards.open_echo import encode_v2

from .device_fixtures import sim_on_pty, twin_on_pty, wait_until

INFO = DeviceInfo(protocol_version=PROTOCOL_VERSION, board_name="probe-test")


def _verdict(*chunks: bytes) -> str | None:
    probe = det.Probe()
    for chunk in chunks:
        probe.feed(chunk)
    return probe.verdict


def test_each_board_is_recognised_by_what_it_sends() -> None:
    assert _verdict(encode(INFO, 7)) == "sonobridge-v1"
    # the prompt has no newline, and may arrive split
    assert _verdict(b"Unknown command: x\r\nru", b"n> ") == "pic0rick-shell"
    pings = b"".join(encode_v2(np.full(1800, k, np.uint8)) for k in range(3))
    assert _verdict(b"[WiFi] connecting\r\n", pings[:2000], pings[2000:]) == "open-echo"
    assert _verdict(b"hello\r\n", b"\x00" * 100) is None


def test_a_board_speaking_another_protocol_version_is_still_a_v1_board() -> None:
    """Its handshake then says which side to update, instead of 'no board'."""
    frame = encode_frame(int(INFO.MSG_TYPE), b"\x00" * 8, 3, version=PROTOCOL_VERSION + 1)
    assert _verdict(frame) == "sonobridge-v1"


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=4000), st.lists(st.integers(1, 600), max_size=12))
def test_garbage_in_any_chunking_never_raises(garbage: bytes, cuts: list[int]) -> None:
    probe = det.Probe()
    pos = 0
    for size in cuts:
        probe.feed(garbage[pos:pos + size])
        pos += size
    probe.feed(garbage[pos:])
    assert probe.bytes_in == len(garbage)
    assert len(probe.head) == min(len(garbage), det.SHOWN_BYTES)


def test_the_usb_id_puts_its_board_first() -> None:
    assert [s.dialect for s in det.order_for(None)] == list(det.DEFAULT_ORDER)
    assert det.order_for("open-echo")[0].dialect == "open-echo"
    assert dialect_hint(0x2E8A, 0x000A) == "pic0rick-shell"
    assert dialect_hint(0x2341, 0x0043) == "open-echo"  # any Arduino
    assert dialect_hint(0x1A86, 0x7523) == "open-echo"
    assert dialect_hint(0x0403, 0x6001) is None and dialect_hint(None, None) is None
    assert usb_hint("sim://?board=pic0rick") is None
    assert preferred_baudrate("open-echo") == 250_000
    assert preferred_baudrate("pic0rick-shell") == preferred_baudrate(None) == 115_200
    port = PortInfo("/dev/ttyACM0", "Pico", "usb", 0x2E8A, 0x000A,
                    likely_dialect=dialect_hint(0x2E8A, 0x000A))
    assert "pic0rick" in port.likely_name


def test_detection_stops_at_the_first_answer() -> None:
    probe = det.Probe()
    sent: list[bytes] = []

    def board(data: bytes) -> None:  # a pic0rick: junk to GET_INFO, a prompt to a newline
        sent.append(data)
        if data == b"\n":
            probe.feed(b"\r\nrun> ")

    assert det.detect("fake0", probe, board, hint="pic0rick-shell") == "pic0rick-shell"
    assert sent == [b"\n"]  # the hint went first, and nothing else was needed


def test_a_failed_detection_says_what_was_tried_and_what_came_back(monkeypatch) -> None:
    quick = {name: dataclasses.replace(step, wait_s=0.05) for name, step in det.STEPS.items()}
    monkeypatch.setattr(det, "STEPS", quick)
    probe = det.Probe()
    probe.feed(b"\x13\x37 noise")
    with pytest.raises(HandshakeError) as err:
        det.detect("fake0", probe, lambda data: None)
    text = str(err.value)
    for words in ("no board recognised on fake0", "3 × a protocol v1 GET_INFO",
                  "'run> ' prompt", "Open Echo 0xAA frames", "8 bytes came back",
                  "--dialect", "--baud 250000"):
        assert words in text


def test_silence_on_a_real_pty_is_a_handshake_error_not_a_hang() -> None:
    master, slave = os.openpty()
    try:
        with pytest.raises(HandshakeError, match="Not one byte came back"):
            open_device(os.ttyname(slave))
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize(("board", "dialect"), [
    ("sonobridge", "sonobridge-v1"), ("pic0rick", "pic0rick-shell"), ("open-echo", "open-echo")])
def test_every_simulated_board_is_found_on_a_pty(board: str, dialect: str) -> None:
    ctx = sim_on_pty() if board == "sonobridge" else twin_on_pty(board)
    with ctx as (_engine, port), open_device(port) as dev:
        assert dev.dialect.name == dialect
        assert dev.stats.dialect == dialect
        assert dev.info is not None and dev.state == "connected"


@pytest.mark.parametrize("board", ["pic0rick", "open-echo"])
def test_a_twin_unplugged_mid_stream_is_found_again_and_streams_on(board: str,
                                                                  tmp_path) -> None:
    """The dialect found at open is kept; its handshake runs again on the port that came back,
    and the firings in flight when the cable went are not blamed on the board."""
    link = str(tmp_path / "board")
    with twin_on_pty(board, faults="disconnect=0.3@0.5", link_path=link) as (_engine, port), \
            open_device(port) as dev:
        dev.start()
        wait_until(lambda: dev.stats.reconnects >= 1, timeout_s=10, what="the reconnect")
        wait_until(lambda: dev.state == "connected", timeout_s=10, what="the new handshake")
        n = dev.stats.lines_received
        wait_until(lambda: dev.stats.lines_received >= n + 3, timeout_s=10,
                   what="lines after the reconnect")
        dev.stop()
        s = dev.stats
    assert dev.dialect.name.startswith(board.replace("pic0rick", "pic0rick-shell"))
    assert s.lines_lost_device == 0 and s.disconnects >= 1
