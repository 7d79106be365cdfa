"""The reference firmware's Linux build, spoken to by the Python host over a real pty.

The C firmware and the Python host meet only at the bytes: these tests build the host port
with make, start it, open the pty it prints with pyserial, send frames made by
``sonobridge.protocol.encode`` and decode everything it sends with ``sonobridge.protocol.Decoder``.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import serial

from sonobridge.hil.board import firmware_host_argv
from sonobridge.protocol import (
    Ack,
    Configure,
    Decoder,
    DeviceInfo,
    EchoLine,
    ErrorCode,
    Flags,
    FrameEnd,
    GetInfo,
    GetStatus,
    Log,
    Message,
    MsgType,
    Nak,
    Ping,
    Pong,
    Reset,
    SampleFormat,
    Start,
    Status,
    Stop,
    encode,
    encode_frame,
)
from sonobridge.protocol.constants import PARTIAL_FRAME_TIMEOUT_S
from sonobridge.protocol.messages import payload_fields
from sonobridge.protocol.rules import check_configure, nominal_positions
from sonobridge.sim.profile import load_profile

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "hardware" / "firmware"
BINARY = FIRMWARE / "build" / "sonobridge-fw-host"
PROFILE = ROOT / "hardware" / "boards" / "firmware-host.toml"
SOUND_M_S = 1540.0


@pytest.fixture(scope="module")
def fw_binary() -> Path:
    """The host port, built by its Makefile (a no-op when it is up to date)."""
    done = subprocess.run(["make", "-C", str(FIRMWARE), "host"], capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert BINARY.is_file()
    return BINARY


class FwHost:
    """One running firmware process and a pyserial connection to its pty."""

    def __init__(self, binary: Path, *args: str) -> None:
        self.proc = subprocess.Popen([str(binary), *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10.0)
        assert ready, "the firmware printed no pty path within 10 s"
        self.path = self.proc.stdout.readline().strip()
        assert self.path.startswith("/dev/"), self.path
        self.ser = serial.Serial(self.path, timeout=0.05)
        self.dec = Decoder()
        self.received: list[Message] = []
        self.bytes_in = 0
        self._seq = 0

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def send(self, msg: Message, *, seq: int | None = None, flags: int = 0) -> int:
        seq = self.next_seq() if seq is None else seq
        self.ser.write(encode(msg, seq, flags=flags))
        return seq

    def send_raw(self, data: bytes) -> None:
        self.ser.write(data)

    def pump(self) -> list[Message]:
        data = self.ser.read(max(1, self.ser.in_waiting))
        self.bytes_in += len(data)
        msgs = self.dec.feed(data)
        self.received += msgs
        return msgs

    def wait_for(self, pred: Callable[[Message], bool], timeout: float = 3.0) -> Message:
        """The first message (from now on) for which pred holds; fails after timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.pump():
                if pred(m):
                    return m
        raise AssertionError(f"no matching message within {timeout} s; "
                             f"{self.dec.stats.summary()}")

    def request(self, msg: Message, *, flags: int = 0, timeout: float = 3.0) -> Message:
        """Send a command and return the reply that names its seq."""
        seq = self.send(msg, flags=flags)
        return self.wait_for(lambda m: getattr(m, "request_seq", None) == seq, timeout)

    def collect(self, seconds: float) -> list[Message]:
        deadline = time.monotonic() + seconds
        out: list[Message] = []
        while time.monotonic() < deadline:
            out += self.pump()
        return out

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.ser.close()
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=5)
        finally:
            self.proc.stdout.close()
            self.proc.stderr.close()


@pytest.fixture
def fw(fw_binary: Path):
    dev = FwHost(fw_binary)
    yield dev
    if dev.proc.poll() is None:
        assert dev.stop() == 0


def assert_clean(dev: FwHost) -> None:
    s = dev.dec.stats
    assert (s.crc_errors, s.header_errors, s.frames_bad, s.malformed, s.unsupported) == (0,) * 5
    assert s.bytes_discarded == 0
    assert s.seq_gaps == 0


def small_config(**changes) -> Configure:
    base = dict(sample_format=SampleFormat.I16, decimation=1, ensemble_size=2, pulse_cycles=2,
                samples_per_line=1024, start_delay_samples=0, prf_hz=2000, lines_per_frame=9,
                sweep_start=-400000, sweep_end=400000, pulse_freq_hz=5_000_000, hv_mv=48_000,
                tgc_cdb=(0, 1000, 2000))
    base.update(changes)
    return Configure(**base)


def stream(dev: FwHost, n_frames: int, timeout: float = 10.0) -> list[Message]:
    """START n_frames and return everything up to the last FRAME_END."""
    start = len(dev.received)
    ack = dev.request(Start(n_frames=n_frames))
    assert isinstance(ack, Ack) and ack.request_type == MsgType.START
    dev.wait_for(lambda m: isinstance(m, FrameEnd) and m.frame_index == n_frames - 1, timeout)
    return dev.received[start:]


# -- identity ---------------------------------------------------------------------------------

def test_firmware_device_info_matches_board_profile(fw: FwHost) -> None:
    profile = load_profile(PROFILE)
    info = fw.request(GetInfo())
    assert isinstance(info, DeviceInfo)
    for name in payload_fields(DeviceInfo):
        if name != "request_seq":
            assert getattr(info, name) == getattr(profile.info, name), name
    assert info.flags == Flags.SIMULATED  # the SIMULATED capability flags every frame
    status = fw.request(GetStatus())
    assert isinstance(status, Status)
    assert status.temperature_cdeg == round(profile.temperature_c * 100)
    assert_clean(fw)


def test_firmware_power_up_configuration_matches_profile(fw: FwHost) -> None:
    cfg = load_profile(PROFILE).defaults
    msgs = stream(fw, 1)
    lines = [m for m in msgs if isinstance(m, EchoLine)]
    assert len(lines) == cfg.lines_per_frame * cfg.ensemble_size
    want_pos = np.round(nominal_positions(cfg)).astype(int)
    for i, line in enumerate(lines):
        assert line.sample_format == cfg.sample_format
        assert line.n_samples == cfg.samples_per_line
        assert line.lines_per_frame == cfg.lines_per_frame
        assert line.sample_rate_hz == round(40_000_000 / cfg.decimation)
        assert line.start_delay_samples == cfg.start_delay_samples
        assert line.config_id == 0
        assert line.line_index == i
        assert line.beam_position == want_pos[i]
    end = [m for m in msgs if isinstance(m, FrameEnd)]
    assert [(e.frame_index, e.lines_sent, e.lines_per_frame) for e in end] == [
        (0, cfg.lines_per_frame, cfg.lines_per_frame)]
    assert_clean(fw)


# -- streaming --------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", list(SampleFormat))
def test_firmware_stream_decodes_cleanly(fw: FwHost, fmt: SampleFormat) -> None:
    cfg = small_config(sample_format=fmt)
    info = fw.request(GetInfo())
    assert check_configure(cfg, info) is None
    ack = fw.request(cfg)
    assert isinstance(ack, Ack) and ack.request_type == MsgType.CONFIGURE
    msgs = stream(fw, 3)
    assert_clean(fw)
    # every frame the device sent, of any type, in one unbroken sequence
    seqs = [m.seq for m in fw.received]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))

    lines = [m for m in msgs if isinstance(m, EchoLine)]
    ends = [m for m in msgs if isinstance(m, FrameEnd)]
    order = [(li, e) for li in range(cfg.lines_per_frame) for e in range(cfg.ensemble_size)]
    want_pos = np.round(nominal_positions(cfg)).astype(int)
    bits = 8 if fmt == SampleFormat.U8 else 12
    for f in range(3):
        got = [m for m in lines if m.frame_index == f]
        assert [(m.line_index, m.ensemble_index) for m in got] == order
        assert [m.beam_position for m in got] == [want_pos[li] for li, _ in order]
        for m in got:
            assert (m.sample_format, m.adc_bits, m.config_id) == (fmt, bits, 1)
            assert m.sample_rate_hz == 40_000_000 and m.ensemble_size == 2
            assert m.n_samples == cfg.samples_per_line
            lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if fmt == SampleFormat.I16 \
                else (0, (1 << bits) - 1)
            assert lo <= int(m.samples.min()) and int(m.samples.max()) <= hi
    assert [(e.frame_index, e.lines_sent, e.lines_per_frame) for e in ends] == [
        (f, len(order), cfg.lines_per_frame) for f in range(3)]

    # PRF: firings on the 1/2000 s grid of the device clock, never closer than a period. The
    # host build is not real-time, so a descheduled process shows as an occasional gap of
    # whole periods (see test_firmware_stall_makes_lines_later_not_a_burst).
    stamps = np.array([m.timestamp_us for m in lines], dtype=np.int64)
    gaps = np.diff(stamps)
    assert gaps.min() >= 500
    assert not (gaps % 500).any()
    assert float(np.median(gaps)) == 500

    # the synthetic point reflector at 10 mm, straight ahead (line 4 of 9 is at 0 rad)
    centre = next(m for m in lines if m.line_index == 4)
    assert centre.beam_position == 0
    rf = centre.samples.astype(np.int64) - centre.zero_level
    expect = 2 * 0.010 / SOUND_M_S * centre.sample_rate_hz
    assert abs(int(np.argmax(np.abs(rf))) - expect) < 20


def test_firmware_tgc_raises_gain_along_the_line(fw: FwHost) -> None:
    # the same echo environment with 0 dB flat, then 0 -> 40 dB: late noise grows ~100x
    def late_rms(tgc: tuple[int, ...]) -> float:
        assert isinstance(fw.request(small_config(tgc_cdb=tgc, ensemble_size=1)), Ack)
        msgs = stream(fw, 1)
        tail = [m.samples[-200:].astype(float) for m in msgs if isinstance(m, EchoLine)]
        return float(np.sqrt(np.mean(np.square(tail))))

    flat, ramp = late_rms((0,)), late_rms((0, 4000))
    assert ramp > 20 * max(flat, 0.5)


def test_firmware_configure_naks_match_host_rules(fw: FwHost) -> None:
    info = fw.request(GetInfo())
    assert isinstance(info, DeviceInfo)
    rng = random.Random(7)
    cases = [
        small_config(sample_format=7),
        small_config(decimation=0), small_config(decimation=9),
        small_config(ensemble_size=17), small_config(pulse_cycles=0),
        small_config(samples_per_line=15), small_config(samples_per_line=32769),
        small_config(start_delay_samples=65536), small_config(prf_hz=9),
        small_config(prf_hz=20001), small_config(lines_per_frame=0),
        small_config(lines_per_frame=257), small_config(tgc_cdb=(), tgc_count=0),
        small_config(sweep_start=-523600), small_config(sweep_end=523600),
        small_config(pulse_freq_hz=999_999), small_config(hv_mv=100_001),
        small_config(tgc_cdb=(0, 4351)), small_config(tgc_cdb=(-451,)),
        small_config(tgc_cdb=(0, 0, 5), tgc_count=2),
        small_config(sample_format=SampleFormat.PACKED12, samples_per_line=1023),
        small_config(samples_per_line=32768, decimation=8, prf_hz=10),
        # the window rule at its exact edge: (976 + 1024) * 1 / 40 MHz = 50 us = 1 / 20 kHz
        small_config(start_delay_samples=976, prf_hz=20000),
        small_config(start_delay_samples=976, prf_hz=19999),
        small_config(prf_hz=50000, hv_mv=1),  # two failures: the first in table order
    ]
    picks = {
        "decimation": [0, 1, 8, 9], "ensemble_size": [0, 1, 16, 17],
        "pulse_cycles": [0, 1, 8, 9], "samples_per_line": [15, 16, 1023, 1024, 32768, 32769],
        "start_delay_samples": [0, 65535, 65536], "prf_hz": [9, 10, 1000, 20000, 20001],
        "lines_per_frame": [0, 1, 256, 257], "sweep_start": [-523600, -523599, 0, 523600],
        "sweep_end": [-523599, 523599, 523600], "pulse_freq_hz": [999_999, 15_000_001],
        "hv_mv": [4999, 5000, 100_000, 100_001],
    }
    for _ in range(150):
        fields = {k: rng.choice(v) for k, v in picks.items() if v and rng.random() < 0.3}
        fields["sample_format"] = rng.choice([0, 1, 2, 3, 4])
        n = rng.choice([1, 2, 32])
        tgc = [rng.choice([-451, -450, 0, 4350, 4351]) for _ in range(n)]
        cases.append(small_config(**fields, tgc_cdb=tuple(tgc)))
    accepted = refused = 0
    for cfg in cases:
        reply = fw.request(cfg)
        expected = check_configure(cfg, info)
        if expected is None:
            assert isinstance(reply, Ack), (cfg, reply)
            accepted += 1
        else:
            assert isinstance(reply, Nak), (cfg, expected)
            assert (reply.error_code, reply.field_id) == (expected.code, expected.field_id), (
                cfg, expected.message, reply.text)
            assert reply.text
            refused += 1
    assert accepted >= 5 and refused >= 100
    status = fw.request(GetStatus())
    assert status.config_id == accepted
    assert_clean(fw)


# -- commands ---------------------------------------------------------------------------------

def test_firmware_commands_busy_stop_retry_ping(fw: FwHost) -> None:
    data = bytes(range(256)) * 3 + b"\xa5\x5a" * 126
    pong = fw.request(Ping(token=0xDEADBEEF, data=data))
    assert isinstance(pong, Pong) and (pong.token, pong.data) == (0xDEADBEEF, data)
    assert isinstance(fw.request(Stop()), Ack)  # STOP while idle is ACKed
    assert isinstance(fw.request(small_config(prf_hz=500)), Ack)

    seq = fw.next_seq()
    fw.send(Start(n_frames=0), seq=seq)
    first = fw.wait_for(lambda m: getattr(m, "request_seq", None) == seq)
    # the host did not see the ACK in time and retries: the same ACK again, not BUSY
    fw.send(Start(n_frames=0), seq=seq, flags=Flags.RETRY)
    again = fw.wait_for(lambda m: getattr(m, "request_seq", None) == seq)
    assert isinstance(first, Ack) and isinstance(again, Ack) and again.seq > first.seq

    busy = fw.request(Start(n_frames=0))
    assert isinstance(busy, Nak) and busy.error_code == ErrorCode.BUSY
    busy = fw.request(small_config())
    assert isinstance(busy, Nak) and busy.error_code == ErrorCode.BUSY
    status = fw.request(GetStatus())
    assert status.state == 1 and status.hv_mv == 48_000 and status.config_id == 1
    fw.wait_for(lambda m: isinstance(m, EchoLine))

    stop = fw.request(Stop())
    assert isinstance(stop, Ack) and stop.request_type == MsgType.STOP
    after = fw.collect(0.3)
    assert not [m for m in after if isinstance(m, (EchoLine, FrameEnd))]
    assert fw.request(GetStatus()).state == 0
    assert_clean(fw)


@pytest.mark.parametrize(("frame", "msg_type", "code"), [
    (encode_frame(0x55, b"", 900), 0x55, ErrorCode.UNKNOWN_TYPE),
    (encode_frame(MsgType.ACK, bytes(8), 901), MsgType.ACK, ErrorCode.UNKNOWN_TYPE),
    (encode_frame(MsgType.GET_INFO, b"", 902, version=2), MsgType.GET_INFO,
     ErrorCode.UNSUPPORTED_VERSION),
    (encode_frame(MsgType.GET_INFO, b"", 903, flags=0x20), MsgType.GET_INFO,
     ErrorCode.UNSUPPORTED_FLAG),
    (encode_frame(MsgType.GET_INFO, bytes(4), 904), MsgType.GET_INFO, ErrorCode.BAD_LENGTH),
    (encode_frame(MsgType.CONFIGURE, bytes(99), 905), MsgType.CONFIGURE, ErrorCode.BAD_LENGTH),
    (encode_frame(MsgType.PING, bytes(3000), 906), MsgType.PING, ErrorCode.BAD_LENGTH),
])
def test_firmware_naks_unusable_frames(fw: FwHost, frame: bytes, msg_type: int,
                                       code: ErrorCode) -> None:
    fw.send_raw(frame)
    req = int.from_bytes(frame[8:12], "little")
    nak = fw.wait_for(lambda m: getattr(m, "request_seq", None) == req)
    assert isinstance(nak, Nak)
    assert (nak.request_type, nak.error_code, nak.field_id) == (msg_type, code, 0)
    assert isinstance(fw.request(GetInfo()), DeviceInfo)  # and it carries on
    assert_clean(fw)


def test_firmware_reset_restarts_sequence(fw: FwHost) -> None:
    assert isinstance(fw.request(small_config()), Ack)
    for _ in range(3):
        fw.request(GetStatus())
    mark = len(fw.received)
    ack = fw.request(Reset())
    assert isinstance(ack, Ack) and ack.request_type == MsgType.RESET
    hello = next((m for m in fw.received[mark:] if isinstance(m, DeviceInfo)), None) or \
        fw.wait_for(lambda m: isinstance(m, DeviceInfo))
    assert hello.request_seq == 0xFFFFFFFF and hello.seq == 0
    assert fw.dec.stats.seq_resets == 1
    assert fw.request(GetStatus()).config_id == 0  # power-up configuration again


def test_firmware_recovers_from_garbage(fw: FwHost) -> None:
    rng = random.Random(3)
    junk = bytes(rng.getrandbits(8) for _ in range(20000))
    fw.send_raw(junk + encode(GetInfo(), 1000)[:10])  # and a truncated frame
    deadline = time.monotonic() + 5
    reply = None
    while reply is None and time.monotonic() < deadline:
        seq = fw.send(GetInfo())  # the host's retry loop
        try:
            reply = fw.wait_for(lambda m, s=seq: getattr(m, "request_seq", None) == s, 0.3)
        except AssertionError:
            continue
    assert isinstance(reply, DeviceInfo)
    assert_clean(fw)  # the device's output stayed clean throughout


def test_firmware_answers_the_ping_behind_a_truncated_configure(fw: FwHost) -> None:
    # the first 60 of CONFIGURE's 120 bytes, then at once a whole PING: it lies inside the
    # span the CONFIGURE announced, so only the device's idle-gap rule can release it
    cfg_seq, ping_seq = fw.next_seq(), fw.next_seq()
    head = encode(small_config(), cfg_seq)[:60]
    t0 = time.monotonic()
    fw.send_raw(head)
    fw.send(Ping(token=0xC0DE, data=b"behind a truncated command"), seq=ping_seq)
    pong = fw.wait_for(lambda m: isinstance(m, Pong) and m.request_seq == ping_seq, 2.0)
    latency = time.monotonic() - t0
    assert isinstance(pong, Pong) and pong.token == 0xC0DE
    # one idle gap (50 ms) after the writes, far inside the host's first retry (500 ms)
    assert PARTIAL_FRAME_TIMEOUT_S - 0.001 <= latency < 0.200, latency
    status = fw.request(GetStatus())
    assert isinstance(status, Status) and status.config_id == 0  # the CONFIGURE never happened
    assert not [m for m in fw.received if getattr(m, "request_seq", None) == cfg_seq]  # no NAK
    assert isinstance(fw.request(small_config()), Ack)  # and the link carries on
    assert_clean(fw)
    print(f"firmware host: PONG {latency * 1e3:.1f} ms after a truncated CONFIGURE")


def _stalled_stream(fw_binary: Path, stall_s: float) -> tuple[list[EchoLine], Status]:
    """12 frames of 64 lines at 2 kHz; the firmware process is stopped for ``stall_s`` (as a
    busy host deschedules it) in the third frame."""
    dev = FwHost(fw_binary)
    cfg = small_config(ensemble_size=1, lines_per_frame=64, prf_hz=2000)
    try:
        assert isinstance(dev.request(cfg), Ack)
        assert isinstance(dev.request(Start(n_frames=12)), Ack)
        dev.wait_for(lambda m: isinstance(m, EchoLine) and m.frame_index == 2)
        dev.proc.send_signal(signal.SIGSTOP)
        try:
            dev.collect(stall_s)  # keep reading what was already on its way
        finally:
            dev.proc.send_signal(signal.SIGCONT)
        dev.wait_for(lambda m: isinstance(m, FrameEnd) and m.frame_index == 11, 10.0)
        status = dev.request(GetStatus())
    finally:
        assert dev.stop() == 0
    assert isinstance(status, Status) and status.dropped_lines == 0
    lines = [m for m in dev.received if isinstance(m, EchoLine)]
    # no line is lost or skipped
    assert [(m.frame_index, m.line_index) for m in lines] == [
        (f, i) for f in range(12) for i in range(64)]
    assert_clean(dev)
    return lines, status


def test_firmware_short_stall_is_caught_up_on_the_grid(fw_binary: Path) -> None:
    # 20 ms away, far inside the emulated capture buffers (SB_EMULATED_BACKLOG_US = 100 ms):
    # every grid point is a line stamped with its grid time; only the sending was late
    lines, _ = _stalled_stream(fw_binary, 0.020)
    gaps = np.diff(np.array([m.timestamp_us for m in lines], dtype=np.int64))
    assert gaps.min() == 500 and gaps.max() == 500


def test_firmware_long_stall_makes_lines_later_not_a_burst(fw_binary: Path) -> None:
    # 200 ms away, longer than the emulated capture buffers: afterwards it fires on the PRF
    # grid again, one line per period, no burst; the stall is one long gap between two true
    # firing times
    lines, _ = _stalled_stream(fw_binary, 0.200)
    gaps = np.diff(np.array([m.timestamp_us for m in lines], dtype=np.int64))
    assert gaps.min() >= 500  # never faster than the PRF
    assert not (gaps % 500).any()  # on the grid
    assert gaps.max() >= 100_000  # one gap, not a burst that hides it


def test_firmware_hil_target_uses_the_profile_send_buffer(fw_binary: Path) -> None:
    argv = firmware_host_argv(str(fw_binary))
    assert argv == [str(fw_binary), "--buffer", str(load_profile(PROFILE).send_buffer_bytes)]
    # the HIL harness deepens it to --sim-buffer-ms at the rated throughput
    deep = firmware_host_argv(str(fw_binary), 250.0)
    assert deep[2] == str(load_profile(PROFILE).info.rated_throughput_bps // 4)
    dev = FwHost(fw_binary, *argv[1:])
    try:
        assert isinstance(dev.request(GetInfo()), DeviceInfo)
        assert f"buffer {argv[2]} B" in dev.proc.stderr.readline()  # its startup line
    finally:
        assert dev.stop() == 0


# -- link -------------------------------------------------------------------------------------

def test_firmware_slow_link_drops_and_counts_lines(fw_binary: Path) -> None:
    rate = 200_000
    dev = FwHost(fw_binary, "--rate", str(rate), "--buffer", "32768")
    try:
        cfg = small_config(samples_per_line=4096, ensemble_size=1, prf_hz=1000,
                           lines_per_frame=16)
        assert isinstance(dev.request(cfg), Ack)
        assert isinstance(dev.request(Start(n_frames=0)), Ack)
        t0, b0 = time.monotonic(), dev.bytes_in
        dev.collect(1.5)
        elapsed, got = time.monotonic() - t0, dev.bytes_in - b0
        # 8 KB lines at 1 kHz would be 8 MB/s: the link carries its rate plus one burst
        assert got <= rate * elapsed * 1.1 + rate / 100 + 4096 + 32768
        assert got >= rate * elapsed * 0.5
        status = dev.request(GetStatus(), timeout=5)
        assert isinstance(status, Status)
        assert status.dropped_lines > 500
        assert status.fault_flags & 0x08
        assert status.buffer_fill_permille > 0
        assert isinstance(dev.request(Stop(), timeout=5), Ack)
        final = dev.request(GetStatus(), timeout=5)
        logs = [m for m in dev.received if isinstance(m, Log)]
        assert len(logs) == 1 and "dropping lines" in logs[0].text
        lines = [m for m in dev.received if isinstance(m, EchoLine)]
        ends = [m for m in dev.received if isinstance(m, FrameEnd)]
        assert ends and any(e.lines_sent < cfg.lines_per_frame for e in ends)
        for e in ends:  # each FRAME_END counts exactly the lines that reached the host
            assert e.lines_sent == sum(1 for m in lines if m.frame_index == e.frame_index)
        assert final.lines_sent == len(lines)  # nothing sent was lost on the way
        assert final.dropped_lines >= status.dropped_lines
        assert_clean(dev)
    finally:
        assert dev.stop() == 0


def test_firmware_reopen_and_symlink(fw_binary: Path, tmp_path: Path) -> None:
    link = tmp_path / "sonobridge-fw"
    dev = FwHost(fw_binary, "--link", str(link))
    assert os.readlink(link) == dev.path
    assert isinstance(dev.request(GetInfo()), DeviceInfo)
    dev.ser.close()
    # the host closes and reopens the port, by the link's name this time
    dev.ser = serial.Serial(str(link), timeout=0.05)
    info = dev.request(GetInfo())
    assert isinstance(info, DeviceInfo) and info.seq == 1
    assert dev.stop(signal.SIGINT) == 0
    assert not link.exists() and not link.is_symlink()
