"""HIL-CFG: CONFIGURE validation at every boundary DEVICE_INFO announces.

The expected answer to each CONFIGURE is computed by the documented rules
(``sonobridge.protocol.rules.check_configure``) from the board's own DEVICE_INFO, so nothing here
knows which board it talks to. HIL-CFG-1 and -2 send the CONFIGUREs as raw v1 frames,
bypassing the client's own validation; HIL-CFG-3 sends the impossible ones through the client,
which must refuse them before anything reaches the board (every board, whatever its dialect).
"""

from __future__ import annotations

import pytest

from sonobridge.device import AcquisitionConfig, ConfigError
from sonobridge.hil.board import HilSession, fail_on, must
from sonobridge.hil.checks import (
    CONFIGURE_FIELDS,
    FIELD_NAMES,
    ConfigCase,
    boundary_cases,
    combination_cases,
    reply_problem,
)
from sonobridge.hil.configs import quick_config
from sonobridge.hil.report import HilReport
from sonobridge.protocol import MsgType

REPLY_TIMEOUT_S = 0.5


def _run(hil: HilSession, cases: list[ConfigCase], hil_report: HilReport) -> list[str]:
    problems = []
    for case in cases:
        r = hil.send_frame(MsgType.CONFIGURE, case.wire_payload(), timeout_s=REPLY_TIMEOUT_S)
        problem = reply_problem(case.describe(), r.reply, case.expected, MsgType.CONFIGURE)
        if problem:
            problems.append(problem)
    done = hil_report.measurements.get("configure_cases_sent")
    hil_report.record("configure_cases_sent", (done.value if done else 0) + len(cases),
                      what="CONFIGURE boundary and combination cases sent")
    return problems


@pytest.mark.requirement("HIL-CFG-1")
@pytest.mark.parametrize("field", CONFIGURE_FIELDS)
def test_configure_boundaries(hil: HilSession, hil_report: HilReport, field: str) -> None:
    """min and max are ACKed; max+1 and min-1 are NAKed OUT_OF_RANGE naming the field."""
    cases = boundary_cases(field, hil.info)
    if not cases:
        pytest.skip(f"{field}: DEVICE_INFO leaves no boundary the wire type can carry")
    fail_on(_run(hil, cases, hil_report))


@pytest.mark.requirement("HIL-CFG-2")
def test_configure_combinations(hil: HilSession, hil_report: HilReport) -> None:
    """Fields in range, impossible together: NAK INVALID_COMBINATION naming the field."""
    cases = combination_cases(hil.info)
    if not cases:
        pytest.skip("DEVICE_INFO allows no impossible combination (every window fits every "
                    "PRF, no PACKED12, every line fits a frame)")
    fail_on(_run(hil, cases, hil_report))


#: the client names every TGC problem after its one TGC field (``AcquisitionConfig.tgc_db``)
_CLIENT_FIELD = {"tgc_count": "tgc_db", "tgc_cdb": "tgc_db"}


@pytest.mark.requirement("HIL-CFG-3")
def test_impossible_configurations_refused(hil: HilSession, hil_report: HilReport) -> None:
    """Every CONFIGURE the board's rules refuse raises ConfigError, sends nothing; default ACKed."""
    info = hil.info
    counters = hil.dev.link.counters
    p: list[str] = []
    refused = 0
    for name in CONFIGURE_FIELDS:
        for case in boundary_cases(name, info):
            if case.expected.is_ack or case.payload is not None:
                continue  # only the impossible
            cfg = AcquisitionConfig.from_message(case.message)
            if cfg.to_message() != case.message:
                continue  # wire-only (points past tgc_count): a configuration cannot say it
            field_name = FIELD_NAMES.get(case.expected.field_id, "")
            want = _CLIENT_FIELD.get(field_name, field_name)
            sent = counters.bytes_out
            try:
                hil.configure(cfg)
            except ConfigError as exc:
                refused += 1
                if want and exc.field != want:
                    p.append(f"{case.describe()}: ConfigError names {exc.field!r}; expected "
                             f"{want!r} ({exc})")
            else:
                p.append(f"{case.describe()} was accepted; DEVICE_INFO says "
                         f"{case.expected.describe()}: expected ConfigError")
            if counters.bytes_out != sent:
                p.append(f"{case.describe()}: {counters.bytes_out - sent} bytes went to the board "
                         "for a configuration it cannot do")
    hil_report.record("configure_refused_on_host", refused,
                      what="impossible configurations refused with ConfigError (HIL-CFG-3)")
    default = quick_config(info, hil.default)
    must(f"the board's default configuration ({default})", hil.configure, default)
    fail_on(p)
