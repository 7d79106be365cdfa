"""The sonobridge command as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sonobridge.cli import main
from sonobridge.protocol import Ping, encode

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_and_reports_recovery(capsys):
    import re

    assert main(["demo", "--protocol", "--frames", "10"]) == 0
    out = capsys.readouterr().out
    assert "demo OK" in out
    damaged = int(re.search(r"damaged (\d+) frames", out).group(1))
    lost = int(re.search(r"(\d+) frames lost by sequence gaps", out).group(1))
    assert damaged > 0 and lost == damaged  # the seeded faults hit, and every one is counted


def test_decode_counts_messages_and_damage(tmp_path, capsys):
    capture = tmp_path / "dump.bin"
    capture.write_bytes(b"noise" + encode(Ping(token=1), 0) + encode(Ping(token=2), 3) + b"\xa5")
    assert main(["decode", str(capture)]) == 0
    out = capsys.readouterr().out
    assert "PING         2" in out
    assert "2 lost (seq gaps)" in out
    assert "5 B discarded" in out


def test_decode_hex_vector(capsys):
    assert main(["decode", "--hex", "-v", str(ROOT / "tests/vectors/09_ack.hex")]) == 0
    assert "Ack(request_seq=2" in capsys.readouterr().out


def test_decode_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main(["decode", str(tmp_path / "nope.bin")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_console_script_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "sonobridge", "--version"],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.startswith("sonobridge ")
