"""HIL-REC: the client and board find each other again after a reset or a disconnect."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from sonobridge.hil.board import HilOptions, HilSession, SimSettings, SimTarget, fail_on, must
from sonobridge.hil.checks import frames_timeout_s
from sonobridge.hil.configs import quick_config
from sonobridge.hil.report import HilReport

RESTORE_S = 5.0


def _resumes(hil: HilSession, lines: int, samples: int, prf_hz: float) -> list[str]:
    """Two complete frames with the configured shape arrive."""
    timeout = frames_timeout_s(2, lines, prf_hz)
    shape = (lines, samples)
    snap = hil.snapshot()
    with hil.frames.capture(keep=2, predicate=lambda f: f.complete) as cap:
        ok = cap.wait(lambda c: len(c.frames) >= 2, timeout)
    if not ok:
        return [f"streaming did not resume: {cap.complete} complete and {cap.incomplete} "
                f"incomplete frames within {timeout:.1f} s{hil.trouble_since(snap)}"]
    got = cap.frames[-1].samples.shape
    if got != shape:
        return [f"frames after recovery are {got[0]} lines × {got[1]} samples; the client's "
                f"configuration is {shape[0]} × {shape[1]}: it was not restored"]
    return []


@pytest.mark.requirement("HIL-REC-1")
def test_recovery_after_reset(hil: HilSession, hil_report: HilReport) -> None:
    """RESET while streaming: the client re-handshakes, re-configures and streams again.

    Only boards with the RESET capability (``applicability.RULES``).
    """
    cfg = must("a valid CONFIGURE", hil.configure, quick_config(hil.info, hil.default))
    must("START", hil.dev.start)
    before = hil.dev.stats
    mark = hil.states.mark()
    must("RESET while streaming", hil.dev.reset)
    p: list[str] = []
    if hil.states.wait_for(("connected",), mark, RESTORE_S) is None:
        p.append(f"the client did not re-handshake within {RESTORE_S:g} s of RESET")
    else:
        p += _resumes(hil, cfg.lines_per_frame, cfg.samples_per_line, cfg.prf_hz)
    after = hil.dev.stats
    if after.device_resets - before.device_resets != 1:
        p.append(f"the client saw {after.device_resets - before.device_resets} reboots "
                 "(unsolicited DEVICE_INFO); expected 1")
    if after.seq_gaps != before.seq_gaps:
        p.append(f"{after.seq_gaps - before.seq_gaps} sequence gaps while recovering from the "
                 "reset: frames were lost on the link, or the board's counter did not restart "
                 "at 0 (a restart counts as a reset, not a gap)")
    hil_report.record("reset_recovery", "ok" if not p else "failed",
                      what="RESET while streaming: re-handshake and resume")
    fail_on(p)


@pytest.mark.requirement("HIL-REC-2")
def test_recovery_after_disconnect(hil_options: HilOptions, hil_report: HilReport,
                                   tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The link vanishes mid-stream; the client reconnects, re-configures and streams again."""
    if hil_options.simulated:
        s = hil_options.sim
        faults = ",".join(f for f in (s.faults, "disconnect=0.3@0.2") if f)
        settings = SimSettings(phantom=s.phantom, link=s.link, faults=faults, seed=s.seed,
                               profile=s.profile, buffer_ms=s.buffer_ms)
        target = SimTarget(settings, tmp_path, link_path=tmp_path / "board")
        try:
            sess = HilSession.open(target)
            try:
                _disconnect_and_back(sess, hil_report, "the simulator unplugged itself")
            finally:
                sess.close()
        finally:
            target.close()
        return
    if not hil_options.unplug:
        pytest.skip("disconnect recovery needs someone to unplug the board: run with "
                    "--sonobridge-unplug (--unplug in hil_tests; the simulator tests it by itself)")
    sess = request.getfixturevalue("hil")
    capman = request.config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
        print("\n>>> HIL-REC-2: unplug the board's USB cable now, then plug it back in "
              "(you have 60 s) <<<", flush=True)
        _disconnect_and_back(sess, hil_report, "a tester unplugged the board", wait_s=60.0)


def _disconnect_and_back(sess: HilSession, hil_report: HilReport, how: str,
                         wait_s: float = RESTORE_S) -> None:
    cfg = must("a valid CONFIGURE", sess.configure, quick_config(sess.info, sess.default))
    mark = sess.states.mark()
    must("START", sess.dev.start)
    p: list[str] = []
    gone = sess.states.wait_for(("disconnected",), mark, wait_s)
    if gone is None:
        pytest.fail(f"the link never went down ({how}) within {wait_s:g} s")
    back = sess.states.wait_for(("connected",), gone, wait_s)
    if back is None:
        p.append(f"the client did not reconnect within {wait_s:g} s after {how}")
    else:
        p += _resumes(sess, cfg.lines_per_frame, cfg.samples_per_line, cfg.prf_hz)
    st = sess.dev.stats
    if st.reconnects < 1:
        p.append(f"the client counted {st.reconnects} reconnects after {how}")
    hil_report.record("disconnect_recovery", "ok" if not p else "failed",
                      what=f"{how}; the client reconnected and resumed")
    fail_on(p)
