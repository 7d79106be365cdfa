"""Open Echo serial frames: hand-written bytes from the documented formats, round trips, and the
streaming decoder under chunking, text and garbage (``sonobridge.protocol.boards.open_echo``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sonobridge.protocol import EchoLine, FrameEnd, SampleFormat, SweepKind
from sonobridge.protocol.boards.open_echo import (
    KNOWN_N,
    MAX_SAMPLES,
    VARIANTS,
    Candidate,
    OpenEchoDecoder,
    OpenEchoStats,
    candidates,
    encode_v1,
    encode_v2,
    frame_length,
    parse_frame,
    xor8,
)
from sonobridge.protocol.decoder import DecoderStats

# v2, N = 4: sync, depth_index 0x0102 (LE: 02 01), temp 0, vDrv 0, samples 10 20 30 40.
# XOR of the 6 header bytes and the samples: 02^01 = 03, ^10 = 13, ^20 = 33, ^30 = 03, ^40 = 43.
TINY_V2 = bytes([0xAA, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x10, 0x20, 0x30, 0x40, 0x43])

# v1, N = 3: sync, depth 5 (BE: 00 05), temp 21.50 °C ×100 = 2150 = 0x0866, vDrv 12.00 V ×100 =
# 1200 = 0x04B0, samples 0x03FF 0x0200 0x0001 (BE), then the XOR of every byte after the sync:
# 00^05 = 05, ^08 = 0D, ^66 = 6B, ^04 = 6F, ^B0 = DF, ^03 = DC, ^FF = 23, ^02 = 21, ^00 ^00 = 21,
# ^01 = 20.
TINY_V1 = bytes([0xAA, 0x00, 0x05, 0x08, 0x66, 0x04, 0xB0,
                 0x03, 0xFF, 0x02, 0x00, 0x00, 0x01, 0x20])


def v2_frames(k: int, n: int = 1800, seed: int = 0, hi: int = 256) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [encode_v2(rng.integers(0, hi, n), depth_index=i) for i in range(k)]


def v1_frames(k: int, n: int = 300, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [encode_v1(rng.integers(0, 1024, n), depth=i) for i in range(k)]


def lines(msgs: list) -> list[EchoLine]:
    return [m for m in msgs if isinstance(m, EchoLine)]


def feed_chunks(dec: OpenEchoDecoder, data: bytes, cuts: list[int]) -> list:
    out, start = [], 0
    for cut in [*sorted(cuts), len(data)]:
        out += dec.feed(data[start:cut])
        start = max(start, cut)
    return out


# -- hand-written frames --------------------------------------------------------------------------


def test_tiny_v2_frame_written_by_hand():
    assert encode_v2([0x10, 0x20, 0x30, 0x40], depth_index=0x0102) == TINY_V2
    dec = OpenEchoDecoder("v2", 4, lines_per_frame=1)
    out = dec.feed(TINY_V2)
    assert [type(m) for m in out] == [EchoLine, FrameEnd]
    line = out[0]
    assert line.samples.dtype == np.uint8
    assert line.samples.tolist() == [0x10, 0x20, 0x30, 0x40]
    assert line.sample_format == SampleFormat.U8 and line.adc_bits == 8
    assert line.sweep_kind == SweepKind.FIXED
    assert line.sample_rate_hz == round(1 / 13.2e-6) == 75758
    assert dec.last_header == (0x0102, 0, 0)
    assert [m.seq for m in out] == [0, 1]
    assert dec.stats.frames_ok == 1 and dec.stats.bytes_discarded == 0 and dec.buffered == 0
    frame = parse_frame(TINY_V2, "v2")
    assert (frame.depth, frame.temp_scaled, frame.vdrv_scaled) == (0x0102, 0, 0)


def test_tiny_v1_frame_written_by_hand():
    assert encode_v1([0x3FF, 0x200, 0x001], depth=5, temp=2150, vdrv=1200) == TINY_V1
    frame = parse_frame(TINY_V1, "v1")
    assert frame.samples.tolist() == [1023, 512, 1]
    assert (frame.depth, frame.temp_scaled, frame.vdrv_scaled) == (5, 2150, 1200)
    dec = OpenEchoDecoder("v1", 3)
    (line,) = dec.feed(TINY_V1)
    assert line.samples.dtype == np.dtype("<u2")
    assert line.samples.tolist() == [1023, 512, 1]
    assert line.sample_format == SampleFormat.U16_OB and line.adc_bits == 10
    assert dec.last_header == (5, 2150, 1200)


def test_negative_temperature_in_either_header():
    frame = parse_frame(encode_v2([1], temp=-5), "v2")
    assert frame.temp_scaled == -5
    assert parse_frame(encode_v1([1], temp=-250), "v1").temp_scaled == -250


def test_parse_frame_rejects_bad_bytes():
    with pytest.raises(ValueError, match="XOR"):
        parse_frame(TINY_V2[:-1] + b"\x44", "v2")
    with pytest.raises(ValueError, match="0xAA"):
        parse_frame(b"\xab" + TINY_V2[1:], "v2")
    with pytest.raises(ValueError, match="length"):
        parse_frame(TINY_V2[:-1], "v1")  # 11 bytes: odd sample bytes
    # a valid XOR but a high byte above 3 is not v1
    bad = encode_v2([0x04, 0x00])  # as v1: one sample 0x0400 = 1024
    with pytest.raises(ValueError, match="10 bits"):
        parse_frame(bad, "v1")


def test_encoders_refuse_what_the_format_cannot_carry():
    with pytest.raises(ValueError):
        encode_v2([256])
    with pytest.raises(ValueError):
        encode_v2([-1])
    with pytest.raises(ValueError):
        encode_v1([1024])
    with pytest.raises(ValueError):
        encode_v2(np.zeros(MAX_SAMPLES + 1, np.uint8))
    with pytest.raises(ValueError):
        encode_v2([])
    with pytest.raises(ValueError, match="depth_index"):
        encode_v2([1], depth_index=70000)
    with pytest.raises(ValueError):
        encode_v2([1.5])


def test_variant_table_is_the_one_source_of_known_lengths():
    assert KNOWN_N == {"v1": (300, 1800), "v2": (1800, 10000)}
    assert [c.length for c in candidates()] == [608, 1808, 3608, 10008]
    assert frame_length("v2", 1800) == 1808 and frame_length("v1", 300) == 608
    pico = next(v for v in VARIANTS if v.name == "pico-w")
    (line,) = OpenEchoDecoder("v2", 10000).feed(v2_frames(1, n=10000)[0])
    assert line.sample_rate_hz == round(1 / pico.sample_period_s) == 166667
    (line,) = OpenEchoDecoder("v2", 4, sample_period_s=1e-5).feed(TINY_V2)
    assert line.sample_rate_hz == 100_000
    with pytest.raises(ValueError):
        OpenEchoDecoder(n_samples=MAX_SAMPLES + 1)
    with pytest.raises(ValueError):
        OpenEchoDecoder(version="v3")
    with pytest.raises(ValueError):
        OpenEchoDecoder(lines_per_frame=0)


# -- detection ------------------------------------------------------------------------------------


def test_v1_300_frames_decode_as_v1_not_v2_600():
    frames = v1_frames(4)
    # the ambiguity is real: the same bytes are a valid v2 frame of 600 samples
    assert parse_frame(frames[0], "v2").samples.size == 600
    dec = OpenEchoDecoder(lines_per_frame=8)
    out = lines(dec.feed(b"".join(frames)))
    assert len(out) == 4
    for line, frame in zip(out, frames, strict=True):
        assert line.samples.dtype == np.dtype("<u2")
        np.testing.assert_array_equal(line.samples, parse_frame(frame, "v1").samples)
    assert dec.locked == Candidate("v1", 300)


def test_equal_lengths_are_told_apart_by_the_value_range():
    # with both v1-300 and v2-600 tried, each 608 bytes long, the high bytes decide
    dec = OpenEchoDecoder(n_samples=(300, 600))
    assert dec.candidates.count(Candidate("v1", 300)) == 1
    assert Candidate("v2", 600) in dec.candidates
    out = lines(dec.feed(b"".join(v1_frames(3))))
    assert len(out) == 3 and all(line.samples.dtype == np.uint16 for line in out)
    dec = OpenEchoDecoder(n_samples=(300, 600))
    v2 = v2_frames(3, n=600, seed=1, hi=256)
    out = lines(dec.feed(b"".join(v2)))
    assert [line.samples.tobytes() for line in out] == [f[7:-1] for f in v2]


def test_v2_1800_stream_with_quiet_samples_is_not_taken_for_v1():
    # all-zero samples pass every XOR and the v1 range; only the next sync tells the length
    frames = [encode_v2(np.zeros(1800, np.uint8)) for _ in range(3)]
    dec = OpenEchoDecoder()
    out = lines(dec.feed(b"".join(frames)) + dec.flush())
    assert [line.n_samples for line in out] == [1800] * 3
    assert dec.locked == Candidate("v2", 1800)


def test_first_frame_waits_for_the_next_sync_then_locks():
    a, b = v2_frames(2)
    dec = OpenEchoDecoder()
    assert dec.feed(a) == []
    assert dec.buffered == len(a)
    out = lines(dec.feed(b[:1]))  # the next frame's sync confirms the first
    assert len(out) == 1 and dec.buffered == 1
    out = lines(dec.feed(b[1:]))  # locked: taken as soon as complete
    assert len(out) == 1 and dec.buffered == 0


def test_flush_and_expire_decide_on_a_lone_frame():
    (a,) = v2_frames(1)
    dec = OpenEchoDecoder()
    dec.feed(a)
    assert len(lines(dec.flush())) == 1 and dec.buffered == 0
    dec = OpenEchoDecoder(partial_timeout_s=0.2)
    assert dec.feed(a, now_s=1.0) == []
    assert dec.expire(1.1) == []
    assert len(lines(dec.expire(1.3))) == 1
    with pytest.raises(ValueError):
        dec.feed(a)


def test_format_change_unlocks_and_detects_again():
    v2 = v2_frames(3)
    v1 = v1_frames(30, seed=3)
    dec = OpenEchoDecoder()
    out = lines(dec.feed(b"".join(v2 + v1)) + dec.flush())
    assert dec.stats.unlocks == 1
    assert dec.locked == Candidate("v1", 300)
    assert [line.n_samples for line in out[:3]] == [1800] * 3
    got_v1 = [line.samples.tolist() for line in out[3:]]
    want_v1 = [parse_frame(f, "v1").samples.tolist() for f in v1]
    # the frames that arrived while the v2 lock was failing are lost, the rest are not
    assert got_v1 and got_v1 == want_v1[-len(got_v1):]


# -- resynchronisation ----------------------------------------------------------------------------


def test_wifi_text_lines_before_frames_are_skipped_and_counted():
    text = b"[WiFi] connecting to boat\r\n[WiFi] connected, IP 192.168.4.1\r\n"
    frames = v2_frames(3)
    dec = OpenEchoDecoder()
    out = dec.feed(text + b"".join(frames))
    assert [line.samples.tobytes() for line in lines(out)] == [f[7:-1] for f in frames]
    assert dec.stats.text_lines == 2
    assert dec.last_text == "[WiFi] connected, IP 192.168.4.1"
    assert dec.stats.bytes_discarded == len(text)
    assert dec.stats.frames_bad == 0


def test_text_between_frames_and_split_across_chunks():
    frames = v2_frames(4)
    stream = (frames[0] + frames[1] + b"[Wi" + b"Fi] lost\r\n" + frames[2] + b"\x01binary\n"
              + frames[3])
    for step in (1, 5, 777, len(stream)):
        dec = OpenEchoDecoder()
        out = feed_chunks(dec, stream, list(range(step, len(stream), step)))
        assert len(lines(out)) == 4
        # a line with a byte that is not printable ASCII is binary, not text
        assert dec.stats.text_lines == 1 and dec.last_text == "[WiFi] lost"


def test_before_a_format_is_known_a_frame_needs_a_sync_after_it():
    frames = v2_frames(9)
    dec = OpenEchoDecoder()
    out = dec.feed(frames[0] + b"boot\r\n" + b"".join(frames[1:]))
    # the first frame is followed by text, so its XOR alone does not make it a frame; ruling
    # out every longer candidate at its sync takes 10009 bytes, then the second one locks
    assert [line.samples.tobytes() for line in lines(out)] == [f[7:-1] for f in frames[1:]]
    assert dec.stats.header_errors >= 1 and dec.stats.text_lines == 0
    # alone, a frame is taken by flush: nothing after it contradicts it
    dec = OpenEchoDecoder()
    assert dec.feed(frames[0]) == [] and len(lines(dec.flush())) == 1


def test_random_garbage_yields_no_frames_while_detecting():
    # a lucky XOR alone (1 in 256 per length) is not enough: the next sync must follow
    noise = np.random.default_rng(7).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    dec = OpenEchoDecoder()
    assert lines(dec.feed(noise)) == []
    assert dec.stats.header_errors > 500 and dec.buffered < dec.max_buffered


def test_corrupted_xor_is_skipped_and_counted():
    frames = v2_frames(4, hi=0x80)  # no 0xAA inside the samples: exactly one false candidate
    bad = bytearray(frames[2])
    bad[100] ^= 0x01
    stream = frames[0] + frames[1] + bytes(bad) + frames[3]
    dec = OpenEchoDecoder(lines_per_frame=100)
    out = dec.feed(stream)
    assert [line.samples.tobytes() for line in out] == [f[7:-1] for f in
                                                       (frames[0], frames[1], frames[3])]
    assert [m.seq for m in out] == [0, 1, 2]
    assert dec.stats.xor_errors == 1 and dec.stats.frames_bad == 1
    assert dec.stats.bytes_discarded == len(bad)
    assert dec.stats.frames_ok == 3


def test_truncated_tail_waits_for_the_rest():
    a, b = v2_frames(2)
    dec = OpenEchoDecoder("v2", 1800)
    assert len(dec.feed(a + b[:900])) == 1
    assert dec.buffered == 900
    assert len(dec.feed(b[900:])) == 1
    assert dec.buffered == 0 and dec.stats.bytes_discarded == 0
    # a tail that never completes is dropped by flush
    dec.feed(a[:900])
    assert dec.flush() == [] and dec.buffered == 0 and dec.stats.bytes_discarded == 900


def test_locked_v1_frame_with_values_above_10_bits_is_bad():
    bad = encode_v2([0x04, 0x00, 0, 0, 0, 0])  # 14 bytes, valid XOR; as v1 a sample is 1024
    dec = OpenEchoDecoder("v1", 3)
    out = dec.feed(bad + TINY_V1)
    assert [line.samples.tolist() for line in out] == [[1023, 512, 1]]
    assert dec.stats.range_errors == 1 and dec.stats.frames_bad == 1


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_every_known_build_is_detected_after_its_boot_text(variant):
    rng = np.random.default_rng(11)
    encode = encode_v1 if variant.version == "v1" else encode_v2
    hi = 1 << variant.adc_bits
    frames = [encode(rng.integers(0, hi, variant.n_samples)) for _ in range(4)]
    dec = OpenEchoDecoder()
    out = lines(dec.feed(b"[WiFi] up\r\n" + b"".join(frames)))
    assert len(out) == 4 and dec.locked == Candidate(variant.version, variant.n_samples)
    for line, frame in zip(out, frames, strict=True):
        np.testing.assert_array_equal(line.samples, parse_frame(frame, variant.version).samples)
        assert line.adc_bits == variant.adc_bits
        assert line.sample_rate_hz == round(1 / variant.sample_period_s)
    assert dec.stats.text_lines == 1 and dec.stats.frames_bad == 0


def test_false_sync_in_garbage_costs_one_byte():
    # the 0xAA is no frame: bytes 1..11 from it XOR to B9, so it is skipped and the frame found
    stream = b"\xaa\x00\x00\x00" + TINY_V2
    dec = OpenEchoDecoder("v2", 4)
    out = dec.feed(stream)
    assert len(out) == 1 and out[0].samples.tolist() == [0x10, 0x20, 0x30, 0x40]
    assert dec.stats.xor_errors == 1 and dec.stats.bytes_discarded == 4


def test_a_lone_sync_never_stalls_the_decoder():
    dec = OpenEchoDecoder()
    # 0x01 bytes: every candidate length is even, so each XOR covers an odd count of ones
    dec.feed(b"\xaa" + b"\x01" * 10_009)  # enough for every candidate and the byte after it
    assert dec.buffered == 0
    assert dec.stats.header_errors == 1 and dec.stats.bytes_discarded == 10_010


def test_sweeps_of_lines_end_with_frame_end_and_seq_is_consecutive():
    dec = OpenEchoDecoder("v2", 4, lines_per_frame=3)
    out = dec.feed(TINY_V2 * 7)
    kinds = ["L" if isinstance(m, EchoLine) else "E" for m in out]
    assert "".join(kinds) == "LLLELLLEL"
    assert [m.seq for m in out] == list(range(9))
    assert [(m.frame_index, m.line_index) for m in lines(out)] == [
        (0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0)]
    ends = [m for m in out if isinstance(m, FrameEnd)]
    assert [(e.frame_index, e.lines_sent, e.lines_per_frame) for e in ends] == [(0, 3, 3),
                                                                                (1, 3, 3)]
    assert all(m.lines_per_frame == 3 for m in lines(out))
    assert dec.stats.last_seq == 8


def test_stats_fit_the_stream_decoder_interface():
    dec = OpenEchoDecoder()
    assert isinstance(dec.stats, DecoderStats) and isinstance(dec.stats, OpenEchoStats)
    assert dec.feed("not bytes") == []  # type: ignore[arg-type]
    assert dec.stats.decoder_errors == 1
    dec.feed(v2_frames(1)[0])
    dec.reset()
    assert dec.buffered == 0 and dec.locked is None
    assert "text lines" in dec.stats.summary() and "xor_errors" in dec.stats.as_dict()


# -- properties -----------------------------------------------------------------------------------

SMALL_N = (5, 9)  # four small candidates: v2-5 (13 B), v2-9 (17), v1-5 (18), v1-9 (26)


@st.composite
def frame_bytes(draw) -> bytes:
    version = draw(st.sampled_from(("v1", "v2")))
    n = draw(st.sampled_from(SMALL_N))
    hi = 0x3FF if version == "v1" else 0xFF
    samples = draw(st.lists(st.integers(0, hi), min_size=n, max_size=n))
    header = {"temp": draw(st.integers(-32768, 32767)), "vdrv": draw(st.integers(0, 65535))}
    if version == "v1":
        return encode_v1(samples, depth=draw(st.integers(0, 65535)), **header)
    return encode_v2(samples, depth_index=draw(st.integers(0, 65535)), **header)


text_line = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30).map(
    lambda s: f"[WiFi] {s}\r\n".encode())
garbage = st.binary(max_size=40)
pieces = st.lists(st.one_of(frame_bytes(), frame_bytes(), text_line, garbage), max_size=12)


def frame_windows(stream: bytes, line: EchoLine, n_samples: tuple[int, ...]) -> bool:
    """True if the line's samples sit in an XOR-valid frame somewhere in ``stream``."""
    v1 = line.sample_format == SampleFormat.U16_OB
    body = line.samples.astype(">u2" if v1 else np.uint8).tobytes()
    length = len(body) + 8
    start = stream.find(body)
    while start >= 0:
        pos = start - 7
        if pos >= 0 and stream[pos] == 0xAA and not xor8(stream[pos + 1 : pos + length]):
            return len(line.samples) in n_samples
        start = stream.find(body, start + 1)
    return False


@settings(max_examples=150, deadline=None)
@given(pieces, st.lists(st.integers(0, 600), max_size=20))
def test_random_chunking_gives_the_same_messages_as_one_feed(parts, cuts):
    stream = b"".join(parts)
    whole = OpenEchoDecoder(n_samples=SMALL_N, lines_per_frame=3)
    want = whole.feed(stream) + whole.flush()
    dec = OpenEchoDecoder(n_samples=SMALL_N, lines_per_frame=3)
    got = feed_chunks(dec, stream, [c for c in cuts if c <= len(stream)]) + dec.flush()
    assert got == want
    assert [m.seq for m in got] == [m.seq for m in want] == list(range(len(want)))
    assert dec.stats.as_dict() == whole.stats.as_dict()
    assert dec.last_text == whole.last_text


@settings(max_examples=150, deadline=None)
@given(st.lists(frame_bytes(), min_size=1, max_size=8), st.data())
def test_frames_round_trip_through_the_decoder(frames, data):
    text = data.draw(st.lists(text_line, max_size=2))
    stream = b"".join(text) + b"".join(frames)
    dec = OpenEchoDecoder(n_samples=SMALL_N, lines_per_frame=4)
    out = lines(dec.feed(stream) + dec.flush())
    # a frame is found by its own length or by a lucky longer XOR; every frame it took is real
    assert len(out) >= 1
    for line in out:
        assert frame_windows(stream, line, SMALL_N)
    assert dec.stats.decoder_errors == 0
    # every real text line is counted; a frame the decoder could not take is discarded, and
    # a printable run between two of its 0x0A bytes looks exactly like a text line
    assert dec.stats.text_lines >= len(text)
    if len(out) == len(frames):
        assert dec.stats.text_lines == len(text)


@settings(max_examples=150, deadline=None)
@given(st.lists(frame_bytes(), min_size=1, max_size=6))
def test_round_trip_of_a_single_format_is_exact(frames):
    for version in ("v1", "v2"):
        for n in SMALL_N:
            mine = [f for f in frames if len(f) == frame_length(version, n)]
            if not mine:
                continue
            dec = OpenEchoDecoder(version, n)
            out = lines(dec.feed(b"".join(mine)))
            assert [line.samples.tolist() for line in out] == [
                parse_frame(f, version).samples.tolist() for f in mine]
            assert dec.stats.frames_bad == 0 and dec.buffered == 0


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(frame_bytes(), garbage, garbage), max_size=14),
       st.lists(st.integers(1, 64), min_size=1, max_size=10))
def test_garbage_never_crashes_never_yields_a_bad_frame_and_memory_stays_bounded(parts, steps):
    stream = b"".join(parts)
    dec = OpenEchoDecoder(n_samples=SMALL_N)
    out, pos, i = [], 0, 0
    while pos < len(stream):
        step = steps[i % len(steps)]
        out += dec.feed(stream[pos : pos + step])
        assert dec.buffered <= dec.max_buffered == 27
        pos += step
        i += 1
    out += dec.flush()
    assert dec.buffered == 0
    assert dec.stats.decoder_errors == 0
    assert dec.stats.bytes_in == len(stream)
    for line in lines(out):
        assert frame_windows(stream, line, SMALL_N)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(0, 255), min_size=5, max_size=5).map(encode_v2),
                min_size=1, max_size=6),
       st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\xaa", b"")), max_size=6))
def test_garbage_without_sync_bytes_loses_no_single_format_frame(frames, junk):
    stream = b"".join(j + f for j, f in zip(junk + [b""] * len(frames), frames, strict=False))
    dec = OpenEchoDecoder("v2", 5)
    out = lines(dec.feed(stream))
    assert [line.samples.tobytes() for line in out] == [f[7:-1] for f in frames]
    assert dec.stats.bytes_discarded == len(stream) - sum(map(len, frames))
