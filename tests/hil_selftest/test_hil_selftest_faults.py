"""Self-test of the HIL suite: against a simulated board with a fault it must fail, and say why.

Each case runs ``python -m pytest hil_tests --sim-faults FAULT`` in a subprocess, restricted
with ``--req`` to the requirements the fault concerns (so each run takes a few seconds), and
reads the JSON summary it writes. A control run without faults must pass the same
requirements, so the failures come from the faults and not from the suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: plugins the HIL suite does not use; loading them costs seconds per run
QUIET_PLUGINS = ("-p", "no:hypothesispytest", "-p", "no:pytestqt")


def run_suite(tmp_path: Path, *args: str) -> tuple[int, dict, str]:
    """Run the HIL suite against the simulator; return (exit code, summary.json, output)."""
    report = tmp_path / "report"
    cmd = [sys.executable, "-m", "pytest", "hil_tests", "-q", "-p", "no:cacheprovider",
           *QUIET_PLUGINS, "--report", str(report), *args]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=110)
    output = proc.stdout + proc.stderr
    summary = report / "summary.json"
    assert summary.is_file(), f"no summary.json from {' '.join(cmd)}:\n{output[-3000:]}"
    return proc.returncode, json.loads(summary.read_text()), output


def outcomes(summary: dict) -> dict[str, str]:
    """Requirement id → pass/fail/skip for the requirements that ran."""
    return {r["id"]: r["outcome"] for r in summary["requirements"] if r["outcome"] != "not run"}


def messages(summary: dict, rid: str) -> str:
    """Every failure message of one requirement."""
    req = next(r for r in summary["requirements"] if r["id"] == rid)
    return "\n".join(t["message"] for t in req["tests"])


#: a modest rate keeps these runs independent of how busy the machine is; the suite itself
#: streams at the rated 35 MB/s in `make test`
STREAM = ("--req", "HIL-STR-3", "--req", "HIL-LAT-2", "--duration", "1", "--throughput", "5e6")
#: a damaged PONG costs the client a 0.5 s retry, so PING latency may fail along with the stream
LATENCY = frozenset({"HIL-LAT-2"})
CASES = [
    pytest.param("bitflip=1e-5", STREAM, {"HIL-STR-3": ["CRC errors", "lost on the link"]},
                 LATENCY, id="bitflip"),
    pytest.param("drop=1e-5", STREAM, {"HIL-STR-3": ["lines lost", "lost on the link"]},
                 LATENCY, id="drop"),
    # a 20 ms buffer (at the rated 35 MB/s: 700 kB) cannot hold a 1 s stall at 5 MB/s
    pytest.param("stall=1@0.3", (*STREAM, "--sim-buffer-ms", "20"), {
        "HIL-STR-3": ["dropped by the board itself", "send buffer overflowed"],
        "HIL-LAT-2": ["PING round trip while streaming"],
    }, frozenset(), id="stall"),
    pytest.param("wrong-nak", ("--req", "HIL-CFG-1", "--req", "HIL-FRM", "--req", "HIL-STR-2"), {
        "HIL-CFG-1": ["expected NAK OUT_OF_RANGE"],
        "HIL-FRM-1": ["expected NAK BAD_LENGTH"],
        "HIL-FRM-2": ["expected NAK UNKNOWN_TYPE"],
        "HIL-FRM-3": ["expected NAK UNSUPPORTED_FLAG"],
        "HIL-FRM-4": ["expected NAK UNSUPPORTED_VERSION"],
        "HIL-STR-2": ["expected NAK BUSY"],
    }, frozenset(), id="wrong-nak"),
]


@pytest.mark.parametrize(("faults", "select", "expected", "may_fail"), CASES)
def test_suite_fails_on_fault(tmp_path: Path, faults: str, select: tuple[str, ...],
                              expected: dict[str, list[str]], may_fail: frozenset[str]) -> None:
    """The suite exits non-zero, fails the expected requirements, and names the cause."""
    code, summary, output = run_suite(tmp_path, "--sim-faults", faults, *select)
    assert code != 0, f"the HIL suite passed against a board with {faults}:\n{output[-3000:]}"
    assert summary["result"] == "fail"
    assert summary["target"]["faults"] == faults
    got = outcomes(summary)
    failed = {rid for rid, outcome in got.items() if outcome == "fail"}
    assert set(expected) <= failed <= set(expected) | may_fail, \
        f"with {faults}: {got}\n{output[-3000:]}"
    for rid, words in expected.items():
        text = messages(summary, rid)
        for word in words:
            assert word in text, f"{rid} failure with {faults} does not say {word!r}:\n{text}"


def test_same_requirements_pass_without_faults(tmp_path: Path) -> None:
    """Control: the requirements the fault runs fail all pass on a healthy simulated board."""
    code, summary, output = run_suite(
        tmp_path, *STREAM, "--req", "HIL-STR", "--req", "HIL-CFG-1", "--req", "HIL-FRM")
    got = outcomes(summary)
    assert code == 0 and set(got.values()) == {"pass"}, f"{got}\n{output[-3000:]}"
    m = summary["measurements"]
    assert m["stream_received_lines"]["value"] == m["stream_expected_lines"]["value"] > 0


def test_multi_line_failure_is_shown_whole(tmp_path: Path) -> None:
    """Every line of a multi-line failure reaches summary.json, summary.md and the terminal."""
    code, summary, output = run_suite(tmp_path, "--sim-faults", "wrong-nak", "--req", "HIL-FRM-1")
    assert code != 0, output[-3000:]
    text = messages(summary, "HIL-FRM-1")
    lines = [line.strip() for line in text.strip().splitlines()]
    assert len(lines) > 1, f"expected a failure of several lines:\n{text}"
    row = next(line for line in (tmp_path / "report" / "summary.md").read_text().splitlines()
               if line.startswith("| HIL-FRM-1 |"))
    terminal = output[output.index("sonobridge HIL requirements"):]
    for line in lines:
        assert line in row, f"summary.md's table lacks {line!r}:\n{row}"
        assert line in terminal, f"the terminal summary lacks {line!r}:\n{terminal}"
