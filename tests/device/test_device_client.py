"""The device client against the simulated board over a real pty."""

from __future__ import annotations

import json

import pytest

from sonobridge.device import ConfigError, NakError, open_device
from sonobridge.protocol import Configure, ErrorCode, Nak
from sonobridge.protocol.rules import check_configure

from .device_fixtures import assert_lines_match_truth, sim_on_pty, truth_lines


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


def test_stats_compose_each_layers_counters_as_a_snapshot():
    with sim_on_pty() as (_, port), open_device(port) as dev:
        dev.configure(samples_per_line=256, lines_per_frame=8, prf_hz=4000)
        dev.start()
        list(dev.frames(timeout=2.0, count=3))
        s = dev.stats
        assert s.receive.lines_received >= 24
        assert s.lines_received == s.receive.lines_received
        assert s.bytes_in == s.link.bytes_in > 0
        assert s.crc_errors == s.decoder.crc_errors
        assert s.commands == s.client.commands >= 2
        assert s.host_overflows == s.link.overflows
        assert s.malformed == s.decoder.malformed + s.receive.lines_malformed
        with pytest.raises(AttributeError):
            s.crc_errors = 1  # type: ignore[misc]
        list(dev.frames(timeout=2.0, count=3))
        dev.stop()
        # a snapshot: the parts are copies, not the live counters
        assert dev.stats.lines_received > s.lines_received
        flat = s.as_dict()
        assert json.loads(json.dumps(flat)) == flat
        assert flat["lines_received"] == s.lines_received and flat["port"] == port
        assert flat["host_overflows"] == s.link.overflows and flat["malformed"] == s.malformed
        assert not {"link", "decoder", "receive", "client"} & flat.keys()
        for name in ("bytes_in", "connected", "crc_errors", "seq_gaps", "lines_lost_host",
                     "frames_dropped_queue", "stray_replies", "device_resets", "state", "logs"):
            assert flat[name] == getattr(s, name)


def test_rates_are_never_zero_once_data_arrived():
    with sim_on_pty() as (_, port), open_device(port) as dev:
        dev.configure(samples_per_line=256, lines_per_frame=8, prf_hz=4000)
        dev.start()
        list(dev.frames(timeout=2.0, count=3))
        s = dev.stats
        dev.stop()
    # the first full 1-second window may not have passed: the session's mean stands in
    assert s.mb_per_s > 0 and s.lines_per_s > 0 and s.frames_per_s > 0
    if s.elapsed_s < 1.0:
        assert (s.mb_per_s, s.lines_per_s, s.frames_per_s) == (
            s.mean_mb_per_s, s.mean_lines_per_s, s.mean_frames_per_s)


def test_summary_states_the_identity_and_the_boards_own_counter():
    with sim_on_pty() as (_, port), open_device(port) as dev:
        dev.configure(samples_per_line=256, lines_per_frame=8, prf_hz=4000)
        dev.status()  # the board's dropped-lines counter before this session's START
        dev.start()
        list(dev.frames(timeout=2.0, count=3))
        dev.stop()
        dev.status()
        s = dev.stats
    account = s.account.check()
    assert account.lines_received == s.lines_received
    assert account.lines_expected == (s.lines_received + s.lines_missing)
    text = s.summary()
    assert account.text() in text
    assert s.device_dropped_at_start == 0
    assert "since this session's START" in text and "since it booted" in text
    assert "account" not in s.as_dict() and s.as_dict()["lines_cut_by_stop"] == 0


def test_sim_url_handshake_and_configure_round_trip():
    from sonobridge.sim.urlhandler.protocol_sim import engine_for

    url = "sim://?phantom=wire&name=roundtrip"
    with open_device(url) as dev:
        dev.configure(lines_per_frame=32, depth_m=0.05, tgc_db=(0, 10, 20))
        board = engine_for(url).board
        assert board.config.lines_per_frame == 32 and board.config.tgc_count == 3
        dev.start()
        frame = next(iter(dev.frames(timeout=5.0)))
        assert frame.complete and frame.samples.shape[0] == 32
    assert engine_for(url) is None  # a normal close stops the simulated board


def test_protocol_version_mismatch_says_which_side_to_update(tmp_path):
    from sonobridge.device import ProtocolMismatch
    from sonobridge.sim.profile import BOARDS_DIR

    text = (BOARDS_DIR / "sim.toml").read_text().replace(
        "[capabilities]\n", "[capabilities]\nprotocol_version = 2\n")
    profile = tmp_path / "future.toml"
    profile.write_text(text)
    with pytest.raises(ProtocolMismatch, match=r"update sonobridge.*v2.*v1"):
        open_device(f"sim://?profile={profile}")


def test_a_lost_command_is_retried_with_the_retry_flag():
    from sonobridge.board.pty_transport import PtyTransport
    from sonobridge.sim.server import SimOptions, create_engine

    from ..board.board_fixtures import IndexRenderer

    class DeafOnce(PtyTransport):
        """Loses the first chunk the host writes, like a reply lost on a noisy link."""

        deaf = True

        def read_host(self) -> bytes:
            data = super().read_host()
            if data and self.deaf:
                self.deaf = False
                return b""
            return data

    transport = DeafOnce()
    # the dialect named: detection's own GET_INFO would be the one the board misses
    with create_engine(SimOptions(), transport, renderer=IndexRenderer()) as _engine, \
            open_device(transport.path, dialect="sonobridge-v1") as dev:
        assert dev.info.board_name == "sonobridge-sim"
        assert dev.stats.command_retries == 1


def test_slow_consumer_loses_oldest_frames_but_listeners_get_everything():
    with sim_on_pty() as (engine, port), open_device(port, queue_frames=2) as dev:
        lines = []
        raw = bytearray()
        dev.add_line_listener(lambda line, t: lines.append((line.frame_index, line.line_index)))
        dev.add_raw_listener(lambda data, t: raw.extend(data))
        before = dev.stats.bytes_in  # the handshake came before the tap
        dev.configure(samples_per_line=256, lines_per_frame=4, prf_hz=4000)
        dev.start(n_frames=30)
        from .device_fixtures import drain

        drain(engine, dev)  # nobody reads frames meanwhile
        s = dev.stats
        assert s.frames_complete == 30
        assert s.frames_dropped_queue == 28  # only the newest 2 are queued
        assert [f.index for f in dev.frames(timeout=1.0, count=2)] == [28, 29]
        assert len(lines) == 120
        # the raw tap saw exactly the bytes the decoder did, and they replay to the same lines
        from sonobridge.protocol import Decoder, EchoLine

        replayed = [m for m in Decoder().feed(bytes(raw)) if isinstance(m, EchoLine)]
        assert [(m.frame_index, m.line_index) for m in replayed] == lines
        assert len(raw) == s.bytes_in - before


def test_request_raw_gets_the_nak_for_a_malformed_frame():
    from sonobridge.protocol import MsgType, encode_frame

    with sim_on_pty() as (_, port), open_device(port) as dev:
        seq = dev.next_seq()
        reply = dev.request_raw(encode_frame(MsgType.CONFIGURE, bytes(7), seq), seq, 1.0)
        assert isinstance(reply, Nak)
        assert reply.error_code == ErrorCode.BAD_LENGTH and reply.request_seq == seq


def test_default_config_respects_a_fixed_hv_supply_and_gain_range():
    from sonobridge.device import AcquisitionConfig, validate
    from sonobridge.protocol import Capability, DeviceInfo

    info = DeviceInfo(sample_formats=2, capabilities=Capability.NONE, hv_min_mv=20_000,
                      hv_max_mv=20_000, gain_min_cdb=500, gain_max_cdb=4000)
    cfg = AcquisitionConfig.default_for(info)
    assert cfg.hv_mv == 20_000 and cfg.tgc_db == (5.0,)
    validate(cfg, info)  # the board would accept it
