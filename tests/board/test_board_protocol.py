"""The simulated board honours protocol v1: every command, every NAK, streaming and buffers."""

from __future__ import annotations

import pytest

from sonobridge.protocol import (
    CONFIGURE_FIELD_IDS,
    Ack,
    Configure,
    DeviceInfo,
    DeviceState,
    EchoLine,
    ErrorCode,
    Flags,
    FrameEnd,
    GetInfo,
    GetStatus,
    Log,
    MsgType,
    Nak,
    Ping,
    Pong,
    Reset,
    Start,
    Status,
    Stop,
    encode_frame,
)
from sonobridge.protocol.constants import UNSOLICITED
from sonobridge.protocol.rules import check_configure

from .board_fixtures import Host, expected_samples, make_board


def small_config(**kw) -> Configure:
    base = dict(samples_per_line=256, prf_hz=1000, lines_per_frame=4, tgc_cdb=(0, 1000),
                sweep_start=-100_000, sweep_end=100_000)
    base.update(kw)
    return Configure(**base)


def test_get_info_answers_with_the_profile_and_request_seq():
    host = Host(make_board())
    seq = host.send(GetInfo())
    (info,) = host.pull(0.0)
    assert isinstance(info, DeviceInfo)
    assert info.request_seq == seq
    assert info.board_name == "sonobridge-sim"
    assert info.flags & Flags.SIMULATED


def test_configure_ack_and_config_id():
    board = make_board()
    host = Host(board)
    seq = host.send(small_config())
    assert host.pull(0.0) == [Ack(seq, MsgType.CONFIGURE)]
    assert board.config_id == 1 and board.config.samples_per_line == 256


@pytest.mark.parametrize("field", ["decimation", "prf_hz", "samples_per_line", "hv_mv",
                                   "lines_per_frame", "sweep_end", "pulse_freq_hz"])
def test_out_of_range_config_gets_the_rules_nak(field):
    board = make_board()
    info = board.info
    too_big = {"decimation": info.max_decimation + 1, "prf_hz": info.prf_max_hz + 1,
               "samples_per_line": info.max_samples_per_line + 1, "hv_mv": info.hv_max_mv + 1,
               "lines_per_frame": info.max_lines_per_frame + 1,
               "sweep_end": info.sweep_max + 1,
               "pulse_freq_hz": info.pulse_freq_max_hz + 1}[field]
    cfg = small_config(**{field: too_big})
    host = Host(board)
    seq = host.send(cfg)
    (nak,) = host.pull(0.0)
    expected = check_configure(cfg, info)
    assert isinstance(nak, Nak)
    assert (nak.request_seq, nak.error_code, nak.field_id) == (
        seq, expected.code, CONFIGURE_FIELD_IDS[expected.field])
    assert board.config_id == 0


def test_streaming_follows_prf_and_ends_sweeps_with_frame_end():
    board = make_board(record_truth=True)
    host = Host(board)
    host.send(small_config())
    host.send(Start(n_frames=2))
    assert [type(m) for m in host.pull(0.0)] == [Ack, Ack, EchoLine]  # firing 0 at t=0
    out = host.pull(0.0025)  # firings at 1 ms and 2 ms
    assert [m.line_index for m in out] == [1, 2]
    out += host.pull(0.0105)
    lines = [m for m in out if isinstance(m, EchoLine)]
    ends = [m for m in out if isinstance(m, FrameEnd)]
    assert [(m.frame_index, m.line_index) for m in lines] == [
        (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (1, 2), (1, 3)]
    assert [(e.frame_index, e.lines_sent, e.lines_per_frame) for e in ends] == [(0, 4, 4),
                                                                              (1, 4, 4)]
    assert board.state == DeviceState.IDLE  # n_frames reached
    assert lines[-1].timestamp_us == 7000  # firing 7 at 7 ms on the device clock
    assert lines[0].config_id == 1
    (last,) = [m for m in lines if (m.frame_index, m.line_index) == (1, 2)]
    assert (last.samples == expected_samples(1, 2, 256)).all()
    assert host.decoder.stats.seq_gaps == 0


def test_ensembles_fire_each_line_repeatedly():
    host = Host(make_board())
    host.send(small_config(ensemble_size=3, lines_per_frame=2))
    host.send(Start(n_frames=1))
    out = [m for m in host.pull(1.0) if isinstance(m, EchoLine)]
    assert [(m.line_index, m.ensemble_index) for m in out] == [
        (0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]


def test_busy_while_streaming_and_stop_is_always_acked():
    host = Host(make_board())
    host.send(Start())
    host.pull(0.0)
    s1 = host.send(Start(), 0.001)
    s2 = host.send(small_config(), 0.001)
    naks = [m for m in host.pull(0.001) if isinstance(m, Nak)]
    assert [(n.request_seq, n.error_code) for n in naks] == [(s1, ErrorCode.BUSY),
                                                             (s2, ErrorCode.BUSY)]
    s3 = host.send(Stop(), 0.002)
    s4 = host.send(Stop(), 0.002)
    acks = [m for m in host.pull(0.002) if isinstance(m, Ack)]
    assert [a.request_seq for a in acks] == [s3, s4]


def test_retry_repeats_the_reply_instead_of_acting_twice():
    board = make_board()
    host = Host(board)
    seq = host.send(Start())
    host.pull(0.0)
    host.send(Start(), 0.0005, flags=Flags.RETRY, seq=seq)
    replies = [m for m in host.pull(0.0005) if not isinstance(m, EchoLine)]
    assert replies == [Ack(seq, MsgType.START)]


def test_status_ping_and_log():
    board = make_board()
    host = Host(board)
    seq = host.send(GetStatus(), 0.5)
    p = host.send(Ping(token=77, data=b"abc"), 0.5)
    status, pong = host.pull(0.5)
    assert isinstance(status, Status) and status.request_seq == seq
    assert status.state == DeviceState.IDLE and status.device_time_us == 500_000
    assert status.temperature_cdeg == 3150
    assert pong == Pong(request_seq=p, token=77, device_time_us=500_000, data=b"abc")


def test_reset_acks_then_reboots_with_sequence_zero():
    board = make_board()
    host = Host(board)
    host.send(small_config())
    seq = host.send(Reset())
    out = host.pull(0.0)
    assert out[1] == Ack(seq, MsgType.RESET)
    assert isinstance(out[2], DeviceInfo) and out[2].request_seq == UNSOLICITED
    assert out[2].seq == 0 and host.decoder.stats.seq_resets == 1
    assert board.config_id == 0 and board.config == board.profile.defaults


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (encode_frame(0x55, b"", 9), ErrorCode.UNKNOWN_TYPE),
        (encode_frame(MsgType.ACK, bytes(8), 9), ErrorCode.UNKNOWN_TYPE),
        (encode_frame(MsgType.GET_INFO, b"x", 9), ErrorCode.BAD_LENGTH),
        (encode_frame(MsgType.CONFIGURE, bytes(99), 9), ErrorCode.BAD_LENGTH),
        (encode_frame(MsgType.GET_INFO, b"", 9, flags=0x40), ErrorCode.UNSUPPORTED_FLAG),
        (encode_frame(MsgType.GET_INFO, b"", 9, version=2), ErrorCode.UNSUPPORTED_VERSION),
    ],
)
def test_bad_commands_get_the_documented_nak(frame, code):
    board = make_board()
    board.feed(frame, 0.0)
    host = Host(board)
    (nak,) = host.pull(0.0)
    assert isinstance(nak, Nak)
    assert (nak.request_seq, nak.error_code) == (9, code)


@pytest.mark.parametrize(("cause", "text"), [
    ("limited", "link too slow for this PRF and line size"),
    ("stalled", "the link stalled"),
    ("refused", "the host is not reading the port in time"),
])
def test_the_overflow_log_names_the_cause_the_engine_noted(cause, text):
    board = make_board()
    host = Host(board)
    host.send(small_config(samples_per_line=8192, prf_hz=2000, lines_per_frame=8))
    host.send(Start())
    host.pull(0.0)
    board.note_link(cause)
    board.pull(1.0, 0)  # the link takes nothing for a second
    logs = [m.text for m in host.pull(1.0) if isinstance(m, Log)]
    assert board.dropped_lines > 0
    assert logs == [f"send buffer full: dropping lines ({text})"]


def test_a_late_pull_with_budget_sends_rather_than_drops():
    """Pulled a second late with room on the link, the board sends while it acquires (the
    link was busy all along) instead of filling its buffer first and dropping the rest."""
    board = make_board()
    host = Host(board)
    host.send(small_config(samples_per_line=8192, prf_hz=2000, lines_per_frame=8))
    host.send(Start())
    out = host.pull(0.0)
    out += host.pull(1.0)  # 2000 more lines of 16 KB: 33 MB, eight times the 4 MiB buffer
    assert board.dropped_lines == 0
    assert sum(isinstance(m, EchoLine) for m in out) == board.lines_sent == 2001


def test_wrong_nak_fault_changes_codes():
    board = make_board(wrong_nak=True)
    board.feed(encode_frame(0x55, b"", 1), 0.0)
    (nak,) = Host(board).pull(0.0)
    assert nak.error_code != ErrorCode.UNKNOWN_TYPE


def test_full_send_buffer_drops_lines_and_says_so():
    board = make_board()
    host = Host(board)
    cfg = small_config(samples_per_line=8192, prf_hz=2000, lines_per_frame=8)
    host.send(cfg)
    host.send(Start())
    host.pull(0.0, budget=0)          # the link takes nothing for a second
    board.pull(1.0, 0)
    out = host.pull(1.0)
    status_seq = host.send(GetStatus(), 1.0)
    status = next(m for m in host.pull(1.0) if isinstance(m, Status))
    assert status.request_seq == status_seq
    acquired = 2001
    received = [m for m in out if isinstance(m, EchoLine)]
    assert status.dropped_lines > 0
    assert status.dropped_lines + len(received) == acquired
    assert status.fault_flags & 0x08
    assert any(isinstance(m, Log) and "dropping" in m.text for m in out)
    ends = [m for m in out if isinstance(m, FrameEnd)]
    # FRAME_END reports what was actually sent for that sweep
    for end in ends:
        sent = sum(1 for m in received if m.frame_index == end.frame_index)
        assert end.lines_sent == sent
    assert host.decoder.stats.seq_gaps == 0  # drops are not link losses
    assert board.renderer.calls < 2001 // 8  # frames that could not start were not rendered


def test_overflow_fault_drops_a_fraction():
    board = make_board(overflow_rate=0.2, seed=3)
    host = Host(board)
    host.send(small_config())
    host.send(Start(n_frames=50))
    lines = [m for m in host.pull(1.0) if isinstance(m, EchoLine)]
    assert 100 < len(lines) < 190
    assert board.dropped_lines == 200 - len(lines)


def test_hv_fault_refuses_start_with_hardware_fault():
    board = make_board(hv_fault=True)
    host = Host(board)
    seq = host.send(Start())
    s2 = host.send(GetStatus())
    nak, status = host.pull(0.0)
    assert (nak.request_seq, nak.error_code) == (seq, ErrorCode.HARDWARE_FAULT)
    assert "high-voltage" in nak.text
    assert status.request_seq == s2 and status.state == DeviceState.FAULT
    assert status.fault_flags & 0x01
