"""The open-echo dialect: a board without commands, gated and grouped into sweeps on the host."""

from __future__ import annotations

import numpy as np
import pytest

from sonobridge.device import ConfigError, NakError, open_device
from sonobridge.device.errors import HandshakeError
from sonobridge.device.open_echo_dialect import SweepGate
from sonobridge.device.receiver import Receiver
from sonobridge.protocol import DeviceInfo, EchoLine, FrameEnd, MsgType
from sonobridge.protocol.boards.open_echo import (
    VARIANTS,
    OpenEchoDecoder,
    device_info,
    encode_v2,
)

from .device_fixtures import twin_on_pty

UNO = next(v for v in VARIANTS if v.name == "uno-r3")


def _ping(k: int) -> bytes:
    samples = (np.arange(1800) + k) % 256
    return encode_v2(samples.astype(np.uint8), depth_index=k)


def _gate() -> SweepGate:
    return SweepGate(OpenEchoDecoder("v2", 1800))


def test_pings_before_start_are_decoded_but_not_handed_on() -> None:
    gate = _gate()
    assert gate.feed(_ping(0) + _ping(1)) == []
    assert gate.pings_ignored == 2 and gate.first_frame.is_set()
    gate.begin(lines_per_frame=2)
    msgs = gate.feed(_ping(2) + _ping(3) + _ping(4))
    assert [type(m) for m in msgs] == [EchoLine, EchoLine, FrameEnd, EchoLine]
    assert [(m.frame_index, m.line_index) for m in msgs if isinstance(m, EchoLine)] == [
        (0, 0), (0, 1), (1, 0)]
    assert msgs[0].samples[0] == 2  # the first ping after START, not a held one
    assert [m.seq for m in msgs] == [0, 1, 2, 3]


def test_stop_then_start_begins_a_new_sweep() -> None:
    gate = _gate()
    gate.begin(lines_per_frame=4)
    gate.feed(_ping(0))
    gate.end()
    assert gate.feed(_ping(1)) == []
    gate.begin(lines_per_frame=4)
    (line,) = gate.feed(_ping(2))
    # sweeps count from 0 again after every START, as protocol v1 says
    assert (line.frame_index, line.line_index) == (0, 0) and line.samples[0] == 2


def test_a_finite_run_closes_the_gate_by_itself() -> None:
    gate = _gate()
    gate.begin(lines_per_frame=1, n_frames=2)
    msgs = gate.feed(b"".join(_ping(k) for k in range(4)))
    assert [type(m) for m in msgs] == [EchoLine, FrameEnd, EchoLine, FrameEnd]
    assert not gate.streaming


def test_a_frame_failing_its_xor_is_a_ping_lost_on_the_link() -> None:
    gate = _gate()
    gate.begin(lines_per_frame=3)
    bad = bytearray(_ping(1))
    bad[100] ^= 0x01
    rx = Receiver(gate)
    rx.limits = device_info(UNO)
    rx.feed(_ping(0) + bytes(bad) + _ping(2), 0)
    # every 0xAA inside the broken frame was tried as a sync too, yet it is one lost ping
    assert gate.stats.xor_errors >= 1 and gate.stats.bytes_discarded == len(bad)
    assert rx.counts.lines_received == 2
    assert rx.counts.frames_incomplete == 1
    assert rx.counts.lines_lost_link == 1 and rx.counts.lines_lost_device == 0
    assert rx.counts.lines_malformed == 0


def test_info_is_the_builds_nominal_one() -> None:
    info = device_info(UNO)
    assert isinstance(info, DeviceInfo)
    assert info.min_samples_per_line == info.max_samples_per_line == 1800
    assert info.adc_rate_hz == round(1 / 13.2e-6)
    assert info.prf_min_hz == info.prf_max_hz >= 9  # the firmware's loop: ~9.4 pings/s


def test_the_twin_is_found_and_streams_bit_for_bit_without_a_dialect_named() -> None:
    with twin_on_pty("open-echo") as (engine, port), open_device(port) as dev:
        assert dev.dialect.name == "open-echo" and dev.info.board_name == "Open Echo"
        dev.configure(lines_per_frame=2)
        dev.start()
        frames = list(dev.frames(timeout=5.0, count=2))
        dev.stop()
        assert dev.settle()
        s = dev.stats
    truth = [p.samples for p in engine.board.truth]
    got = [line for f in frames for line in f.samples]
    assert all(f.samples.shape == (2, 1800) and f.complete for f in frames)
    start = next(i for i, t in enumerate(truth) if np.array_equal(t, got[0]))
    assert all(np.array_equal(g, t) for g, t in zip(got, truth[start:], strict=False))
    assert s.account.lines_lost == 0 and s.dialect == "open-echo"


def test_settings_the_board_cannot_take_say_it_has_no_commands() -> None:
    with twin_on_pty("open-echo") as (_engine, port), open_device(port) as dev:
        fixed = dev.configure()
        with pytest.raises(ConfigError, match="no commands"):
            dev.configure(pulse_cycles=8)
        with pytest.raises(ConfigError, match=r"prf_hz.*(?i:no commands)"):
            dev.configure(prf_hz=5)
        assert dev.configure(lines_per_frame=16).lines_per_frame == 16
        assert dev.config.samples_per_line == fixed.samples_per_line
        assert not dev.supports(MsgType.GET_STATUS) and not dev.supports(MsgType.PING)
        with pytest.raises(NakError, match="no commands"):
            dev.ping()


def test_a_forced_format_the_board_does_not_send_fails_clearly() -> None:
    """The twin sends v2 frames of 1800 samples; forced to v1, no frame validates."""
    with twin_on_pty("open-echo") as (_engine, port), \
            pytest.raises(HandshakeError, match=r"no Open Echo frames.*--baud 250000"):
        open_device(port, dialect="open-echo-v1")


def test_link_corruption_is_counted_as_link_loss_never_as_lines() -> None:
    with twin_on_pty("open-echo", faults="bitflip=2e-4", seed=3) as (_engine, port), \
            open_device(port) as dev:
        dev.configure(lines_per_frame=4)
        dev.start()
        frames = list(dev.frames(timeout=5.0, count=6))
        dev.stop()
        s = dev.stats
    assert s.decoder.xor_errors >= 1  # 1808 bytes at 2e-4 per bit: most pings are hit
    assert s.lines_lost_link >= 1 and s.lines_lost_device == 0
    assert all(f.samples.shape[1] == 1800 for f in frames)
