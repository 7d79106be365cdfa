"""The pic0rick-shell dialect: dumps checked against their firings, the shell driven for real.

Decoder tests use hand-written shell output, byte for byte as the stock firmware prints it
(``../shared/boards/README.md``); device tests drive the simulated twin over a real pty, and a
scripted shell for the faults a healthy twin never shows.
"""

from __future__ import annotations

import contextlib
import os
import threading
import tty
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sonobridge.device import ConfigError, NakError, open_device
from sonobridge.device import pic0rick_dialect as pd
from sonobridge.device.errors import HandshakeError, PortError
from sonobridge.device.link import open_port
from sonobridge.device.pic0rick_dialect import FiringPlan, ShellDecoder, gain_code
from sonobridge.protocol import EchoLine, FrameEnd, MsgType, SampleFormat
from sonobridge.protocol.boards import pic0rick_shell as shell

from .device_fixtures import twin_on_pty, wait_until

VALUES = np.arange(shell.N_SAMPLES, dtype=np.uint16) % 1024

#: one firing as the stock shell prints it for `start acq 100 100 1000\nread\n`: the echo of
#: each command after its prompt, the capture lines with the bogus timeout warning, CRLF
#: everywhere, the dump with its trailing comma, and the prompt without a newline
FIRING = (
    b"start acq 100 100 1000\r\n"
    b"Acquisition of 8000 samples started\r\n"
    b"ADC timeout occured\r\n"
    b"Acquisition ended\r\n"
    b"run> read\r\n"
    + shell.format_dump(VALUES)
)


def _decoded(decoder: ShellDecoder, data: bytes, chunks: list[int] | None = None) -> list:
    out: list = []
    pos = 0
    for size in chunks or [len(data)]:
        out += decoder.feed(data[pos:pos + size])
        pos += size
    return out + decoder.feed(data[pos:])


def _requested(n: int = 1) -> ShellDecoder:
    decoder = ShellDecoder()
    for _ in range(n):
        decoder.requested(0.0)
    return decoder


def test_a_clean_firing_is_one_line_and_a_one_line_sweep() -> None:
    decoder = _requested()
    msgs = _decoded(decoder, b"run> " + FIRING)
    assert [type(m) for m in msgs] == [EchoLine, FrameEnd]
    line, end = msgs
    assert line.sample_format == SampleFormat.U16_OB and line.adc_bits == 10
    assert line.sample_rate_hz == 60_000_000 and line.samples.dtype == np.uint16
    assert np.array_equal(line.samples, VALUES)
    assert (end.frame_index, end.lines_sent, end.lines_per_frame) == (0, 1, 1)
    assert [m.seq for m in msgs] == [0, 1]
    st_ = decoder.stats
    # the firmware's inverted timeout test: counted, and the data taken all the same
    assert st_.adc_timeout_warnings == 1 and st_.frames_ok == 1 and st_.frames_bad == 0
    assert not decoder.outstanding


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 4000), max_size=40))
def test_any_chunking_gives_the_same_messages(chunks: list[int]) -> None:
    whole = _decoded(_requested(2), b"run> " + FIRING + FIRING)
    split = _decoded(_requested(2), b"run> " + FIRING + FIRING, chunks)
    assert [type(m) for m in split] == [type(m) for m in whole]
    assert all(np.array_equal(a.samples, b.samples) for a, b in zip(split, whole, strict=True)
               if isinstance(a, EchoLine))
    assert [m.seq for m in split] == [m.seq for m in whole]


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(1, 500), max_size=20))
def test_garbage_never_raises_and_never_makes_a_line(garbage: bytes, chunks: list[int]) -> None:
    decoder = _requested()
    msgs = _decoded(decoder, garbage, chunks)
    # a line needs a capture's "Acquisition ended" and both dump markers around 8000 values
    assert not any(isinstance(m, EchoLine) for m in msgs)
    assert decoder.stats.decoder_errors == 0


def test_a_read_without_a_fresh_capture_is_never_a_new_firing() -> None:
    """`start acq` lost (here: garbled into an unknown command), `read` dumps the previous
    capture: no line, and the firing counts as one the board failed."""
    decoder = _requested(2)
    first = _decoded(decoder, b"run> " + FIRING)
    stale = (b"stXrt acq 100 100 1000\r\nUnknown command: stXrt acq\r\nrun> read\r\n"
             + shell.format_dump(VALUES))
    msgs = _decoded(decoder, stale)
    assert [type(m) for m in first] == [EchoLine, FrameEnd]
    assert [type(m) for m in msgs] == [FrameEnd]
    assert (msgs[0].frame_index, msgs[0].lines_sent) == (1, 0)  # dropped by the device
    assert decoder.stats.stale_dumps == 1 and decoder.stats.unknown_commands == 1


def test_a_damaged_dump_is_a_line_lost_on_the_link() -> None:
    decoder = _requested()
    damaged = FIRING.replace(b"1FF,", b"1F", 1)  # two tokens run together: one value short
    msgs = _decoded(decoder, b"run> " + damaged)
    assert [type(m) for m in msgs] == [FrameEnd]
    assert msgs[0].lines_sent == 1  # the board captured and sent it: the link lost it
    assert decoder.stats.frames_bad == 1 and decoder.stats.frames_ok == 0


def test_a_dump_nobody_asked_for_is_ignored() -> None:
    decoder = ShellDecoder()
    assert _decoded(decoder, b"run> " + FIRING) == []
    assert decoder.stats.unrequested_dumps == 1


def test_an_abandoned_firing_is_handed_on_as_the_devices_loss() -> None:
    decoder = _requested()
    decoder.abandon()
    msgs = decoder.expire(1.0)
    assert [(type(m), m.lines_sent) for m in msgs] == [(FrameEnd, 0)]
    assert decoder.stats.missing_dumps == 1 and not decoder.outstanding
    # a dump that straggles in after that is nobody's firing any more
    assert _decoded(decoder, b"run> " + FIRING) == []


def test_gain_code_inverts_the_nominal_gain() -> None:
    for code in (0, 1, 300, 512, 1023):
        assert gain_code(shell.dac_gain_db(code)) == code
    assert gain_code(-10.0) == 0 and gain_code(99.0) == shell.DAC_MAX_CODE


def test_a_firing_is_a_start_acq_and_a_read_ending_in_lf_only() -> None:
    plan = FiringPlan(100, 100, 1000, 5.0)
    assert plan.command() == b"start acq 100 100 1000\nread\n"


def test_1200_baud_is_refused_before_anything_is_opened() -> None:
    with pytest.raises(PortError, match=r"1200 baud.*bootloader"):
        open_port("/dev/does-not-matter", 1200)


def test_the_port_is_opened_with_dtr_asserted() -> None:
    """The stock firmware initialises nothing until the host asserts DTR."""
    master, slave = os.openpty()
    try:
        ser = open_port(os.ttyname(slave))
        try:
            assert ser.dtr is True and ser.dsrdtr is False
        finally:
            ser.close()
    finally:
        os.close(master)
        os.close(slave)


# -- against the twin, over a real pty -------------------------------------------------------


def test_the_twin_streams_its_captures_bit_for_bit_without_a_dialect_named() -> None:
    with twin_on_pty("pic0rick") as (engine, port), open_device(port) as dev:
        assert dev.dialect.name == "pic0rick-shell"
        assert dev.info.board_name == "pic0rick" and dev.info.max_samples_per_line == 8000
        dev.configure(prf_hz=10)
        dev.start(n_frames=4)
        frames = list(dev.frames(timeout=5.0, count=4))
        assert dev.settle()
        s = dev.stats
    truth = engine.board.truth
    assert len(truth) == 4  # a finite run fires exactly as often as asked
    assert all(np.array_equal(f.samples[0], t) for f, t in zip(frames, truth, strict=True))
    assert s.lines_received == 4 and s.account.lines_lost == 0
    assert s.decoder.adc_timeout_warnings == 4  # one per capture, as on a real board


def test_gain_and_pulse_reach_the_shell() -> None:
    with twin_on_pty("pic0rick") as (engine, port), open_device(port) as dev:
        dev.configure(tgc_db=(shell.dac_gain_db(600),), pulse_freq_hz=2_500_000)
        assert engine.board._dac_code == 600
        assert dev.dialect.plan is not None
        assert (dev.dialect.plan.p_ns, dev.dialect.plan.n_ns) == (200, 200)


def test_what_the_shell_cannot_do_is_a_clear_error() -> None:
    with twin_on_pty("pic0rick") as (_engine, port), open_device(port) as dev:
        with pytest.raises(ConfigError, match="tgc"):
            dev.configure(tgc_db=(10.0, 20.0))
        with pytest.raises(ConfigError, match="samples_per_line"):
            dev.configure(samples_per_line=4000)
        assert not dev.supports(MsgType.GET_STATUS)
        with pytest.raises(NakError, match="UNSUPPORTED"):
            dev.status()


def test_the_old_shell_generation_takes_4_ns_ticks() -> None:
    with twin_on_pty("pic0rick", variant="old") as (engine, port), \
            open_device(port, dialect="pic0rick-shell-old") as dev:
        dev.configure(pulse_freq_hz=5_000_000)
        assert dev.dialect.plan.command() == b"start acq 100 100 500\nread\n"
        dev.start(n_frames=2)
        frames = list(dev.frames(timeout=5.0, count=2))
        assert dev.settle()
    assert engine.board.variant.tick_ns == 4
    assert all(np.array_equal(f.samples[0], t)
               for f, t in zip(frames, engine.board.truth, strict=True))
    assert dev.stats.decoder.adc_timeout_warnings == 0  # the old shell had no such line


# -- a scripted shell, for what a healthy twin never does -----------------------------------


class ScriptedShell:
    """A pty answering like the stock shell, except where a test tells it otherwise."""

    def __init__(self, answer_read: bool = True) -> None:
        self.answer_read = answer_read
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.reads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import select

        line = bytearray()
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            for byte in data:
                if byte != 0x0A:
                    line.append(byte)
                    continue
                os.write(self.master, bytes(line) + b"\r\n" + self._reply(bytes(line)))
                line.clear()

    def _reply(self, line: bytes) -> bytes:
        if line.startswith(b"start acq"):
            return shell.format_acq() + shell.PROMPT
        if line == b"read":
            self.reads += 1
            return shell.format_dump(VALUES) if self.answer_read else b""
        return shell.PROMPT

    def __enter__(self) -> ScriptedShell:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@contextlib.contextmanager
def short_firing_timeout(seconds: float) -> Iterator[None]:
    """The loop's give-up time, shortened so a test need not wait 3 s per firing."""
    saved = pd.FIRING_TIMEOUT_S
    pd.FIRING_TIMEOUT_S = seconds
    try:
        yield
    finally:
        pd.FIRING_TIMEOUT_S = saved


def test_a_dump_that_never_comes_is_a_firing_the_board_failed() -> None:
    with short_firing_timeout(0.3), ScriptedShell(answer_read=False) as board, \
            open_device(board.path, dialect="pic0rick-shell") as dev:
        dev.configure(prf_hz=10)
        dev.start()
        wait_until(lambda: dev.stats.lines_lost_device >= 2, timeout_s=10,
                   what="two firings given up")
        dev.stop()
        assert dev.settle()
        s = dev.stats
    assert s.lines_received == 0 and s.lines_lost_link == 0
    assert s.decoder.missing_dumps == s.lines_lost_device >= 2


def test_silence_is_a_handshake_error_that_says_what_to_check() -> None:
    master, slave = os.openpty()
    try:
        with pytest.raises(HandshakeError, match=r"no pic0rick prompt.*stock firmware"):
            open_device(os.ttyname(slave), dialect="pic0rick-shell")
    finally:
        os.close(master)
        os.close(slave)
