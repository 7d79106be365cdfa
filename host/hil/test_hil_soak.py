"""HIL-SOAK: long streaming (``--soak``, ``--soak-minutes``)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from sonobridge.device import CommandTimeout
from sonobridge.hil.board import HilOptions, HilSession, fail_on, must
from sonobridge.hil.checks import StreamCounts, stream_problems
from sonobridge.hil.configs import rated_config, target_throughput
from sonobridge.hil.report import HilReport

RSS_GROWTH_LIMIT_MB = 50.0


def rss_mb() -> float:
    """This process's resident memory in MB (Linux /proc; 0 where unavailable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@pytest.mark.soak
@pytest.mark.requirement("HIL-SOAK-1")
def test_soak(hil: HilSession, hil_options: HilOptions, hil_report: HilReport) -> None:
    """Stream for --soak-minutes at the rated throughput: nothing lost, memory flat."""
    info = hil.info
    target, source = target_throughput(info, hil_options.throughput_bps)
    cfg = must("the soak CONFIGURE", hil.configure, rated_config(info, hil.default, target))
    seconds = hil_options.soak_minutes * 60
    s0, st0 = hil.dev.stats, hil.dev.status()
    must("START", hil.dev.start)
    t0 = time.monotonic()
    rss_start = rss_after_warmup = rss_mb()
    rss_peak, pings_missed, tick = rss_start, 0, threading.Event()
    while time.monotonic() - t0 < seconds:
        tick.wait(1.0)
        try:
            hil.dev.ping()
        except CommandTimeout:
            pings_missed += 1
        rss = rss_mb()
        rss_peak = max(rss_peak, rss)
        if time.monotonic() - t0 < max(5.0, seconds / 10):
            rss_after_warmup = rss
    must("STOP", hil.dev.stop)
    st1 = hil.drain(timeout_s=10.0)
    hil.dev.flush()
    s1 = hil.dev.stats
    sent = (st1.lines_sent - st0.lines_sent) & 0xFFFFFFFF
    counts = StreamCounts(
        expected_lines=sent, received_lines=s1.lines_received - s0.lines_received,
        lines_lost_link=s1.lines_lost_link - s0.lines_lost_link,
        device_dropped=(st1.dropped_lines - st0.dropped_lines) & 0xFFFFFFFF,
        crc_errors=s1.crc_errors - s0.crc_errors, header_errors=s1.header_errors -
        s0.header_errors, seq_gaps=s1.seq_gaps - s0.seq_gaps,
        seq_resets=s1.seq_resets - s0.seq_resets,
        bytes_discarded=s1.bytes_discarded - s0.bytes_discarded,
        disconnects=s1.disconnects - s0.disconnects)
    growth = rss_peak - rss_after_warmup
    hil_report.record("soak_minutes", hil_options.soak_minutes, "min", f"at {target / 1e6:.3g} "
                      f"MB/s ({source})")
    hil_report.record("soak_config", f"{cfg.samples_per_line} samples × {cfg.lines_per_frame} "
                      f"lines, PRF {cfg.prf_hz} Hz")
    hil_report.record("soak_lines_sent", sent)
    hil_report.record("soak_rss_growth_mb", growth, "MB", "peak RSS minus RSS after warm-up")
    p = stream_problems(counts)
    if growth > RSS_GROWTH_LIMIT_MB:
        p.append(f"host memory grew {growth:.0f} MB during the soak (limit "
                 f"{RSS_GROWTH_LIMIT_MB:g} MB): a leak in the client or the suite")
    if pings_missed:
        p.append(f"{pings_missed} PINGs unanswered during the soak")
    fail_on(p)
