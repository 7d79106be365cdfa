"""Self-test of the HIL suite's checks: each one must fail on synthetic data that breaks it."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sonobridge.hil import checks as hc
from sonobridge.hil.board import sim_profile_file
from sonobridge.hil.report import REQUIREMENTS, HilReport
from sonobridge.protocol import Ack, Capability, DeviceInfo, ErrorCode, Nak, SampleFormat
from sonobridge.protocol.rules import check_configure
from sonobridge.sim.profile import load_profile

SIM_INFO = load_profile("sim").info
#: a board unlike the simulator: other limits, no RESET, no HV control, linear sweep
OTHER_INFO = replace(
    SIM_INFO, adc_bits=12, sample_formats=(1 << SampleFormat.I16) | (1 << SampleFormat.PACKED12),
    sweep_kind=2, capabilities=0, adc_rate_hz=20_000_000, max_decimation=255, tgc_points_max=4,
    ensemble_max=1, pulse_cycles_max=255, min_samples_per_line=33, max_samples_per_line=65536,
    max_start_delay_samples=0, max_lines_per_frame=65535, gain_min_cdb=0, gain_max_cdb=32767,
    sweep_min=-20_000, sweep_max=20_000, prf_min_hz=1, prf_max_hz=5000,
    pulse_freq_min_hz=2_000_000, pulse_freq_max_hz=2_000_000, hv_min_mv=12_000,
    hv_max_mv=80_000, rated_throughput_bps=0,
)


# -- NAK expectations ---------------------------------------------------------------------------


def test_reply_problem_names_what_broke() -> None:
    """An ACK where a NAK is due, a wrong code, a wrong field or silence are all reported."""
    want = hc.Expected(ErrorCode.OUT_OF_RANGE, 7)
    what = "CONFIGURE prf_hz=20001 (max+1)"
    assert hc.reply_problem(what, Ack(1, 2), want) == (
        "board answered CONFIGURE prf_hz=20001 (max+1) with ACK; expected NAK OUT_OF_RANGE "
        "field 7 (prf_hz)")
    wrong_code = Nak(1, 2, ErrorCode.INVALID_COMBINATION, 7)
    assert "with NAK INVALID_COMBINATION field 7" in hc.reply_problem(what, wrong_code, want)
    wrong_field = Nak(1, 2, ErrorCode.OUT_OF_RANGE, 6)
    assert "field 6 (start_delay_samples)" in hc.reply_problem(what, wrong_field, want)
    assert hc.reply_problem(what, None, want).startswith("board did not answer")
    assert hc.reply_problem(what, Nak(1, 2, ErrorCode.OUT_OF_RANGE, 7), want) is None
    nak_for_ack = hc.reply_problem("CONFIGURE x", Nak(1, 2, ErrorCode.BUSY, 0, "busy"),
                                   hc.Expected())
    assert nak_for_ack == "board answered CONFIGURE x with NAK BUSY; expected ACK (busy)"
    other_type = hc.reply_problem("STOP", Ack(1, 3), hc.Expected(), request_type=4)
    assert other_type is not None and "request type 0x03" in other_type


@pytest.mark.parametrize("info", [SIM_INFO, OTHER_INFO], ids=["sim", "other-board"])
def test_boundary_cases_follow_device_info(info: DeviceInfo) -> None:
    """min/max expect ACK, max+1/min-1 expect OUT_OF_RANGE with the field's id."""
    for name in hc.RANGE_FIELDS:
        lo, hi = hc.field_bounds(name, info)
        cases = {c.label: c for c in hc.boundary_cases(name, info)}
        fid = hc.CONFIGURE_FIELD_IDS[name]
        for label in ("min", "max"):
            c = cases[label]
            assert c.value == (lo if label == "min" else hi)
            assert c.expected == hc.oracle(c.message, info)
            if c.expected.code == ErrorCode.OUT_OF_RANGE:
                pytest.fail(f"{name} {label} {c.value} expected out of range")
        w_lo, w_hi = hc.wire_range(name)
        if hi + 1 <= w_hi:
            assert cases["max+1"].expected == hc.Expected(ErrorCode.OUT_OF_RANGE, fid), name
        else:
            assert "max+1" not in cases, f"{name}: max+1 cannot be encoded"
        if "min-1" in cases:
            assert cases["min-1"].expected == hc.Expected(ErrorCode.OUT_OF_RANGE, fid), name
            assert cases["min-1"].value == lo - 1 >= w_lo


def test_boundary_cases_respect_capabilities() -> None:
    """Without HV_CONTROL the HV range collapses to hv_min_mv."""
    assert not OTHER_INFO.capabilities & Capability.HV_CONTROL
    cases = {c.label: c for c in hc.boundary_cases("hv_mv", OTHER_INFO)}
    assert cases["max"].value == OTHER_INFO.hv_min_mv
    assert cases["max+1"].expected == hc.Expected(ErrorCode.OUT_OF_RANGE, 14)
    fmt = {c.label: c for c in hc.boundary_cases("sample_format", OTHER_INFO)}
    assert fmt["not announced U8"].expected == hc.Expected(ErrorCode.OUT_OF_RANGE, 1)
    assert fmt["supported PACKED12"].expected == hc.Expected()
    reserved = hc.boundary_cases("reserved", SIM_INFO)[0]
    assert reserved.wire_payload()[19] == 0xFF and reserved.expected.is_ack


def test_tgc_and_combination_cases() -> None:
    """TGC gains and counts, and the combination rules, get the documented verdicts."""
    tgc = {c.label: c for c in hc.boundary_cases("tgc_cdb", SIM_INFO)}
    assert tgc["max+1 in point 32"].expected == hc.Expected(ErrorCode.OUT_OF_RANGE, 15)
    assert tgc["min in point 32"].expected.is_ack
    count = {c.label: c for c in hc.boundary_cases("tgc_count", SIM_INFO)}
    assert count["max+1"].message.tgc_count == 33
    assert count["max+1"].expected == hc.Expected(ErrorCode.OUT_OF_RANGE, 9)
    combos = {c.label: c for c in hc.combination_cases(SIM_INFO)}
    assert combos["fastest PRF whose period holds the window"].expected.is_ack
    assert combos["window longer than the pulse period"].expected == hc.Expected(
        ErrorCode.INVALID_COMBINATION, 7)
    assert combos["odd count in PACKED12"].expected == hc.Expected(
        ErrorCode.INVALID_COMBINATION, 5)
    big = hc.combination_cases(OTHER_INFO)
    assert any("MAX_PAYLOAD" in c.label for c in big)  # 65536 I16 samples do not fit a frame


def test_info_problems() -> None:
    """A self-contradicting DEVICE_INFO is named; the simulator's is fine."""
    assert hc.info_problems(SIM_INFO) == []
    bad = replace(SIM_INFO, min_samples_per_line=5000, max_samples_per_line=100)
    assert any("min_samples_per_line 5000 > max_samples_per_line 100" in p
               for p in hc.info_problems(bad))
    no_prf = replace(SIM_INFO, prf_min_hz=0)
    assert hc.info_problems(no_prf)
    narrow = replace(SIM_INFO, prf_max_hz=10, adc_rate_hz=100)  # no window fits any PRF
    assert any("no valid CONFIGURE" in p for p in hc.info_problems(narrow))


def test_rated_prf_within_rules() -> None:
    """The streaming PRF reaches the rating but never breaks the PRF or window rules."""
    prf = hc.rated_prf(SIM_INFO, SampleFormat.I16, 3118, 35e6)
    assert prf * hc.line_bytes(SampleFormat.I16, 3118) <= 35e6
    assert (prf + 1) * hc.line_bytes(SampleFormat.I16, 3118) > 35e6
    long_line = hc.rated_prf(SIM_INFO, SampleFormat.I16, 32768, 1e12)
    assert long_line == hc.window_prf_limit(SIM_INFO, 32768) < SIM_INFO.prf_max_hz
    assert hc.rated_prf(SIM_INFO, SampleFormat.I16, 64, 1.0) == SIM_INFO.prf_min_hz


# -- stream checks ------------------------------------------------------------------------------


def _lines(n_frames: int, per: int, prf: float, jitter_us: float = 0.0,
           seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = np.arange(n_frames * per)
    t = np.round(k * 1e6 / prf + rng.normal(0, jitter_us, k.size) if jitter_us else
                 k * 1e6 / prf)
    recs = [(2 * i + 10, i // per, i % per, 0, 1, per, int(t[i]), 1, i * 1000)
            for i in range(k.size)]
    return hc.lines_array(recs)


def test_order_problems() -> None:
    """Missing, repeated and reordered lines, and stuck seq numbers, are all reported."""
    good = _lines(3, 16, 5000)
    assert hc.order_problems(good, 48) == []
    missing = np.delete(good, [5, 6, 7])
    assert any("3 firings missing" in p for p in hc.order_problems(missing, 48))
    swapped = good.copy()
    swapped[[10, 11]] = swapped[[11, 10]]
    assert any("out of acquisition order" in p for p in hc.order_problems(swapped))
    short = good[:40]
    assert any("ended after firing 40 of 48" in p for p in hc.order_problems(short, 48))
    same_seq = good.copy()
    same_seq["seq"][20] = same_seq["seq"][19]
    assert any("seq did not increase" in p for p in hc.order_problems(same_seq))
    assert hc.order_problems(good[:0]) == ["the board sent no ECHO_LINE"]


def test_timing_problems() -> None:
    """Exact timing passes; jitter, a wrong PRF and backwards timestamps fail."""
    prf = 5000.0
    ok = hc.jitter_stats(_lines(4, 32, prf), prf)
    assert hc.timing_problems(ok, prf) == [] and ok.p99_dev_us <= 1.0
    shaky = hc.jitter_stats(_lines(4, 32, prf, jitter_us=20.0), prf)
    assert any("jitter p99" in p for p in hc.timing_problems(shaky, prf))
    slow = hc.jitter_stats(_lines(4, 32, prf * 0.97), prf)
    assert any("off 1/PRF" in p for p in hc.timing_problems(slow, prf))
    back = _lines(4, 32, prf)
    back["timestamp_us"][50] = back["timestamp_us"][49] - 5
    assert any("not monotonic" in p for p in hc.timing_problems(hc.jitter_stats(back, prf),
                                                                  prf))


def test_stream_problems() -> None:
    """Each counter that is not zero is a failure that names its cause."""
    assert hc.stream_problems(hc.StreamCounts(100, 100, frames_expected=2,
                                              frames_complete=2)) == []
    lost = hc.stream_problems(hc.StreamCounts(100, 90, device_dropped=6))
    assert "10 of 100 lines lost" in lost[0] and "6 dropped by the board" in lost[0]
    assert "4 lost on the link" in lost[0]
    crc = hc.stream_problems(hc.StreamCounts(100, 100, crc_errors=3, seq_gaps=1))
    assert any("3 CRC errors" in p for p in crc) and any("seq_gaps" in p for p in crc)
    extra = hc.stream_problems(hc.StreamCounts(100, 101))
    assert "more lines" in extra[0]
    assert hc.stream_problems(hc.StreamCounts(10, 10, seq_resets=1))


def test_latency_problems() -> None:
    """A p99 over the limit, or no answered PING, fails."""
    fast = hc.percentiles_ms([0.001] * 100)
    assert hc.latency_problems(fast, 100, "idle") == []
    slow = hc.percentiles_ms([0.001] * 95 + [0.3] * 5)
    assert "p99 300.0 ms" in hc.latency_problems(slow, 100, "idle")[0]
    assert hc.latency_problems(hc.percentiles_ms([]), 100, "idle")


# -- sample checks ------------------------------------------------------------------------------


def _noise(fmt: int = SampleFormat.I16, bits: int = 10, rms: float = 2.0, offset: float = 0,
           shape: tuple[int, int] = (64, 2048), seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    zero = hc.zero_level(fmt, bits)
    lo, hi = hc.code_range(fmt, bits)
    x = np.clip(np.round(rng.normal(zero + offset, rms, shape)), lo, hi)
    return x.astype(np.int16 if fmt == SampleFormat.I16 else np.uint16)


@pytest.mark.parametrize("fmt", [SampleFormat.I16, SampleFormat.U16_OB])
def test_dc_offset_check(fmt: int) -> None:
    """Zero-mean noise passes; 10 % of full scale off the zero level fails."""
    assert hc.dc_problems(_noise(fmt), fmt, 10) == []
    off = hc.dc_problems(_noise(fmt, offset=51.2), fmt, 10)
    assert off and "DC offset +10.00 %" in off[0]


def test_noise_floor_check() -> None:
    """A dead (constant) ADC and a noise floor near full scale both fail."""
    assert hc.noise_problems(_noise(), 10) == []
    dead = np.full((8, 256), 7, np.int16)
    assert "constant" in hc.noise_problems(dead, 10)[0]
    loud = _noise(rms=150.0)
    assert "dBFS" in hc.noise_problems(loud, 10)[0]


def test_stuck_bits_check() -> None:
    """A bit forced to 0 or 1 in a full-range signal is found; small signals only limit it."""
    rng = np.random.default_rng(3)
    full = np.round(rng.uniform(-512, 511, (32, 512))).astype(np.int16)
    assert hc.stuck_bits(full, SampleFormat.I16, 10) == ([], [])
    low = (full & ~np.int16(1 << 5)).astype(np.int16)
    assert hc.stuck_bits(low, SampleFormat.I16, 10)[0] == [(5, 0)]
    assert "ADC bit 5 is stuck at 0" in hc.stuck_bit_problems(low, SampleFormat.I16, 10)[0]
    ob = (full.astype(np.int32) + 512).astype(np.uint16) | np.uint16(1 << 2)
    assert hc.stuck_bits(ob, SampleFormat.U16_OB, 10)[0] == [(2, 1)]
    small = np.array([[3, 4, 5, 6] * 8], np.int16)
    stuck, unexercised = hc.stuck_bits(small, SampleFormat.I16, 10)
    assert stuck == [] and 9 in unexercised
    msb_dead = np.array([[0, 1, 2, 3, 100, 200, 255] * 4], np.int16)  # never negative
    assert hc.stuck_bits(msb_dead, SampleFormat.I16, 10)[0] == []  # span too small to judge


def test_saturation_and_range_checks() -> None:
    """Clipping above 1 % fails; codes beyond the ADC's width fail."""
    x = _noise()
    assert hc.saturation_problems(x, SampleFormat.I16, 10) == []
    x.flat[: x.size // 20] = 511
    assert "5.00 % of samples saturate" in hc.saturation_problems(x, SampleFormat.I16, 10)[0]
    wide = _noise()
    wide[0, 0] = 600
    assert "outside the 10-bit range" in hc.range_problems(wide, SampleFormat.I16, 10)[0]
    assert hc.range_problems(_noise(), SampleFormat.I16, 10) == []


def test_depth_problems() -> None:
    """A wire off by more than half a resolution cell, or not found, fails."""
    tol = hc.axial_resolution_m(5e6, 2) / 2
    assert tol == pytest.approx(1540 * 2 / (2 * 5e6) / 2)
    assert hc.depth_problems([(0.02, 0.02 + tol / 2)], tol) == []
    far = hc.depth_problems([(0.02, 0.02 + 2 * tol)], tol)
    assert "wire at 20.00 mm appears at" in far[0]
    assert "no echo" in hc.depth_problems([(0.03, None)], tol)[0]


# -- report and simulator profile ---------------------------------------------------------------


def test_report_lists_requirements(tmp_path: Path) -> None:
    """The summary says FAIL, names the failed requirement and its message, and keeps numbers."""
    rep = HilReport()
    rep.set_board(SIM_INFO)
    rep.record("stream_throughput_mb_s", 31.5, "MB/s", "measured")
    rep.record("ping_idle_p99_ms", float("nan"), "ms")
    rep.add_result("a::t1", "HIL-HS-1", "passed", "", 0.1)
    rep.add_result("a::t2", "HIL-STR-3", "passed", "", 0.1)
    rep.add_result("a::t2", "HIL-STR-3", "failed", "12 of 100 lines lost", 0.2)
    rep.add_result("a::t3", "HIL-REC-1", "skipped", "no RESET capability", 0.0)
    md_path, js_path = rep.write(tmp_path)
    data = json.loads(js_path.read_text())
    assert data["result"] == "fail"
    by_id = {r["id"]: r for r in data["requirements"]}
    assert set(by_id) == set(REQUIREMENTS)
    assert by_id["HIL-STR-3"]["outcome"] == "fail"
    assert by_id["HIL-STR-3"]["message"] == "12 of 100 lines lost"
    assert by_id["HIL-HS-1"]["outcome"] == "pass"
    assert by_id["HIL-REC-1"]["outcome"] == "skip"
    assert by_id["HIL-SIM-1"]["outcome"] == "not run"
    assert data["measurements"]["ping_idle_p99_ms"]["value"] is None
    assert data["board"]["capabilities_named"] == ["RESET", "HV_CONTROL", "SIMULATED"]
    md = md_path.read_text()
    assert md.startswith("# sonobridge HIL report: FAIL")
    assert "| HIL-STR-3 | **FAIL** |" in md and "12 of 100 lines lost" in md
    assert "| stream_throughput_mb_s | 31.5 MB/s | measured |" in md


def test_report_shows_the_whole_failure_text(tmp_path: Path) -> None:
    """A multi-line failure is shown whole in the requirement table, not cut after its intro."""
    rep = HilReport()
    message = ("while streaming 35 MB/s for 2.0 s, PRF 5559 Hz:\n"
               "7028 of 11136 lines lost: 7028 dropped by the board itself\n"
               "3 CRC errors | 1 header error")
    rep.add_result("a::t", "HIL-STR-3", "failed", message, 0.1)
    md_path, js_path = rep.write(tmp_path)
    row = next(line for line in md_path.read_text().splitlines()
               if line.startswith("| HIL-STR-3 |"))
    assert row.endswith("| while streaming 35 MB/s for 2.0 s, PRF 5559 Hz:<br>7028 of 11136 "
                        "lines lost: 7028 dropped by the board itself<br>3 CRC errors \\| 1 "
                        "header error |"), row
    data = json.loads(js_path.read_text())
    by_id = {r["id"]: r for r in data["requirements"]}
    assert by_id["HIL-STR-3"]["message"] == message


def test_report_describes_the_testing_host(tmp_path: Path) -> None:
    """Version, Python, CPU count and load are in both summaries (load explains timing faults)."""
    from sonobridge import __version__

    rep = HilReport()
    rep.add_result("a::t", "HIL-HS-1", "passed", "", 0.1)
    md_path, js_path = rep.write(tmp_path)
    host = json.loads(js_path.read_text())["host"]
    assert host["sonobridge"] == __version__
    assert host["python"] == ".".join(map(str, sys.version_info[:3]))
    assert host["cpu_count"] >= 1
    assert len(host["load_average"]) == 3
    md = md_path.read_text()
    assert "## Host" in md and f"| sonobridge | {__version__} |" in md and "| cpu_count |" in md


def test_sim_profile_gets_a_deeper_buffer(tmp_path: Path) -> None:
    """The suite's simulated board keeps every DEVICE_INFO field, only its buffer is deeper."""
    path = sim_profile_file("sim", 250, tmp_path)
    prof = load_profile(path)
    assert prof.info == SIM_INFO
    assert prof.send_buffer_bytes == int(SIM_INFO.rated_throughput_bps * 0.25)
    assert sim_profile_file("sim", 0, tmp_path) == "sim"
    assert check_configure(prof.defaults, prof.info) is None


def test_firmware_host_without_the_repository_says_what_to_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed from a wheel (no hardware/ folder): a clear skip reason, and PATH still works."""
    from sonobridge.hil import board

    monkeypatch.setattr(board, "repository", lambda: None)
    with pytest.raises(board.TargetUnavailable, match="installed without its repository") as exc:
        board.firmware_host_argv("auto")
    assert "--firmware-host PATH" in str(exc.value)
    program = tmp_path / "fw-host"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    assert board.firmware_host_argv(str(program)) == [str(program)]
