"""A truncated command costs one NAK-less drop, not a stall: the simulated and replay boards.

The host writes the first 60 of a CONFIGURE's 120 bytes and at once a whole PING. The PING
lies inside the span the CONFIGURE's header announced, so only the device's idle-gap rule
(``PARTIAL_FRAME_TIMEOUT_S``) can release it: its PONG is due one gap later, long before the
host's first retry (500 ms). Over a real pty, with the engine ticking in real time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import serial

from sonobridge.board.engine import BoardEngine
from sonobridge.board.pty_transport import PtyTransport
from sonobridge.protocol import (
    Configure,
    Decoder,
    DeviceInfo,
    GetStatus,
    Message,
    Ping,
    Pong,
    Status,
    encode,
)
from sonobridge.protocol.constants import PARTIAL_FRAME_TIMEOUT_S
from sonobridge.record.replay import ReplayBoard
from sonobridge.sim.server import SimOptions, create_engine

from .board_fixtures import IndexRenderer, make_board

CUT = 60
#: the PONG after a truncated CONFIGURE must beat this; the protocol promises 100 ms
PONG_LIMIT_S = 0.200


def truncated_configure_and_ping(token: int) -> tuple[bytes, bytes]:
    """The first 60 bytes of an encoded CONFIGURE (seq 1), and a whole PING (seq 2)."""
    cfg = encode(Configure(), 1)
    assert len(cfg) == 120
    return cfg[:CUT], encode(Ping(token=token, data=b"after a truncated command"), 2)


def pong_after_truncated_configure(port: str) -> tuple[float, list[Message]]:
    """Seconds from the writes to the PONG, and every message up to a STATUS asked after it."""
    head, ping = truncated_configure_and_ping(0xC0DE)
    dec = Decoder()
    got: list[Message] = []
    with serial.Serial(port, timeout=0.01) as ser:
        ser.reset_input_buffer()
        t0 = time.monotonic()
        ser.write(head)
        ser.write(ping)
        latency = wait_for(ser, dec, got, lambda m: isinstance(m, Pong), t0 + 2.0) - t0
        # a request answered after the PONG bounds everything the device said about seq 1
        ser.write(encode(GetStatus(), 3))
        wait_for(ser, dec, got, lambda m: isinstance(m, Status), time.monotonic() + 2.0)
    assert dec.stats.crc_errors == dec.stats.header_errors == dec.stats.bytes_discarded == 0
    return latency, got


def wait_for(ser: serial.Serial, dec: Decoder, got: list[Message], pred, deadline: float) -> float:
    """Read and decode until a message satisfies ``pred``; the monotonic time it was decoded."""
    while time.monotonic() < deadline:
        for msg in dec.feed(ser.read(max(1, ser.in_waiting))):
            got.append(msg)
            if pred(msg):
                return time.monotonic()
    raise AssertionError(f"no matching message before the deadline; got {got}")


def assert_truncated_command_was_dropped_silently(latency: float, got: list[Message]) -> None:
    """The PONG came one idle gap after the writes, and nothing answered the CONFIGURE."""
    (pong,) = [m for m in got if isinstance(m, Pong)]
    assert (pong.request_seq, pong.token) == (2, 0xC0DE)
    assert PARTIAL_FRAME_TIMEOUT_S - 0.001 <= latency < PONG_LIMIT_S, latency
    assert not [m for m in got if getattr(m, "request_seq", None) == 1]  # no ACK, no NAK


@contextlib.contextmanager
def served(board) -> Iterator[tuple[BoardEngine, str]]:
    """``board`` driven by the simulator's engine on a real pseudo-terminal."""
    transport = PtyTransport()
    engine = BoardEngine(board, transport)
    engine.start()
    try:
        yield engine, transport.path
    finally:
        engine.stop()
    assert engine.error is None


class SilentRecording:
    """A replay source with a DEVICE_INFO and no lines: enough for a board to answer."""

    path = Path("<memory>")
    frame_flags = 0
    config = None

    def __init__(self) -> None:
        self.info = DeviceInfo(request_seq=0, board_name="recorded-board", prf_max_hz=20_000)

    def items(self) -> Iterator:
        """Nothing was recorded."""
        return iter(())

    def damage_note(self) -> str:
        """Nothing was damaged."""
        return ""


def test_sim_board_on_a_pty_answers_the_ping_behind_a_truncated_configure():
    transport = PtyTransport()
    engine = create_engine(SimOptions(), transport, renderer=IndexRenderer())
    engine.start()
    try:
        latency, got = pong_after_truncated_configure(transport.path)
        with engine.lock:
            stats = engine.board._decoder.stats
            expired = engine.board._decoder.partials_expired
    finally:
        engine.stop()
    assert engine.error is None
    assert_truncated_command_was_dropped_silently(latency, got)
    assert (expired, stats.bytes_discarded, stats.frames_ok) == (1, CUT, 2)
    print(f"sim board: PONG {latency * 1e3:.1f} ms after a truncated CONFIGURE")


def test_replay_board_on_a_pty_answers_the_ping_behind_a_truncated_configure():
    with served(ReplayBoard(SilentRecording())) as (_engine, port):
        latency, got = pong_after_truncated_configure(port)
    assert_truncated_command_was_dropped_silently(latency, got)
    print(f"replay board: PONG {latency * 1e3:.1f} ms after a truncated CONFIGURE")


def test_sim_board_expires_on_its_own_clock_not_on_new_bytes():
    board = make_board()
    head, ping = truncated_configure_and_ping(7)
    dec = Decoder()
    board.feed(head + ping, 10.0)
    board.feed(b"", 10.0 + PARTIAL_FRAME_TIMEOUT_S * 0.99)  # a tick inside the gap
    assert dec.feed(b"".join(f for _, f in board.pull(10.04))) == []
    board.feed(b"", 10.0 + PARTIAL_FRAME_TIMEOUT_S)  # the tick that ends the gap
    (pong,) = dec.feed(b"".join(f for _, f in board.pull(10.05)))
    assert isinstance(pong, Pong) and (pong.request_seq, pong.token) == (2, 7)
    assert pong.device_time_us == 10_050_000  # answered when the gap ended


def test_replay_board_expires_on_its_own_clock():
    board = ReplayBoard(SilentRecording())
    head, ping = truncated_configure_and_ping(8)
    board.feed(head, 1.0)
    board.feed(ping, 1.0)
    board.feed(b"", 1.0 + PARTIAL_FRAME_TIMEOUT_S / 2)
    assert board.pull(1.03) == []
    board.feed(b"", 1.0 + PARTIAL_FRAME_TIMEOUT_S)
    ((seq, frame),) = board.pull(1.05)
    (pong,) = Decoder().feed(frame)
    assert isinstance(pong, Pong) and (seq, pong.request_seq, pong.token) == (0, 2, 8)
