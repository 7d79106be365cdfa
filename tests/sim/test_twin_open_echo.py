"""The Open Echo twin: served on a real pty, ``sim://`` and the CLI, decoded by OpenEchoDecoder."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import pytest
import serial

import sonobridge.device  # noqa: F401  (registers the sim:// URL handler with pyserial)
from sonobridge.board.engine import BoardEngine
from sonobridge.board.pty_transport import PtyTransport
from sonobridge.cli import main
from sonobridge.protocol import EchoLine
from sonobridge.protocol.boards.open_echo import Candidate, OpenEchoDecoder
from sonobridge.sim.server import SimOptions, create_engine
from sonobridge.sim.twins import TWINS, create_twin
from sonobridge.sim.twins.open_echo import (
    BRIDGE_BUFFER_BYTES,
    OpenEchoTwin,
    OpenEchoTwinConfig,
    PingTruth,
)
from sonobridge.sim.urlhandler.protocol_sim import engine_for

# the firmware's facts, restated here so the twin is checked against them, not against itself
SAMPLE_PERIOD_S = 13.2e-6
N_SAMPLES = 1800
FRAME_BYTES = N_SAMPLES + 8
BYTE_TIME_S = 10 / 250_000
#: TUSS4470_arduino.ino: acquire, XOR (1 ms, nominal), Serial.write until 64 bytes are left,
#: delay(10)
R3_PERIOD_S = N_SAMPLES * SAMPLE_PERIOD_S + 0.001 + (FRAME_BYTES - 64) * BYTE_TIME_S + 0.010
#: the scene: a floor at 8 m in water at 1480 m/s
FLOOR_ONSET = 2 * 8.0 / 1480.0 / SAMPLE_PERIOD_S


@contextlib.contextmanager
def twin_on_pty(variant: str = "", faults: str = "") -> Iterator[tuple[BoardEngine, str]]:
    """A running Open Echo twin on a real pseudo-terminal; yields (engine, port path)."""
    transport = PtyTransport()
    engine = create_engine(SimOptions(board="open-echo", variant=variant, faults=faults,
                                      record_truth=True), transport)
    engine.start()
    try:
        yield engine, transport.path
    finally:
        engine.stop()
    assert engine.error is None


def read_lines(path: str, decoder: OpenEchoDecoder, n_lines: int, timeout_s: float = 10.0
               ) -> list[tuple[float, EchoLine]]:
    """Read the port until ``n_lines`` pings decoded; returns (arrival time, line) of each."""
    fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    deadline = time.monotonic() + timeout_s
    lines: list[tuple[float, EchoLine]] = []
    try:
        while len(lines) < n_lines:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"only {len(lines)} of {n_lines} pings in {timeout_s} s; "
                                     f"{decoder.stats.summary()}")
            ready, _, _ = select.select([fd], [], [], min(left, 0.1))
            if ready:
                data = os.read(fd, 1 << 16)
                now = time.monotonic()
                lines += [(now, m) for m in decoder.feed(data) if isinstance(m, EchoLine)]
    finally:
        os.close(fd)
    return lines


def truth_of(engine: BoardEngine) -> list[PingTruth]:
    """A snapshot of the pings the twin sent."""
    with engine.lock:
        return list(engine.board.truth)  # type: ignore[attr-defined]


def assert_match_truth(samples: list[np.ndarray], truth: list[PingTruth]) -> int:
    """The decoded pings are consecutive pings the twin sent, bit for bit; returns where in
    ``truth`` the first one is."""
    starts = [k for k, p in enumerate(truth) if np.array_equal(p.samples, samples[0])]
    assert len(starts) == 1, "the first decoded ping is not exactly one ping sent"
    k = starts[0]
    assert k + len(samples) <= len(truth)
    for i, got in enumerate(samples):
        np.testing.assert_array_equal(got, truth[k + i].samples, err_msg=f"ping {k + i}")
    return k


def drive(twin: OpenEchoTwin, seconds: float, tick_s: float = 0.001) -> list[tuple[float, bytes]]:
    """Run the twin on a synthetic clock from 0; returns (time, chunk) of every chunk sent."""
    out = []
    for i in range(round(seconds / tick_s) + 1):
        now = i * tick_s
        out += [(now, chunk) for _, chunk in twin.pull(now)]
    return out


@pytest.mark.parametrize("variant", ["uno-r3", "uno-r4"])
def test_pty_stream_is_v2_n1800_and_equals_the_truth_bit_for_bit(variant):
    decoder = OpenEchoDecoder()
    with twin_on_pty(variant) as (engine, path):
        got = read_lines(path, decoder, 3)
        truth = truth_of(engine)
    assert decoder.locked == Candidate("v2", N_SAMPLES)
    assert decoder.stats.frames_bad == 0
    assert all(line.sample_rate_hz == round(1 / SAMPLE_PERIOD_S) for _, line in got)
    assert_match_truth([line.samples for _, line in got], truth)
    # the header as the firmware fills it: temperature and drive voltage are never set
    assert decoder.last_header is not None and decoder.last_header[1:] == (0, 0)
    if variant == "uno-r4":
        # the boot text shares the port; the decoder skipped it and counted its lines
        assert decoder.stats.text_lines >= 4
        assert decoder.last_text.startswith("[UDP] Broadcast enabled")


def test_pings_come_at_the_firmwares_pace():
    """Against the engine's clock exactly, and against the wall clock loosely."""
    with twin_on_pty() as (engine, path):
        got = read_lines(path, OpenEchoDecoder(), 6)
        truth = truth_of(engine)
    bursts = np.array([p.burst_s for p in truth])
    np.testing.assert_allclose(np.diff(bursts), R3_PERIOD_S, rtol=0, atol=1e-9)
    wire = np.array([p.wire_s for p in truth])
    # the first byte leaves once the samples are in and XORed
    np.testing.assert_allclose(wire - bursts, N_SAMPLES * SAMPLE_PERIOD_S + 0.001, atol=1e-9)
    # the engine's clock is time.monotonic: no ping reached the host before its last byte
    # could have left a 250 kbaud UART
    k = assert_match_truth([line.samples for _, line in got], truth)
    for i, (arrived, _) in enumerate(got):
        assert arrived >= truth[k + i].wire_s + FRAME_BYTES * BYTE_TIME_S - 1e-6
    # and not much later either, even on a busy machine: 4 periods from the second to the
    # sixth (the first waits for the second's sync byte while the decoder detects the format)
    assert got[-1][0] - got[1][0] < 4 * R3_PERIOD_S + 2.0


def test_the_uart_never_outruns_250_kbaud():
    twin = OpenEchoTwin(record_truth=True)
    chunks = drive(twin, 3.0)
    data = b"".join(c for _, c in chunks)
    # one byte per 40 µs: at most 25 bytes (+1 for rounding) in each 1 ms tick
    assert max(len(c) for _, c in chunks) <= 26
    assert len(twin.truth) == int((3.0 - N_SAMPLES * SAMPLE_PERIOD_S - 0.001) / R3_PERIOD_S) + 1
    # every frame is on the wire for 1808 × 40 µs = 72.3 ms, then the line is quiet
    assert len(data) == pytest.approx(len(twin.truth) * FRAME_BYTES, abs=FRAME_BYTES)
    mean_rate = len(data) / 3.0
    assert 16_000 < mean_rate < 18_000  # ≈ 17.3 kB/s: well below 250 kbaud's 25 kB/s


def test_a_host_that_does_not_read_loses_what_the_bridge_cannot_hold():
    twin = OpenEchoTwin(record_truth=True)
    twin.pull(0.0)
    assert twin.pull(1.0, 0) == []  # a stall: the UART goes on sending into the bridge
    kept = b"".join(c for _, c in twin.pull(1.0))
    assert len(kept) == BRIDGE_BUFFER_BYTES  # the newest bytes, the rest lost
    on_wire = sum(min(FRAME_BYTES, int((1.0 - p.wire_s) / BYTE_TIME_S + 1e-9))
                  for p in twin.truth)
    assert twin.bytes_dropped == on_wire - len(kept)
    # the stream goes on: the pings after the loss decode and match the truth
    later = b""
    for i in range(1, 501):
        later += b"".join(c for _, c in twin.pull(1.0 + i * 0.001))
    decoder = OpenEchoDecoder()
    lines = [m for m in decoder.feed(kept + later) if isinstance(m, EchoLine)]
    assert len(lines) >= 4
    assert_match_truth([m.samples for m in lines], twin.truth)


def test_a_reset_fault_reboots_the_twin():
    with twin_on_pty(faults="reset@0.25") as (engine, path):
        read_lines(path, OpenEchoDecoder(), 4)
        truth = truth_of(engine)
    assert [e.kind for e in engine.events] == ["reset"]
    assert {p.boot for p in truth} == {1, 2}
    rebooted = [p for p in truth if p.boot == 2]
    assert rebooted[0].index == 0  # pings count from 0 again after a reset


def test_same_seed_same_pings_and_other_seed_other_pings():
    a, b, c = OpenEchoTwin(seed=3), OpenEchoTwin(seed=3), OpenEchoTwin(seed=4)
    np.testing.assert_array_equal(a.render_ping(5), b.render_ping(5))
    assert not np.array_equal(a.render_ping(5), c.render_ping(5))
    assert not np.array_equal(a.render_ping(5), a.render_ping(6))


@pytest.mark.parametrize("variant, burst_samples", [("", 16 / 200e3 / SAMPLE_PERIOD_S),
                                                    ("40k", 16 / 40e3 / SAMPLE_PERIOD_S)])
def test_the_sea_floor_echo_is_where_the_physics_puts_it(variant, burst_samples):
    twin = OpenEchoTwin(OpenEchoTwinConfig.parse(variant), record_truth=True)
    drive(twin, 1.0)
    assert len(twin.truth) >= 5
    for ping in twin.truth:
        s = ping.samples.astype(int)
        peak = 450 + int(np.argmax(s[450:]))
        # the envelope peaks as the 16-cycle burst has fully arrived
        assert FLOOR_ONSET <= peak <= FLOOR_ONSET + burst_samples + 4
        if not variant:  # the R3 threshold detector fires on the floor's leading edge
            assert FLOOR_ONSET - 1 <= ping.depth_index <= FLOOR_ONSET + 4
        # the second multiple (floor, surface, floor) at twice the floor's delay
        onset2 = round(2 * FLOOR_ONSET)
        assert s[onset2 : onset2 + round(burst_samples) + 8].max() > 130
        assert np.median(s[onset2 - 60 : onset2 - 10]) < 60
        # the ring-down saturates the start; past the blind zone the water is mostly quiet
        assert s[2:150].min() > 150
        assert np.median(s[450:800]) < 60


def test_r4_boot_text_precedes_frames_and_is_skipped():
    twin = OpenEchoTwin(OpenEchoTwinConfig.parse("uno-r4"), record_truth=True)
    data = b"".join(c for _, c in drive(twin, 2.0))
    assert data.startswith(b"[WiFi] Connecting")
    decoder = OpenEchoDecoder()
    lines = [m for m in decoder.feed(data) + decoder.flush() if isinstance(m, EchoLine)]
    assert decoder.stats.text_lines == 5  # the dots end on their own line
    assert decoder.stats.frames_bad == 0
    assert_match_truth([m.samples for m in lines], twin.truth)
    # the R4 reports the strongest sample past the blind zone (USE_DEPTH_OVERRIDE 1)
    assert all(p.depth_index == 450 + int(np.argmax(p.samples[450:])) for p in twin.truth)


def test_engine_faults_apply_to_the_twin():
    decoder = OpenEchoDecoder(version="v2", n_samples=N_SAMPLES)
    with twin_on_pty(faults="bitflip=0.002") as (engine, path):
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        deadline = time.monotonic() + 10.0
        try:
            while decoder.stats.xor_errors == 0:
                assert time.monotonic() < deadline, decoder.stats.summary()
                if select.select([fd], [], [], 0.1)[0]:
                    decoder.feed(os.read(fd, 1 << 16))
        finally:
            os.close(fd)
        with engine.lock:
            damaged = engine.injector.damaged_seqs()
            sent = {p.index for p in engine.board.truth}  # type: ignore[attr-defined]
    assert damaged and damaged <= sent  # the log names the pings whose bytes were hit


def test_sim_url_opens_with_pyserial_and_delivers_truthful_frames():
    url = "sim://?board=open-echo&truth=1&seed=5&name=test-twin-open-echo"
    port = serial.serial_for_url(url, timeout=0.05)
    try:
        engine = engine_for(url)
        assert engine is not None
        assert engine.board.info.board_name == "open-echo (simulated twin)"
        decoder = OpenEchoDecoder()
        lines: list[EchoLine] = []
        deadline = time.monotonic() + 10.0
        while len(lines) < 3:
            assert time.monotonic() < deadline, decoder.stats.summary()
            lines += [m for m in decoder.feed(port.read(4096)) if isinstance(m, EchoLine)]
        truth = truth_of(engine)
    finally:
        port.close()
    assert decoder.locked == Candidate("v2", N_SAMPLES)
    assert_match_truth([m.samples for m in lines], truth)


def test_unknown_boards_are_refused_early_with_the_names(capsys):
    assert main(["sim", "--pty", "--board", "no-such-board"]) == 2
    err = capsys.readouterr().err
    assert "open-echo" in err and "pic0rick" in err and "sonobridge" in err
    with pytest.raises(serial.SerialException, match="open-echo"):
        serial.serial_for_url("sim://?board=no-such-board")
    with pytest.raises(ValueError, match="pic0rick"):
        create_twin("no-such-board", SimOptions())
    assert main(["sim", "--pty", "--board", "open-echo", "--variant", "uno-r9"]) == 2
    assert "uno-r4" in capsys.readouterr().err


def test_the_registry_imports_no_twin_until_one_is_built():
    code = ("import sys, sonobridge.sim.server, sonobridge.sim.twins as t; "
            "print(sorted(m for m in sys.modules if m.startswith('sonobridge.sim.twins.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
    assert set(TWINS) == {"open-echo", "pic0rick"}


def test_cli_serves_the_twin_on_a_pty():
    proc = subprocess.Popen([sys.executable, "-m", "sonobridge", "sim", "--pty", "--board",
                             "open-echo"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/"), proc.stderr.read()
        decoder = OpenEchoDecoder()
        read_lines(path, decoder, 2)
        assert decoder.locked == Candidate("v2", N_SAMPLES)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "served" in err
