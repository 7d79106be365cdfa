"""The replay board: handshake, timing, sequence numbers, pause/resume, loop, and serving."""

from __future__ import annotations

import itertools
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sonobridge.device import AcquisitionConfig, open_device
from sonobridge.protocol import (
    Ack,
    Configure,
    Decoder,
    DeviceInfo,
    DeviceState,
    EchoLine,
    ErrorCode,
    FrameEnd,
    GetInfo,
    GetStatus,
    Log,
    Nak,
    Ping,
    Pong,
    Reset,
    Start,
    Status,
    Stop,
    encode,
)
from sonobridge.record.meta import config_to_dict, info_to_dict
from sonobridge.record.raw import CaptureWriter
from sonobridge.record.replay import ReplayBoard, open_source

ROOT = Path(__file__).resolve().parents[2]
INFO = DeviceInfo(request_seq=0, board_name="recorded-board", board_id=42, adc_bits=10,
                  capabilities=1, sample_formats=0b10, prf_max_hz=20_000, hv_max_mv=0)
CFG = AcquisitionConfig(samples_per_line=64, lines_per_frame=4, prf_hz=1000, hv_mv=0)
N_FRAMES, N_LINES = 3, 4
T0 = 5_000_000_000  # recorded host clock of the first line, ns
STEP = 1_000_000  # 1 ms between recorded lines


def _capture(path: Path, *, gap_after: int | None = None, junk: bytes = b"") -> list[int]:
    """A capture as the recorder writes it: handshake replies, then lines and FRAME_ENDs.

    Returns the sequence numbers of the recorded lines. ``gap_after``: a line lost on the
    link after that many lines (its sequence number is skipped).
    """
    w = CaptureWriter(path)
    w.write_event({"type": "device_info", "info": info_to_dict(INFO), "frame_flags": 1})
    w.write_event({"type": "config", "host_ns": T0, "config_id": 1,
                   "config": config_to_dict(CFG)})
    replies = [encode(INFO, 0, flags=1)] + [encode(Ack(k, 4), k, flags=1) for k in (1, 2, 3)]
    w.write_rx(b"".join(replies), T0 - 400_000_000)
    seq, t, n, seqs = 4, T0, 0, []
    for f in range(N_FRAMES):
        for i in range(N_LINES):
            if gap_after is not None and n == gap_after:
                seq += 1  # this one never arrived
            line = EchoLine(np.full(64, f * 10 + i, np.int16), 40_000_000, frame_index=f,
                            line_index=i, lines_per_frame=N_LINES, config_id=1, sweep_kind=1)
            data = encode(line, seq, flags=1)
            if junk and n == 2:
                data = junk + data
            w.write_rx(data, t)
            seqs.append(seq)
            seq, t, n = seq + 1, t + STEP, n + 1
        w.write_rx(encode(FrameEnd(f, N_LINES, N_LINES, 0), seq, flags=1), t - STEP // 2)
        seq += 1
    w.write_rx(encode(Ack(99, 4), seq, flags=1), t)  # the recording host's STOP
    w.close()
    return seqs


class Host:
    """Talks to a ReplayBoard on a simulated clock."""

    def __init__(self, board: ReplayBoard) -> None:
        self.board, self.decoder, self.seq = board, Decoder(), 0

    def send(self, msg, now: float) -> int:
        seq = self.seq
        self.seq += 1
        self.board.feed(encode(msg, seq), now)
        return seq

    def pull(self, now: float) -> list:
        return [m for _, f in self.board.pull(now) for m in self.decoder.feed(f)]

    def handshake(self, now: float = 100.0) -> list:
        """GET_INFO, STOP, CONFIGURE, START; returns what came after the four replies."""
        self.send(GetInfo(), now)
        self.send(Stop(), now)
        self.send(CFG.to_message(), now)
        self.send(Start(), now)
        replies = self.pull(now)
        assert [type(m) for m in replies[:4]] == [DeviceInfo, Ack, Ack, Ack]
        return replies[4:]


@pytest.fixture
def capture(tmp_path) -> Path:
    path = tmp_path / "rec.sbcap"
    _capture(path)
    return path


def _lines(msgs) -> list[EchoLine]:
    return [m for m in msgs if isinstance(m, EchoLine)]


def test_handshake_answers_with_the_recorded_device_info(capture):
    board = ReplayBoard(open_source(capture))
    host = Host(board)
    seq = host.send(GetInfo(), 1.0)
    (info,) = host.pull(1.0)
    assert isinstance(info, DeviceInfo) and info.request_seq == seq
    assert info_to_dict(info) == info_to_dict(INFO)
    host.send(Stop(), 1.0)
    host.send(CFG.to_message(), 1.0)  # the recorded configuration: nothing to warn about
    assert [type(m) for m in host.pull(1.0)] == [Ack, Ack]
    seq = host.send(GetStatus(), 1.0)
    (status,) = host.pull(1.0)
    assert isinstance(status, Status) and status.request_seq == seq
    assert status.state == DeviceState.IDLE and status.config_id == 1
    seq = host.send(Ping(token=9, data=b"hi"), 1.5)
    (pong,) = host.pull(1.5)
    assert isinstance(pong, Pong) and (pong.request_seq, pong.token, pong.data) == (seq, 9, b"hi")
    assert board.state == DeviceState.IDLE and not _lines(host.pull(50.0))  # nothing before START


def test_configure_is_acknowledged_but_a_log_says_it_is_ignored(capture):
    host = Host(ReplayBoard(open_source(capture)))
    host.send(Configure(samples_per_line=128, lines_per_frame=4, prf_hz=1000,
                        sample_format=1, hv_mv=0), 1.0)
    ack, log = host.pull(1.0)
    assert isinstance(ack, Ack) and isinstance(log, Log)
    assert "ignored" in log.text and "samples_per_line 128 (recorded 64)" in log.text
    host.send(Configure(prf_hz=50_000, sample_format=1, hv_mv=0), 1.0)  # beyond prf_max_hz
    (nak,) = host.pull(1.0)
    assert isinstance(nak, Nak) and nak.error_code == ErrorCode.OUT_OF_RANGE
    assert nak.field_id == 7  # prf_hz


def test_streaming_follows_the_recorded_timing(capture):
    for speed in (1.0, 2.0):
        host = Host(ReplayBoard(open_source(capture), speed=speed))
        first = _lines(host.handshake(100.0))
        assert [ln.line_index for ln in first] == [0]  # only the first line is due at once
        later = _lines(host.pull(100.0 + 0.0055 / speed))  # 5.5 recorded ms later
        assert len(first) + len(later) == 6
        rest = host.pull(101.0)
        assert len(_lines(rest)) == N_FRAMES * N_LINES - 6
        assert isinstance(rest[-1], Log) and "end of the recording" in rest[-1].text


def test_as_fast_as_possible_and_the_sequence_numbers_match_the_recording(tmp_path):
    path = tmp_path / "gap.sbcap"
    seqs = _capture(path, gap_after=5)
    board = ReplayBoard(open_source(path), speed=math.inf)
    host = Host(board)
    msgs = host.handshake(100.0)
    lines = _lines(msgs)
    # the same handshake as the recording host: the same numbers, the recorded gap kept
    assert [ln.seq for ln in lines] == seqs
    assert host.decoder.stats.seq_gaps == 1
    assert [m.frame_index for m in msgs if isinstance(m, FrameEnd)] == [0, 1, 2]
    assert board.lines_sent == 12 and board.finished and board.state == DeviceState.IDLE


def test_junk_between_frames_is_replayed_byte_for_byte(tmp_path):
    path = tmp_path / "junk.sbcap"
    _capture(path, junk=b"\xa5\x5a\x01garbage")
    host = Host(ReplayBoard(open_source(path), speed=math.inf))
    assert len(_lines(host.handshake())) == 12
    assert host.decoder.stats.bytes_discarded == len(b"\xa5\x5a\x01garbage")


def test_stop_stops_start_plays_from_the_top_and_n_frames_counts_sweeps(capture):
    host = Host(ReplayBoard(open_source(capture)))  # recorded timing
    first = _lines(host.handshake(100.0))
    assert len(first) == 1
    host.send(Stop(), 100.0)
    assert not _lines(host.pull(200.0))  # stopped: nothing more, however long we wait
    host.board.speed = math.inf
    host.send(Start(n_frames=2), 200.0)
    msgs = host.pull(200.0)
    assert [ln.frame_index for ln in _lines(msgs)] == [0] * 4 + [1] * 4  # from the top
    assert [m.frame_index for m in msgs if isinstance(m, FrameEnd)] == [0, 1]
    assert host.board.state == DeviceState.IDLE  # two FRAME_ENDs played: done
    host.send(Start(), 200.1)
    again = _lines(host.pull(200.1))
    assert [ln.frame_index for ln in again] == [0] * 4 + [1] * 4 + [2] * 4
    seqs = [ln.seq for ln in _lines(msgs) + again]
    assert all(b > a for a, b in itertools.pairwise(seqs))  # the board's count goes on


def test_loop_starts_over_with_continuing_sequence_numbers(capture):
    board = ReplayBoard(open_source(capture), speed=math.inf, loop=True)
    host = Host(board)
    lines = _lines(host.handshake())
    for k in range(6):
        lines += _lines(host.pull(100.0 + k))
    assert len(lines) >= 3 * N_FRAMES * N_LINES and board.loops >= 2
    seqs = [ln.seq for ln in lines]
    assert all(b > a for a, b in itertools.pairwise(seqs))
    assert host.decoder.stats.seq_gaps == 0 and not board.finished


def test_reset_reboots_and_rewinds(capture):
    board = ReplayBoard(open_source(capture), speed=math.inf)
    host = Host(board)
    host.handshake()
    seq = host.send(Reset(), 101.0)
    ack, info = host.pull(101.0)
    assert isinstance(ack, Ack) and ack.request_seq == seq
    assert isinstance(info, DeviceInfo) and info.request_seq == 0xFFFFFFFF and info.seq == 0
    assert board.boots == 2 and board.state == DeviceState.IDLE and not board.finished


def test_an_hdf5_recording_is_a_source_too(tmp_path, capture):
    from sonobridge.record import convert_capture

    convert_capture(capture, tmp_path / "rec.h5")
    source = open_source(tmp_path / "rec.h5")
    assert info_to_dict(source.info) == info_to_dict(INFO)
    host = Host(ReplayBoard(source, speed=math.inf))
    msgs = host.handshake()
    lines = _lines(msgs)
    assert [(ln.frame_index, ln.line_index) for ln in lines] == \
        [(f, i) for f in range(N_FRAMES) for i in range(N_LINES)]
    assert [int(ln.samples[0]) for ln in lines] == [f * 10 + i for f in range(3)
                                                   for i in range(4)]
    assert [m.frame_index for m in msgs if isinstance(m, FrameEnd)] == [0, 1, 2]
    assert host.decoder.stats.seq_gaps == 0


def _damaged_h5(tmp_path, capture, row: int) -> Path:
    """The capture converted to HDF5, with one bit of ``row``'s samples flipped."""
    import h5py

    from sonobridge.record import convert_capture
    from sonobridge.record.hdf5_schema import row_offset

    path = tmp_path / "rec.h5"
    convert_capture(capture, path)
    with h5py.File(path, "r") as f:
        offset = row_offset(f["segments/0000/samples"], row)
    with path.open("r+b") as f:
        f.seek(offset + 7)
        byte = f.read(1)
        f.seek(offset + 7)
        f.write(bytes([byte[0] ^ 0x08]))
    return path


def test_a_damaged_hdf5_row_is_not_sent_and_is_counted(tmp_path, capture):
    path = _damaged_h5(tmp_path, capture, 5)  # frame 1, line 1
    source = open_source(path)
    board = ReplayBoard(source, speed=math.inf)
    host = Host(board)
    msgs = host.handshake()
    lines = _lines(msgs)
    assert [(ln.frame_index, ln.line_index) for ln in lines] == \
        [(f, i) for f in range(N_FRAMES) for i in range(N_LINES) if (f, i) != (1, 1)]
    assert [int(ln.samples[0]) for ln in lines if ln.frame_index == 1] == [10, 12, 13]
    assert host.decoder.stats.seq_gaps == 1  # its sequence number stays a gap
    assert board.lines_sent == N_FRAMES * N_LINES - 1
    assert list(source.damaged) == [("/segments/0000", 5)]
    end = msgs[-1]
    assert isinstance(end, Log) and "end of the recording" in end.text
    assert "1 damaged rows not sent" in end.text and "row 5 (frame 1, line 1)" in end.text
    # a second START plays it again: the same row is skipped, still counted once
    host.send(Start(), 200.0)
    assert len(_lines(host.pull(200.0))) == N_FRAMES * N_LINES - 1
    assert len(source.damaged) == 1


def test_replay_says_in_its_summary_how_many_damaged_rows_it_skipped(tmp_path, capture,
                                                                       capsys):
    import threading

    from sonobridge.record.replay import serve_replay

    path = _damaged_h5(tmp_path, capture, 5)
    stop, where = threading.Event(), []
    ready = threading.Event()

    def on_ready(text: str) -> None:
        where.append(text)
        ready.set()

    server = threading.Thread(target=serve_replay, args=(path,), kwargs={
        "mode": "tcp", "speed": math.inf, "ready": on_ready, "stop": stop}, daemon=True)
    server.start()
    try:
        assert ready.wait(10.0), "the replay never said where it serves"
        with open_device(where[0]) as dev:
            dev.start()
            frames = list(dev.frames(timeout=5.0, count=N_FRAMES))
            assert [int(np.count_nonzero(f.present)) for f in frames] == [4, 3, 4]
            assert frames[1].lost_link == 1
    finally:
        stop.set()
        server.join(10.0)
    err = capsys.readouterr().err
    assert "replayed 11 lines" in err
    assert "warning: 1 damaged rows not sent" in err and "row 5 (frame 1, line 1)" in err


def test_not_a_recording(tmp_path):
    bad = tmp_path / "x.bin"
    bad.write_bytes(b"hello")
    with pytest.raises(ValueError, match=r"x\.bin .*none of the known formats \(sonobridge raw "
                       r"capture \(\.sbcap\), sonobridge HDF5 recording \(\.h5\)\)"):
        open_source(bad)
    with pytest.raises(FileNotFoundError):
        open_source(tmp_path / "missing.sbcap")


def test_replay_url_serves_open_device(capture):
    from sonobridge.record.urlhandler.protocol_replay import engine_for, replay_url

    url = replay_url(str(capture), speed=0)
    with open_device(url) as dev:
        assert dev.info.board_name == "recorded-board"
        dev.configure(**{k: getattr(CFG, k) for k in ("samples_per_line", "lines_per_frame",
                                                       "prf_hz")})
        dev.start()
        frames = list(dev.frames(timeout=5.0, count=N_FRAMES))
        assert [f.index for f in frames] == [0, 1, 2] and all(f.complete for f in frames)
        assert engine_for(url) is not None
    assert engine_for(url) is None  # closing the port stopped the replay


def _cli(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sonobridge.record.commands", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, **kw)


def test_cli_replay_on_a_pty_prints_the_path_first(capture, tmp_path):
    link = tmp_path / "board"
    proc = _cli("replay", str(capture), "--pty", "--fast", "--link-path", str(link))
    try:
        path = proc.stdout.readline().strip()
        assert path == str(link) and os.path.islink(link)
        with open_device(path) as dev:
            assert dev.info.board_name == "recorded-board"
            dev.start()
            frames = list(dev.frames(timeout=5.0, count=N_FRAMES))
            assert [f.index for f in frames] == [0, 1, 2]
            assert any("ignored" in text for text in dev.stats.logs)  # default config differs
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "replayed 12 lines" in err


def test_cli_replay_url_and_errors(capture, tmp_path):
    from sonobridge.record.commands import main

    proc = _cli("replay", str(capture), "--url", "--speed", "2", "--loop")
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out.strip().startswith("replay://") and "speed=2" in out and "loop=1" in out
    assert main(["replay", str(tmp_path / "missing.sbcap")]) == 2
