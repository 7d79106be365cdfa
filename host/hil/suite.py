"""The HIL suite's hooks and fixtures: requirement selection, the report, the board.

They are active only where the suite's ``conftest.py`` imports them (``sonobridge/hil`` in the
package, ``hil_tests`` in the repository), never merely because sonobridge is installed; the
options they read are registered by :mod:`sonobridge.hil.plugin`. See docs/hil.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sonobridge.device import DeviceError
from sonobridge.hil.applicability import RULES, BoardFacts, not_applicable
from sonobridge.hil.board import (
    HilOptions,
    HilSession,
    PortTarget,
    ProcessTarget,
    SimSettings,
    SimTarget,
    Target,
    TargetUnavailable,
    firmware_host_argv,
    rp2040_emu_argv,
)
from sonobridge.hil.plugin import EMU_DURATION_S, HARDWARE_DURATION_S, SIM_DURATION_S
from sonobridge.hil.report import NOT_APPLICABLE, REQUIREMENTS, HilReport

#: what a conftest.py takes with ``from sonobridge.hil.suite import *`` (hooks and fixtures,
#: the autouse one included although its name is private)
__all__ = [
    "_applicability",
    "_idle_between_tests",
    "hil",
    "hil_facts",
    "hil_options",
    "hil_report",
    "hil_target",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_report_teststatus",
    "pytest_runtest_logreport",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
]

_REPORT_KEY = pytest.StashKey[HilReport]()
#: the user property :func:`_applicability` sets on a test whose requirement does not apply
NOT_APPLICABLE_PROPERTY = "not_applicable"
#: the session's config, for the logreport hook (which gets no config of its own)
_CONFIG: list[pytest.Config] = []


def pytest_configure(config: pytest.Config) -> None:
    """Markers and the report object (also when this conftest is loaded mid-collection)."""
    config.addinivalue_line("markers", "requirement(id): the HIL requirement a test checks")
    config.addinivalue_line("markers", "soak: long HIL soak test, run with --soak or -m soak")
    config.stash[_REPORT_KEY] = HilReport()
    # not in pytest_sessionstart: with --pyargs sonobridge.hil this conftest is registered
    # during collection, after the session started (pytest_configure is replayed, that is not)
    _CONFIG[:] = [config]


def _requirement(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("requirement")
    return str(mark.args[0]) if mark and mark.args else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--req selection, soak skipping, and requirement ids as JUnit properties."""
    wanted = [w.strip() for arg in config.getoption("sonobridge_req") for w in arg.split(",")
              if w.strip()]
    for w in wanted:
        if not any(_selects(w, rid) for rid in REQUIREMENTS):
            raise pytest.UsageError(f"--req {w}: no such requirement; known: "
                                    f"{', '.join(REQUIREMENTS)}")
    if wanted:
        config.stash[_REPORT_KEY].note(f"only requirements {', '.join(wanted)} were selected "
                                       "(--req)")
    keep, drop = [], []
    for item in items:
        rid = _requirement(item)
        if rid is None:
            keep.append(item)
            continue
        if rid not in REQUIREMENTS:
            raise pytest.UsageError(f"{item.nodeid}: unknown requirement {rid}")
        if wanted and not any(_selects(w, rid) for w in wanted):
            drop.append(item)
            continue
        item.user_properties.append(("requirement", rid))
        keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = _in_requirement_order(keep)
    _long_timeouts(config, items)
    markexpr = config.getoption("markexpr", "") or ""
    if not config.getoption("sonobridge_soak") and "soak" not in markexpr:
        skip = pytest.mark.skip(reason="soak test: run with --sonobridge-soak (--soak in "
                                "hil_tests) or -m soak; it streams for --soak-minutes minutes")
        for item in items:
            if item.get_closest_marker("soak"):
                item.add_marker(skip)


#: requirements whose tests take about ``--duration`` seconds (one rated-throughput run)
_STREAMED = ("HIL-STR-3", "HIL-STR-4", "HIL-LAT-2")


def _long_timeouts(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give long runs (--duration, --soak-minutes, --unplug) room under pytest-timeout."""
    if not config.pluginmanager.hasplugin("timeout"):
        return
    duration = config.getoption("sonobridge_duration") or HARDWARE_DURATION_S
    for item in items:
        rid = _requirement(item)
        seconds = None
        if rid in _STREAMED:
            seconds = 3 * duration + 120
        elif rid == "HIL-SOAK-1":
            seconds = 90 * config.getoption("sonobridge_soak_minutes") + 120
        elif rid == "HIL-REC-2" and config.getoption("sonobridge_unplug"):
            seconds = 240
        if seconds is not None:
            item.add_marker(pytest.mark.timeout(seconds))


def _selects(wanted: str, rid: str) -> bool:
    """``HIL-STR`` selects HIL-STR-1..4; ``HIL-STR-3`` only itself."""
    return rid == wanted or rid.startswith(wanted.rstrip("-") + "-")


def _in_requirement_order(items: list[pytest.Item]) -> list[pytest.Item]:
    """HIL modules ordered by their first requirement (HIL-HS first); modules stay whole.

    Only the slots HIL tests occupy are reordered, so other tests in the session keep theirs.
    """
    order = {rid: i for i, rid in enumerate(REQUIREMENTS)}
    first: dict[pytest.Module | None, int] = {}
    for item in items:
        if (rid := _requirement(item)) is not None:
            mod = item.getparent(pytest.Module)
            first[mod] = min(first.get(mod, len(order)), order.get(rid, len(order)))
    ranked = iter(sorted((i for i in items if i.getparent(pytest.Module) in first),
                         key=lambda i: first[i.getparent(pytest.Module)]))
    return [next(ranked) if i.getparent(pytest.Module) in first else i for i in items]


def _message(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        text = str(crash.message)
        for prefix in ("Failed: ", "AssertionError: "):
            text = text.removeprefix(prefix)
        return text
    return report.longreprtext[-2000:] if report.longrepr else ""


def _not_applicable(report: pytest.TestReport) -> str | None:
    """The reason :func:`_applicability` gave, if it found the test's requirement inapplicable.

    Told by the property it set, not by the skip text, so no skip inside a test can pass as
    "not applicable".
    """
    return dict(report.user_properties).get(NOT_APPLICABLE_PROPERTY)


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config
                             ) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    """Not applicable is its own category on the console (``N/A``, counted apart from skips)."""
    if report.skipped and _not_applicable(report) is not None:
        return NOT_APPLICABLE, "n", ("N/A", {"cyan": True})
    return None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Feed each phase's outcome to the HIL report."""
    rid = dict(report.user_properties).get("requirement")
    if rid is None:
        return
    hil = _CONFIG[0].stash.get(_REPORT_KEY, None) if _CONFIG else None
    if hil is None:
        return
    why = _not_applicable(report)
    if report.failed:
        outcome = "failed" if report.when == "call" else "error"
    elif report.skipped:
        outcome = NOT_APPLICABLE if why is not None else "skipped"
    else:
        outcome = "passed"
    message = why if outcome == NOT_APPLICABLE else _message(report) if outcome != "passed" \
        else ""
    hil.add_result(report.nodeid, str(rid), outcome, message, report.duration)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write summary.md and summary.json into --report DIR."""
    out = session.config.getoption("sonobridge_report", None)
    report = session.config.stash.get(_REPORT_KEY, None)
    if out and report is not None and report.tests:
        report.write(Path(out))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    """One line per failed requirement, plus where the report went."""
    report = config.stash.get(_REPORT_KEY, None)
    if report is None or not report.tests:
        return
    reqs = report.requirement_results()
    failed = [r for r in reqs if r["outcome"] == "fail"]
    counts = {k: sum(r["outcome"] == k for r in reqs) for k in ("pass", "fail", "skip", "n/a")}
    tr = terminalreporter
    tr.section("sonobridge HIL requirements")
    if report.board.get("dialect"):
        tr.line(f"board: {report.board.get('board_name') or '(no name)'}, dialect "
                f"{report.board['dialect']}")
    tr.line(f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped, "
            f"{counts['n/a']} not applicable to this board")
    for r in failed:
        # the whole message: its first line often only introduces the problems below it
        first, *rest = r["message"].strip().splitlines() or [""]
        tr.line(f"FAIL {r['id']}: {first}")
        for line in rest:
            tr.line(f"    {line}")
    for r in reqs:
        if r["outcome"] == "n/a":
            tr.line(f"N/A  {r['id']}: {r['message']}")
    out = config.getoption("sonobridge_report", None)
    if out:
        tr.line(f"report: {Path(out) / 'summary.md'} (+ summary.json, junit.xml)")


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def hil_options(pytestconfig: pytest.Config) -> HilOptions:
    """Parsed HIL options."""
    def opt(name: str) -> Any:
        return pytestconfig.getoption("sonobridge_" + name)

    port, fw, emu, duration = (opt("port"), opt("firmware_host"), opt("rp2040_emu"),
                               opt("duration"))
    if duration is None:
        duration = (EMU_DURATION_S if emu else HARDWARE_DURATION_S if port
                    else SIM_DURATION_S)
    if sum(bool(v) for v in (port, fw, emu)) > 1:
        raise pytest.UsageError("give one of a port, --sonobridge-firmware-host and "
                                "--sonobridge-rp2040-emu (--port / --firmware-host / "
                                "--rp2040-emu in hil_tests)")
    return HilOptions(
        port=port, baud=opt("baud"), firmware_host=fw, duration_s=float(duration),
        throughput_bps=opt("throughput"),
        sim=SimSettings(phantom=opt("phantom"), link=opt("sim_link"), faults=opt("sim_faults"),
                        seed=opt("sim_seed"), profile=opt("sim_profile"),
                        buffer_ms=opt("sim_buffer_ms")),
        unplug=opt("unplug"), soak_minutes=opt("soak_minutes"),
        dialect=dialect_option(opt("dialect")), rp2040_emu=emu,
    )


def dialect_option(name: str | None) -> str:
    """``--sonobridge-dialect``, checked against the names ``open_device`` knows."""
    from sonobridge.device.dialect import AUTO, dialect_names

    if name in (None, "", AUTO):
        return AUTO
    if name not in dialect_names():
        raise pytest.UsageError(f"--sonobridge-dialect {name}: unknown dialect; choose one of "
                                f"{', '.join(dialect_names())}")
    return name


@pytest.fixture(scope="session")
def hil_report(pytestconfig: pytest.Config) -> HilReport:
    """The session's report: ``hil_report.record(name, value, unit, what)``."""
    return pytestconfig.stash[_REPORT_KEY]


@pytest.fixture(scope="session")
def hil_target(hil_options: HilOptions, hil_report: HilReport,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The board under test: the given port, the firmware host build, or the simulator."""
    o = hil_options
    target: Target
    if o.port:
        target = PortTarget(o.port)
    elif o.firmware_host:
        try:
            argv = firmware_host_argv(o.firmware_host, o.sim.buffer_ms)
        except TargetUnavailable as exc:
            hil_report.target = {"kind": "firmware-host", "unavailable": str(exc)}
            pytest.skip(str(exc))
        target = ProcessTarget(argv)
    elif o.rp2040_emu:
        try:
            argv = rp2040_emu_argv(o.rp2040_emu)
        except TargetUnavailable as exc:
            hil_report.target = {"kind": "rp2040-emu", "unavailable": str(exc)}
            pytest.skip(str(exc))
        target = ProcessTarget(argv, kind=f"rp2040-emu ({o.rp2040_emu})")
    else:
        target = SimTarget(o.sim, tmp_path_factory.mktemp("hil-sim"))
    hil_report.target = target.describe()
    hil_report.settings = {"duration_s": o.duration_s,
                           "throughput_bps": o.throughput_bps or "DEVICE_INFO rating"}
    try:
        yield target
    finally:
        target.close()


@pytest.fixture(scope="session")
def hil(hil_target: Target, hil_options: HilOptions, hil_report: HilReport
        ) -> Iterator[HilSession]:
    """The opened, handshaken board (one connection for the whole session)."""
    try:
        session = HilSession.open(hil_target, baudrate=hil_options.baud,
                                  dialect=hil_options.dialect)
    except DeviceError as exc:
        pytest.fail(f"cannot test the board on {hil_target.port}: {exc}", pytrace=False)
    hil_report.set_board(session.info, session.dev.dialect.name,
                         session.dev.dialect.nominal_fields())
    try:
        yield session
    finally:
        session.close()
        if isinstance(hil_target, ProcessTarget) and (why := hil_target.died()):
            hil_report.note(why)


@pytest.fixture(autouse=True)
def _idle_between_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    """Leave the board idle after every HIL test, whatever the test did."""
    yield
    if "hil" in request.fixturenames:
        hil: HilSession = request.getfixturevalue("hil")
        problem = hil.ensure_idle()
        if problem:
            request.getfixturevalue("hil_report").note(
                f"after {request.node.nodeid}: could not return the board to idle: {problem}")


@pytest.fixture(scope="session")
def hil_facts(hil: HilSession, hil_options: HilOptions, hil_report: HilReport) -> BoardFacts:
    """What the board is, as far as applicability goes (``sonobridge.hil.applicability``)."""
    facts = BoardFacts.of(hil.dev, simulated=hil_options.simulated,
                          emulated=hil_options.rp2040_emu is not None)
    hil_report.facts = facts.as_dict()
    return facts


@pytest.fixture(autouse=True)
def _applicability(request: pytest.FixtureRequest) -> None:
    """Mark a test whose requirement does not apply to this board, and do not run it.

    Only requirements the table names need the board for this; the others never open it here.
    """
    rid = _requirement(request.node)
    if rid is None or rid not in RULES:
        return
    facts: BoardFacts = request.getfixturevalue("hil_facts")
    why = not_applicable(rid, facts)
    if why is not None:
        request.node.user_properties.append((NOT_APPLICABLE_PROPERTY, why))
        pytest.skip(f"not applicable: {why}")
