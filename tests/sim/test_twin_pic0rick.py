"""The pic0rick twin: the stock shell byte for byte, parsed by the host's ShellParser."""

from __future__ import annotations

import contextlib
import os
import select
import time
import tty
from collections.abc import Iterator

import numpy as np
import pytest

from sonobridge.board.engine import BoardEngine
from sonobridge.board.pty_transport import PtyTransport
from sonobridge.protocol import DeviceState, SweepKind
from sonobridge.protocol.boards.pic0rick_shell import (
    ADC_TIMEOUT,
    DAC_ENDED,
    DAC_STARTED,
    ERASE,
    N_SAMPLES,
    PROMPT,
    AcqEnded,
    AcqStarted,
    AdcTimeoutWarning,
    Dump,
    Echo,
    Prompt,
    ShellParser,
    Text,
    UnknownCommand,
    dac_gain_db,
    format_dump,
)
from sonobridge.sim.server import SimOptions, create_engine
from sonobridge.sim.twins import create_twin
from sonobridge.sim.twins.pic0rick import (
    ACQ_OVERHEAD_S,
    CAPTURE_S,
    INIT_S,
    Pic0rickTwin,
    create_board,
    excite,
    pulse_edges,
    validate_options,
)

#: the wire at 10 mm in the wire phantom: round trip 13 µs, sample 779 at 60 MS/s
WIRE_10MM = slice(740, 830)


class Host:
    """Drives a twin directly with a fake clock: feed, then pull everything due."""

    def __init__(self, twin: Pic0rickTwin, t: float = 0.0) -> None:
        self.twin = twin
        self.t = t
        self.parser = ShellParser()

    def send(self, data: bytes, after_s: float = 0.0) -> bytes:
        """Write ``data`` at the current time, let ``after_s`` pass, return what came out."""
        self.twin.feed(data, self.t)
        out = b"".join(chunk for _, chunk in self.twin.pull(self.t))
        self.t += after_s
        return out + self.wait(0.0)

    def wait(self, seconds: float) -> bytes:
        """Let ``seconds`` pass and return what the board printed meanwhile."""
        self.t += seconds
        self.twin.feed(b"", self.t)
        return b"".join(chunk for _, chunk in self.twin.pull(self.t))

    def command(self, cmd: bytes, after_s: float = 0.01) -> list[object]:
        """Send a command, let it finish, and parse the reply."""
        self.parser.expect_echo(cmd)
        return self.parser.feed(self.send(cmd, after_s))


def booted(variant: str = "stock", seed: int = 1, phantom: str = "wire") -> Host:
    """A twin past DTR and its init, its first prompt parsed."""
    host = Host(Pic0rickTwin(phantom, seed=seed, variant=variant, record_truth=True))
    assert host.send(b"\0") == b""  # DTR (the NUL itself is ignored by the shell)
    assert host.parser.feed(host.wait(INIT_S)) == [Prompt()]
    return host


def capture(host: Host, cmd: bytes = b"start acq 200 200 2000\n") -> np.ndarray:
    """Run ``cmd`` then ``read``; return the dumped samples after checking the reply."""
    events = host.command(cmd)
    assert [type(e) for e in events] == [Echo, AcqStarted, AdcTimeoutWarning, AcqEnded, Prompt]
    events = host.command(b"read\n")
    assert events[0] == Echo("read") and events[2] == Prompt()
    dump = events[1]
    assert isinstance(dump, Dump) and dump.ok
    return dump.samples


# -- power-on and the shell ---------------------------------------------------------------


def test_silent_until_dtr_then_prompt_after_init():
    host = Host(Pic0rickTwin(seed=1))
    assert host.wait(5.0) == b""  # no DTR, no host byte: the firmware waits in main()
    assert host.send(b"\0") == b""
    assert host.wait(INIT_S * 0.9) == b""
    assert host.wait(INIT_S * 0.2) == PROMPT  # no newline after it


def test_bytes_sent_before_the_prompt_are_kept_and_run_after_it():
    host = Host(Pic0rickTwin(seed=1))
    out = host.send(b"set mux\n")  # its first byte stands for DTR
    assert out == b""
    assert host.wait(INIT_S) == b"run> set mux\r\nrun> "


def test_echo_prompt_and_every_newline_as_crlf():
    host = booted()
    out = host.send(b"set mux\n")
    assert out == b"set mux\r\nrun> "
    assert host.parser.feed(out) == [Echo("set mux"), Prompt()]


def test_crlf_gives_an_empty_command_and_a_second_prompt():
    host = booted()
    out = host.send(b"clear mux\r\n")
    assert out == b"clear mux\r\nrun> \r\nrun> "
    events = host.parser.feed(out)
    assert [e for e in events if e == Prompt()] == [Prompt(), Prompt()]


def test_unknown_commands():
    host = booted()
    assert host.command(b"hello world again\n") == [
        Echo("hello world again"), UnknownCommand("hello world"), Prompt()]
    assert host.command(b"status\n") == [Echo("status"), UnknownCommand("status"), Prompt()]
    assert host.command(b"read now\n")[1] == UnknownCommand("read now")


def test_backspace_erases_on_the_line_and_in_the_command():
    host = booted()
    out = host.send(b"reaX\bd\n")
    assert out.startswith(b"reaX" + ERASE + b"d\r\n")
    events = host.parser.feed(out)
    assert events[0] == Echo("read")
    assert isinstance(events[1], Dump) and events[1].ok  # the edited command ran


def test_line_buffer_keeps_127_characters():
    host = booted()
    out = host.send(b"x" * 200 + b"\n")
    assert out == b"x" * 127 + b"\r\nUnknown command: " + b"x" * 127 + b"\r\nrun> "


def test_write_dac_prints_the_firmware_lines():
    host = booted()
    assert host.command(b"write dac 500\n") == [
        Echo("write dac 500"), Text(DAC_STARTED.decode()), Text(DAC_ENDED.decode()), Prompt()]


def test_read_before_any_capture_dumps_the_zeroed_buffer():
    host = booted()
    out = host.send(b"read\n")
    assert out == b"read\r\n" + format_dump(np.zeros(N_SAMPLES, np.uint16))
    assert host.twin.truth == []  # no capture yet


# -- captures -----------------------------------------------------------------------------


def test_capture_reply_then_read_equals_the_truth_bit_for_bit():
    host = booted()
    samples = capture(host)
    assert len(host.twin.truth) == 1
    np.testing.assert_array_equal(samples, host.twin.truth[0])
    assert samples.dtype == np.uint16 and samples.max() <= 1023
    centred = samples.astype(int) - 512
    # the echo of the wire stands far above the noise around it
    assert np.abs(centred[WIRE_10MM]).max() > 20 * np.std(centred[100:600])
    assert host.parser.stats.warnings == 1 and host.parser.stats.bytes_discarded == 0


def test_capture_takes_its_time_and_input_waits_for_it():
    host = booted()
    out = host.send(b"start acq 200 200 2000\nread\n")  # both at once: read waits its turn
    assert out == b"start acq 200 200 2000\r\nAcquisition of 8000 samples started\r\n"
    assert host.twin.acquiring and host.twin.state == DeviceState.STREAMING
    assert host.wait(CAPTURE_S * 0.99) == b""
    rest = host.wait(ACQ_OVERHEAD_S + CAPTURE_S * 0.02)
    assert rest.startswith(ADC_TIMEOUT + b"\r\nAcquisition ended\r\nrun> read\r\n")
    assert not host.twin.acquiring and host.twin.state == DeviceState.IDLE
    dump = [e for e in ShellParser().feed(out + rest) if isinstance(e, Dump)]
    np.testing.assert_array_equal(dump[0].samples, host.twin.truth[0])


def test_second_capture_differs_only_by_noise_and_read_is_never_stale():
    host = booted()
    first = capture(host)
    second = capture(host)
    np.testing.assert_array_equal(second, host.twin.truth[1])
    assert not np.array_equal(first, second)
    diff = second.astype(float) - first.astype(float)
    # noise at the lowest gain: 0.62 LSB rms plus quantisation, twice over in a difference
    assert 0.5 < np.std(diff[100:600]) < 2.0
    # the echoes are the same (pulser jitter is 0.3 %): everything else is noise
    a, b = (x.astype(float) - 512 for x in (first, second))
    assert np.corrcoef(a[WIRE_10MM], b[WIRE_10MM])[0, 1] > 0.99


def test_write_dac_raises_the_echo_by_its_nominal_gain():
    host = booted()
    low = capture(host).astype(float) - 512
    host.command(b"write dac 100\n")
    high = capture(host).astype(float) - 512
    assert np.abs(high).max() < 511  # not clipped, so the ratio is the gain's
    ratio = np.sqrt(np.mean(high[WIRE_10MM] ** 2) / np.mean(low[WIRE_10MM] ** 2))
    expected = 10 ** ((dac_gain_db(100) - dac_gain_db(0)) / 20)
    assert ratio == pytest.approx(expected, rel=0.05)


def test_write_dac_beyond_ten_bits_follows_the_spi_word():
    host = booted()
    base = capture(host).astype(float) - 512
    host.command(b"write dac 8292\n")  # 0x2064: bit 13 lands on channel B's select bit
    same = capture(host).astype(float) - 512
    assert np.std(same[WIRE_10MM]) == pytest.approx(np.std(base[WIRE_10MM]), rel=0.05)


def test_high_gain_clips_at_the_ten_bit_range():
    host = booted()
    host.command(b"write dac 1023\n")
    samples = capture(host, b"start acq 100 100 1000\n")
    assert samples.min() == 0 and samples.max() == 1023


def test_pulse_widths_shape_the_echo():
    host = booted()
    matched = capture(host, b"start acq 100 100 1000\n").astype(float) - 512  # 104 ns each
    short = capture(host, b"start acq 0 0 1000\n").astype(float) - 512  # 8 ns each
    long = capture(host, b"start acq 1000 1000 1000\n").astype(float) - 512
    peak = {name: np.abs(x[WIRE_10MM]).max() for name, x in
            (("matched", matched), ("short", short), ("long", long))}
    assert peak["short"] < 0.1 * peak["matched"]
    # a long pulse answers each of its edges apart: a second wavelet 1008 ns (60 samples) on
    window = slice(770, 900)
    env = np.abs(long[window])
    assert env[:20].max() > 0.2 * peak["matched"] and env[55:75].max() > 0.2 * peak["matched"]
    assert np.abs(matched[window])[55:75].max() < 0.1 * peak["matched"]


def test_excite_matched_pulse_returns_the_echo():
    fs = 60e6
    t = np.arange(4000) / fs
    echo = (np.exp(-0.5 * ((t - 20e-6) / 1e-6) ** 2) * np.cos(2 * np.pi * 5e6 * t)
            ).astype(np.float32)
    edges = [(0.0, 1.0), (100e-9, -2.0), (200e-9, 1.0)]
    out = excite(echo, edges, fs)
    # a long echo: the three copies, 100 ns apart, add in phase under one envelope
    assert np.abs(out).max() == pytest.approx(np.abs(echo).max(), rel=0.01)
    assert pulse_edges(12, 12) == [(0.0, 1.0), (104e-9, -2.0), (208e-9, 1.0)]
    assert pulse_edges(12, 12, variant=_old())[1][0] == pytest.approx(52e-9)


def _old():
    from sonobridge.protocol.boards.pic0rick_shell import VARIANTS

    return VARIANTS["old"]


def test_same_seed_same_captures():
    a, b = booted(seed=7), booted(seed=7)
    for host in (a, b):
        capture(host)
        capture(host)
    for x, y in zip(a.twin.truth, b.twin.truth, strict=True):
        np.testing.assert_array_equal(x, y)


def test_old_variant_prints_no_timeout_warning():
    host = booted("old")
    events = host.command(b"start acq 100 100 1000\n")
    assert [type(e) for e in events] == [Echo, AcqStarted, AcqEnded, Prompt]
    assert host.parser.stats.warnings == 0


def test_pull_respects_the_byte_budget():
    host = booted()
    host.twin.feed(b"read\n", host.t)
    got = b""
    for _ in range(10_000):
        chunks = host.twin.pull(host.t, 1000)
        if not chunks:
            break
        assert sum(len(c) for _, c in chunks) <= 1000
        assert all(seq == 0 for seq, _ in chunks)
        got += b"".join(c for _, c in chunks)
    assert host.twin.pull(host.t, 0) == []
    assert got == b"read\r\n" + format_dump(np.zeros(N_SAMPLES, np.uint16))
    assert host.twin.pending_bytes == 0


def test_reboot_forgets_the_capture_and_the_gain():
    host = booted()
    capture(host)
    host.twin.power_on(host.t, announce=True)  # rebooted under an open port: DTR is up
    assert host.parser.feed(host.wait(INIT_S)) == [Prompt()]
    events = host.command(b"read\n")
    assert not events[1].samples.any()


def test_info_is_the_nominal_pic0rick():
    info = Pic0rickTwin(seed=1).info
    assert info.board_name == "pic0rick (simulated twin)"
    assert (info.adc_rate_hz, info.adc_bits) == (60_000_000, 10)
    assert info.min_samples_per_line == info.max_samples_per_line == N_SAMPLES
    assert info.sweep_kind == SweepKind.FIXED and info.max_lines_per_frame == 1
    assert (info.gain_min_cdb, info.gain_max_cdb) == (750, 5550)


def test_options_choose_phantom_seed_variant_and_truth():
    opts = SimOptions(board="pic0rick", phantom="cyst", seed=3, record_truth=True,
                      variant="old")
    twin = create_twin("pic0rick", opts)
    assert isinstance(twin, Pic0rickTwin)
    assert (twin.phantom.name, twin.seed, twin.variant.name, twin.record_truth) == (
        "cyst", 3, "old", True)
    assert create_board(SimOptions(board="pic0rick")).variant.name == "stock"
    with pytest.raises(ValueError, match="stock, old"):
        validate_options(SimOptions(board="pic0rick", variant="new"))


# -- on a real pty, through the engine ----------------------------------------------------


@contextlib.contextmanager
def twin_on_pty(**options: object) -> Iterator[tuple[BoardEngine, int]]:
    """The twin served by ``create_engine`` on a pty; yields (engine, host's open fd)."""
    transport = PtyTransport()
    engine = create_engine(SimOptions(board="pic0rick", record_truth=True, **options), transport)
    fd = os.open(transport.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    engine.start()
    try:
        yield engine, fd
    finally:
        os.close(fd)
        engine.stop()
        assert engine.error is None


def read_until(fd: int, parser: ShellParser, n_prompts: int, timeout_s: float = 10.0
               ) -> list[object]:
    """Parse what the board sends until ``n_prompts`` prompts came (select with a deadline)."""
    events: list[object] = []
    deadline = time.monotonic() + timeout_s
    while sum(e == Prompt() for e in events) < n_prompts:
        left = deadline - time.monotonic()
        assert left > 0, f"timed out; got {events}"
        if select.select([fd], [], [], left)[0]:
            with contextlib.suppress(BlockingIOError):
                events += parser.feed(os.read(fd, 1 << 16))
    return events


def test_on_a_pty_capture_and_dump_equal_the_truth():
    with twin_on_pty(seed=5) as (engine, fd):
        parser = ShellParser()
        os.write(fd, b"\0")  # stands for DTR
        assert read_until(fd, parser, 1) == [Prompt()]
        for cmd in (b"start acq 200 200 2000\n", b"read\n"):
            parser.expect_echo(cmd)
        os.write(fd, b"start acq 200 200 2000\nread\n")
        events = read_until(fd, parser, 2)
        assert [type(e) for e in events] == [
            Echo, AcqStarted, AdcTimeoutWarning, AcqEnded, Prompt, Echo, Dump, Prompt]
        with engine.lock:
            truth = list(engine.board.truth)
        assert len(truth) == 1
        assert events[6].ok
        np.testing.assert_array_equal(events[6].samples, truth[0])
        assert parser.stats.bytes_discarded == 0 and parser.stats.echo_mismatches == 0


def test_on_a_pty_crlf_and_unknown_command():
    with twin_on_pty(variant="old") as (_, fd):
        parser = ShellParser()
        os.write(fd, b"bogus cmd\r\n")  # the first byte stands for DTR; CR and LF both end it
        events = read_until(fd, parser, 3)
        assert events == [Prompt(), Echo("bogus cmd"), UnknownCommand("bogus cmd"), Prompt(),
                          Echo(""), Prompt()]
