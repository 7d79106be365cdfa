"""HIL-STR and HIL-LAT-2: start/stop behaviour, and streaming at the board's rated throughput."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pytest

from sonobridge.device import AcquisitionConfig, CommandTimeout
from sonobridge.hil.applicability import BoardFacts
from sonobridge.hil.board import HilOptions, HilSession, fail_on, must
from sonobridge.hil.checks import (
    REPLY_LIMIT_S,
    Expected,
    JitterStats,
    StreamCounts,
    firing_numbers,
    frames_timeout_s,
    jitter_stats,
    latency_problems,
    line_bytes,
    lines_array,
    order_problems,
    percentiles_ms,
    reply_problem,
    stream_problems,
    timing_problems,
)
from sonobridge.hil.configs import quick_config, rated_config, target_throughput
from sonobridge.hil.report import HilReport
from sonobridge.protocol import DeviceState, ErrorCode, MsgType, SampleFormat, Start, Stop


@pytest.mark.requirement("HIL-STR-1")
def test_start_stop_restart(hil: HilSession, hil_facts: BoardFacts) -> None:
    """Stream, stop, stream again (frame_index restarts at 0); STOP while idle is ACKed.

    A board without v1 frames has its sweeps numbered by the host's dialect, which keeps
    counting across STARTs: there, each run must be in order, not begin at frame 0.
    """
    cfg = must("a valid CONFIGURE", hil.configure, quick_config(hil.info, hil.default))
    per = cfg.lines_per_frame * cfg.ensemble_size
    p: list[str] = []
    for run in ("first START", "restart"):
        snap = hil.snapshot()
        with hil.lines.capture() as raw, hil.frames.capture() as cap:
            must(f"START ({run})", hil.dev.start)
            if not cap.wait(lambda c: c.complete >= 2, frames_timeout_s(2, per, cfg.prf_hz)):
                p.append(f"{run}: only {cap.complete} complete frames arrived in time")
            must(f"STOP ({run})", hil.dev.stop)
            hil.drain()
        lines = lines_array(raw)
        # (no line at all is order_problems' to say)
        if lines.size and hil_facts.v1_frames and (
                int(lines["frame_index"][0]), int(lines["line_index"][0]),
                int(lines["ensemble_index"][0])) != (0, 0, 0):
            p.append(f"{run}: the first line was frame {lines['frame_index'][0]} line "
                     f"{lines['line_index'][0]}; every START must begin at frame 0 line 0")
        p += [f"{run}: {x}{hil.trouble_since(snap)}" for x in order_problems(lines)]
    # on the wire where the board has frames; else through the client (the dialect's STOP)
    reply = hil.send_frame(MsgType.STOP, b"", timeout_s=0.5).reply if hil_facts.v1_frames \
        else hil.command(Stop())
    if problem := reply_problem("STOP while idle", reply, Expected(), MsgType.STOP):
        p.append(problem)
    fail_on(p)


@pytest.mark.requirement("HIL-STR-2")
def test_busy_while_streaming(hil: HilSession) -> None:
    """START and CONFIGURE while streaming: NAK BUSY, and the stream carries on."""
    cfg = must("a valid CONFIGURE", hil.configure, quick_config(hil.info, hil.default))
    per = cfg.lines_per_frame * cfg.ensemble_size
    p: list[str] = []
    with hil.frames.capture() as cap:
        must("START", hil.dev.start)
        if not cap.wait(lambda c: c.total >= 1, frames_timeout_s(1, per, cfg.prf_hz)):
            pytest.fail(f"no frame arrived within {frames_timeout_s(1, per, cfg.prf_hz):.1f} s "
                        "of START")
        busy = Expected(ErrorCode.BUSY)
        for what, msg in (("START while streaming", Start()),
                          ("CONFIGURE while streaming", cfg.to_message())):
            if problem := reply_problem(what, hil.command(msg), busy, msg.MSG_TYPE,
                                        check_field=False):
                p.append(problem)
        seen = cap.total
        if not cap.wait(lambda c: c.total >= seen + 2, frames_timeout_s(2, per, cfg.prf_hz)):
            p.append("the stream stopped after the board answered BUSY")
        st = hil.dev.status()
        if st.state != DeviceState.STREAMING:
            p.append(f"STATUS.state {st.state} after the BUSY replies; expected 1 (streaming)")
        must("STOP", hil.dev.stop)
    fail_on(p)


# -- the rated-throughput run -------------------------------------------------------------------


#: the rated run streams at least this many frames (fewer lines per frame on a slow board)
RATED_MIN_FRAMES = 8


@dataclass
class RatedRun:
    """One finite stream at the rated throughput and everything measured during it."""

    cfg: AcquisitionConfig
    target_bps: float
    source: str
    n_frames: int
    counts: StreamCounts
    lines: np.ndarray
    jitter: JitterStats
    elapsed_s: float
    bytes_in: int
    pings_s: list[float] = field(default_factory=list)
    ping_timeouts: int = 0
    order: list[str] = field(default_factory=list)

    @property
    def throughput_bps(self) -> float:
        """Bytes per second between the first and the last line."""
        return self.bytes_in / self.elapsed_s if self.elapsed_s > 0 else math.nan


@pytest.fixture(scope="module")
def rated_run(hil: HilSession, hil_options: HilOptions, hil_report: HilReport,
              hil_facts: BoardFacts) -> RatedRun:
    """Stream ``--duration`` seconds at the rated throughput (START n_frames), pinging along.

    A board without STATUS is judged by what arrived alone; one without PING is not pinged.
    """
    info = hil.info
    own_rate = bool(hil.dev.dialect.nominal_fields())
    target, source = target_throughput(info, hil_options.throughput_bps,
                                       hil.default if own_rate else None)
    cfg = rated_config(info, hil.default, target)
    # a slow board (a few firings a second) with long sweeps: keep at least RATED_MIN_FRAMES
    # frames in the run, so it lasts about --duration rather than a few whole sweeps
    fit = int(hil_options.duration_s * cfg.prf_hz / (RATED_MIN_FRAMES * cfg.ensemble_size))
    cfg = replace(cfg, lines_per_frame=max(1, min(cfg.lines_per_frame, fit)))
    cfg = must("the rated-throughput CONFIGURE", hil.configure, cfg)
    per = cfg.lines_per_frame * cfg.ensemble_size
    # warm-up: one short run so the front end has settled before we measure
    with hil.frames.capture() as cap:
        must("START n_frames=1 (warm-up)", hil.dev.start, n_frames=1)
        cap.wait(lambda c: c.total >= 1, frames_timeout_s(1, per, cfg.prf_hz))
        hil.drain()
    n_frames = max(2, math.ceil(hil_options.duration_s * cfg.prf_hz / per))
    expected = n_frames * per
    s0, st0 = hil.snapshot()
    pings: list[float] = []
    timeouts = 0
    tick = threading.Event()
    with hil.lines.capture() as raw, hil.frames.capture() as cap:
        must(f"START n_frames={n_frames}", hil.dev.start, n_frames=n_frames)
        deadline = time.monotonic() + frames_timeout_s(n_frames, per, cfg.prf_hz)
        polls = 0
        while not cap.wait(lambda c: c.total >= n_frames, 0) and time.monotonic() < deadline:
            if hil_facts.ping:
                try:
                    pings.append(hil.dev.ping())
                except CommandTimeout:
                    timeouts += 1
            polls += 1
            if hil_facts.status and polls % 10 == 0:
                # a board that lost frames goes idle without them arriving
                st = hil.dev.status()
                if st.state != DeviceState.STREAMING and st.buffer_fill_permille == 0:
                    break
            tick.wait(0.02)
        st1 = hil.drain(timeout_s=10.0)
        hil.dev.flush()
    s1 = hil.dev.stats
    lines = lines_array(raw)
    if not hil_facts.v1_frames and lines.size:
        # the host's dialect numbers sweeps on across STARTs (the board has no frame counter
        # to reset): count this run's from its first; a lost first frame still shows as
        # missing lines at the end of the run
        lines["frame_index"] -= lines["frame_index"][0]
    received = int(np.unique(firing_numbers(lines)).size) if lines.size else 0
    counts = StreamCounts(
        expected_lines=expected, received_lines=received,
        lines_lost_link=s1.lines_lost_link - s0.lines_lost_link,
        lines_lost_device=s1.lines_lost_device - s0.lines_lost_device,
        lines_lost_host=s1.lines_lost_host - s0.lines_lost_host,
        host_overflows=s1.host_overflows - s0.host_overflows,
        device_dropped=None if st0 is None or st1 is None
        else (st1.dropped_lines - st0.dropped_lines) & 0xFFFFFFFF,
        crc_errors=s1.crc_errors - s0.crc_errors,
        header_errors=s1.header_errors - s0.header_errors,
        seq_gaps=s1.seq_gaps - s0.seq_gaps, seq_resets=s1.seq_resets - s0.seq_resets,
        bytes_discarded=s1.bytes_discarded - s0.bytes_discarded,
        malformed=s1.malformed - s0.malformed, frames_expected=n_frames,
        frames_complete=cap.complete, frames_incomplete=cap.incomplete,
        frames_lost=s1.frames_lost - s0.frames_lost,
        disconnects=s1.disconnects - s0.disconnects,
    )
    elapsed = (int(lines["host_ns"][-1]) - int(lines["host_ns"][0])) / 1e9 if lines.size > 1 \
        else math.nan
    run = RatedRun(cfg=cfg, target_bps=target, source=source, n_frames=n_frames, counts=counts,
                   lines=lines, jitter=jitter_stats(lines, cfg.prf_hz), elapsed_s=elapsed,
                   bytes_in=received * line_bytes(cfg.sample_format, cfg.samples_per_line),
                   pings_s=pings, ping_timeouts=timeouts,
                   order=order_problems(lines, expected) if lines.size else [])
    nominal = line_bytes(cfg.sample_format, cfg.samples_per_line) * cfg.prf_hz
    rec = hil_report.record
    rec("stream_target_mb_s", target / 1e6, "MB/s", f"throughput asked for ({source})")
    rec("stream_config", f"{cfg.samples_per_line} samples × {cfg.lines_per_frame} lines, "
        f"PRF {cfg.prf_hz} Hz, {SampleFormat(cfg.sample_format).name}",
        what="streamed configuration")
    rec("stream_nominal_mb_s", nominal / 1e6, "MB/s", "ECHO_LINE bytes per second at this PRF")
    rec("stream_throughput_mb_s", run.throughput_bps / 1e6, "MB/s",
        "measured: ECHO_LINE bytes received / time from first to last line")
    rec("stream_seconds", elapsed, "s", f"{n_frames} frames")
    for key, value in counts.as_dict().items():
        rec(f"stream_{key}", value)
    if hil_facts.clock:  # without the board's timestamps there is no line timing to show
        for key, value in run.jitter.as_dict().items():
            rec(f"stream_{key}", value, "µs" if key.endswith("_us") else "")
    return run


@pytest.mark.requirement("HIL-STR-3")
def test_rated_stream_no_loss(rated_run: RatedRun) -> None:
    """No lost lines, no CRC or header errors, no sequence gaps, acquisition order intact."""
    run = rated_run
    p = stream_problems(run.counts) + run.order
    if p:
        p.insert(0, f"while streaming {run.target_bps / 1e6:.3g} MB/s ({run.source}) for "
                    f"{run.elapsed_s:.1f} s, PRF {run.cfg.prf_hz} Hz:")
    fail_on(p)


@pytest.mark.requirement("HIL-STR-4")
def test_rated_stream_timing(rated_run: RatedRun) -> None:
    """Device timestamps only go forward; the line period matches 1/PRF (p50/p99 jitter)."""
    fail_on(timing_problems(rated_run.jitter, rated_run.cfg.prf_hz))


@pytest.mark.requirement("HIL-LAT-2")
def test_ping_while_streaming(rated_run: RatedRun, hil_report: HilReport) -> None:
    """PING p99 below 100 ms while the board streams at its rated throughput."""
    stats = percentiles_ms(rated_run.pings_s)
    hil_report.record("ping_streaming_p50_ms", stats["p50_ms"], "ms",
                      f"PING round trip while streaming ({stats['n']} pings)")
    hil_report.record("ping_streaming_p99_ms", stats["p99_ms"], "ms")
    hil_report.record("ping_streaming_max_ms", stats["max_ms"], "ms")
    where = f"while streaming {rated_run.target_bps / 1e6:.3g} MB/s"
    p = latency_problems(stats, REPLY_LIMIT_S * 1e3, where)
    if rated_run.ping_timeouts:
        p.append(f"{rated_run.ping_timeouts} PINGs got no PONG at all {where} (4 tries of "
                 "0.5 s each)")
    fail_on(p)
