"""HIL-CMD: every command of protocol v1 does what docs/protocol.md says."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from sonobridge.hil.applicability import BoardFacts
from sonobridge.hil.board import HilSession, fail_on, must
from sonobridge.hil.checks import (
    Expected,
    describe_reply,
    frames_timeout_s,
    idle_watch_s,
    reply_problem,
)
from sonobridge.hil.configs import quick_config
from sonobridge.protocol import (
    UNSOLICITED,
    Capability,
    DeviceInfo,
    DeviceState,
    ErrorCode,
    Flags,
    FrameEnd,
    MsgType,
    Ping,
    Pong,
    Start,
    Status,
    encode_payload,
)

REPLY_TIMEOUT_S = 0.5


@pytest.mark.requirement("HIL-CMD-1")
def test_get_info_repeatable(hil: HilSession) -> None:
    """A second GET_INFO gives the handshake's DEVICE_INFO again, naming the request."""
    r = hil.send_frame(MsgType.GET_INFO, b"", timeout_s=REPLY_TIMEOUT_S)
    if not isinstance(r.reply, DeviceInfo):
        pytest.fail(f"board answered GET_INFO (seq {r.seq}) with {describe_reply(r.reply)}; "
                    "expected DEVICE_INFO")
    assert r.reply.request_seq == r.seq
    again = replace(r.reply, request_seq=hil.info.request_seq)
    if again != hil.info:
        diff = [f"{k}: {getattr(hil.info, k)!r} → {getattr(again, k)!r}"
                for k in hil.info.__dataclass_fields__
                if getattr(hil.info, k) != getattr(again, k)]
        pytest.fail("DEVICE_INFO changed between two GET_INFOs: " + "; ".join(diff))


@pytest.mark.requirement("HIL-CMD-2")
def test_configure_acked_bumps_config_id(hil: HilSession) -> None:
    """A valid CONFIGURE is ACKed and STATUS.config_id goes up by one."""
    before = hil.dev.status().config_id
    cfg = quick_config(hil.info, hil.default)
    must(f"a valid CONFIGURE ({cfg})", hil.configure, cfg)
    after = hil.dev.status().config_id
    assert after == (before + 1) & 0xFFFF, (
        f"STATUS.config_id went from {before} to {after} after an ACKed CONFIGURE; expected "
        f"{(before + 1) & 0xFFFF}")


@pytest.mark.requirement("HIL-CMD-3")
def test_start_n_frames(hil: HilSession, hil_facts: BoardFacts) -> None:
    """START n_frames=3: exactly three complete frames, each with FRAME_END, then idle.

    What a board without v1 frames or STATUS cannot show (FRAME_ENDs on the wire, its
    counters, sweeps numbered from 0) is judged by what the client received, and "idle" by
    no line arriving after the run.
    """
    n = 3
    cfg = must("a valid CONFIGURE", hil.configure, quick_config(hil.info, hil.default))
    per = cfg.lines_per_frame * cfg.ensemble_size
    before = hil.dev.status() if hil_facts.status else None
    snap = hil.snapshot()
    with hil.tap() as tap, hil.frames.capture() as cap, hil.lines.capture() as lines:
        must(f"START n_frames={n}", hil.dev.start, n_frames=n)
        arrived = cap.wait(lambda c: c.total >= n,
                           frames_timeout_s(n, per, cfg.prf_hz))
        after = hil.drain()
    late = hil.lines_within(idle_watch_s(cfg.prf_hz))
    p: list[str] = []
    if not arrived:
        p.append(f"only {cap.total} of {n} frames arrived after START n_frames={n}")
    if cap.total > n:
        p.append(f"{cap.total} frames arrived after START n_frames={n}")
    if cap.incomplete:
        p.append(f"{cap.incomplete} of the frames were incomplete")
    first = 0 if hil_facts.v1_frames or not cap.indexes else cap.indexes[0]
    if cap.indexes[:n] != list(range(first, first + min(n, cap.total))):
        p.append(f"frame_index sequence {cap.indexes} does not "
                 f"{'start at 0 and ' if hil_facts.v1_frames else ''}count up")
    if len(lines) != n * per:
        p.append(f"{len(lines)} lines reached the client; expected {n * per} ({n} frames × "
                 f"{per})")
    if late:
        p.append(f"{late} lines arrived after the {n} frames: the board did not go idle by "
                 "itself")
    if not hil_facts.v1_frames:
        fail_on(p + ([f"meanwhile{why}"] if p and (why := hil.trouble_since(snap)) else []))
        return
    assert before is not None and after is not None
    ends = [m for _, m in tap.messages if isinstance(m, FrameEnd)]
    if [e.frame_index for e in ends] != list(range(n)):
        p.append(f"FRAME_ENDs for frames {[e.frame_index for e in ends]}; expected "
                 f"{list(range(n))}")
    for e in ends:
        if e.lines_sent != per or e.lines_per_frame != cfg.lines_per_frame:
            p.append(f"FRAME_END of frame {e.frame_index} says {e.lines_sent} lines sent of "
                     f"{e.lines_per_frame} per frame; expected {per} of {cfg.lines_per_frame}")
    if after.state != DeviceState.IDLE:
        p.append(f"board not idle after its {n} frames (STATUS.state {after.state})")
    sent = (after.lines_sent - before.lines_sent) & 0xFFFFFFFF
    if sent != n * per:
        p.append(f"STATUS.lines_sent grew by {sent}; expected {n * per} ({n} frames × {per})")
    if tap.lines != n * per:
        p.append(f"{tap.lines} ECHO_LINEs on the wire; expected {n * per}")
    if p and (why := hil.trouble_since(snap)):
        p.append(f"meanwhile{why}")
    fail_on(p)


@pytest.mark.requirement("HIL-CMD-4")
def test_start_continuous_until_stop(hil: HilSession, hil_facts: BoardFacts) -> None:
    """START (n_frames=0) streams until STOP; STOP is ACKed and acquisition stops.

    Without STATUS, "stops" means no line reaches the client after STOP and the drain.
    """
    cfg = must("a valid CONFIGURE", hil.configure, quick_config(hil.info, hil.default))
    per = cfg.lines_per_frame * cfg.ensemble_size
    with hil.frames.capture() as cap:
        must("START", hil.dev.start)
        arrived = cap.wait(lambda c: c.total >= 3, frames_timeout_s(3, per, cfg.prf_hz))
        streaming = hil.dev.status() if hil_facts.status else None
        must("STOP while streaming", hil.dev.stop)
        stopped = hil.drain()
    assert arrived, f"only {cap.total} frames arrived within the expected time after START"
    if not hil_facts.status:
        late = hil.lines_within(idle_watch_s(cfg.prf_hz))
        assert not late, f"{late} lines arrived after STOP: the acquisition did not stop"
        return
    assert streaming is not None and stopped is not None
    assert streaming.state == DeviceState.STREAMING, (
        f"STATUS.state is {streaming.state} while streaming; expected 1 (streaming)")
    # watch for twenty line periods: an acquisition that kept running would send lines
    threading.Event().wait(max(0.02, 20 / cfg.prf_hz))
    later = hil.dev.status()
    assert stopped.state == DeviceState.IDLE, f"STATUS.state {stopped.state} after STOP"
    assert later.lines_sent == stopped.lines_sent, (
        f"board kept acquiring after STOP: STATUS.lines_sent went from {stopped.lines_sent} to "
        f"{later.lines_sent}")


@pytest.mark.requirement("HIL-CMD-5")
def test_get_status(hil: HilSession, hil_facts: BoardFacts) -> None:
    """STATUS names the request, reports idle/streaming, a plausible clock and buffer fill."""
    p: list[str] = []
    t0 = time.perf_counter()
    a = hil.send_frame(MsgType.GET_STATUS, b"", timeout_s=REPLY_TIMEOUT_S)
    t1 = time.perf_counter()
    threading.Event().wait(0.02)
    t2 = time.perf_counter()
    b = hil.send_frame(MsgType.GET_STATUS, b"", timeout_s=REPLY_TIMEOUT_S)
    t3 = time.perf_counter()
    for r in (a, b):
        if not isinstance(r.reply, Status):
            pytest.fail(f"board answered GET_STATUS with {describe_reply(r.reply)}; expected "
                        "STATUS")
    sa, sb = a.reply, b.reply
    assert isinstance(sa, Status) and isinstance(sb, Status)
    if sa.state != DeviceState.IDLE:
        p.append(f"STATUS.state {sa.state} while idle; expected 0")
    for s in (sa, sb):
        if not 0 <= s.buffer_fill_permille <= 1000:
            p.append(f"STATUS.buffer_fill_permille {s.buffer_fill_permille} outside 0..1000")
    # the device clock runs between two STATUS replies exactly as long as the host saw, within
    # what the host cannot tell apart (its own send/receive times) and the 1 µs resolution;
    # an emulated chip's clock runs at a fraction of wall time, so there it only has to advance
    d_dev = (sb.device_time_us - sa.device_time_us) / 1e6
    lo, hi = (t2 - t1) - 0.002, (t3 - t0) + 0.002
    if hil_facts.emulated and d_dev <= 0:
        p.append(f"device clock did not advance between two STATUS replies ({d_dev * 1e3:.3f} ms)")
    elif not hil_facts.emulated and not lo <= d_dev <= hi:
        p.append(f"device clock advanced {d_dev * 1e3:.2f} ms between two STATUS replies the "
                 f"host saw {(t2 - t1) * 1e3:.2f}..{(t3 - t0) * 1e3:.2f} ms apart")
    must("a valid CONFIGURE", hil.configure, quick_config(hil.info, hil.default))
    must("START", hil.dev.start)
    live = hil.dev.status()
    if live.state != DeviceState.STREAMING:
        p.append(f"STATUS.state {live.state} while streaming; expected 1")
    if live.config_id != (sb.config_id + 1) & 0xFFFF:
        p.append(f"STATUS.config_id {live.config_id} after CONFIGURE; expected "
                 f"{(sb.config_id + 1) & 0xFFFF}")
    must("STOP", hil.dev.stop)
    fail_on(p)


@pytest.mark.requirement("HIL-CMD-6")
def test_ping_echoes(hil: HilSession) -> None:
    """PONG carries the PING's token and data (0 to 1020 bytes) and the device clock."""
    p: list[str] = []
    last_time = -1
    for n, token in ((0, 0), (1, 0xFFFFFFFF), (3, 0x12345678), (1020, 0xDEADBEEF)):
        data = bytes((i * 7 + n) & 0xFF for i in range(n))
        r = hil.send_frame(MsgType.PING, encode_payload(Ping(token=token, data=data)),
                           timeout_s=REPLY_TIMEOUT_S)
        if not isinstance(r.reply, Pong):
            p.append(f"board answered PING with {n} data bytes with {describe_reply(r.reply)}; "
                     "expected PONG")
            continue
        pong = r.reply
        if pong.token != token:
            p.append(f"PONG token 0x{pong.token:08X}; PING sent 0x{token:08X}")
        if pong.data != data:
            p.append(f"PONG data differs from the {n} bytes PING sent (got {len(pong.data)} "
                     "bytes)")
        if pong.device_time_us < last_time:
            p.append(f"PONG device_time_us went backwards: {last_time} → {pong.device_time_us}")
        last_time = pong.device_time_us
    fail_on(p)


@pytest.mark.requirement("HIL-CMD-7")
def test_reset_command(hil: HilSession) -> None:
    """With RESET: ACK, then an unsolicited DEVICE_INFO with seq 0. Without: NAK UNSUPPORTED."""
    capable = bool(hil.info.capabilities & Capability.RESET)
    if not capable:
        r = hil.send_frame(MsgType.RESET, b"", timeout_s=REPLY_TIMEOUT_S)
        problem = reply_problem("RESET (board without the RESET capability)", r.reply,
                                Expected(ErrorCode.UNSUPPORTED), MsgType.RESET,
                                check_field=False)
        assert problem is None, problem
        return
    mark = hil.states.mark()
    resets = hil.dev.stats.device_resets
    with hil.tap() as tap:
        r = hil.send_frame(MsgType.RESET, b"", timeout_s=REPLY_TIMEOUT_S)
        problem = reply_problem("RESET (board with the RESET capability)", r.reply, Expected(),
                                MsgType.RESET)
        assert problem is None, problem
        got = tap.wait_for(lambda m: isinstance(m, DeviceInfo)
                           and m.request_seq == UNSOLICITED, 5.0)
    assert got is not None, ("board ACKed RESET but sent no unsolicited DEVICE_INFO "
                             "(request_seq 0xFFFFFFFF) within 5 s")
    info = got[1]
    p: list[str] = []
    if info.seq != 0:
        p.append(f"the DEVICE_INFO announcing the reboot has seq {info.seq}; the sequence must "
                 "restart at 0")
    if replace(info, request_seq=hil.info.request_seq) != hil.info:
        p.append("DEVICE_INFO after the reboot differs from the one before it")
    restored = hil.states.wait_for(("connected",), mark, 5.0)
    if restored is None:
        p.append("the client did not re-handshake within 5 s of the reboot")
    if hil.dev.stats.device_resets != resets + 1:
        p.append(f"client counted {hil.dev.stats.device_resets - resets} device resets; "
                 "expected 1")
    fail_on(p)


@pytest.mark.requirement("HIL-CMD-8")
def test_retry_flag(hil: HilSession) -> None:
    """A repeated START (same seq, RETRY) is answered again but not executed twice."""
    n = 2
    cfg = must("a valid CONFIGURE", hil.configure, quick_config(hil.info, hil.default))
    per = cfg.lines_per_frame * cfg.ensemble_size
    before = hil.dev.status()
    payload = encode_payload(Start(n_frames=n))
    with hil.frames.capture() as cap:
        first = hil.send_frame(MsgType.START, payload, timeout_s=REPLY_TIMEOUT_S)
        again = hil.send_frame(MsgType.START, payload, seq=first.seq, flags=Flags.RETRY,
                               timeout_s=REPLY_TIMEOUT_S)
        cap.wait(lambda c: c.total >= n, frames_timeout_s(n, per, cfg.prf_hz))
        after = hil.drain()
    p = [x for x in (
        reply_problem(f"START n_frames={n}", first.reply, Expected(), MsgType.START),
        reply_problem(f"the same START repeated with the RETRY flag (seq {first.seq})",
                      again.reply, Expected(), MsgType.START),
    ) if x]
    sent = (after.lines_sent - before.lines_sent) & 0xFFFFFFFF
    if sent != n * per:
        p.append(f"STATUS.lines_sent grew by {sent} after START n_frames={n} and its retry; "
                 f"expected {n * per}: the retried START was executed again")
    status = hil.send_frame(MsgType.GET_STATUS, b"", flags=Flags.RETRY,
                            timeout_s=REPLY_TIMEOUT_S)
    if not isinstance(status.reply, Status):
        p.append(f"board answered a new GET_STATUS carrying the RETRY flag with "
                 f"{describe_reply(status.reply)}; a RETRY with a new seq is a normal command")
    fail_on(p)
