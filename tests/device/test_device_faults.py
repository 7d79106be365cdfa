"""Streaming under every injected fault: exactly the damaged lines are lost, and counted."""

from __future__ import annotations

import time

import pytest

from sonobridge.device import open_device
from sonobridge.protocol import EchoLine

from .device_fixtures import (
    assert_lines_match_truth,
    drain,
    sim_board,
    truth_lines,
    wait_until,
)

N_FRAMES = 40
LINES = 8


def run_stream(faults: str, seed: int = 3, n_frames: int = N_FRAMES, kind: str = "pty"):
    """Stream through a faulty link; return (engine, stats, received lines, final STATUS)."""
    with sim_board(kind, faults=faults, seed=seed) as (get_engine, port), \
            open_device(port) as dev:
        engine = get_engine()
        dev.configure(samples_per_line=512, lines_per_frame=LINES, prf_hz=4000, ensemble_size=1)
        received: dict[tuple[int, int, int], object] = {}
        seqs: dict[tuple[int, int, int], int] = {}

        def on_line(line: EchoLine, _t: int) -> None:
            slot = (line.frame_index, line.line_index, line.ensemble_index)
            received[slot] = line.samples.copy()
            seqs[slot] = line.seq

        dev.add_line_listener(on_line)
        dev.start(n_frames=n_frames)
        drain(engine, dev)
        dev.flush()
        return engine, dev.stats, received, dev.status()


@pytest.mark.parametrize("kind", ["pty", "url"])
@pytest.mark.parametrize("faults", ["bitflip=2e-5", "drop=2e-5", "bitflip=1e-5,drop=1e-5"])
def test_byte_damage_loses_exactly_the_damaged_lines(faults, kind):
    engine, stats, received, _ = run_stream(faults, kind=kind)
    sent = truth_lines(engine)
    damaged = engine.injector.damaged_seqs()
    damaged_lines = {s for s in damaged if s in sent}
    assert damaged_lines, "the fault rate should damage at least one line in this run"
    expected = {(m.frame_index, m.line_index, m.ensemble_index)
                for s, m in sent.items() if s not in damaged}
    assert set(received) == expected
    assert_lines_match_truth(received, sent)
    assert stats.lines_lost_link == len(damaged_lines)
    assert stats.lines_lost_device == 0
    assert stats.lines_missing == len(damaged_lines)
    # every damaged frame shows up as a CRC or header error and a sequence gap
    assert stats.seq_gaps == len(damaged)
    assert stats.crc_errors + stats.header_errors >= len(damaged)


@pytest.mark.parametrize("kind", ["pty", "url"])
def test_garbage_bursts_lose_nothing(kind):
    engine, stats, received, _ = run_stream("garbage=0.2", kind=kind)
    assert sum(e.kind == "garbage" for e in engine.events) > 10
    sent = truth_lines(engine)
    assert len(received) == len(sent) == N_FRAMES * LINES
    assert_lines_match_truth(received, sent)
    assert stats.lines_missing == 0 and stats.seq_gaps == 0
    assert stats.bytes_discarded > 0


@pytest.mark.parametrize("kind", ["pty", "url"])
def test_device_overflow_is_attributed_to_the_device(kind):
    engine, stats, received, status = run_stream("overflow=0.05", kind=kind)
    dropped = engine.board.dropped_lines
    assert dropped > 0
    assert len(received) == N_FRAMES * LINES - dropped
    assert_lines_match_truth(received, truth_lines(engine))
    assert stats.lines_lost_device == dropped
    assert stats.lines_lost_link == 0 and stats.seq_gaps == 0
    assert status.dropped_lines == dropped


@pytest.mark.parametrize("kind", ["pty", "url"])
def test_stall_overflows_the_device_buffer_and_is_reported(kind):
    with sim_board(kind, faults="stall=0.4@0.05") as (get_engine, port), \
            open_device(port) as dev:
        engine = get_engine()
        # 8 KB lines at 4 kHz = 33 MB/s: a 0.4 s stall overflows the 256 KB send buffer
        dev.configure(samples_per_line=4096, lines_per_frame=16, prf_hz=4000)
        dev.start(n_frames=120)
        drain(engine, dev)
        dev.flush()
        stats = dev.stats
        assert any(e.kind == "stall" for e in engine.events)
        assert engine.board.dropped_lines > 100
        assert stats.lines_lost_device == engine.board.dropped_lines
        assert stats.lines_lost_link == 0
        assert any("dropping" in text for text in stats.logs)


@pytest.mark.parametrize("kind", ["pty", "url"])
def test_disconnect_is_detected_reported_and_recovered(tmp_path, kind):
    link = str(tmp_path / "sim-port")
    states: list[tuple[str, float]] = []
    with sim_board(kind, faults="disconnect=0.5@0.2", link_path=link) as (get_engine, port), \
            open_device(link if kind == "pty" else port) as dev:
        engine = get_engine()
        dev.on_state = lambda s: states.append((s, time.monotonic()))
        dev.configure(samples_per_line=512, lines_per_frame=LINES, prf_hz=2000)
        dev.start()
        before = list(dev.frames(timeout=2.0, count=5))
        wait_until(lambda: dev.stats.disconnects == 1, 3.0, "the disconnect")
        wait_until(lambda: dev.state == "connected" and dev.stats.reconnects == 1, 5.0,
                   "the reconnect")
        after = next(iter(dev.frames(timeout=2.0)))
        while after.index < 2:  # skip frames that were in flight around the cut
            after = next(iter(dev.frames(timeout=2.0)))
        assert after.complete
        assert [s for s, _ in states][:2] == ["disconnected", "connected"]
        reconnected_at = states[1][1]
        assert reconnected_at - engine.stats.replugged_s < 2.0
        assert all(f.complete for f in before)
        assert dev.streaming  # streaming resumed by itself
        assert engine.board.boots == 2  # the replugged board rebooted


@pytest.mark.parametrize("kind", ["pty", "url"])
def test_device_reset_mid_stream_recovers(kind):
    with sim_board(kind, faults="reset@0.2") as (get_engine, port), open_device(port) as dev:
        engine = get_engine()
        dev.configure(samples_per_line=512, lines_per_frame=LINES, prf_hz=2000)
        dev.start()
        wait_until(lambda: dev.stats.device_resets == 1, 3.0, "the reset")
        wait_until(lambda: engine.board.state == 1 and engine.board.config_id == 1, 3.0,
                   "the client to reconfigure and restart the board")
        frame = next(iter(dev.frames(timeout=2.0)))
        while not (frame.complete and frame.config_id == 1 and frame.index >= 1):
            frame = next(iter(dev.frames(timeout=2.0)))
        assert frame.samples.shape == (LINES, 512)
        assert dev.stats.seq_resets >= 1
