"""``sonobridge hil PORT`` against the twins of other boards on a real pty, dialect detected.

Each run is the installed command a tester types (no ``--dialect``), against a pic0rick or
Open Echo twin serving its board's own wire format on a pseudo-terminal in this process. The
suite must find the board, run every requirement the board can be held to, and report the
others as not applicable, with the reason, apart from passes, failures and skips. A run with
a damaged link shows that an applicable requirement still fails on such a board.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ..device.device_fixtures import twin_on_pty

#: plugins the HIL suite does not use; loading them costs seconds per run
QUIET_PLUGINS = ("-p", "no:hypothesispytest", "-p", "no:pytestqt")

#: what every board without STATUS, PING, RESET and v1 frames is not held to
NOT_V1 = {"HIL-CMD-1", "HIL-CMD-2", "HIL-CMD-5", "HIL-CMD-6", "HIL-CMD-7", "HIL-CMD-8",
          "HIL-CFG-1", "HIL-CFG-2", "HIL-FRM-1", "HIL-FRM-2", "HIL-FRM-3", "HIL-FRM-4",
          "HIL-FRM-5", "HIL-STR-2", "HIL-STR-4", "HIL-LAT-1", "HIL-LAT-2", "HIL-REC-1",
          "HIL-SIM-1"}
#: what runs for real on every board
EVERY_BOARD = {"HIL-HS-1", "HIL-HS-2", "HIL-CMD-3", "HIL-CMD-4", "HIL-CFG-3", "HIL-STR-1",
               "HIL-STR-3", "HIL-DATA-3", "HIL-DATA-5"}
#: RF checks: the pic0rick sends RF, the Open Echo an envelope
RF = {"HIL-DATA-1", "HIL-DATA-2", "HIL-DATA-4"}
#: skipped, not inapplicable: the disconnect needs a tester's hands, the soak --soak
SKIPPED = {"HIL-REC-2", "HIL-SOAK-1"}

BOARDS = [
    pytest.param("pic0rick", "pic0rick-shell", EVERY_BOARD | RF, NOT_V1, id="pic0rick"),
    pytest.param("open-echo", "open-echo", EVERY_BOARD, NOT_V1 | RF, id="open-echo"),
]


def run_hil(port: str, report: Path, *args: str) -> tuple[int, dict | None, str]:
    """``sonobridge hil PORT --report DIR ARGS``; (exit code, summary.json or None, output)."""
    proc = subprocess.run(
        [sys.executable, "-m", "sonobridge", "hil", port, "--report", str(report), *args,
         "--", *QUIET_PLUGINS],
        capture_output=True, text=True, timeout=110)
    summary = report / "summary.json"
    data = json.loads(summary.read_text()) if summary.is_file() else None
    return proc.returncode, data, proc.stdout + proc.stderr


def by_outcome(summary: dict) -> dict[str, set[str]]:
    """Outcome → the requirement ids with it."""
    out: dict[str, set[str]] = {}
    for r in summary["requirements"]:
        out.setdefault(r["outcome"], set()).add(r["id"])
    return out


@pytest.mark.parametrize(("board", "dialect", "applies", "not_applicable"), BOARDS)
def test_hil_passes_against_a_twin_with_its_dialect_detected(
        tmp_path: Path, board: str, dialect: str, applies: set[str],
        not_applicable: set[str]) -> None:
    """Detected, the applicable requirements pass, the rest are n/a with a reason."""
    report = tmp_path / "report"
    with twin_on_pty(board) as (engine, port):
        code, summary, output = run_hil(port, report, "--duration", "2")
        with engine.lock:
            firings = len(engine.board.truth)
    assert summary is not None, output[-3000:]
    groups = by_outcome(summary)
    assert code == 0, f"{groups}\n{output[-3000:]}"
    assert summary["result"] == "pass"
    assert summary["board"]["dialect"] == dialect
    assert summary["applicability"]["dialect"] == dialect
    assert summary["board"]["nominal_fields"], "the nominal DEVICE_INFO fields are not shown"
    assert groups["pass"] == applies
    assert groups["n/a"] == not_applicable
    assert groups["skip"] == SKIPPED
    assert "fail" not in groups
    reasons = {r["id"]: r["message"] for r in summary["requirements"] if r["outcome"] == "n/a"}
    assert all(reasons.values()), reasons
    assert "no STATUS command" in reasons["HIL-CMD-5"]
    assert "not sonobridge protocol v1 frames" in reasons["HIL-FRM-1"]
    # the streaming run really streamed, and the twin really fired at least that often
    m = summary["measurements"]
    expected = m["stream_expected_lines"]["value"]
    assert expected >= 2 and m["stream_received_lines"]["value"] == expected
    assert firings >= expected
    # the console: its own N/A lines and pytest's own count, apart from the skips
    assert "N/A  HIL-CMD-5: it checks STATUS" in output
    assert f"{len(not_applicable)} not applicable to this board" in output
    assert "not applicable in" in output.splitlines()[-1]
    skipped = [line for line in output.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == len(SKIPPED), skipped  # -rs lists the real skips only
    assert not any("not applicable" in line for line in skipped)
    # summary.md marks them apart, junit.xml carries the reason as a property
    md = (report / "summary.md").read_text()
    assert "| HIL-CMD-5 | n/a (not applicable) |" in md
    assert f"| dialect | {dialect} |" in md
    props = {}
    for case in ET.parse(report / "junit.xml").getroot().iter("testcase"):
        p = {e.get("name"): e.get("value") for e in case.iter("property")}
        props.setdefault(p["requirement"], set()).add(p.get("not_applicable"))
    assert all(None not in props[rid] for rid in not_applicable)
    assert all(props[rid] == {None} for rid in applies)


def test_an_applicable_requirement_still_fails_on_a_twin(tmp_path: Path) -> None:
    """A link that loses bytes fails HIL-STR-3 on a pic0rick: not applicable hides nothing."""
    report = tmp_path / "report"
    # each ~32 KB hex dump survives 5e-5 per byte about 20 % of the time: the run's 10
    # firings all intact would take odds of 1e-7
    with twin_on_pty("pic0rick", faults="drop=5e-5") as (_, port):
        code, summary, output = run_hil(port, report, "--duration", "1",
                                        "--req", "HIL-HS-1", "HIL-STR-3", "HIL-CMD-5")
    assert summary is not None, output[-3000:]
    groups = by_outcome(summary)
    assert code == 1, f"{groups}\n{output[-3000:]}"
    assert groups["fail"] == {"HIL-STR-3"}
    assert groups["n/a"] == {"HIL-CMD-5"}
    assert groups["pass"] == {"HIL-HS-1"}
    msg = next(r["message"] for r in summary["requirements"] if r["id"] == "HIL-STR-3")
    assert "lines lost" in msg and " on the link" in msg, msg
    assert "FAIL HIL-STR-3" in output


def test_forced_dialect_reaches_the_client(tmp_path: Path) -> None:
    """``--dialect`` is what opens the port: a pic0rick forced to open-echo is not found."""
    with twin_on_pty("pic0rick") as (_, port):
        code, summary, output = run_hil(port, tmp_path / "report", "--dialect", "open-echo",
                                        "--req", "HIL-HS-1")
    assert code == 1, output[-3000:]
    assert "no Open Echo frames" in output
    assert summary is not None and by_outcome(summary)["fail"] == {"HIL-HS-1"}
