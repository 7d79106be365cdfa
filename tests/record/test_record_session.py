"""Recording simulated sessions: every line kept, convert equals record, replay equals record,
and the loss accounting equals the client's and the simulator's ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from sonobridge.device.accounting import LossAccount
from sonobridge.record import convert_capture, iter_rx, open_recording
from sonobridge.record.meta import config_to_dict, info_to_dict
from sonobridge.record.urlhandler.protocol_replay import replay_url

from .record_fixtures import (
    CONFIG,
    LINES,
    N_FRAMES,
    assert_same_recording,
    record_session,
    record_sim,
    replay_ended,
)


def _slots(rec) -> dict[tuple[int, int, int], np.ndarray]:
    """Every stored row by (frame, line, ensemble) index."""
    out = {}
    for seg in rec.segments:
        samples = seg.samples[:]
        for row, m in enumerate(seg.lines):
            out[(int(m["frame_index"]), int(m["line_index"]), int(m["ensemble_index"]))] = \
                samples[row]
    return out


def _assert_rows_match_truth(rec, truth, lost_seqs=frozenset()) -> None:
    """Rows are exactly what the board sent, minus the lost lines; metadata too."""
    kept = {s: m for s, m in truth.items() if s not in lost_seqs}
    slots = _slots(rec)
    assert len(slots) == rec.n_lines == len(kept)
    by_seq = {int(m["seq"]): m for seg in rec.segments for m in seg.lines}
    for seq, line in kept.items():
        slot = (line.frame_index, line.line_index, line.ensemble_index)
        np.testing.assert_array_equal(slots[slot], line.samples, err_msg=str(slot))
        m = by_seq[seq]
        assert (m["frame_index"], m["line_index"], m["beam_position"], m["timestamp_us"],
                m["config_id"]) == (line.frame_index, line.line_index, line.beam_position,
                                    line.timestamp_us, line.config_id)


def test_recording_keeps_every_line_and_the_session_facts(tmp_path):
    session, h5, raw = record_sim(tmp_path, "a")
    assert len(session.truth) == N_FRAMES * LINES
    with open_recording(h5) as rec:
        assert rec.complete
        _assert_rows_match_truth(rec, session.truth)
        assert rec.device_info_dict == info_to_dict(session.engine.board.info)
        assert {k: rec.config[k] for k in CONFIG} == CONFIG
        assert rec.config == config_to_dict(_config_of(rec))
        assert len(rec.frames) == N_FRAMES and rec.frames["complete"].all()
        acc = rec.accounting
        s = session.stats
        assert acc["lines_recorded"] == acc["lines_received"] == s.lines_received == 240
        assert acc["lines_missing"] == s.lines_missing == 0
        assert acc["lines_not_recorded"] == 0
        assert rec.stats["frames_complete"] == N_FRAMES
        lines = rec.segments[0].lines
        assert (np.diff(lines["host_time_ns"]) >= 0).all()
        assert (np.diff(lines["seq"]) >= 1).all()
    # the capture replays through the decoder into the very same lines
    from sonobridge.protocol import Decoder, EchoLine

    dec = Decoder()
    lines = [m for chunk, _ in iter_rx(raw) for m in dec.feed(chunk) if isinstance(m, EchoLine)]
    assert {m.seq: m for m in lines} == session.truth


def _config_of(rec):
    from sonobridge.record.meta import config_from_dict

    return config_from_dict(rec.config)


def test_convert_equals_the_direct_recording(tmp_path):
    _, h5, raw = record_sim(tmp_path, "a", faults="bitflip=2e-5")
    result = convert_capture(raw, tmp_path / "converted.h5")
    assert result.damage is None and result.error is None
    assert_same_recording(h5, tmp_path / "converted.h5")
    with open_recording(tmp_path / "converted.h5") as rec:
        assert rec.accounting["crc_errors"] > 0  # the damage came through, and was counted
        assert rec.attrs["converted_from"] == str(raw)
    with pytest.raises(FileExistsError):
        convert_capture(raw, tmp_path / "converted.h5")


@pytest.mark.parametrize("source", ["sbcap", "h5"])
def test_replay_then_rerecord_gives_identical_samples_and_metadata(tmp_path, source):
    _, h5, _ = record_sim(tmp_path, "a")
    url = replay_url(str(tmp_path / f"a.{source}"), speed=0)
    record_session(url, tmp_path / "b.h5", None, done=replay_ended, n_frames=0)
    assert_same_recording(h5, tmp_path / "b.h5", host_time=False)


def test_replay_of_a_damaged_stream_reproduces_the_damage(tmp_path):
    _, h5, raw = record_sim(tmp_path, "a", faults="bitflip=2e-5,garbage=0.05")
    with open_recording(h5) as rec:
        assert rec.accounting["lines_lost_link"] > 0 and rec.accounting["bytes_discarded"] > 0
    url = replay_url(str(raw), speed=0)
    again = record_session(url, tmp_path / "b.h5", None, done=replay_ended, n_frames=0)
    assert_same_recording(h5, tmp_path / "b.h5", host_time=False)
    assert again.stats.crc_errors > 0


@pytest.mark.parametrize("faults", ["bitflip=2e-5", "drop=2e-5", "overflow=0.05"])
def test_lost_line_accounting_matches_the_client_and_the_truth(tmp_path, faults):
    session, h5, raw = record_sim(tmp_path, "a", faults=faults)
    s = session.stats
    engine = session.engine
    damaged = engine.injector.damaged_seqs() & set(session.truth)
    dropped = engine.board.dropped_lines
    assert damaged or dropped, "the fault rate should lose at least one line in this run"
    with open_recording(h5) as rec:
        acc = rec.accounting
        # the recording says what the client says
        for key in ("lines_received", "lines_missing", "lines_lost_link", "lines_lost_device",
                    "lines_lost_host", "frames_complete", "frames_incomplete", "frames_lost",
                    "crc_errors", "seq_gaps"):
            assert acc[key] == getattr(s, key), key
        # … which is what really happened
        assert acc["lines_lost_link"] == len(damaged)
        assert acc["lines_lost_device"] == dropped
        assert acc["lines_missing"] == len(damaged) + dropped
        assert acc["lines_recorded"] == rec.n_lines == len(session.truth) - len(damaged)
        assert acc["lines_not_recorded"] == 0
        # every firing the board acquired (sent or dropped) is in exactly one figure
        account = LossAccount.from_counts(acc).check()
        assert acc["lines_expected"] == account.lines_expected == len(session.truth) + dropped
        f = rec.frames
        assert int(f["missing"].sum()) == acc["lines_missing"]
        assert int(f["lost_link"].sum()) == len(damaged)
        assert int(f["lost_device"].sum()) == dropped
        assert acc["lines_lost_host"] == int(f["lost_host"].sum()) == 0  # the host kept up
        _assert_rows_match_truth(rec, session.truth, lost_seqs=damaged)
        assert rec.decoder_stats["crc_errors"] == s.crc_errors
    # the capture, converted, tells the same story
    convert_capture(raw, tmp_path / "c.h5")
    with open_recording(tmp_path / "c.h5") as conv:
        assert conv.accounting == acc


def test_a_sweep_cut_short_by_stop_is_not_a_loss(tmp_path):
    from sonobridge.device import Device
    from sonobridge.record import Recorder

    from .record_fixtures import sim_drained, sim_url, wait_until

    url = sim_url()
    dev = Device(url)
    rec = Recorder(tmp_path / "a.h5", tmp_path / "a.sbcap").attach(dev)
    with dev:
        dev.open()
        dev.configure(**CONFIG)
        dev.start()  # open-ended: only STOP ends it, wherever the sweep is
        wait_until(lambda: rec.frames >= 5, 10.0, "five frames")
        dev.stop()
        wait_until(lambda: sim_drained(url, dev), 10.0, "the lines queued before STOP")
        dev.flush()
        client = dev.stats
        summary = rec.close(stopped=True)
    acc = summary.accounting
    assert acc["lines_cut_by_stop"] == client.lines_missing  # what the client counted as lost
    assert acc["lines_missing"] == 0 and acc["lines_lost_device"] == 0
    assert acc["lines_recorded"] == client.lines_received
    convert_capture(tmp_path / "a.sbcap", tmp_path / "c.h5")
    assert_same_recording(tmp_path / "a.h5", tmp_path / "c.h5")
