"""Self-test of the HIL suite's targets: missing firmware build, a board program, another board."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
QUIET_PLUGINS = ("-p", "no:hypothesispytest", "-p", "no:pytestqt")

#: a board unlike the builtin simulator: 12-bit, linear sweep, no RESET, no HV control, USB FS
OTHER_BOARD = """\
[board]
name = "selftest-linear"
board_id = 0x00000042
firmware = "0.3.1"
send_buffer_bytes = 65536
temperature_c = 28.0

[capabilities]
adc_bits = 12
sample_formats = ["I16", "PACKED12"]
sweep_kind = "LINEAR"
capabilities = ["SIMULATED"]
adc_rate_hz = 20_000_000
max_decimation = 4
tgc_points_max = 8
ensemble_max = 1
pulse_cycles_max = 4
min_samples_per_line = 128
max_samples_per_line = 8192
max_start_delay_samples = 4096
max_lines_per_frame = 128
gain_min_cdb = 0
gain_max_cdb = 3000
sweep_min = -19000
sweep_max = 19000
prf_min_hz = 100
prf_max_hz = 8000
pulse_freq_min_hz = 2_000_000
pulse_freq_max_hz = 7_000_000
hv_min_mv = 20_000
hv_max_mv = 60_000
transducer_freq_hz = 3_500_000
rated_throughput_bps = 1_000_000

[defaults]
sample_format = "I16"
decimation = 1
ensemble_size = 1
pulse_cycles = 2
samples_per_line = 1024
start_delay_samples = 0
prf_hz = 1000
lines_per_frame = 64
sweep_start = -19000
sweep_end = 19000
pulse_freq_hz = 3_500_000
hv_mv = 20_000
tgc_db = [0.0, 10.0]
"""


def run_suite(tmp_path: Path, *args: str) -> tuple[int, dict, str]:
    """Run the HIL suite; return (exit code, summary.json, output)."""
    report = tmp_path / "report"
    cmd = [sys.executable, "-m", "pytest", "hil_tests", "-q", "-rs", "-p", "no:cacheprovider",
           *QUIET_PLUGINS, "--report", str(report), *args]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=110)
    output = proc.stdout + proc.stderr
    summary = report / "summary.json"
    assert summary.is_file(), f"no summary.json from {' '.join(cmd)}:\n{output[-3000:]}"
    return proc.returncode, json.loads(summary.read_text()), output


def outcomes(summary: dict) -> dict[str, str]:
    """Requirement id → outcome, for the requirements that ran."""
    return {r["id"]: r["outcome"] for r in summary["requirements"] if r["outcome"] != "not run"}


def test_missing_firmware_host_build_skips_with_reason(tmp_path: Path) -> None:
    """--firmware-host without a build: every test skips, saying how to build it."""
    missing = tmp_path / "sonobridge-fw-host"
    code, summary, output = run_suite(tmp_path, "--firmware-host", str(missing),
                                      "--req", "HIL-HS", "--req", "HIL-CMD-1")
    assert code == 0, output[-3000:]
    assert set(outcomes(summary).values()) == {"skip"}
    reason = summary["requirements"][0]["message"]
    assert "firmware host build not found" in reason
    assert "make -C hardware/firmware host" in reason
    assert "make -C hardware/firmware host" in output


def test_board_program_is_started_and_tested(tmp_path: Path) -> None:
    """--firmware-host PATH runs the program, reads its pty from the first line, tests it."""
    program = tmp_path / "fake-fw-host"
    program.write_text(f"#!{sys.executable}\n"
                       "import os, sys\n"
                       "os.execv(sys.executable, [sys.executable, '-m', 'sonobridge', 'sim', "
                       "'--pty'])\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    code, summary, output = run_suite(tmp_path, "--firmware-host", str(program),
                                      "--req", "HIL-HS", "--req", "HIL-CMD-1",
                                      "--req", "HIL-LAT-1")
    assert code == 0, output[-3000:]
    assert summary["target"]["kind"] == "firmware-host"
    assert summary["target"]["command"].split(" --buffer ")[0] == str(program)
    assert outcomes(summary) == {"HIL-HS-1": "pass", "HIL-HS-2": "pass", "HIL-CMD-1": "pass",
                                 "HIL-LAT-1": "pass"}


def test_another_board_passes_with_its_own_limits(tmp_path: Path) -> None:
    """A board with other limits and capabilities is tested against its own DEVICE_INFO."""
    profile = tmp_path / "other-board.toml"
    profile.write_text(OTHER_BOARD)
    code, summary, output = run_suite(
        tmp_path, "--sim-profile", str(profile), "--req", "HIL-HS", "--req", "HIL-CFG",
        "--req", "HIL-CMD-7", "--req", "HIL-REC-1", "--req", "HIL-STR-3",
        "--req", "HIL-DATA-5", "--duration", "1")
    got = outcomes(summary)
    assert code == 0, f"{got}\n{output[-3000:]}"
    assert summary["board"]["board_name"] == "selftest-linear"
    # not applicable (the board cannot reset), which is neither a pass nor a skip
    assert got.pop("HIL-REC-1") == "n/a"
    assert set(got.values()) == {"pass"}, got
    rec = next(r for r in summary["requirements"] if r["id"] == "HIL-REC-1")
    assert "no RESET capability" in rec["message"]
    assert summary["applicability"]["reset"] is False
    assert summary["applicability"]["dialect"] == "sonobridge-v1"
    m = summary["measurements"]
    assert m["stream_target_mb_s"]["value"] == 1.0
    assert m["sample_formats_streamed"]["value"] == ["I16", "PACKED12"]
