"""The acquisition reader: a separate process copies a real pty into a bounded buffer.

Checked here: every byte arrives once and in order, stamped with the shared monotonic clock;
an overflowing buffer drops bytes and says exactly how many and where; the port going away is
reported; and, end to end through the device client, lines lost because the host stalled are
counted as the host's, not the link's or the board's.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

import numpy as np
import pytest

from sonobridge.device import open_device
from sonobridge.device.acquisition import ProcessReader, ThreadReader, start_reader
from sonobridge.device.link import open_port
from sonobridge.device.reader_process import NICENESS
from sonobridge.device.receiver import Receiver
from sonobridge.protocol import Decoder, DeviceInfo, EchoLine, FrameEnd, SampleFormat, encode

from .device_fixtures import sim_on_pty, wait_until


def _pattern(n: int, start: int = 0) -> bytes:
    """Bytes whose position can be read back from their value (a u32 counter per 4 bytes)."""
    words = np.arange(start // 4, (start + n + 3) // 4 + 1, dtype="<u4")
    off = start % 4
    return words.tobytes()[off: off + n]


def _drain(reader, until_closed: bool = True, timeout_s: float = 20.0) -> list:
    events = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = reader.events(0.1)
        events += got
        if until_closed and any(e.kind == "closed" for e in got):
            return events
    raise AssertionError(f"the reader did not report the port closed within {timeout_s} s")


@pytest.fixture
def pty_port():
    """A raw pty pair: (master fd, opened pyserial port on the slave)."""
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    ser = open_port(path)
    os.close(slave)
    try:
        yield master, ser
    finally:
        ser.close()
        with contextlib.suppress(OSError):
            os.close(master)


def test_process_reader_delivers_every_byte_in_order(pty_port) -> None:
    master, ser = pty_port
    reader = start_reader(ser)
    assert isinstance(reader, ProcessReader)
    data = _pattern(3 << 20)
    view = memoryview(data)
    t0 = time.monotonic_ns()
    while view:
        n = os.write(master, view[:65536])
        view = view[n:]
    events = []
    wait_until(lambda: events.extend(reader.events(0.05)) or sum(
        e.n_bytes for e in events if e.kind == "data") >= len(data), what="every byte")
    # (a pty discards what it still holds when its master closes: close only after)
    os.close(master)  # the board goes away: the reader reports it
    events += _drain(reader)
    reader.stop()
    got = b"".join(e.data for e in events if e.kind == "data")
    assert got == data
    assert not [e for e in events if e.kind == "dropped"]
    stamps = [e.host_ns for e in events if e.kind == "data"]
    assert stamps == sorted(stamps) and stamps[0] >= t0  # the shared CLOCK_MONOTONIC
    assert events[-1].kind == "closed"


def test_reader_process_says_what_priority_it_got(pty_port) -> None:
    _master, ser = pty_port
    reader = start_reader(ser)
    try:
        events = []
        wait_until(lambda: events.extend(reader.events(0.05)) or any(
            e.kind == "note" for e in events), what="the reader's note")
        note = next(e.data.decode() for e in events if e.kind == "note")
        nice = os.getpriority(os.PRIO_PROCESS, reader._proc.pid)
        if nice == NICENESS:
            assert f"niceness {NICENESS}" in note
        else:  # not allowed here: it must say so rather than pretend
            assert "normal priority" in note and "CAP_SYS_NICE" in note
    finally:
        reader.stop()


@pytest.mark.parametrize("kind", ["process", "thread"])
def test_overflow_drops_new_bytes_and_marks_the_gap(pty_port, kind: str) -> None:
    """Nobody takes events while 6 MiB arrive into a 256 KiB buffer: the rest is dropped,
    counted to the byte, and the bytes that did arrive are exactly the stream minus the gaps."""
    master, ser = pty_port
    capacity = 256 << 10
    reader = start_reader(ser, kind, capacity=capacity)
    assert isinstance(reader, ProcessReader if kind == "process" else ThreadReader)
    total = 6 << 20
    data = _pattern(total)
    view = memoryview(data)
    while view:  # blocks while the pty is full: the reader keeps emptying it (and dropping)
        n = os.write(master, view[:65536])
        view = view[n:]
    events = []
    # a gap is reported as soon as the buffer has room again, so every byte is accounted for
    # without more input; a byte sent after that is delivered, after the last gap
    wait_until(lambda: events.extend(reader.events(0.05)) or sum(
        e.n_bytes for e in events if e.kind in ("data", "dropped")) >= total, timeout_s=20,
        what="every byte delivered or reported dropped")
    os.write(master, b"!")
    data += b"!"
    total += 1
    wait_until(lambda: events.extend(reader.events(0.05)) or sum(
        e.n_bytes for e in events if e.kind in ("data", "dropped")) >= total, timeout_s=20,
        what="every byte delivered or reported dropped")
    os.close(master)
    events += _drain(reader)
    reader.stop()
    delivered = sum(e.n_bytes for e in events if e.kind == "data")
    dropped = sum(e.n_bytes for e in events if e.kind == "dropped")
    assert dropped > 0
    assert delivered + dropped == total
    # rebuild the stream: each data event continues where the last left off, each dropped
    # event skips exactly its bytes
    pos = 0
    for e in events:
        if e.kind == "data":
            assert e.data == data[pos: pos + e.n_bytes], f"data at {pos} out of place"
            pos += e.n_bytes
        elif e.kind == "dropped":
            pos += e.n_bytes
    assert pos == total
    assert events[-2].kind == "data" and events[-2].data.endswith(b"!")


def test_receiver_counts_a_host_gap_as_the_hosts_loss() -> None:
    info = DeviceInfo(request_seq=0, ensemble_max=1, max_lines_per_frame=8,
                      sample_formats=1 << SampleFormat.I16)
    frames = []
    rx = Receiver(Decoder(), on_frame=frames.append)
    seq = 0

    def line(i: int) -> bytes:
        nonlocal seq
        seq += 1
        return encode(EchoLine(samples=np.full(64, i, np.int16), sample_rate_hz=20_000_000,
                               frame_index=0, line_index=i, lines_per_frame=8), seq)

    rx.feed(encode(info, 0), 1)
    stream = b"".join(line(i) for i in range(3))
    cut = line(3) + line(4)  # these never reach the decoder: the host dropped them
    tail = line(5)
    rx.feed(stream + line(3)[:30], 2)  # a line cut in the middle by the overflow
    rx.host_gap(len(cut) - 30)
    seq_end = seq + 1
    rx.feed(tail[10:] + line(6) + line(7)
            + encode(FrameEnd(frame_index=0, lines_per_frame=8, lines_sent=8), seq_end), 3)
    assert len(frames) == 1
    f = frames[0]
    assert f.missing_lines == [3, 4, 5]
    assert (f.lost_host, f.lost_link, f.lost_device) == (3, 0, 0)
    c = rx.counts
    assert (c.lines_lost_host, c.lines_lost_link, c.lines_lost_device) == (3, 0, 0)
    assert rx.decoder.stats.crc_errors == 0 and rx.decoder.stats.seq_gaps == 0


def test_a_stalled_host_loses_lines_counted_as_host_losses() -> None:
    """A line listener blocks the receive thread (a busy host) while the board streams into a
    small acquisition buffer: what overflows is counted as lost by the host, nothing else."""
    # an unlimited link: the board's own buffer only fills if nobody reads the pty
    with sim_on_pty(link="unlimited") as (engine, port):
        dev = open_device(port, buffer_bytes=1 << 20)
        try:
            release = threading.Event()
            blocked = threading.Event()

            def busy(line: EchoLine, host_ns: int) -> None:
                if not release.is_set():
                    blocked.set()
                    release.wait(30)

            dev.configure(samples_per_line=4096, lines_per_frame=32, prf_hz=2000)
            dev.add_line_listener(busy)
            sent0 = engine.stats.bytes_sent
            dev.start()
            wait_until(blocked.is_set, what="the listener to block")
            # past the buffer, the 1 MiB pipe and the pty's buffer, the reader must drop
            wait_until(lambda: engine.stats.bytes_sent - sent0 > (6 << 20), timeout_s=20,
                       what="the board to send 6 MiB while the host is stalled")
            release.set()
            wait_until(lambda: dev.link.counters.overflows >= 1, what="the overflow's place")
            n0 = dev.stats.lines_received
            # the host catches up while the board goes on streaming
            wait_until(lambda: dev.stats.lines_received > n0 + 3 * 32, timeout_s=10,
                       what="three more sweeps after the stall")
            s = dev.stats  # every finished sweep is counted (STOP will cut the current one)
            dev.stop()
        finally:
            dev.close()
    assert s.host_overflows >= 1 and s.bytes_dropped_host > 0
    assert s.lines_lost_host > 0
    assert s.lines_lost_link == 0 and s.lines_lost_device == 0
    assert s.crc_errors == 0
    assert s.lines_missing == s.lines_lost_host
    assert "by this host falling behind" in s.summary()
