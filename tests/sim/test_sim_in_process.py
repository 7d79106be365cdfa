"""The simulated board served in-process (``sim://``): its losses are named by their true cause.

The board shares the client's process and CPU. A tick of its engine that comes late (the CPU
ran something else) must not make it drop lines and blame the link; bytes the client did not
read in time are this host's loss (``lines_lost_host``); a stalled link is still the link's.
A ``sim://`` URL with its options before the ``?`` is an error that shows the right form.
"""

from __future__ import annotations

import threading

import pytest
from serial.serialutil import SerialException

from sonobridge.board.queue_transport import QueueTransport
from sonobridge.device import open_device
from sonobridge.device.errors import PortError
from sonobridge.device.link import open_port
from sonobridge.protocol import Configure, Decoder, EchoLine, Log, Start, encode
from sonobridge.sim.server import SimOptions, create_engine
from sonobridge.sim.urlhandler import protocol_sim
from sonobridge.sim.urlhandler.protocol_sim import engine_for, parse_url

from ..board.board_fixtures import IndexRenderer
from ..device.device_fixtures import wait_until


@pytest.mark.parametrize(("url", "right"), [
    ("sim://cyst", "sim://?phantom=cyst"),
    ("sim://phantom=cyst", "sim://?phantom=cyst"),
    ("sim://cyst?seed=2", "sim://?phantom=cyst&seed=2"),
])
def test_a_sim_url_without_a_question_mark_is_an_error_showing_the_right_form(url, right):
    with pytest.raises(SerialException) as raised:
        parse_url(url)
    assert repr(url) in str(raised.value) and right in str(raised.value)
    with pytest.raises(PortError) as opened:  # what `sonobridge stream sim://cyst` says
        open_port(url)
    assert right in str(opened.value)


def test_a_sim_url_with_a_question_mark_still_opens():
    _, opts = parse_url("sim://?phantom=cyst&seed=2")
    assert (opts.phantom, opts.seed) == ("cyst", 2)
    assert parse_url("sim:///?phantom=cyst")[1].phantom == "cyst"


def _stream(link: str, faults: str = "", late_s: float = 0.5, ticks: int = 100,
            late_is_host_loss: bool = False) -> tuple[object, list, QueueTransport, int]:
    """Drive an in-process board tick by tick on a fake clock; one tick comes ``late_s`` late.

    Returns the engine, the messages the host got, the transport and the bytes in its gaps.
    """
    now = [0.0]
    transport = QueueTransport(drop_when_full=True, buffer_bytes=64 << 20)
    engine = create_engine(SimOptions(link=link, faults=faults, record_truth=True), transport,
                           renderer=IndexRenderer(), clock=lambda: now[0])
    engine.board.late_is_host_loss = late_is_host_loss
    # 8 KB lines at 4 kHz: 33 MB/s, within usb-hs's 35 MB/s; 0.5 s of it is 16 MB, four
    # times the board's 4 MiB send buffer
    transport.host_write(encode(Configure(samples_per_line=4096, lines_per_frame=32,
                                          prf_hz=4000), 0) + encode(Start(), 1))
    for _ in range(ticks):
        engine._step()
        now[0] += 0.001
    now[0] += late_s  # the process ran something else meanwhile
    for _ in range(ticks):
        engine._step()
        now[0] += 0.001
    decoder = Decoder()
    messages = []
    gaps = 0
    while True:
        data, gap, _ = transport.host_read_chunk(1 << 30, 0)
        if not data and not gap:
            return engine, messages, transport, gaps
        messages += decoder.feed(data)
        gaps += gap
        if gap:
            decoder.reset()  # as the client does at a gap


@pytest.mark.parametrize("link", ["unlimited", "usb-hs"])
def test_a_late_engine_tick_loses_nothing(link):
    """The link went on sending while the engine waited for the CPU: every line due in that
    half second reaches the host, none is dropped by the board or blamed on the link."""
    engine, messages, transport, gaps = _stream(link)
    board = engine.board
    lines = [m for m in messages if isinstance(m, EchoLine)]
    assert board.dropped_lines == 0
    assert len(lines) == board.lines_sent > 4000 * 0.6
    assert not [m for m in messages if isinstance(m, Log)]
    assert transport.bytes_dropped == gaps == 0


def test_a_tick_seconds_late_is_not_caught_up_and_the_log_blames_this_host():
    """After three seconds without the CPU (a suspended process) the board keeps what its
    buffer holds rather than rendering and sending 100 MB at once, and says why it dropped."""
    engine, messages, _, gaps = _stream("unlimited", late_s=3.0)
    board = engine.board
    assert board.dropped_lines > 4000 * 2 and gaps == 0
    assert board.renderer.calls < 3.3 * 4000 / 32 / 2  # dropped sweeps were never rendered
    logs = [m.text for m in messages if isinstance(m, Log)]
    assert logs == ["send buffer full: dropping lines (this host did not run the simulated "
                    "board for over a second)"]


def test_in_process_the_lines_of_a_tick_seconds_late_are_gaps_the_host_counts():
    """For ``sim://`` those lines take their sequence numbers and go out as a gap in the
    port, so the client counts them as lost by this host; FRAME_END counts them as sent."""
    engine, messages, transport, gaps = _stream("unlimited", late_s=3.0, late_is_host_loss=True)
    board = engine.board
    lines = [m for m in messages if isinstance(m, EchoLine)]
    assert board.dropped_lines == 0
    assert board.renderer.calls < 3.3 * 4000 / 32 / 2  # sweeps lost whole were never rendered
    lost = board.lines_sent - len(lines)
    assert lost > 4000 * 2
    assert gaps == transport.bytes_dropped == lost * len(encode(lines[0], 0))
    seqs = [m.seq for m in messages if m.seq is not None]
    assert seqs[-1] - seqs[0] + 1 == len(seqs) + lost  # each lost line took its number


def test_a_stalled_link_still_drops_and_says_the_link_stalled():
    # 0.3 s without sending at 33 MB/s: 10 MB for a 4 MiB send buffer (no late tick)
    engine, messages, _, _ = _stream("usb-hs", faults="stall=0.3@0.01", late_s=0.0, ticks=400)
    assert engine.board.dropped_lines > 0
    logs = [m.text for m in messages if isinstance(m, Log)]
    assert logs == ["send buffer full: dropping lines (the link stalled)"]


def test_an_in_process_board_the_host_does_not_read_is_the_hosts_loss(monkeypatch):
    """The client's reader is held up while the in-process board streams: what overflows the
    port's buffer is dropped there and counted as lost by this host; the board drops nothing
    and nothing is blamed on the link or the board."""
    monkeypatch.setattr(protocol_sim, "HOST_BUFFER_BYTES", 1 << 20)
    gate = threading.Event()
    gate.set()
    read_chunk = QueueTransport.host_read_chunk

    def held_up(self, size, timeout_s):
        gate.wait(30)  # cleared: the host's reader thread does not get to run
        return read_chunk(self, size, timeout_s)

    monkeypatch.setattr(QueueTransport, "host_read_chunk", held_up)
    url = "sim://?phantom=wire&name=test-host-gap"
    with open_device(url) as dev:
        engine = engine_for(url)
        transport = engine.transport
        assert dev.link.reader_kind == "thread"
        dev.configure(samples_per_line=2048, lines_per_frame=16, prf_hz=4000)
        dev.start()
        wait_until(lambda: dev.stats.lines_received > 0, what="the first lines")
        gate.clear()
        try:
            wait_until(lambda: transport.bytes_dropped > (2 << 20), timeout_s=20,
                       what="the port's buffer to overflow while the host is held up")
        finally:
            gate.set()
        wait_until(lambda: dev.link.counters.overflows >= 1, what="the gap's place")
        n0 = dev.stats.lines_received
        wait_until(lambda: dev.stats.lines_received > n0 + 3 * 16, timeout_s=10,
                   what="three more sweeps after the stall")
        s = dev.stats
        dev.stop()
        dropped_by_board = engine.board.dropped_lines
    assert dropped_by_board == 0
    assert s.host_overflows >= 1 and s.bytes_dropped_host > 0
    assert s.lines_lost_host > 0
    assert s.lines_lost_link == 0 and s.lines_lost_device == 0
    assert s.crc_errors == 0
    assert s.lines_missing == s.lines_lost_host
    assert "by this host falling behind" in s.summary()
    assert not [text for text in s.logs if "link" in text]


def test_an_in_process_board_not_run_for_seconds_is_the_hosts_loss():
    """The sim:// engine's clock jumps three seconds (its thread did not run meanwhile): the
    lines its buffer could not keep are counted by the client as lost by this host, and the
    board's log says why."""
    url = "sim://?phantom=wire&name=test-late-tick"
    with open_device(url) as dev:
        engine = engine_for(url)
        dev.configure(samples_per_line=2048, lines_per_frame=16, prf_hz=4000)
        dev.start()
        wait_until(lambda: dev.stats.lines_received > 0, what="the first lines")
        with engine.lock:  # between two ticks: the next one comes three seconds late
            real = engine.clock
            engine.clock = lambda: real() + 3.0
        wait_until(lambda: dev.link.counters.overflows >= 1, what="the gap")
        n0 = dev.stats.lines_received
        wait_until(lambda: dev.stats.lines_received > n0 + 3 * 16, timeout_s=10,
                   what="three more sweeps after the gap")
        s = dev.stats
        dev.stop()
        dropped_by_board = engine.board.dropped_lines
    assert dropped_by_board == 0
    # 3 s at 4 kHz, less what the 4 MiB send buffer kept (about 1000 lines of 4 KB)
    assert s.lines_lost_host > 10_000
    assert s.lines_lost_link == 0 and s.lines_lost_device == 0 and s.crc_errors == 0
    assert s.lines_missing == s.lines_lost_host
    assert "by this host falling behind" in s.summary()
    assert s.logs == ["send buffer full: dropping lines (this host did not run the simulated "
                      "board for over a second)"]
