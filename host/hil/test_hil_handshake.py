"""HIL-HS: the handshake and what the board announces about itself."""

from __future__ import annotations

import pytest

from sonobridge.hil.board import HilSession
from sonobridge.hil.checks import info_problems
from sonobridge.hil.report import HilReport
from sonobridge.protocol import PROTOCOL_VERSION, DeviceInfo, GetInfo


@pytest.mark.requirement("HIL-HS-1")
def test_handshake_protocol_version(hil: HilSession, hil_report: HilReport) -> None:
    """The client's handshake got DEVICE_INFO, and the board speaks protocol v1."""
    info = hil.info
    hil_report.record("board", f"{info.board_name or '(no name)'} fw {info.firmware_version}",
                      what="DEVICE_INFO board name and firmware version")
    hil_report.record("board_dialect", hil.dev.dialect.name,
                      what="the wire format the board was found to speak")
    nominal = hil.dev.dialect.nominal_fields()
    if nominal:
        hil_report.note(f"the board announces nothing itself: DEVICE_INFO is the nominal one "
                        f"of {hil.dev.dialect.name}; assumed fields: {', '.join(nominal)}")
    assert info.protocol_version == PROTOCOL_VERSION, (
        f"board announces protocol version {info.protocol_version} in DEVICE_INFO; this suite "
        f"tests protocol v{PROTOCOL_VERSION}")
    reply = hil.command(GetInfo())
    assert isinstance(reply, DeviceInfo), (
        f"board answered GET_INFO with {type(reply).__name__}; expected DEVICE_INFO")


@pytest.mark.requirement("HIL-HS-2")
def test_device_info_consistent(hil: HilSession) -> None:
    """Every DEVICE_INFO range is ordered and within the protocol's bounds."""
    problems = info_problems(hil.info)
    assert not problems, "; ".join(problems)
