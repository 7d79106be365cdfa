"""The HIL suite's options, board fixtures and report plugin.

``pytest hil_tests --port /dev/ttyACM0`` tests a real board; without ``--port`` the suite
starts the simulated board on a pseudo-terminal and tests through it. See docs/hil.md.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from hil_board import (
    HilOptions,
    HilSession,
    PortTarget,
    ProcessTarget,
    SimSettings,
    SimTarget,
    Target,
    TargetUnavailable,
    firmware_host_argv,
)
from hil_report import REQUIREMENTS, HilReport

from sonobridge.device import DeviceError

_REPORT_KEY = pytest.StashKey[HilReport]()
#: the session's config, for the logreport hook (which gets no config of its own)
_CONFIG: list[pytest.Config] = []
SIM_DURATION_S = 2.0
HARDWARE_DURATION_S = 10.0


def pytest_addoption(parser: pytest.Parser) -> None:
    """The HIL options (all under the "sonobridge HIL" group of ``pytest --help``)."""
    g = parser.getgroup("sonobridge HIL", "hardware-in-the-loop suite (hil_tests, docs/hil.md)")
    g.addoption("--port", help="board to test: /dev/ttyACM0, COM3 or a pyserial URL; default: "
                "start the simulated board on a pseudo-terminal")
    g.addoption("--baud", type=int, default=115200, help="baud rate for UART boards (default "
                "115200; USB CDC ignores it)")
    g.addoption("--firmware-host", nargs="?", const="auto", default=None, metavar="PATH",
                help="test the C firmware's host build (default path "
                "hardware/firmware/build/sonobridge-fw-host)")
    g.addoption("--duration", type=float, default=None, metavar="SECONDS",
                help=f"streaming time of the throughput test (default {SIM_DURATION_S:g} s on "
                f"the simulator, {HARDWARE_DURATION_S:g} s on a board)")
    g.addoption("--throughput", type=float, default=None, metavar="BYTES_PER_S",
                help="stream at this rate instead of DEVICE_INFO.rated_throughput_bps")
    g.addoption("--phantom", default="wire", help="simulator phantom (default wire)")
    g.addoption("--sim-faults", default="", metavar="FAULTS",
                help="faults for the simulated board, e.g. bitflip=1e-6,stall=1@2 "
                "(see `sonobridge sim --help`)")
    g.addoption("--sim-link", default="unlimited", metavar="LINK",
                help="simulated link: uart-250k, usb-fs, usb-hs, unlimited (default)")
    g.addoption("--sim-seed", type=int, default=1, help="simulator random seed (default 1)")
    g.addoption("--sim-profile", default="sim", metavar="NAME|FILE",
                help="simulated board profile (default: the builtin sim board)")
    g.addoption("--sim-buffer-ms", type=float, default=250.0, metavar="MS",
                help="simulated board's send buffer, in ms at its rated throughput (default "
                "250; 0 keeps the profile's own)")
    g.addoption("--report", metavar="DIR", help="write junit.xml, summary.md and summary.json "
                "into DIR")
    g.addoption("--req", action="append", default=[], metavar="ID",
                help="run only these requirements (id or prefix, e.g. HIL-STR or HIL-CFG-1; "
                "repeat or separate with commas)")
    g.addoption("--unplug", action="store_true",
                help="a tester will unplug and replug the board for HIL-REC-2")
    g.addoption("--soak", action="store_true", help="also run the soak test (same as -m soak)")
    g.addoption("--soak-minutes", type=float, default=10.0,
                help="soak test duration in minutes (default 10)")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Markers, the report object, and junit.xml into --report DIR."""
    config.addinivalue_line("markers", "requirement(id): the HIL requirement a test checks")
    config.addinivalue_line("markers", "soak: long HIL soak test, run with --soak or -m soak")
    report = HilReport()
    config.stash[_REPORT_KEY] = report
    out = config.getoption("--report", None)
    if out and not getattr(config.option, "xmlpath", None):
        config.option.xmlpath = str(Path(out) / "junit.xml")


def _requirement(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("requirement")
    return str(mark.args[0]) if mark and mark.args else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--req selection, soak skipping, and requirement ids as JUnit properties."""
    wanted = [w.strip() for arg in config.getoption("--req") for w in arg.split(",")
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
    if not config.getoption("--soak") and "soak" not in markexpr:
        skip = pytest.mark.skip(reason="soak test: run with --soak (or -m soak); it streams for "
                                "--soak-minutes minutes")
        for item in items:
            if item.get_closest_marker("soak"):
                item.add_marker(skip)


#: requirements whose tests take about ``--duration`` seconds (one rated-throughput run)
_STREAMED = ("HIL-STR-3", "HIL-STR-4", "HIL-LAT-2")


def _long_timeouts(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give long runs (--duration, --soak-minutes, --unplug) room under pytest-timeout."""
    if not config.pluginmanager.hasplugin("timeout"):
        return
    duration = config.getoption("--duration") or HARDWARE_DURATION_S
    for item in items:
        rid = _requirement(item)
        seconds = None
        if rid in _STREAMED:
            seconds = 3 * duration + 120
        elif rid == "HIL-SOAK-1":
            seconds = 90 * config.getoption("--soak-minutes") + 120
        elif rid == "HIL-REC-2" and config.getoption("--unplug"):
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


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Feed each phase's outcome to the HIL report."""
    rid = dict(report.user_properties).get("requirement")
    if rid is None:
        return
    hil = _CONFIG[0].stash.get(_REPORT_KEY, None) if _CONFIG else None
    if hil is None:
        return
    if report.failed:
        outcome = "failed" if report.when == "call" else "error"
    elif report.skipped:
        outcome = "skipped"
    else:
        outcome = "passed"
    message = _message(report) if outcome != "passed" else ""
    hil.add_result(report.nodeid, str(rid), outcome, message, report.duration)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Remember the config for the logreport hook."""
    _CONFIG[:] = [session.config]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write summary.md and summary.json into --report DIR."""
    out = session.config.getoption("--report", None)
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
    counts = {k: sum(r["outcome"] == k for r in reqs) for k in ("pass", "fail", "skip")}
    tr = terminalreporter
    tr.section("sonobridge HIL requirements")
    tr.line(f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped")
    for r in failed:
        tr.line(f"FAIL {r['id']}: {r['message'].strip().splitlines()[0] if r['message'] else ''}")
    out = config.getoption("--report", None)
    if out:
        tr.line(f"report: {Path(out) / 'summary.md'} (+ summary.json, junit.xml)")


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def hil_options(pytestconfig: pytest.Config) -> HilOptions:
    """Parsed HIL options."""
    c = pytestconfig
    port = c.getoption("--port")
    fw = c.getoption("--firmware-host")
    duration = c.getoption("--duration")
    if duration is None:
        duration = SIM_DURATION_S if port is None else HARDWARE_DURATION_S
    if port and fw:
        raise pytest.UsageError("give either --port or --firmware-host, not both")
    return HilOptions(
        port=port, baud=c.getoption("--baud"), firmware_host=fw, duration_s=float(duration),
        throughput_bps=c.getoption("--throughput"),
        sim=SimSettings(phantom=c.getoption("--phantom"), link=c.getoption("--sim-link"),
                        faults=c.getoption("--sim-faults"), seed=c.getoption("--sim-seed"),
                        profile=c.getoption("--sim-profile"),
                        buffer_ms=c.getoption("--sim-buffer-ms")),
        unplug=c.getoption("--unplug"), soak_minutes=c.getoption("--soak-minutes"),
    )


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
            argv = firmware_host_argv(o.firmware_host)
        except TargetUnavailable as exc:
            hil_report.target = {"kind": "firmware-host", "unavailable": str(exc)}
            pytest.skip(str(exc))
        target = ProcessTarget(argv)
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
        session = HilSession.open(hil_target, baudrate=hil_options.baud)
    except DeviceError as exc:
        pytest.fail(f"cannot test the board on {hil_target.port}: {exc}", pytrace=False)
    hil_report.set_board(session.info)
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
