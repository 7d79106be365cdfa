"""A hostile board on a real pty cannot break the client, exhaust its memory or hide a fault.

The board (``hostile_board.py``) sends CRC-valid lines with absurd sizes, garbage, truncated
frames, impossible DEVICE_INFO and STATUS values and, finally, frames of another protocol
version; the client's listeners raise. Checked: the client stays usable between the attacks,
its memory stays bounded, every fault is counted, and when it can no longer work it says so
(state "failed", every call raises) instead of staying "connected".
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import threading

import numpy as np
import pytest

from sonobridge.device import (
    DeviceError,
    DeviceFailed,
    HandshakeError,
    ProtocolMismatch,
    open_device,
)
from sonobridge.device.listeners import MAX_FAILURES, ListenerSet
from sonobridge.device.receiver import Receiver
from sonobridge.protocol import (
    SYNC,
    UNSOLICITED,
    Decoder,
    DeviceInfo,
    FrameEnd,
    GetInfo,
    GetStatus,
    Pong,
    SampleFormat,
    Status,
    encode,
)

from .device_fixtures import wait_until
from .hostile_board import DEFAULT_INFO, HostileBoard, echo_line

BOARD = DEFAULT_INFO.board_name
MB = 1 << 20


def vm_rss() -> int:
    """This process's resident set size in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def calls_that_must_fail(dev):
    """Every kind of call a user makes, each as a thunk."""
    return {
        "command": lambda: dev.command(GetStatus(), expect=Status),
        "ping": dev.ping,
        "status": dev.status,
        "configure": lambda: dev.configure(prf_hz=1000),
        "start": dev.start,
        "stop": dev.stop,
        "frames": lambda: next(iter(dev.frames(timeout=0.5))),
    }


def make_garbage(rng: random.Random) -> tuple[bytes, int, int]:
    """Random bytes with false syncs and truncated frames, ending so every candidate is decided.

    Returns (bytes, false syncs inserted, truncated frames inserted). Every truncated frame has
    a valid header and is followed by enough bytes to complete it, so each one costs exactly
    one CRC-32 failure.
    """
    parts: list[bytes] = []
    syncs = truncated = 0
    frame = encode(Pong(request_seq=7, token=1, data=bytes(8)), 123_456)  # 44 bytes
    for _ in range(60):
        parts.append(rng.randbytes(rng.randint(16, 200)))
        kind = rng.random()
        if kind < 0.5:
            parts.append(SYNC)
            syncs += 1
        elif kind < 0.8:
            parts.append(frame[: rng.randint(28, len(frame) - 1)])  # needs <= 16 more bytes
            truncated += 1
    parts.append(rng.randbytes(64) + bytes(16))  # no candidate straddles the end
    return b"".join(parts), syncs, truncated


# -- the acceptance test -------------------------------------------------------------------------


def test_a_hostile_board_cannot_break_the_client(caplog) -> None:
    """Absurd CRC-valid lines, garbage, raising listeners and a version change, in one session.

    PING works between the attacks, memory stays bounded, every fault is counted, and the
    version change ends the session with ProtocolMismatch.
    """
    caplog.set_level(logging.WARNING, logger="sonobridge.device")
    with HostileBoard() as board, open_device(board.path, command_timeout_s=0.25) as dev:
        dev.ping()
        rss0 = vm_rss()

        # 1. CRC-valid lines with absurd sizes. Allocated, the first twelve would need
        #    65535 x 255 x 32768 x 2 bytes (1.1 TB) each, and the next twelve (within the host's
        #    own 1 GiB cap, only above what the board announced) 32 MiB each: far past 50 MB.
        for i in range(12):
            board.send(echo_line(i, 0, lines_per_frame=65535, ensemble_size=255,
                                 n_samples=32768))
        for i in range(12):
            board.send(echo_line(100 + i, i, lines_per_frame=2048, n_samples=8192))
        wait_until(lambda: dev.stats.malformed >= 24, what="24 malformed lines")
        dev.ping()
        s = dev.stats
        assert (s.malformed, s.lines_malformed) == (24, 24)
        assert s.lines_received == 0 and s.frames_complete + s.frames_incomplete == 0
        assert s.lines_missing == 0  # a dropped line is malformed, not "missing" from a sweep
        assert s.crc_errors == 0 and s.seq_gaps == 0
        warnings = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
        assert warnings and all(BOARD in w for w in warnings)
        assert any("lines_per_frame = 65535" in w for w in warnings)

        # 2. garbage: random bytes, false syncs, truncated frames
        before = dev.decoder_stats.as_dict()
        junk, n_syncs, n_truncated = make_garbage(random.Random(20240611))
        assert n_syncs > 10 and n_truncated > 10
        board.inject(junk)
        dev.ping()
        after = dev.decoder_stats.as_dict()
        assert after["bytes_discarded"] - before["bytes_discarded"] == len(junk)
        assert after["crc_errors"] - before["crc_errors"] == n_truncated
        assert after["header_errors"] - before["header_errors"] >= n_syncs
        assert after["seq_gaps"] == before["seq_gaps"]  # nothing of the board's was lost

        # 3. listeners that raise, next to listeners that work
        good_lines: list[int] = []
        good_frames: list[int] = []

        def exploding_line_listener(line, host_ns):
            raise ValueError("line listener bug")

        def exploding_frame_listener(frame):
            raise ValueError("frame listener bug")

        def exploding_raw_listener(data, host_ns):
            raise ValueError("raw listener bug")

        dev.add_line_listener(exploding_line_listener)
        dev.add_line_listener(lambda line, t: good_lines.append(line.seq))
        dev.add_frame_listener(exploding_frame_listener)
        dev.add_frame_listener(lambda frame: good_frames.append(frame.index))
        dev.add_raw_listener(exploding_raw_listener)
        for k in range(4):  # one sweep at a time: at least one chunk each for the raw listener
            for i in range(4):
                board.send(echo_line(200 + k, i, value=k))
            wait_until(lambda k=k: len(good_frames) == k + 1, what=f"sweep {k}")
        dev.ping()
        frames = list(dev.frames(timeout=1.0, count=4))
        assert [f.index for f in frames] == [200, 201, 202, 203]
        assert all(f.complete and f.samples.shape == (4, 64) for f in frames)
        assert [int(f.samples[0, 0]) for f in frames] == [0, 1, 2, 3]
        assert len(good_lines) == 16
        assert dev.stats.listener_errors == 3 * MAX_FAILURES  # each removed after 3 in a row
        for name in ("exploding_line_listener", "exploding_frame_listener",
                     "exploding_raw_listener"):
            assert f"{name} removed after {MAX_FAILURES} failures" in caplog.text

        # memory: nothing was allocated for the absurd sweeps
        growth = vm_rss() - rss0
        assert growth < 50 * MB, f"RSS grew by {growth / MB:.0f} MB"

        # 4. the board starts answering in protocol version 2: one handshake, then failed
        gets = board.received(GetInfo)
        board.version = 2
        with pytest.raises(DeviceError):
            dev.ping()
        wait_until(lambda: dev.state == "failed", 10, "the failed state")
        with pytest.raises(ProtocolMismatch, match="v2"):
            dev.ping()
        wait_until(lambda: not dev._supervisor.is_alive(), what="the supervisor to stop")
        wait_until(lambda: board.received(GetInfo) - gets >= 3, what="the handshake")
        for call in calls_that_must_fail(dev).values():
            with pytest.raises(ProtocolMismatch):
                call()
        assert board.received(GetInfo) - gets == 3  # one GET_INFO and its two retries, once

        s = dev.stats
        assert s.state == "failed" and "protocol version mismatch" in s.failure
        assert s.unsupported >= 4  # the version-2 PONGs at least
        assert (s.malformed, s.listener_errors) == (24, 3 * MAX_FAILURES)
        assert s.frames_complete == 4 and s.lines_received == 16 and s.lines_missing == 0
        assert "failed: protocol version mismatch" in s.summary()


# -- 1. every size from the wire is bounded by DEVICE_INFO ---------------------------------------

LIMIT_BREAKERS = {
    "lines_per_frame": dict(lines_per_frame=DEFAULT_INFO.max_lines_per_frame + 1),
    "ensemble_size": dict(ensemble_size=DEFAULT_INFO.ensemble_max + 1),
    "samples": dict(n_samples=DEFAULT_INFO.max_samples_per_line + 2),
    "sample_format": dict(sample_format=SampleFormat.U16_OB),  # the board lists only I16
}


@pytest.mark.parametrize("field", list(LIMIT_BREAKERS))
def test_a_line_beyond_the_announced_limits_is_dropped_and_counted(caplog, field) -> None:
    caplog.set_level(logging.WARNING, logger="sonobridge.device")
    with HostileBoard() as board, open_device(board.path) as dev:
        board.send(echo_line(0, 1, value=99, **LIMIT_BREAKERS[field]))
        for i in range(4):
            board.send(echo_line(1, i, value=i))
        frame = next(iter(dev.frames(timeout=2.0)))
        s = dev.stats
    assert frame.index == 1 and frame.complete and frame.samples.shape == (4, 64)
    assert frame.samples[:, 0].tolist() == [0, 1, 2, 3]  # nothing of the bad line in it
    assert (s.malformed, s.lines_malformed, s.lines_received) == (1, 1, 4)
    assert s.frames_complete == 1 and s.frames_incomplete == 0
    warning = next(r for r in caplog.records if "malformed" in r.getMessage())
    assert warning.levelno == logging.WARNING
    assert BOARD in warning.getMessage()
    assert field in warning.getMessage()


def test_lines_before_any_device_info_are_malformed(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sonobridge.device")
    frames = []
    rx = Receiver(Decoder(), on_frame=frames.append)
    rx.feed(encode(echo_line(0, 0, lines_per_frame=1), 0), 1)
    assert rx.counts.lines_malformed == 1 and rx.counts.lines_received == 0
    assert "before the board announced its limits" in caplog.text
    rx.feed(encode(dataclasses.replace(DEFAULT_INFO, request_seq=5), 1), 2)
    rx.feed(encode(echo_line(0, 0, lines_per_frame=1), 2), 3)
    assert rx.counts.lines_malformed == 1 and rx.counts.lines_received == 1
    assert len(frames) == 1 and frames[0].complete


def test_the_latest_device_info_sets_the_limits() -> None:
    rx = Receiver(Decoder())
    rx.feed(encode(dataclasses.replace(DEFAULT_INFO, request_seq=5), 0), 1)
    rx.feed(encode(echo_line(0, 0, lines_per_frame=16, n_samples=1024), 1), 2)
    assert rx.counts.lines_malformed == 0
    smaller = dataclasses.replace(DEFAULT_INFO, request_seq=6, max_lines_per_frame=8,
                                  max_samples_per_line=512)
    rx.feed(encode(smaller, 2), 3)
    rx.feed(encode(echo_line(1, 0, lines_per_frame=16, n_samples=64), 3), 4)
    rx.feed(encode(echo_line(1, 0, lines_per_frame=8, n_samples=1024), 4), 5)
    assert rx.counts.lines_malformed == 2
    rx.feed(encode(echo_line(1, 0, lines_per_frame=8, n_samples=512), 5), 6)
    assert rx.counts.lines_malformed == 2 and rx.counts.lines_received == 2


def test_a_sweep_above_the_hosts_own_cap_is_malformed_whatever_the_board_announced() -> None:
    rx = Receiver(Decoder())
    rx.max_frame_bytes = 16 * 4 * 1024 * 2 - 1  # just below the board's largest sweep
    rx.feed(encode(dataclasses.replace(DEFAULT_INFO, request_seq=5), 0), 1)
    rx.feed(encode(echo_line(0, 0, lines_per_frame=16, ensemble_size=4, n_samples=1024), 1), 2)
    assert rx.counts.lines_malformed == 1 and rx.counts.lines_received == 0
    rx.feed(encode(echo_line(0, 0, lines_per_frame=16, ensemble_size=4, n_samples=1022), 2), 3)
    assert rx.counts.lines_malformed == 1 and rx.counts.lines_received == 1


# -- 2. listeners cannot break the receive path --------------------------------------------------


def test_raising_listeners_are_counted_logged_and_removed_after_three_in_a_row(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sonobridge.device")
    calls = {"line": 0, "frame": 0, "raw": 0, "flaky": 0}
    good = {"line": 0, "frame": 0, "raw": 0}

    def broken(kind):
        def listener(*args):
            calls[kind] += 1
            raise RuntimeError(f"{kind} listener bug")
        listener.__qualname__ = f"broken_{kind}_listener"
        return listener

    def flaky_line_listener(line, host_ns):  # fails every other call: never 3 in a row
        calls["flaky"] += 1
        if calls["flaky"] % 2:
            raise RuntimeError("flaky")

    with HostileBoard() as board, open_device(board.path) as dev:
        dev.add_line_listener(broken("line"))
        dev.add_line_listener(flaky_line_listener)
        dev.add_line_listener(lambda line, t: good.__setitem__("line", good["line"] + 1))
        dev.add_frame_listener(broken("frame"))
        dev.add_frame_listener(lambda f: good.__setitem__("frame", good["frame"] + 1))
        dev.add_raw_listener(broken("raw"))
        dev.add_raw_listener(lambda d, t: good.__setitem__("raw", good["raw"] + 1))
        for k in range(5):
            for i in range(4):
                board.send(echo_line(k, i))
            wait_until(lambda k=k: good["frame"] == k + 1, what=f"sweep {k}")
        dev.ping()  # the receive thread is alive and answers
        s = dev.stats
        raw_removed = list(dev.link.taps.removed)
    assert calls["line"] == calls["frame"] == calls["raw"] == MAX_FAILURES
    assert calls["flaky"] == good["line"] == 20  # the flaky one was never removed
    assert good["frame"] == 5 and good["raw"] >= 5
    assert s.listener_errors == 3 * MAX_FAILURES + 10
    assert s.frames_complete == 5 and s.lines_received == 20
    assert raw_removed == ["broken_raw_listener"]
    for kind, what in (("line", "line listener"), ("frame", "frame listener"),
                       ("raw", "byte tap")):
        assert f"{what} broken_{kind}_listener failed (1 in a row)" in caplog.text
        assert (f"{what} broken_{kind}_listener removed after {MAX_FAILURES} failures"
                in caplog.text)
    assert "flaky_line_listener failed (1 in a row)" in caplog.text
    assert "flaky_line_listener failed (2 in a row)" not in caplog.text


def test_listener_set_counts_failures_in_a_row_and_keeps_calling_the_others() -> None:
    outcomes = iter([True, True, False, True, True, True, False])  # True: raise
    seen: list[int] = []

    def sometimes(x):
        if next(outcomes):
            raise ValueError(x)

    ls = ListenerSet("test listener")
    ls.add(sometimes)
    ls.add(seen.append)
    for x in range(8):
        ls.call(x)
    assert seen == list(range(8))
    # raise, raise, ok (count reset), raise, raise, raise -> removed; call 7 never happens
    assert ls.errors == 5 and ls.removed == ["test_listener_set_counts_failures_in_a_row_and_"
                                             "keeps_calling_the_others.<locals>.sometimes"]
    assert len(ls) == 1 and next(outcomes) is False  # the 7th outcome was never consumed


# -- 3. a stopped receive thread fails the client, loudly ----------------------------------------


@pytest.mark.parametrize("error", [RuntimeError, MemoryError])
@pytest.mark.parametrize("where", ["receiver", "link"])
def test_a_stopped_receive_thread_fails_every_call(where, error) -> None:
    states: list[str] = []
    with HostileBoard() as board, open_device(board.path) as dev:
        dev.on_state = states.append
        outcome: dict[str, BaseException] = {}

        def consumer() -> None:
            try:
                next(iter(dev.frames(timeout=30)))
            except BaseException as exc:  # what it raised is the point
                outcome["error"] = exc

        waiting = threading.Thread(target=consumer, daemon=True)
        waiting.start()

        def boom(data, host_ns):
            raise error("boom in the receive path")

        if where == "receiver":
            dev._rx.feed = boom
        else:
            dev.link._on_bytes = boom
        with pytest.raises(DeviceFailed, match="receive thread stopped") as err:
            dev.ping()  # its PONG is the first chunk the broken receive path gets
        assert f"{error.__name__}: boom in the receive path" in str(err.value)
        waiting.join(5)
        assert not waiting.is_alive(), "a frames() consumer must not wait out its timeout"
        assert isinstance(outcome["error"], DeviceFailed)

        assert dev.state == "failed" and "failed" in states
        s = dev.stats
        assert s.state == "failed" and not s.connected
        assert "boom in the receive path" in s.failure
        assert "failed: " in s.summary()
        bytes_out = s.bytes_out
        for name, call in calls_that_must_fail(dev).items():
            with pytest.raises(DeviceFailed, match="boom in the receive path"):
                call()
            assert dev.state == "failed", name
        assert dev.stats.bytes_out == bytes_out  # nothing was even sent
    assert states[-1] == "closed"


# -- 4. impossible DEVICE_INFO and STATUS values -------------------------------------------------

IMPOSSIBLE_INFO = {
    "adc_rate_hz": dict(adc_rate_hz=0),
    "max_samples_per_line": dict(max_samples_per_line=0),
    "sweep_kind": dict(sweep_kind=7),
    "prf_max_hz": dict(prf_min_hz=5000, prf_max_hz=1000),
    "adc_bits": dict(adc_bits=0),
    "sample_formats": dict(sample_formats=0xF0),
    "max_lines_per_frame": dict(max_lines_per_frame=0),
    "ensemble_max": dict(ensemble_max=0),
    "hv_max_mv": dict(hv_min_mv=50_000, hv_max_mv=10_000),
}


@pytest.mark.parametrize("field", list(IMPOSSIBLE_INFO))
def test_an_impossible_device_info_fails_the_handshake_naming_the_field(field) -> None:
    info = dataclasses.replace(DEFAULT_INFO, **IMPOSSIBLE_INFO[field])
    with HostileBoard(info=info) as board:
        with pytest.raises(HandshakeError) as err:
            open_device(board.path)
        text = str(err.value)
        assert f"{field} = {getattr(info, field)}" in text
        assert BOARD in text and "impossible DEVICE_INFO" in text
        # the failed open released the port: the same board, fixed, opens fine
        board.info = DEFAULT_INFO
        with open_device(board.path) as dev:
            assert dev.info.adc_rate_hz == DEFAULT_INFO.adc_rate_hz
            dev.ping()


IMPOSSIBLE_STATUS = {
    "temperature": (dict(temperature_cdeg=-32768), "temperature -327.7 °C is impossible"),
    "buffer fill": (dict(buffer_fill_permille=1500), "buffer fill 150.0 % is above 100 %"),
    "state": (dict(state=9), "state = 9 is not a known state"),
    "HV": (dict(hv_mv=250_000), "HV 250.0 V is above the board's own maximum"),
}


@pytest.mark.parametrize("case", list(IMPOSSIBLE_STATUS))
def test_an_impossible_status_is_flagged_not_shown_as_fact(case) -> None:
    values, problem = IMPOSSIBLE_STATUS[case]
    with HostileBoard() as board, open_device(board.path) as dev:
        dev.status()
        assert dev.stats.status_problems == []
        assert "implausible" not in dev.stats.summary()
        board.status = dataclasses.replace(board.status, **values)
        dev.status()
        s = dev.stats
    assert len(s.status_problems) == 1 and s.status_problems[0].startswith(problem)
    assert f"device STATUS is implausible: {s.status_problems[0]}" in s.summary()


def test_an_unsolicited_impossible_status_is_flagged_too() -> None:
    with HostileBoard() as board, open_device(board.path) as dev:
        board.send(Status(request_seq=UNSOLICITED, state=7, temperature_cdeg=32767,
                          buffer_fill_permille=65535))
        wait_until(lambda: dev.last_status is not None, what="the STATUS")
        problems = dev.stats.status_problems
    assert len(problems) == 3
    assert any("327.7 °C is impossible" in p for p in problems)


# -- 5. a board that changes protocol version mid-session ----------------------------------------


def test_a_board_answering_in_version_2_frames_stops_the_session() -> None:
    with HostileBoard() as board, open_device(board.path, command_timeout_s=0.25) as dev:
        gets = board.received(GetInfo)
        board.version = 2
        with pytest.raises(DeviceError):
            dev.ping()  # its PONGs are v2 frames: dropped, and they start one handshake
        wait_until(lambda: dev.state == "failed", 10, "the failed state")
        assert isinstance(dev.failure, ProtocolMismatch)
        assert "update sonobridge" in str(dev.failure) and "v2" in str(dev.failure)
        wait_until(lambda: not dev._supervisor.is_alive(), what="the supervisor to stop")
        wait_until(lambda: board.received(GetInfo) - gets >= 3, what="the handshake")
        # four PONGs and three DEVICE_INFOs, all in v2 frames, all dropped
        wait_until(lambda: dev.stats.unsupported >= 4 + 3, what="every v2 frame counted")
        bytes_out = dev.stats.bytes_out
        for name, call in calls_that_must_fail(dev).items():
            with pytest.raises(ProtocolMismatch):
                call()
            assert dev.state == "failed", name
        assert dev.stats.bytes_out == bytes_out  # nothing was even sent
        assert board.received(GetInfo) - gets == 3  # one GET_INFO and its two retries, once
        s = dev.stats
        assert s.state == "failed" and "protocol version mismatch" in s.failure


def test_an_unsolicited_version_2_device_info_stops_the_session() -> None:
    with HostileBoard() as board, open_device(board.path) as dev:
        gets = board.received(GetInfo)
        board.info = dataclasses.replace(DEFAULT_INFO, protocol_version=2)
        board.send(dataclasses.replace(board.info, request_seq=UNSOLICITED))
        wait_until(lambda: dev.state == "failed", 10, "the failed state")
        assert isinstance(dev.failure, ProtocolMismatch) and "v2" in str(dev.failure)
        wait_until(lambda: not dev._supervisor.is_alive(), what="the supervisor to stop")
        wait_until(lambda: board.received(GetInfo) - gets >= 1, what="the handshake")
        for call in calls_that_must_fail(dev).values():
            with pytest.raises(ProtocolMismatch):
                call()
        assert dev.stats.device_resets == 1
        assert board.received(GetInfo) - gets == 1


# -- found by probing: each was a bug of the client, fixed since ----------------------------------


def test_a_huge_sequence_jump_is_counted_without_one_callback_per_lost_sweep() -> None:
    rx = Receiver(Decoder())
    calls = 0
    report = rx.assembler.on_lost

    def counted(*args):
        nonlocal calls
        calls += 1
        assert calls <= 10_000, "on_lost called once per lost sweep"
        report(*args)

    rx.assembler.on_lost = counted
    jump = 0x7FFFFFF0
    rx.feed(encode(dataclasses.replace(DEFAULT_INFO, request_seq=1), 0), 1)
    rx.feed(encode(echo_line(0, 0, lines_per_frame=1), 1), 2)
    rx.feed(encode(echo_line(jump, 0, lines_per_frame=1), 1 + jump), 3)
    c = rx.counts
    assert 1 <= c.frames_lost < jump and 1 <= c.lines_missing < jump  # bounded by the gap
    assert c.lines_missing == c.lines_lost_link + c.lines_lost_device + c.lines_lost_host


def test_a_frame_end_cannot_claim_more_lines_than_the_board_announced() -> None:
    rx = Receiver(Decoder())
    rx.feed(encode(dataclasses.replace(DEFAULT_INFO, request_seq=1), 0), 1)
    rx.feed(encode(FrameEnd(frame_index=3, lines_sent=0, lines_per_frame=65535), 1), 2)
    most = DEFAULT_INFO.max_lines_per_frame * DEFAULT_INFO.ensemble_max
    assert rx.counts.lines_missing <= most


def test_a_link_gap_before_a_malformed_line_is_still_the_links() -> None:
    rx = Receiver(Decoder())
    rx.feed(encode(dataclasses.replace(DEFAULT_INFO, request_seq=1), 0), 1)
    rx.feed(encode(echo_line(0, 0), 1), 2)
    # seq 2 (line 1) is lost on the link; seq 3 is malformed
    rx.feed(encode(echo_line(0, 0, lines_per_frame=65535), 3), 3)
    rx.feed(encode(echo_line(0, 2), 4) + encode(echo_line(0, 3), 5), 4)
    rx.assembler.flush()
    c = rx.counts
    assert rx.decoder.stats.seq_gaps == 1 and c.lines_malformed == 1
    assert c.lines_missing == 1
    assert (c.lines_lost_link, c.lines_lost_device) == (1, 0)


def test_a_board_rebooting_into_an_impossible_device_info_is_not_silently_connected() -> None:
    with HostileBoard() as board, open_device(board.path) as dev:
        gets = board.received(GetInfo)
        board.info = dataclasses.replace(DEFAULT_INFO, adc_rate_hz=0)
        board.send(dataclasses.replace(board.info, request_seq=UNSOLICITED))
        wait_until(lambda: board.received(GetInfo) - gets >= 1, what="the re-handshake")
        with contextlib.suppress(AssertionError):  # timing out means it stopped trying: good
            wait_until(lambda: board.received(GetInfo) - gets >= 6, 3.0, "more handshakes")
        assert board.received(GetInfo) - gets < 6, "re-handshaked again and again"
        assert dev.state != "connected" or dev.stats.failure


def test_removing_a_bound_method_listener_forgets_its_failures() -> None:
    class Recorder:
        def on_line(self, *args):
            raise ValueError("bug")

    rec = Recorder()
    callback = rec.on_line
    ls = ListenerSet("line listener")
    ls.add(callback)
    ls.call()
    ls.call()  # two failures in a row
    ls.remove(rec.on_line)  # equal to ``callback``, another object
    ls.add(callback)
    ls.call()  # its first failure since it was added again
    assert len(ls) == 1 and ls.removed == []


def test_the_hostile_board_speaks_protocol_v1_unless_told_otherwise() -> None:
    """The fake board itself: answers decode with a stock Decoder, seqs count up by one."""
    # the dialect named: detection's GET_INFO would take a seq of its own
    with HostileBoard() as board, open_device(board.path, dialect="sonobridge-v1") as dev:
        raw = bytearray()
        dev.add_raw_listener(lambda d, t: raw.extend(d))
        dev.ping()
        board.send(echo_line(0, 0, lines_per_frame=1))
        dev.status()
        wait_until(lambda: dev.stats.frames_complete == 1, what="the line")
        info = dev.info
    msgs = Decoder().feed(bytes(raw))
    assert [type(m).__name__ for m in msgs] == ["Pong", "EchoLine", "Status"]
    assert [m.seq for m in msgs] == [2, 3, 4]  # after DEVICE_INFO 0 and ACK 1
    assert isinstance(info, DeviceInfo) and info == dataclasses.replace(
        DEFAULT_INFO, request_seq=info.request_seq)
    assert np.all(msgs[1].samples == 0)


def test_a_frame_the_board_never_finishes_does_not_make_the_client_deaf() -> None:
    """A board that dies mid-line (100 bytes of a 2 KiB ECHO_LINE, then silence) must not hold
    back the replies behind it: the client gives the partial frame up after its idle timeout
    (``HOST_PARTIAL_TIMEOUT_S``) and the next PING is answered."""
    from sonobridge.device.dialect import HOST_PARTIAL_TIMEOUT_S

    with HostileBoard() as board, open_device(board.path) as dev:
        frame = encode(echo_line(0, 0, n_samples=1024), 99)
        board.inject(frame[:100])
        # the PING's PONGs land inside the unfinished line until it is given up on
        rtt = dev.ping()
        assert HOST_PARTIAL_TIMEOUT_S * 0.9 <= rtt < 0.5  # answered at the first try
        assert dev._decoder.partials_expired == 1
        assert dev.stats.bytes_discarded >= 100
        assert dev.ping() < 0.2  # and all is well afterwards
