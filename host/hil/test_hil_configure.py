"""HIL-CFG: CONFIGURE validation at every boundary DEVICE_INFO announces.

The expected answer to each CONFIGURE is computed by the documented rules
(``sonobridge.protocol.rules.check_configure``) from the board's own DEVICE_INFO, so nothing here
knows which board it talks to. The CONFIGUREs are sent as raw frames, bypassing the client's
own validation.
"""

from __future__ import annotations

import pytest

from sonobridge.hil.board import HilSession, fail_on
from sonobridge.hil.checks import (
    CONFIGURE_FIELDS,
    ConfigCase,
    boundary_cases,
    combination_cases,
    reply_problem,
)
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
