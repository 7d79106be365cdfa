"""Decoder fuzz run: a million seeded hostile inputs, every invariant asserted, timed.

    .venv/bin/python bench/bench_fuzz_decoder.py                   # 1,000,000 inputs
    .venv/bin/python bench/bench_fuzz_decoder.py --inputs 20000    # smoke run
    .venv/bin/python bench/bench_fuzz_decoder.py --seed 7          # another stream

Inputs are built from a seeded pool of valid frames of every message type (all sample formats,
up to maximum-size lines) and damaged the ways a wire damages them: bit flips, truncations,
splices of two frames, a frame nested inside another, sync bytes injected, headers with a valid
CRC-16 and a random or impossible length, intact frames with a random version, type, flags or
payload length, garbage (uniform and sync-heavy), and mixtures of all of these. Each input is
cut into random chunks (sometimes byte by byte) and fed twice: to a fresh ``Decoder`` of its
own (isolated), and to one long-lived ``Decoder`` that sees every input back to back (stream).
The same seed gives the same inputs, chunks and counters.

Invariants, checked for every input (isolated) and over the whole run (stream):

* no exception escapes ``feed`` and none is swallowed inside it (``decoder_errors`` == 0);
* ``buffered`` never exceeds one maximum frame (16 + 131072 + 4 bytes);
* every intact frame of the pool in the input is decoded, in order, to a message equal to the
  one encoded (seq and flags included); an intact pool frame fed alone decodes to exactly
  that message with no byte discarded;
* every intact frame with a random header is decoded or counted unsupported or malformed;
* ``frames_bad`` == ``crc_errors`` + ``unsupported`` + ``malformed``;
* every byte is accounted for: ``bytes_in`` == ``bytes_discarded`` + bytes of decoded frames
  + ``buffered``.

Damaged frames are assumed not to pass both CRCs by chance (about 2^-32 per damaged frame);
if that ever happened, the run stops and names the input.
"""

from __future__ import annotations

import argparse
import binascii
import datetime
import os
import random
import sys
import time
from collections import deque
from dataclasses import dataclass
from itertools import accumulate

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from sonobridge.protocol import (
    MAX_FRAME,
    MAX_PAYLOAD,
    SYNC,
    Ack,
    Configure,
    Decoder,
    DeviceInfo,
    EchoLine,
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
from sonobridge.protocol.codec import HEADER_BODY
from sonobridge.protocol.constants import (
    HEADER_SIZE,
    MAX_NAK_TEXT,
    MAX_PING_DATA,
    MAX_TEXT,
    TGC_MAX_POINTS,
)

POOL_SIZE = 2048
#: seqs of frames with a random header start here; pool frames use 0..POOL_SIZE-1
RANDOM_SEQ0 = 0x8000_0000
ZEROS = bytes(MAX_FRAME)
KINDS = {  # kind: weight
    "intact": 24, "bitflip": 10, "truncate": 8, "splice": 10, "nest": 5, "inject": 9,
    "random_header": 12, "bad_length": 4, "garbage": 8, "mixture": 10,
}
COUNTERS = ("bytes_in", "frames_ok", "frames_bad", "crc_errors", "unsupported", "malformed",
            "header_errors", "bytes_discarded", "seq_gaps", "seq_resets", "decoder_errors")
_CHARS = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:-_/éüµ°ΩЖ漢字😀\t\n"
_SAMPLE_RANGES = {  # format: dtype, lo, hi, largest adc_bits
    SampleFormat.U8: (np.uint8, 0, 0xFF, 8),
    SampleFormat.I16: (np.int16, -0x8000, 0x7FFF, 16),
    SampleFormat.U16_OB: (np.uint16, 0, 0xFFFF, 16),
    SampleFormat.PACKED12: (np.uint16, 0, 0xFFF, 12),
}


class InvariantError(AssertionError):
    """An invariant failed; the message names the input so the run can be replayed."""


# -- the pool of valid messages -----------------------------------------------------------------


def _u(rng: random.Random, bits: int) -> int:
    return rng.getrandbits(bits)


def _i(rng: random.Random, bits: int) -> int:
    return rng.getrandbits(bits) - (1 << (bits - 1))


def _text(rng: random.Random, max_bytes: int) -> str:
    n = rng.choice((0, rng.randint(0, 16), rng.randint(0, max_bytes // 3)))
    s = "".join(rng.choice(_CHARS) for _ in range(n))
    while len(s.encode()) > max_bytes:
        s = s[:-1]
    return s


def _bytes(rng: random.Random, max_len: int) -> bytes:
    return rng.randbytes(rng.choice((0, rng.randint(0, 32), rng.randint(0, max_len))))


def echo_line(rng: random.Random, nrng: np.random.Generator, n: int | None = None,
              fmt: SampleFormat | None = None) -> EchoLine:
    """A valid ECHO_LINE spanning every header field's wire range."""
    fmt = SampleFormat(rng.randrange(4)) if fmt is None else fmt
    if n is None:
        r = rng.random()
        n = rng.randint(0, 64) if r < 0.6 else rng.randint(64, 1024) if r < 0.9 else \
            rng.randint(1024, 8192)
    if fmt == SampleFormat.PACKED12:
        n -= n & 1
    dtype, lo, hi, max_bits = _SAMPLE_RANGES[fmt]
    samples = nrng.integers(lo, hi, n, dtype=dtype, endpoint=True)
    lines, ens = rng.randint(1, 0xFFFF), rng.randint(1, 0xFF)
    return EchoLine(
        samples, rng.randint(1, 0xFFFFFFFF), frame_index=_u(rng, 32),
        line_index=rng.randrange(lines), lines_per_frame=lines, beam_position=_i(rng, 32),
        sweep_kind=rng.randrange(3), ensemble_index=rng.randrange(ens), ensemble_size=ens,
        start_delay_samples=_u(rng, 32), timestamp_us=_u(rng, 64), config_id=_u(rng, 16),
        adc_bits=rng.randint(1, max_bits), sample_format=fmt)


def message(rng: random.Random, nrng: np.random.Generator, t: MsgType) -> Message:
    """A valid message of type ``t`` with random field values across their wire ranges."""
    def u(bits: int) -> int:
        return rng.getrandbits(bits)

    if t == MsgType.ECHO_LINE:
        return echo_line(rng, nrng)
    simple = {MsgType.GET_INFO: GetInfo, MsgType.STOP: Stop, MsgType.GET_STATUS: GetStatus,
              MsgType.RESET: Reset}
    if t in simple:
        return simple[t]()
    if t == MsgType.CONFIGURE:
        count = rng.randint(0, TGC_MAX_POINTS)
        return Configure(
            sample_format=u(8), decimation=u(8), ensemble_size=u(8), pulse_cycles=u(8),
            samples_per_line=u(32), start_delay_samples=u(32), prf_hz=u(32),
            lines_per_frame=u(16), sweep_start=_i(rng, 32), sweep_end=_i(rng, 32),
            pulse_freq_hz=u(32), hv_mv=u(32), tgc_count=u(8),
            tgc_cdb=tuple(_i(rng, 16) for _ in range(count)))
    if t == MsgType.START:
        return Start(n_frames=u(32))
    if t == MsgType.PING:
        return Ping(token=u(32), data=_bytes(rng, MAX_PING_DATA))
    if t == MsgType.DEVICE_INFO:
        return DeviceInfo(
            request_seq=u(32), protocol_version=u(8), fw_major=u(8), fw_minor=u(8),
            fw_patch=u(8), board_id=u(32), board_name=_text(rng, 32), adc_bits=u(8),
            sample_formats=u(8), sweep_kind=u(8), capabilities=u(8), adc_rate_hz=u(32),
            max_decimation=u(8), tgc_points_max=u(8), ensemble_max=u(8), pulse_cycles_max=u(8),
            min_samples_per_line=u(32), max_samples_per_line=u(32),
            max_start_delay_samples=u(32), max_lines_per_frame=u(16), gain_min_cdb=_i(rng, 16),
            gain_max_cdb=_i(rng, 16), sweep_min=_i(rng, 32), sweep_max=_i(rng, 32),
            prf_min_hz=u(32), prf_max_hz=u(32), pulse_freq_min_hz=u(32),
            pulse_freq_max_hz=u(32), hv_min_mv=u(32), hv_max_mv=u(32),
            transducer_freq_hz=u(32), rated_throughput_bps=u(32))
    if t == MsgType.ACK:
        return Ack(request_seq=u(32), request_type=u(8))
    if t == MsgType.NAK:
        return Nak(request_seq=u(32), request_type=u(8), error_code=u(8), field_id=u(8),
                   text=_text(rng, MAX_NAK_TEXT))
    if t == MsgType.STATUS:
        return Status(request_seq=u(32), state=u(8), fault_flags=u(8),
                      temperature_cdeg=_i(rng, 16), hv_mv=u(32), device_time_us=u(64),
                      dropped_lines=u(32), lines_sent=u(32), buffer_fill_permille=u(16),
                      config_id=u(16))
    if t == MsgType.PONG:
        return Pong(request_seq=u(32), token=u(32), device_time_us=u(64),
                    data=_bytes(rng, MAX_PING_DATA))
    if t == MsgType.LOG:
        return Log(level=u(8), text=_text(rng, MAX_TEXT))
    if t == MsgType.FRAME_END:
        return FrameEnd(frame_index=u(32), lines_sent=u(16), lines_per_frame=u(16),
                        timestamp_us=u(64))
    raise ValueError(f"no builder for {t!r}")


@dataclass(frozen=True, slots=True)
class PoolFrame:
    """A valid message and its frame; ``seq`` is its index in the pool."""

    msg: Message
    frame: bytes
    seq: int
    flags: int


def build_pool(rng: random.Random, nrng: np.random.Generator) -> tuple[list[PoolFrame], int]:
    """Valid frames of every type, ECHO_LINE-heavy; the last few are maximum-size lines.

    Returns the pool and the number of ordinary entries (the maximum-size ones follow them).
    """
    types = list(MsgType)
    biggest = [  # 40 + sample bytes == MAX_PAYLOAD (PACKED12: 1 byte short of it)
        (SampleFormat.I16, (MAX_PAYLOAD - 40) // 2), (SampleFormat.U8, MAX_PAYLOAD - 40),
        (SampleFormat.PACKED12, (MAX_PAYLOAD - 40) // 3 * 2),
        (SampleFormat.U16_OB, (MAX_PAYLOAD - 40) // 2)]
    n_ordinary = POOL_SIZE - len(biggest)
    pool = []
    for seq in range(POOL_SIZE):
        if seq < n_ordinary:
            t = MsgType.ECHO_LINE if rng.random() < 0.3 else types[seq % len(types)]
            msg = message(rng, nrng, t)
        else:
            fmt, n = biggest[seq - n_ordinary]
            msg = echo_line(rng, nrng, n, fmt)
        flags = rng.randrange(16)  # advisory bits only: every pool frame is usable
        pool.append(PoolFrame(msg, encode(msg, seq, flags=flags), seq, flags))
    for t in types:
        assert any(t == p.msg.MSG_TYPE for p in pool), t
    return pool, n_ordinary


# -- inputs ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class Case:
    """One input: its bytes, the pool seqs intact in it (in order), and frames it holds."""

    kind: str
    data: bytes
    pool_seqs: list[int]
    #: frames with a random but CRC-valid header: seq -> frame length
    random_frames: dict[int, int]


class Fuzzer:
    """Builds the inputs; everything comes from one seeded ``random.Random``."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.pool, self.n_ordinary = build_pool(self.rng, np.random.default_rng(seed))
        self.payloads = [p.frame[HEADER_SIZE : HEADER_SIZE + _plen(p.frame)] for p in self.pool]
        self.next_random_seq = RANDOM_SEQ0
        self.kinds = list(KINDS)
        self.cum_weights = list(accumulate(KINDS.values()))
        self.makers = {k: getattr(self, f"_{k}") for k in KINDS}

    def pick(self) -> PoolFrame:
        """A pool frame; one pick in a thousand is a maximum-size line."""
        rng = self.rng
        if rng.random() < 0.001:
            return self.pool[rng.randrange(self.n_ordinary, len(self.pool))]
        return self.pool[rng.randrange(self.n_ordinary)]

    def case(self) -> Case:
        """The next input."""
        kind = self.rng.choices(self.kinds, cum_weights=self.cum_weights)[0]
        c = Case(kind, b"", [], {})
        c.data = self.makers[kind](c)
        return c

    def chunks(self, data: bytes) -> list[bytes]:
        """``data`` cut as a serial port might deliver it: whole, byte by byte, or anywhere."""
        rng = self.rng
        n = len(data)
        r = rng.random()
        if n < 2 or r < 0.35:
            return [data]
        if r < 0.40 and n <= 96:
            return [data[i : i + 1] for i in range(n)]
        cuts = sorted(rng.sample(range(1, n), rng.randint(1, min(6, n - 1))))
        return [data[a:b] for a, b in zip([0, *cuts], [*cuts, n], strict=True)]

    # each maker returns the input's bytes and records what is intact in it

    def _intact(self, c: Case) -> bytes:
        p = self.pick()
        c.pool_seqs.append(p.seq)
        return p.frame

    def _bitflip(self, c: Case) -> bytes:
        p = self.pick()
        f = bytearray(p.frame)
        for _ in range(self.rng.choice((1, 1, 1, 2, 3, 8))):
            bit = self.rng.randrange(8 * len(f))
            f[bit >> 3] ^= 1 << (bit & 7)
        if f == p.frame:  # an even number of flips of one bit cancel out
            c.pool_seqs.append(p.seq)
        return bytes(f)

    def _truncate(self, c: Case) -> bytes:
        f = self.pick().frame
        return f[: self.rng.randrange(1, len(f))]

    def _splice(self, c: Case) -> bytes:
        a, b = self.pick(), self.pick()
        if self.rng.random() < 0.25:  # a's header on b's body: a CRC-32 failure, no frame
            if a.seq == b.seq:
                c.pool_seqs.append(a.seq)  # unless both are the same frame
            return a.frame[:HEADER_SIZE] + b.frame[HEADER_SIZE:]
        c.pool_seqs.append(b.seq)  # the tail of a truncated frame, then an intact one
        return a.frame[: self.rng.randrange(1, len(a.frame))] + b.frame

    def _nest(self, c: Case) -> bytes:
        a, b = self.pick().frame, self.pick()
        at = self.rng.randrange(1, len(a))
        c.pool_seqs.append(b.seq)
        return a[:at] + b.frame + a[at:]

    def _inject(self, c: Case) -> bytes:
        rng = self.rng
        p = self.pick()
        f = p.frame
        junk = rng.choice((SYNC, SYNC[:1], SYNC * rng.randint(2, 4), SYNC[:1] + SYNC,
                           SYNC + rng.randbytes(rng.randint(1, 14))))
        at = rng.choice((0, len(f), rng.randrange(1, len(f))))
        data = f[:at] + junk + f[at:]
        # injected in front or behind, the frame stays intact; injected inside, it can be
        # rebuilt too (A5 inserted after the first A5 makes A5 A5 5A ...)
        if f in data:
            c.pool_seqs.append(p.seq)
        return data

    def random_frame(self, c: Case) -> bytes:
        """An intact frame (both CRCs valid) whose header and payload are drawn at random."""
        rng = self.rng
        version = 1 if rng.random() < 0.8 else rng.randrange(256)
        flags = rng.randrange(16) if rng.random() < 0.8 else rng.randrange(256)
        t = rng.choice(list(MsgType)) if rng.random() < 0.75 else rng.randrange(256)
        base = self.payloads[rng.randrange(self.n_ordinary)]
        r = rng.random()
        if r < 0.3:  # a real payload, cut short or padded
            payload = base[: rng.randint(0, len(base))] if rng.random() < 0.5 else \
                base + rng.randbytes(rng.randint(1, 8))
        elif r < 0.6:  # a real payload with a few bytes changed (ECHO_LINE fields, lengths)
            b = bytearray(base)
            for _ in range(rng.randint(1, 4)):
                if b:
                    b[rng.randrange(min(len(b), 48))] = rng.randrange(256)
            payload = bytes(b)
        else:
            payload = rng.randbytes(rng.choice((0, 4, 8, 16, 32, 40, 100, 116,
                                                rng.randint(0, 2048))))
        seq = self.next_random_seq
        self.next_random_seq += 1
        frame = encode_frame(t, payload, seq, flags=flags, version=version)
        c.random_frames[seq] = len(frame)
        return frame

    def _random_header(self, c: Case) -> bytes:
        return self.random_frame(c)

    def _bad_length(self, c: Case) -> bytes:
        """A header with a valid CRC-16 and an impossible or unfulfilled length, then a frame."""
        rng = self.rng
        plen = rng.choice((rng.randint(MAX_PAYLOAD + 1, 0xFFFFFFFF), MAX_PAYLOAD + 1,
                           rng.randint(1, MAX_PAYLOAD)))
        head = HEADER_BODY.pack(SYNC, 1, rng.choice(list(MsgType)), plen, _u(rng, 32), 0, 0)
        head += binascii.crc_hqx(head, 0xFFFF).to_bytes(2, "little")
        p = self.pick()
        c.pool_seqs.append(p.seq)
        return head + rng.randbytes(rng.randint(0, 64)) + p.frame

    def garbage(self) -> bytes:
        """Random bytes: uniform, sync-heavy, or runs of sync bytes."""
        rng = self.rng
        n = rng.choice((rng.randint(1, 32), rng.randint(1, 2048)))
        r = rng.random()
        if r < 0.5:
            return rng.randbytes(n)
        if r < 0.85:
            alphabet = (0xA5, 0x5A, 0x00, 0x01, 0xFF, rng.randrange(256))
            return bytes(rng.choice(alphabet) for _ in range(n))
        return (SYNC if rng.random() < 0.5 else SYNC[:1]) * (n // 2 + 1)

    def _garbage(self, c: Case) -> bytes:
        return self.garbage()

    def _mixture(self, c: Case) -> bytes:
        parts = []
        for _ in range(self.rng.randint(2, 6)):
            kind = self.rng.choices(self.kinds[:-1], cum_weights=self.cum_weights[:-1])[0]
            parts.append(self.makers[kind](c))
        return b"".join(parts)


def _plen(frame: bytes) -> int:
    return int.from_bytes(frame[4:8], "little")


# -- checking -------------------------------------------------------------------------------------


class Checker:
    """Checks one decoder's output against what went in; ``where`` names it in failures.

    Expected frames come from how each input was built. One thing construction does not
    predict: a truncated frame is completed by the bytes that follow it when they happen to
    equal its missing tail (its last byte is A5 and the next frame starts with A5, or its last
    byte is 0 and the zeros of a flush follow). The decoder then rightly decodes that rebuilt
    frame and loses any frame it overlaps. Every frame expected but not seen must be explained
    by a rebuilt one (``missed`` <= ``rebuilt``), and a rebuilt frame must really be in the
    bytes fed (isolated) and equal to what was encoded.
    """

    def __init__(self, fuzz: Fuzzer, where: str) -> None:
        self.pool = fuzz.pool
        self.where = where
        self.decoder = Decoder()
        self.data = b""
        self.ok_bytes = 0
        self.max_buffered = 0
        self.expected: deque[int] = deque()  # pool seqs still to come, in order
        self.random_frames: dict[int, int] = {}
        self.random_seen = 0
        self.random_intact = 0
        self.missed = 0
        self.rebuilt: list[int] = []
        self.t_feed = 0.0

    def fail(self, index: int, what: str) -> None:
        """Raise an InvariantError naming the input."""
        raise InvariantError(f"{self.where} decoder, input {index}: {what}")

    def expect(self, case: Case, keep_data: bool = False) -> None:
        """Record what ``case`` holds intact before it is fed."""
        self.expected.extend(case.pool_seqs)
        self.random_frames.update(case.random_frames)
        self.random_intact += len(case.random_frames)
        if keep_data:
            self.data = case.data

    def feed(self, data: bytes, index: int) -> list[Message]:
        """Feed one chunk; check that nothing escapes and the buffer stays bounded."""
        dec = self.decoder
        t0 = time.perf_counter()
        try:
            out = dec.feed(data)
        except Exception as exc:  # the decoder promises this never happens
            self.fail(index, f"feed raised {exc!r}")
        self.t_feed += time.perf_counter() - t0
        if dec.buffered > MAX_FRAME:
            self.fail(index, f"buffered {dec.buffered} > one maximum frame ({MAX_FRAME})")
        self.max_buffered = max(self.max_buffered, dec.buffered)
        for msg in out:
            self.check_message(msg, index)
        return out

    def check_message(self, msg: Message, index: int) -> None:
        """A decoded message must be an intact pool frame, in order, or a random-header one."""
        seq = msg.seq
        if seq is not None and seq < len(self.pool):
            p = self.pool[seq]
            if msg != p.msg or msg.flags != p.flags or msg.MSG_TYPE != p.msg.MSG_TYPE:
                self.fail(index, f"pool frame seq {seq} decoded to {msg!r}, not {p.msg!r}")
            exp = self.expected
            if exp and exp[0] == seq:
                exp.popleft()
            elif len(exp) > 1 and exp[1] == seq:  # the one before it was overlapped
                exp.popleft()
                exp.popleft()
                self.missed += 1
            else:
                self.rebuilt.append(seq)
            self.ok_bytes += len(p.frame)
        elif seq in self.random_frames:
            self.ok_bytes += self.random_frames.pop(seq)
            self.random_seen += 1
        else:
            self.fail(index, f"decoded a frame that was never sent intact: {msg!r}")

    def flush(self, index: int) -> int:
        """Feed zeros (no sync byte in them) until nothing is pending; return how many."""
        fed = 0
        size = 16
        while self.decoder.buffered:
            if fed > 8 * MAX_FRAME:
                self.fail(index, f"{fed} zeros did not drain the buffer")
            self.feed(ZEROS[:size], index)
            fed += size
            size = min(2 * size, len(ZEROS))
        return fed

    def settle(self, index: int) -> None:
        """After a flush: every intact frame was decoded or rejected; the counters add up."""
        st = self.decoder.stats
        self.missed += len(self.expected)
        self.expected.clear()
        random_missed = (self.random_intact - self.random_seen - st.unsupported
                         - st.malformed)
        if random_missed < 0:
            self.fail(index, f"unsupported {st.unsupported} + malformed {st.malformed} > "
                             f"{self.random_intact - self.random_seen} intact random-header "
                             "frames not decoded")
        if self.missed + random_missed > len(self.rebuilt):
            self.fail(index, f"{self.missed + random_missed} intact frames lost, only "
                             f"{len(self.rebuilt)} overlapped by a rebuilt frame")
        for seq in self.rebuilt if self.data else ():
            frame = self.pool[seq].frame
            # the zeros of the flush complete a frame whose missing tail is zeros
            if frame not in self.data + ZEROS[: len(frame)]:
                self.fail(index, f"decoded pool frame seq {seq}, which is not in the input")
        self.check_counts(index)

    def check_counts(self, index: int) -> None:
        """The stats identities that hold at any moment."""
        dec = self.decoder
        st = dec.stats
        if st.frames_bad != st.crc_errors + st.unsupported + st.malformed:
            self.fail(index, f"frames_bad {st.frames_bad} != crc {st.crc_errors} + unsupported "
                             f"{st.unsupported} + malformed {st.malformed}")
        if st.decoder_errors:
            self.fail(index, f"{st.decoder_errors} exceptions swallowed inside feed")
        if st.bytes_in != st.bytes_discarded + self.ok_bytes + dec.buffered:
            self.fail(index, f"bytes_in {st.bytes_in} != discarded {st.bytes_discarded} + in "
                             f"frames {self.ok_bytes} + buffered {dec.buffered}")


# -- the run --------------------------------------------------------------------------------------


def run(n_inputs: int, seed: int) -> dict:
    """Feed ``n_inputs`` inputs; return the figures (raises InvariantError on a violation)."""
    t_start = time.perf_counter()
    fuzz = Fuzzer(seed)
    t_pool = time.perf_counter() - t_start
    stream = Checker(fuzz, "stream")
    totals = dict.fromkeys(COUNTERS, 0)
    kinds = dict.fromkeys(KINDS, 0)
    iso_max_buffered = 0
    input_bytes = 0
    chunk_count = 0
    zeros = 0
    t_feed = 0.0
    rebuilt = 0
    step = max(1, n_inputs // 10)
    clock = time.perf_counter
    for index in range(n_inputs):
        case = fuzz.case()
        kinds[case.kind] += 1
        parts = fuzz.chunks(case.data)
        input_bytes += len(case.data)
        chunk_count += len(parts)
        iso = Checker(fuzz, "isolated")
        iso.expect(case, keep_data=True)
        stream.expect(case)
        out: list[Message] = []
        for part in parts:
            out += iso.feed(part, index)
            stream.feed(part, index)
        iso_max_buffered = max(iso_max_buffered, iso.max_buffered)
        if case.kind == "intact":
            p = fuzz.pool[case.pool_seqs[0]]
            st = iso.decoder.stats
            if out != [p.msg] or st.bytes_discarded or iso.decoder.buffered:
                iso.fail(index, f"an intact frame fed alone gave {out!r}, "
                                f"{st.bytes_discarded} B discarded, "
                                f"{iso.decoder.buffered} B buffered")
        zeros += iso.flush(index)
        iso.settle(index)
        t_feed += iso.t_feed
        rebuilt += len(iso.rebuilt)
        st = iso.decoder.stats
        for name in COUNTERS:
            totals[name] += getattr(st, name)
        if index % 1000 == 999:
            stream.check_counts(index)
        if (index + 1) % step == 0:
            print(f"  {index + 1:>9,} inputs, {clock() - t_start:7.1f} s", file=sys.stderr,
                  flush=True)
    zeros += stream.flush(n_inputs)
    stream.settle(n_inputs)
    wall = time.perf_counter() - t_start
    return dict(wall=wall, t_pool=t_pool, t_feed=t_feed + stream.t_feed, input_bytes=input_bytes,
                rebuilt=rebuilt, stream_rebuilt=len(stream.rebuilt),
                chunks=chunk_count, zeros=zeros, kinds=kinds, iso=totals,
                stream=stream.decoder.stats,
                iso_max_buffered=iso_max_buffered, stream_max_buffered=stream.max_buffered,
                pool=len(fuzz.pool))


def report(n_inputs: int, seed: int, r: dict) -> None:
    """Print the figures."""
    wall = r["wall"]
    mb = r["input_bytes"] / 1e6
    print(f"# decoder fuzz run {datetime.date.today()}  python {sys.version.split()[0]}  "
          f"numpy {np.__version__}  seed {seed}")
    print(f"\n{n_inputs:,} inputs ({mb:,.1f} MB, {r['chunks']:,} chunks) from a pool of "
          f"{r['pool']} valid frames of all {len(MsgType)} message types; each fed to a fresh "
          "decoder and to one long-lived stream decoder")
    print("inputs by kind: " + ", ".join(f"{k} {v:,}" for k, v in r["kinds"].items()))
    print(f"\nwall time        {wall:10.1f} s   (pool {r['t_pool']:.1f} s)")
    print(f"inputs/s         {n_inputs / wall:10,.0f}")
    print(f"in Decoder.feed  {r['t_feed']:10.1f} s   ({2 * mb / r['t_feed']:.0f} MB/s of input "
          "through both decoders)")
    print(f"\n{'counter':18s} {'isolated (sum)':>20s} {'stream':>20s}")
    for name in COUNTERS:
        print(f"{name:18s} {r['iso'][name]:20,} {getattr(r['stream'], name):20,}")
    print(f"{'max buffered':18s} {r['iso_max_buffered']:20,} {r['stream_max_buffered']:20,}"
          f"   (limit {MAX_FRAME:,})")
    print(f"(bytes_in and bytes_discarded include {r['zeros']:,} zero bytes fed after the inputs "
          "to resolve pending candidates)")
    print(f"truncated frames completed by the bytes after them (rebuilt): {r['rebuilt']:,} "
          f"isolated, {r['stream_rebuilt']:,} stream")
    print("\ninvariants held for every input: no exception, buffered <= one maximum frame, "
          "intact frames decoded equal and in order, frames_bad = crc + unsupported + "
          "malformed, bytes_in = discarded + decoded + buffered")


def main(argv: list[str] | None = None) -> int:
    """Run the fuzz benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=1_000_000, help="number of inputs")
    ap.add_argument("--seed", type=int, default=1, help="seed of the whole run")
    args = ap.parse_args(argv)
    if args.inputs < 1:
        ap.error("--inputs must be at least 1")
    try:
        result = run(args.inputs, args.seed)
    except InvariantError as exc:
        print(f"INVARIANT VIOLATED (seed {args.seed}): {exc}", file=sys.stderr)
        return 1
    report(args.inputs, args.seed, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
