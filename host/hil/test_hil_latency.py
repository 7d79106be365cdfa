"""HIL-LAT-1: PING round trip while the board is idle."""

from __future__ import annotations

import pytest

from sonobridge.device import CommandTimeout
from sonobridge.hil.board import HilSession, fail_on
from sonobridge.hil.checks import REPLY_LIMIT_S, latency_problems, percentiles_ms
from sonobridge.hil.report import HilReport

N_PINGS = 200
N_LARGE = 50
LARGE = bytes(range(256)) * 3 + bytes(252)  # 1020 bytes, the PING maximum


@pytest.mark.requirement("HIL-LAT-1")
def test_ping_latency_idle(hil: HilSession, hil_report: HilReport) -> None:
    """p50 and p99 of PING round trips (empty and 1020-byte data); p99 below 100 ms."""
    p: list[str] = []
    for label, data, n in (("", b"", N_PINGS), ("_1020b", LARGE, N_LARGE)):
        rtts, lost = [], 0
        for _ in range(n):
            try:
                rtts.append(hil.dev.ping(data))
            except CommandTimeout:
                lost += 1
        stats = percentiles_ms(rtts)
        what = f"PING round trip, idle, {len(data)} data bytes ({stats['n']} pings)"
        hil_report.record(f"ping_idle{label}_p50_ms", stats["p50_ms"], "ms", what)
        hil_report.record(f"ping_idle{label}_p99_ms", stats["p99_ms"], "ms")
        p += latency_problems(stats, REPLY_LIMIT_S * 1e3, f"while idle ({len(data)} data bytes)")
        if lost:
            p.append(f"{lost} of {n} PINGs with {len(data)} data bytes got no PONG at all")
    fail_on(p)
