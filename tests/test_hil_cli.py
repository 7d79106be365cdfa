"""``sonobridge hil`` and the packaged HIL suite, run as an installed user would run them."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sonobridge import __version__
from sonobridge.cli import build_parser, hil_pytest_args, main, parse_args

#: plugins the HIL suite does not use; loading them costs seconds per run
QUIET_PLUGINS = ("-p", "no:hypothesispytest", "-p", "no:pytestqt")


def test_hil_command_passes_on_the_simulator_outside_the_repository(tmp_path: Path) -> None:
    """From a directory with no checkout: the packaged suite passes and writes its report."""
    report = tmp_path / "report"
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "sonobridge", "hil", "--report", str(report), "--req", "HIL-HS",
         "--", *QUIET_PLUGINS],
        cwd=cwd, capture_output=True, text=True, timeout=110)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "sonobridge HIL requirements" in output
    assert {p.name for p in report.iterdir()} >= {"junit.xml", "summary.md", "summary.json"}
    summary = json.loads((report / "summary.json").read_text())
    assert summary["result"] == "pass"
    assert summary["target"]["kind"] == "simulator"
    ran = {r["id"]: r["outcome"] for r in summary["requirements"] if r["outcome"] != "not run"}
    assert ran == {"HIL-HS-1": "pass", "HIL-HS-2": "pass"}
    host = summary["host"]
    assert host["sonobridge"] == __version__
    assert host["cpu_count"] >= 1 and len(host["load_average"]) == 3
    assert host["python"] == ".".join(map(str, sys.version_info[:3]))
    cases = ET.parse(report / "junit.xml").getroot().iter("testcase")
    assert {c.get("classname", "").rsplit(".", 1)[-1] for c in cases} == {"test_hil_handshake"}
    assert f"| sonobridge | {__version__} |" in (report / "summary.md").read_text()
    assert not (cwd / ".pytest_cache").exists()


def test_hil_options_map_to_the_plugin_options() -> None:
    """PORT, --report, --req (several) and --duration become the --sonobridge-* options."""
    args = parse_args(build_parser(), [
        "hil", "/dev/ttyACM0", "--report", "out", "--req", "HIL-STR", "HIL-CFG-1",
         "--duration", "60", "--", "-x"])
    argv = hil_pytest_args(args)
    assert argv[:2] == ["--pyargs", "sonobridge.hil"]
    joined = " ".join(argv)
    assert "--sonobridge-port /dev/ttyACM0" in joined
    assert "--sonobridge-report out" in joined
    assert "--sonobridge-req HIL-STR --sonobridge-req HIL-CFG-1" in joined
    assert "--sonobridge-duration 60.0" in joined
    assert argv[-1] == "-x"
    sim = hil_pytest_args(parse_args(build_parser(), ["hil"]))
    assert not any(a.startswith("--sonobridge-port") for a in sim)
    # no --baud: the board's own default, decided when the port opens; auto: detected
    assert "--sonobridge-baud" not in argv and "--sonobridge-dialect" not in argv


def test_hil_board_options_map_to_the_plugin_options() -> None:
    """--dialect and --baud reach the suite's options, and the suite's parser accepts them."""
    args = parse_args(build_parser(), ["hil", "/dev/ttyUSB0", "--dialect", "open-echo-v2",
                                       "--baud", "250000"])
    argv = hil_pytest_args(args)
    joined = " ".join(argv)
    assert "--sonobridge-dialect open-echo-v2" in joined
    assert "--sonobridge-baud 250000" in joined
    from sonobridge.hil.suite import dialect_option

    assert dialect_option("open-echo-v2") == "open-echo-v2"
    assert dialect_option(None) == "auto"
    with pytest.raises(pytest.UsageError, match="unknown dialect"):
        dialect_option("no-such-board")


def test_hil_without_pytest_says_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Without pytest the command fails with the install line instead of a traceback."""
    monkeypatch.setitem(sys.modules, "pytest", None)  # makes `import pytest` raise ImportError
    assert main(["hil"]) == 2
    assert "pip install 'sonobridge[hil]'" in capsys.readouterr().err


def test_plugin_only_adds_options_to_other_runs(tmp_path: Path) -> None:
    """In a pytest run that is not the HIL suite, the entry-point plugin changes nothing."""
    (tmp_path / "test_other.py").write_text("def test_ok():\n    assert True\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *QUIET_PLUGINS,
         "test_other.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "sonobridge HIL" not in proc.stdout
    helped = subprocess.run([sys.executable, "-m", "pytest", "--help", *QUIET_PLUGINS],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "--sonobridge-port" in helped.stdout
    assert "  --port" not in helped.stdout  # the short names exist only in hil_tests
