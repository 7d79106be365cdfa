"""The device client against the simulated board over a real pty."""

from __future__ import annotations

import pytest
from device_fixtures import assert_lines_match_truth, sim_on_pty, truth_lines

from host.device import ConfigError, NakError, open_device
from host.protocol import Configure, ErrorCode, Nak
from host.protocol.rules import check_configure


def test_handshake_and_configure_round_trip():
    with sim_on_pty() as (engine, port), open_device(port) as dev:
        assert dev.info.board_name == "sonobridge-sim"
        assert dev.info.protocol_version == 1
        cfg = dev.configure(depth_m=0.04, lines_per_frame=16, prf_hz=2000)
        with engine.lock:
            sent = engine.board.config
        assert sent.samples_per_line == cfg.samples_per_line
        assert sent.lines_per_frame == 16 and sent.prf_hz == 2000
        assert engine.board.config_id == 1
        depth = cfg.depth_range_m(dev.info)[1]
        assert 0.04 <= depth < 0.0401


@pytest.mark.parametrize(
    ("setting", "value", "field"),
    [("prf_hz", 10**6, "prf_hz"), ("lines_per_frame", 10_000, "lines_per_frame"),
     ("decimation", 0, "decimation"), ("hv_mv", 10**7, "hv_mv"),
     ("tgc_db", (0, 90), "tgc_db"), ("sample_format", 9, "sample_format"),
     ("samples_per_line", 10, "samples_per_line")],
)
def test_client_side_validation_names_field_value_and_range(setting, value, field):
    with sim_on_pty() as (engine, port), open_device(port) as dev:
        with pytest.raises(ConfigError) as err:
            dev.configure(**{setting: value})
        assert err.value.field == field
        assert field in str(err.value) and "allowed" in str(err.value)
        assert engine.board.config_id == 0  # nothing was sent


@pytest.mark.parametrize("field", ["decimation", "prf_hz", "samples_per_line", "lines_per_frame",
                                   "hv_mv", "pulse_freq_hz", "ensemble_size", "sweep_start"])
def test_every_invalid_field_gets_the_right_nak_from_the_board(field):
    with sim_on_pty() as (_, port), open_device(port) as dev:
        info = dev.info
        bad = {"decimation": info.max_decimation + 1, "prf_hz": info.prf_max_hz + 1,
               "samples_per_line": info.max_samples_per_line + 1,
               "lines_per_frame": info.max_lines_per_frame + 1, "hv_mv": info.hv_max_mv + 1,
               "pulse_freq_hz": info.pulse_freq_max_hz + 1,
               "ensemble_size": info.ensemble_max + 1, "sweep_start": info.sweep_min - 1}
        base = {"samples_per_line": 512, "prf_hz": 1000, "hv_mv": 20_000}
        msg = Configure(tgc_cdb=(0,), **{**base, field: bad[field]})
        reply = dev.command(msg, check=False)
        assert isinstance(reply, Nak)
        expected = check_configure(msg, info)
        assert reply.error_code == expected.code == ErrorCode.OUT_OF_RANGE
        assert reply.field_id == expected.field_id
        with pytest.raises(NakError, match=field):
            dev.command(msg)


def test_streaming_delivers_frames_equal_to_ground_truth():
    with sim_on_pty() as (engine, port), open_device(port) as dev:
        dev.configure(samples_per_line=512, lines_per_frame=8, prf_hz=4000)
        received = {}
        dev.add_line_listener(lambda line, t: received.__setitem__(
            (line.frame_index, line.line_index, line.ensemble_index), line.samples.copy()))
        dev.start()
        frames = list(dev.frames(timeout=2.0, count=10))
        dev.stop()
        assert all(f.complete for f in frames)
        assert [f.index for f in frames] == list(range(frames[0].index, frames[0].index + 10))
        f = frames[3]
        assert f.samples.shape == (8, 512)
        assert f.missing_lines == []
        assert f.geometry.is_sector
        assert f.geometry.positions[0] == pytest.approx(dev.config.sweep_start * 1e-6)
        assert (f.meta["seq"] >= 0).all()
        assert_lines_match_truth(received, truth_lines(engine))
        s = dev.stats
        assert s.crc_errors == 0 and s.seq_gaps == 0 and s.lines_missing == 0


def test_status_ping_and_stats():
    with sim_on_pty() as (_, port), open_device(port) as dev:
        status = dev.status()
        assert status.temperature_c == pytest.approx(31.5)
        rtt = dev.ping(b"x" * 100)
        assert 0 < rtt < 0.5
        assert dev.stats.temperature_c == pytest.approx(31.5)
        assert "lost lines" in dev.stats.summary()
