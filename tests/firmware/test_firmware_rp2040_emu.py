"""The RP2040 images on an emulated RP2040 (rp2040js), through a real pty, as a host sees a board.

For each board, `make -C hardware/firmware <board> emu-deps` builds the very image its UF2
carries and installs the pinned emulator; `emu/run-emu.sh` serves it on a pty linked by socat.
The firmware's USB stack, protocol, commands, PIO capture and DMA are exactly what runs on a
board; only the analogue side (HV sense, temperature, the echo on the ADC's pins) comes from
the harness.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import hilbert

from sonobridge.device import open_device
from sonobridge.protocol import Configure, DeviceState, ErrorCode, Nak, Ping, Pong
from sonobridge.protocol.messages import payload_fields
from sonobridge.sim.profile import load_profile

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "hardware" / "firmware"
BOARDS = ROOT / "hardware" / "boards"
#: board → its make target
TARGETS = {"rp2040-reference": "rp2040", "pic0rick": "pic0rick"}
#: the emulated chip runs at about 0.1x real time (hardware/README.md): a command's reply and
#: a RESET's re-enumeration take ten times as long as on a board, more on a loaded machine
EMU_COMMAND_TIMEOUT_S = 5.0


def open_emulated(port: str):  # type: ignore[no-untyped-def]
    """The device client on the emulated board, with timeouts for its speed; the dialect is
    named, as detection's short probes are timed for real boards."""
    return open_device(port, dialect="sonobridge-v1", command_timeout_s=EMU_COMMAND_TIMEOUT_S)
ECHO = FIRMWARE / "emu" / "echo.mjs"
HAL = FIRMWARE / "ports" / "rp2040" / "hal_rp2040.c"


def _echo_model() -> tuple[list[float], float]:
    """The synthetic front end's reflector depths and sound speed, from echo.mjs itself."""
    text = ECHO.read_text()
    table = re.search(r"REFLECTORS = \[(.*)\];", text)
    speed = re.search(r"SOUND_SPEED_M_S = ([\d.]+);", text)
    assert table and speed
    return [float(d) for d in re.findall(r"\[([\d.]+), \d+\]", table[1])], float(speed[1])


def _adc_latency_samples() -> int:
    """The conversions the port skips after the transmit edge for the ADC's pipeline."""
    m = re.search(r"#define ADC_LATENCY_SAMPLES (\d+)u", HAL.read_text())
    assert m
    return int(m[1])


@contextlib.contextmanager
def served(board: str, front_end: str | None = None,
           on_stderr: Callable[[str], None] | None = None) -> Iterator[str]:
    """``board``'s image built and served by ``emu/run-emu.sh``: yields its pty path.

    ``front_end`` replaces the script's analogue side (its FRONT_END); ``on_stderr`` gets
    every line the emulator writes to stderr (read on a thread, so the pipe never fills).
    On the way out the script must stop the emulator and remove its pty link.
    """
    done = subprocess.run(["make", "-C", str(FIRMWARE), TARGETS[board], "emu-deps"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    env = {**os.environ, "FRONT_END": front_end} if front_end else None
    proc = subprocess.Popen([str(FIRMWARE / "emu" / "run-emu.sh"), board],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    stderr = proc.stderr
    reader = None
    if on_stderr is not None:
        reader = threading.Thread(target=lambda: [on_stderr(line) for line in stderr],
                                  daemon=True)
        reader.start()
    path = ""
    try:
        path = proc.stdout.readline().strip()
        assert path, "" if reader else stderr.read()
        yield path
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(5)
        if reader is not None:
            reader.join(10)
        proc.stdout.close()
        stderr.close()
    assert code == 0 and not (path and Path(path).exists())


@pytest.fixture(scope="module", params=sorted(TARGETS))
def emulated(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(board, pty path) of that board's image running on the emulator."""
    with served(request.param) as path:
        yield request.param, path


def test_emulated_image_announces_its_board_profile(emulated: tuple[str, str]) -> None:
    board, port = emulated
    profile = load_profile(BOARDS / f"{board}.toml")
    with open_emulated(port) as dev:
        info = dev.info
    assert info is not None
    for name in payload_fields(type(info)):
        if name not in ("request_seq", "board_id"):  # board_id: the flash's unique id
            assert getattr(info, name) == getattr(profile.info, name), name


def test_emulated_image_answers_every_command(emulated: tuple[str, str]) -> None:
    board, port = emulated
    with open_emulated(port) as dev:
        # PING echoes its token and data
        reply = dev.command(Ping(token=0xC0DE, data=b"sonobridge"), expect=Pong)
        assert isinstance(reply, Pong) and reply.token == 0xC0DE and reply.data == b"sonobridge"
        # STATUS reads the analogue inputs the harness holds: 27 degC, and on the reference
        # board 25 V of HV (the pic0rick has no HV sense: 0)
        status = dev.status()
        assert status.state == DeviceState.IDLE
        assert abs(status.hv_mv - (25000 if board == "rp2040-reference" else 0)) < 100
        assert abs(status.temperature_c - 27.0) < 1.0
        # CONFIGURE out of range is refused by the firmware itself, naming the field
        good = dev.default_config().to_message()
        assert isinstance(good, Configure)
        bad = dataclasses.replace(good, prf_hz=dev.info.prf_max_hz + 1)
        nak = dev.command(bad, expect=(Nak,), check=False)
        assert isinstance(nak, Nak) and nak.error_code == ErrorCode.OUT_OF_RANGE
        assert nak.field_id != 0 and "prf" in nak.text
        # and a good one is taken
        dev.command(good)
        # RESET reboots it; the client handshakes again by itself
        dev.reset()
        assert dev.status().state == DeviceState.IDLE


def test_emulated_image_streams_the_echo_where_it_lies(emulated: tuple[str, str]) -> None:
    # the port's PIO capture, DMA and packing on the emulated chip, fed by the synthetic echo:
    # each reflector's envelope peaks at 2 d / c * fs, less the conversions the port skips for
    # a real converter's pipeline (which the synthetic one does not have), plus the few clocks
    # its capture program spends between the transmit IRQ and the first sample
    depths, speed = _echo_model()
    _board, port = emulated
    with open_emulated(port) as dev:
        dev.configure(lines_per_frame=4, prf_hz=100, samples_per_line=4096, decimation=1)
        dev.start()
        frames = list(dev.frames(timeout=60.0, count=3))
        dev.stop()
        stats = dev.stats
        status = dev.status()
    assert all(f.complete for f in frames)
    assert stats.lines_missing == 0 and stats.crc_errors == 0 and stats.seq_gaps == 0
    assert status.dropped_lines == 0
    frame = frames[-1]
    fs = frame.geometry.sample_rate_hz
    assert fs == 60e6
    # firings one PRF apart on the board's own clock (emulated time)
    stamps = frame.meta["timestamp_us"].astype(np.int64).ravel()
    assert np.all(np.abs(np.diff(stamps) - 10_000) <= 10)  # the poll loop's few µs
    skipped = _adc_latency_samples()
    for line in frame.samples.astype(np.float64):
        envelope = np.abs(hilbert(line - np.median(line)))
        offsets = []
        for depth in depths:
            expected = 2 * depth / speed * fs - skipped
            lo = int(expected) - 60
            offsets.append(lo + int(np.argmax(envelope[lo:lo + 120])) - expected)
        # late by the program's few clocks (measured: 2.3-3.9 samples), never early
        assert all(0 <= o <= 5 for o in offsets), offsets
        # and the same at every depth: 60 MS/s exactly, no sample lost or doubled in between
        assert max(offsets) - min(offsets) <= 2, offsets


def _damp_ns() -> int:
    m = re.search(r"#define PORT_DAMP_NS (\d+)u", (FIRMWARE / "ports" / "rp2040" /
                                                   "pins_pic0rick.h").read_text())
    assert m
    return int(m[1])


def test_pic0rick_pulser_drives_its_pins_in_order() -> None:
    # the pic0rick image's pulser as a scope would show it, from the emulator's GPIO edges:
    # OE (17) up, `cycles` bipolar periods on P+ (11) / P- (12), PDAMP (16) for PORT_DAMP_NS
    # right after the burst, OE down after the capture window
    pins = (11, 12, 16, 17)
    front_end = "--adc 4=876 --echo-pins 1 --still-clock 0 " + " ".join(
        f"--trace-pin {p}" for p in pins)
    edges: list[tuple[int, int, int]] = []  # (nanos, gpio, level)

    def edge(line: str) -> None:
        if line.startswith("trace "):
            _, gpio, level, nanos = line.split()
            edges.append((int(nanos), int(gpio), int(level)))

    with served("pic0rick", front_end, edge) as port, open_emulated(port) as dev:
        cfg = dev.configure(lines_per_frame=1, prf_hz=100, samples_per_line=1024,
                            pulse_cycles=3, pulse_freq_hz=2_000_000, decimation=1)
        dev.start()
        frames = list(dev.frames(timeout=60.0, count=3))
        dev.stop()
    assert all(f.complete for f in frames)
    clock_ns = 1e9 / 120e6
    half = int(120e6 // (2 * cfg.pulse_freq_hz))  # PIO clocks per half period (hal_rp2040.c)
    # the firings: each starts with OE rising
    starts = [t for t, g, v in edges if g == 17 and v == 1]
    assert len(starts) >= 3
    assert all(abs(b - a - 10_000_000) < 20_000 for a, b in pairwise(starts))  # 100 Hz
    for start, end in pairwise(starts):
        firing = [(t, g, v) for t, g, v in edges if start <= t < end]
        rises = {g: [t for t, gg, v in firing if gg == g and v == 1] for g in pins}
        falls = {g: [t for t, gg, v in firing if gg == g and v == 0] for g in pins}
        assert len(rises[11]) == len(rises[12]) == cfg.pulse_cycles
        assert rises[11][0] > start  # OE first
        for up, down in zip(rises[11], falls[11], strict=True):
            assert abs((down - up) - half * clock_ns) <= 1.5 * clock_ns
        for up, down in zip(rises[12], falls[12], strict=True):
            assert abs((down - up) - (half + 1) * clock_ns) <= 1.5 * clock_ns
        # never both halves at once
        assert all(not (u12 < d11 and u11 < d12)
                   for u11, d11 in zip(rises[11], falls[11], strict=True)
                   for u12, d12 in zip(rises[12], falls[12], strict=True))
        # damping right after the burst, for PORT_DAMP_NS
        (damp_up,), (damp_down,) = rises[16], falls[16]
        assert 0 <= damp_up - falls[12][-1] <= 4 * clock_ns  # a few PIO clocks
        assert abs((damp_down - damp_up) - _damp_ns()) <= 2 * clock_ns
        # OE drops once the capture window is over
        (oe_down,) = falls[17]
        assert oe_down - rises[11][0] >= cfg.samples_per_line / 60e6 * 1e9
