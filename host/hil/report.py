"""Requirements, measurements and the human-readable HIL report (Markdown + JSON).

Tests mark themselves with ``@pytest.mark.requirement("HIL-STR-3")``; the hooks in
``sonobridge.hil.suite`` feed every test outcome to :class:`HilReport`, tests record
measurements with ``hil_report.record(...)``, and ``pytest_sessionfinish`` writes
``summary.md`` and ``summary.json`` next to pytest's ``junit.xml`` in ``--report DIR``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sonobridge import __version__
from sonobridge.protocol import Capability, DeviceInfo, SampleFormat, SweepKind


@dataclass(frozen=True)
class Requirement:
    """One thing the board must do, with a stable id testers quote in bug reports."""

    id: str
    title: str


REQUIREMENTS: dict[str, Requirement] = {r.id: r for r in (
    Requirement("HIL-HS-1", "Handshake: GET_INFO answered with DEVICE_INFO, protocol version 1"),
    Requirement("HIL-HS-2", "DEVICE_INFO is self-consistent (ranges ordered, within protocol "
                            "bounds, a valid configuration exists)"),
    Requirement("HIL-CMD-1", "GET_INFO: repeated requests give the same DEVICE_INFO, reply names "
                             "the request"),
    Requirement("HIL-CMD-2", "CONFIGURE: a valid configuration is ACKed and bumps config_id"),
    Requirement("HIL-CMD-3", "START n_frames: exactly N complete frames with FRAME_END, then idle "
                             "by itself"),
    Requirement("HIL-CMD-4", "START continuous streams until STOP; STOP is ACKed and acquisition "
                             "stops"),
    Requirement("HIL-CMD-5", "GET_STATUS: STATUS names the request, state, advancing clock, "
                             "buffer fill within 0..1000 ‰"),
    Requirement("HIL-CMD-6", "PING: PONG echoes token and data (0..1020 bytes), device clock "
                             "advances"),
    Requirement("HIL-CMD-7", "RESET: ACK then reboot (unsolicited DEVICE_INFO, seq restarts at 0) "
                             "with the RESET capability; NAK UNSUPPORTED without it"),
    Requirement("HIL-CMD-8", "RETRY flag: a repeated command (same seq) gets the earlier reply and "
                             "is not executed twice"),
    Requirement("HIL-CFG-1", "CONFIGURE boundaries of every field: min/max ACK, max+1/min-1 NAK "
                             "OUT_OF_RANGE with the field id"),
    Requirement("HIL-CFG-2", "CONFIGURE combination rules: NAK INVALID_COMBINATION with the "
                             "documented field id"),
    Requirement("HIL-CFG-3", "Every board: a configuration outside DEVICE_INFO raises ConfigError "
                             "naming the field and sends nothing; the default one is accepted"),
    Requirement("HIL-FRM-1", "Bad payload length: NAK BAD_LENGTH"),
    Requirement("HIL-FRM-2", "Unknown or device-to-host message type: NAK UNKNOWN_TYPE"),
    Requirement("HIL-FRM-3", "Must-understand flag: NAK UNSUPPORTED_FLAG; unknown advisory flags "
                             "ignored"),
    Requirement("HIL-FRM-4", "Unsupported protocol version: NAK UNSUPPORTED_VERSION"),
    Requirement("HIL-FRM-5", "Damaged frames and junk bytes are ignored; the next command is "
                             "answered"),
    Requirement("HIL-STR-1", "Start, stop, restart (frame_index restarts at 0); STOP while idle "
                             "is ACKed"),
    Requirement("HIL-STR-2", "START while streaming: NAK BUSY; CONFIGURE while streaming: NAK "
                             "BUSY; the stream continues"),
    Requirement("HIL-STR-3", "Streaming at the rated throughput for --duration: zero lost lines, "
                             "zero CRC errors, sequence continuity"),
    Requirement("HIL-STR-4", "Line timing: device timestamps monotonic, line period matches 1/PRF "
                             "(p50/p99 jitter)"),
    Requirement("HIL-LAT-1", "PING round trip while idle: p99 below 100 ms"),
    Requirement("HIL-LAT-2", "PING round trip while streaming at the rated throughput: p99 below "
                             "100 ms"),
    Requirement("HIL-REC-1", "Recovery after RESET: the client re-handshakes, re-configures and "
                             "streaming resumes"),
    Requirement("HIL-REC-2", "Recovery after a disconnect: the client reconnects and streaming "
                             "resumes"),
    Requirement("HIL-DATA-1", "DC offset within ±5 % of full scale"),
    Requirement("HIL-DATA-2", "Noise floor below -20 dBFS and not zero (the ADC is alive)"),
    Requirement("HIL-DATA-3", "No stuck ADC bits"),
    Requirement("HIL-DATA-4", "Saturation below 1 % of samples"),
    Requirement("HIL-DATA-5", "Every announced sample format streams, samples within the ADC "
                              "range"),
    Requirement("HIL-SIM-1", "Simulator only: wire targets at their true depth (within half an "
                             "axial resolution cell)"),
    Requirement("HIL-SOAK-1", "Soak (--soak): long streaming without lost lines or memory "
                              "growth"),
)}

#: a test's outcome when its requirement does not apply to the board (``applicability.py``)
NOT_APPLICABLE = "not applicable"
#: worse outcomes win when a test's phases are merged: a failing teardown still fails
_RANK = {"passed": 0, NOT_APPLICABLE: 1, "skipped": 1, "failed": 2, "error": 3}
#: measurement names are listed in the summary in this order of prefixes
_MEASUREMENT_ORDER = ("board", "stream_", "ping_", "reset_", "disconnect_", "dc_", "noise_",
                      "adc_", "saturation_", "sample_", "wire_", "configure_", "soak_")


def _measurement_rank(key: str) -> int:
    return next((i for i, p in enumerate(_MEASUREMENT_ORDER) if key.startswith(p)),
                len(_MEASUREMENT_ORDER))


@dataclass
class TestResult:
    """The outcome of one test across its setup, call and teardown."""

    nodeid: str
    requirement: str | None
    outcome: str = "passed"
    message: str = ""
    duration_s: float = 0.0

    def merge(self, outcome: str, message: str, duration_s: float) -> None:
        """Keep the worst outcome and its message."""
        self.duration_s += duration_s
        if _RANK[outcome] > _RANK[self.outcome]:
            self.outcome = outcome
            self.message = message


@dataclass
class Measurement:
    """A recorded number (or text) with its unit and what it means."""

    value: Any
    unit: str = ""
    what: str = ""


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and inf become None, numpy scalars plain numbers."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def host_facts() -> dict[str, Any]:
    """The testing computer: software versions and how busy it was (load shows in timing)."""
    try:
        load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # Windows has no load average
        load = None
    return {"sonobridge": __version__, "python": sys.version.split()[0],
            "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "load_average": load}


def board_facts(info: DeviceInfo) -> dict[str, Any]:
    """DEVICE_INFO as plain data, with bitmasks and enums spelled out."""
    d = dataclasses.asdict(info)
    d.pop("request_seq", None)
    d.pop("seq", None)
    d.pop("flags", None)
    d["firmware_version"] = info.firmware_version
    d["board_id"] = f"0x{info.board_id:08X}"
    d["sample_formats_named"] = [f.name for f in SampleFormat if info.supports_format(f)]
    d["capabilities_named"] = [c.name for c in Capability if info.capabilities & c]
    try:
        d["sweep_kind_named"] = SweepKind(info.sweep_kind).name
    except ValueError:
        d["sweep_kind_named"] = f"unknown ({info.sweep_kind})"
    return d


@dataclass
class HilReport:
    """Everything the summary holds; filled during the session, written at its end."""

    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    target: dict[str, Any] = field(default_factory=dict)
    board: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    measurements: dict[str, Measurement] = field(default_factory=dict)
    tests: dict[str, TestResult] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    selected: set[str] | None = None
    #: what decided the applicability of the requirements (``BoardFacts.as_dict``)
    facts: dict[str, Any] = field(default_factory=dict)

    def record(self, key: str, value: Any, unit: str = "", what: str = "") -> None:
        """Record a measurement for the summary: ``record("throughput", 31.4, "MB/s")``."""
        self.measurements[key] = Measurement(value, unit, what)

    def note(self, text: str) -> None:
        """A sentence for the summary's notes."""
        if text not in self.notes:
            self.notes.append(text)

    def set_board(self, info: DeviceInfo, dialect: str | None = None,
                  nominal: dict[str, str] | None = None) -> None:
        """Remember the board's DEVICE_INFO, its dialect and which fields it only assumed."""
        self.board = board_facts(info)
        if dialect is not None:
            self.board["dialect"] = dialect
        if nominal:
            self.board["nominal_fields"] = dict(nominal)

    def add_result(self, nodeid: str, requirement: str | None, outcome: str, message: str,
                   duration_s: float) -> None:
        """One phase's outcome of one test."""
        res = self.tests.get(nodeid)
        if res is None:
            res = self.tests[nodeid] = TestResult(nodeid, requirement)
            res.outcome, res.message, res.duration_s = outcome, message, duration_s
        else:
            res.merge(outcome, message, duration_s)

    # -- aggregation -----------------------------------------------------------------------------

    def requirement_results(self) -> list[dict[str, Any]]:
        """Per requirement: outcome (pass/fail/skip/n/a/not run), its tests and the first failure.

        A requirement is n/a only when every one of its tests was found not applicable; one
        failed test makes it fail whatever the others did.
        """
        out = []
        ids = list(REQUIREMENTS) + sorted({t.requirement for t in self.tests.values()
                                           if t.requirement and t.requirement not in REQUIREMENTS})
        for rid in ids:
            tests = [t for t in self.tests.values() if t.requirement == rid]
            req = REQUIREMENTS.get(rid, Requirement(rid, ""))
            if not tests:
                outcome, message = "not run", ""
            elif any(t.outcome in ("failed", "error") for t in tests):
                bad = next(t for t in tests if t.outcome in ("failed", "error"))
                outcome, message = "fail", bad.message
            elif all(t.outcome == NOT_APPLICABLE for t in tests):
                outcome, message = "n/a", tests[0].message
            elif all(t.outcome in ("skipped", NOT_APPLICABLE) for t in tests):
                outcome, message = "skip", next(t.message for t in tests
                                                if t.outcome == "skipped")
            else:
                outcome, message = "pass", ""
            out.append({"id": rid, "title": req.title, "outcome": outcome, "message": message,
                        "tests": [dataclasses.asdict(t) for t in tests]})
        return out

    @property
    def failed(self) -> bool:
        """True if any test failed or errored."""
        return any(t.outcome in ("failed", "error") for t in self.tests.values())

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON-ready data."""
        reqs = self.requirement_results()
        counts: dict[str, int] = {}
        for r in reqs:
            counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
        return _clean({
            "report": "sonobridge-hil",
            "version": 1,
            "result": "fail" if self.failed else "pass",
            "started": self.started.isoformat(timespec="seconds"),
            "duration_s": round((dt.datetime.now(dt.timezone.utc) - self.started)
                                .total_seconds(), 2),
            "target": self.target,
            "settings": self.settings,
            "host": host_facts(),
            "board": self.board,
            "applicability": self.facts,
            "measurements": {k: dataclasses.asdict(self.measurements[k]) for k in sorted(
                self.measurements, key=_measurement_rank)},
            "requirement_counts": counts,
            "requirements": reqs,
            "tests": [dataclasses.asdict(t) for t in self.tests.values()],
            "notes": self.notes,
        })

    def to_markdown(self) -> str:
        """The summary for people: verdict, board, measurements, requirements, failures."""
        data = self.to_json()
        reqs = data["requirements"]
        n_fail = sum(r["outcome"] == "fail" for r in reqs)
        n_pass = sum(r["outcome"] == "pass" for r in reqs)
        n_skip = sum(r["outcome"] == "skip" for r in reqs)
        n_na = sum(r["outcome"] == "n/a" for r in reqs)
        verdict = "FAIL" if data["result"] == "fail" else "PASS"
        lines = [f"# sonobridge HIL report: {verdict}", ""]
        lines.append(f"{n_pass} requirements passed, {n_fail} failed, {n_skip} skipped, "
                     f"{n_na} not applicable to this board, "
                     f"{sum(r['outcome'] == 'not run' for r in reqs)} not run "
                     f"({data['started']}, {data['duration_s']:.1f} s).")
        lines.append("")
        target = data["target"]
        if target:
            lines += ["## Target", "", "| | |", "|---|---|"]
            lines += [f"| {k} | {_md(v)} |" for k, v in target.items()]
            lines.append("")
        if data["settings"]:
            lines += ["## Settings", "", "| | |", "|---|---|"]
            lines += [f"| {k} | {_md(v)} |" for k, v in data["settings"].items()]
            lines.append("")
        lines += ["## Host", "", "| | |", "|---|---|"]
        lines += [f"| {k} | {_md(v)} |" for k, v in data["host"].items()]
        lines.append("")
        board = data["board"]
        if board:
            lines += ["## Board (DEVICE_INFO)", "", "| Field | Value |", "|---|---|"]
            keys = ["board_name", "dialect", "board_id", "firmware_version", "protocol_version",
                    "capabilities_named", "sample_formats_named", "sweep_kind_named"]
            keys += [k for k in board if k not in keys and k not in (
                "fw_major", "fw_minor", "fw_patch", "capabilities", "sample_formats",
                "sweep_kind", "nominal_fields")]
            nominal = board.get("nominal_fields", {})
            lines += [f"| {k.removesuffix('_named')} | {_md(board[k])}"
                      f"{' (nominal: ' + _md(nominal[k]) + ')' if k in nominal else ''} |"
                      for k in keys if k in board]
            lines.append("")
        if data["measurements"]:
            lines += ["## Measurements", "", "| Measurement | Value | Meaning |", "|---|---|---|"]
            for key, m in data["measurements"].items():
                value = _fmt(m["value"])
                lines.append(f"| {key} | {value}{' ' + m['unit'] if m['unit'] else ''} | "
                             f"{_md(m['what'])} |")
            lines.append("")
        lines += ["## Requirements", "", "| Requirement | Result | What it checks | Details |",
                  "|---|---|---|---|"]
        marks = {"pass": "pass", "fail": "**FAIL**", "skip": "skip",
                 "n/a": "n/a (not applicable)", "not run": "not run"}
        for r in reqs:
            lines.append(f"| {r['id']} | {marks[r['outcome']]} | {_md(r['title'])} | "
                         f"{_cell(r['message'])} |")
        lines.append("")
        failures = [(r, t) for r in reqs for t in r["tests"] if t["outcome"] in ("failed",
                                                                                 "error")]
        if failures:
            lines += ["## Failures", ""]
            for r, t in failures:
                lines += [f"### {r['id']}: `{t['nodeid']}`", "", "```",
                          t["message"].strip() or "(no message)", "```", ""]
        if data["notes"]:
            lines += ["## Notes", ""] + [f"- {n}" for n in data["notes"]] + [""]
        lines += ["How to read this: every requirement is explained in docs/hil.md. Attach this "
                  "file and summary.json to the bug report.", ""]
        return "\n".join(lines)

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write ``summary.md`` and ``summary.json`` into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        md = directory / "summary.md"
        js = directory / "summary.json"
        md.write_text(self.to_markdown(), encoding="utf-8")
        js.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n",
                      encoding="utf-8")
        return md, js


def _cell(text: str) -> str:
    """A whole message in one table cell: its lines joined by ``<br>`` (a cell has no newlines).

    The first line alone is often only an introduction ending in ":", the problems follow it.
    """
    return "<br>".join(_md(line) for line in text.strip().splitlines())


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.0f}"
    if value is None:
        return "n/a"
    return _md(value)


def _md(value: Any) -> str:
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value) or "none"
    return str(value).replace("|", "\\|").replace("\n", " ")
