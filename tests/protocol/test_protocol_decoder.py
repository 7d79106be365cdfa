"""The streaming decoder under hostile input: garbage, corruption, truncation, odd headers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sonobridge.protocol import (
    MAX_PAYLOAD,
    SYNC,
    Decoder,
    EchoLine,
    FrameEnd,
    Log,
    MsgType,
    Ping,
    Status,
    encode,
    encode_frame,
)
from sonobridge.protocol.codec import HEADER_BODY, HEADER_CRC
from sonobridge.protocol.constants import HEADER_SIZE, frame_len


def line(i: int, n: int = 256, seed: int = 0) -> EchoLine:
    rng = np.random.default_rng(seed + i)
    return EchoLine(rng.integers(-2000, 2000, n, dtype=np.int16), 40_000_000,
                    frame_index=i // 8, line_index=i % 8, lines_per_frame=8)


def frames(k: int, start: int = 0, **kw) -> list[bytes]:
    return [encode(line(i, **kw), i) for i in range(start, start + k)]


def feed_all(dec: Decoder, data: bytes, chunk: int = 997) -> list:
    out = []
    for i in range(0, len(data), chunk):
        out += dec.feed(data[i : i + chunk])
    return out


def test_garbage_before_and_between_frames_including_sync_bytes():
    good = frames(4)
    junk = [b"\x00\x01garbage", SYNC + b"\xff" * 30, SYNC * 7, b"\xa5", SYNC + bytes(14)]
    stream = junk[0] + good[0] + junk[1] + good[1] + junk[2] + good[2] + junk[3] + junk[4] + good[3]
    for chunk in (1, 7, 64, len(stream)):
        dec = Decoder()
        out = feed_all(dec, stream, chunk)
        assert out == [line(i) for i in range(4)]
        assert dec.stats.frames_ok == 4
        assert dec.stats.seq_gaps == 0
        assert dec.stats.bytes_discarded == sum(map(len, junk))
        assert dec.stats.bytes_in == len(stream)


def test_sync_bytes_inside_payload_are_not_frames():
    samples = np.frombuffer(SYNC * 512, dtype=np.int16).copy()
    msg = EchoLine(samples, 1_000_000)
    text = Log(text="\u5aa5" * 10 + "\xa5Z" * 40)
    stream = encode(msg, 0) + encode(text, 1) + encode(FrameEnd(0, 1, 1, 5), 2)
    dec = Decoder()
    assert feed_all(dec, stream, 3) == [msg, text, FrameEnd(0, 1, 1, 5)]
    assert dec.stats.header_errors == 0 and dec.stats.bytes_discarded == 0


@pytest.mark.parametrize("region", ["header", "payload", "padding", "crc32"])
def test_bit_flip_costs_exactly_that_frame(region):
    good = frames(3)
    bad = bytearray(good[1])
    payload_len = len(bad) - HEADER_SIZE - 4
    offset = {"header": 5, "payload": HEADER_SIZE + payload_len // 2,
              "padding": len(bad) - 5, "crc32": len(bad) - 2}[region]
    if region == "padding":
        # give the middle frame a payload that needs padding
        odd = Log(text="odd")
        bad = bytearray(encode(odd, 1))
        offset = len(bad) - 5
        assert (len(bad) - HEADER_SIZE - 4) % 4 == 0 and len("odd") % 4
    bad[offset] ^= 0x10
    stream = good[0] + bytes(bad) + good[2]
    for chunk in (1, 13, len(stream)):
        dec = Decoder()
        out = feed_all(dec, stream, chunk)
        assert out == [line(0), line(2)]
        assert dec.stats.seq_gaps == 1
        if region == "header":
            assert dec.stats.header_errors >= 1 and dec.stats.frames_bad == 0
        else:
            assert dec.stats.crc_errors == 1 and dec.stats.frames_bad == 1


def test_every_single_bit_flip_in_a_frame_is_caught():
    good = frames(3, n=8)
    for bit in range(len(good[1]) * 8):
        bad = bytearray(good[1])
        bad[bit // 8] ^= 1 << (bit % 8)
        dec = Decoder()
        out = dec.feed(good[0] + bytes(bad) + good[2])
        assert out == [line(0, n=8), line(2, n=8)], f"bit {bit}"


@pytest.mark.parametrize("cut", [3, 15, 16, 40, 300])
def test_truncated_frame_followed_by_a_good_one(cut):
    good = frames(3)
    stream = good[0] + good[1][:cut] + good[2]
    dec = Decoder()
    out = feed_all(dec, stream, 64)
    assert out == [line(0), line(2)]
    assert dec.stats.seq_gaps == 1


def test_truncated_frame_at_end_of_stream_is_held_not_lost():
    good = frames(2)
    dec = Decoder()
    assert dec.feed(good[0] + good[1][:100]) == [line(0)]
    assert dec.buffered == 100
    assert dec.feed(good[1][100:]) == [line(1)]
    assert dec.buffered == 0


def _header(length: int, *, msg_type: int = MsgType.ECHO_LINE, seq: int = 0, flags: int = 0,
            version: int = 1) -> bytes:
    import binascii
    head = HEADER_BODY.pack(SYNC, version, msg_type, length, seq, flags, 0)
    return head + HEADER_CRC.pack(binascii.crc_hqx(head, 0xFFFF))


def test_oversized_length_is_rejected_without_waiting_or_allocating():
    bogus = _header(MAX_PAYLOAD + 1)  # a valid header CRC, but an impossible length
    good = frames(2)
    dec = Decoder()
    out = dec.feed(good[0] + bogus) + dec.feed(good[1])
    assert out == [line(0), line(1)]
    assert dec.stats.header_errors == 1
    assert dec.buffered == 0


def test_lengths_up_to_max_are_buffered_but_never_more():
    dec = Decoder()
    dec.feed(_header(MAX_PAYLOAD))
    dec.feed(bytes(MAX_PAYLOAD - 1000))
    assert dec.buffered <= frame_len(MAX_PAYLOAD)
    # the bogus frame's CRC-32 fails once complete; the good frame behind it is decoded
    out = dec.feed(bytes(2000) + encode(line(9), 1))
    assert out == [line(9)]
    assert dec.stats.crc_errors == 1
    assert dec.buffered == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"version": 2}, {"version": 0}, {"msg_type": 0x55}, {"msg_type": 0xFF}, {"flags": 0x10},
     {"flags": 0x80}],
)
def test_unknown_version_type_or_must_understand_flag_skips_exactly_that_frame(kwargs):
    msg_type = kwargs.pop("msg_type", MsgType.PING)
    odd = encode_frame(msg_type, b"\x01\x02\x03\x04", 1, **kwargs)
    good = frames(3)
    stream = good[0] + odd + encode(line(2), 2)
    dec = Decoder()
    out = feed_all(dec, stream, 5)
    assert out == [line(0), line(2)]
    assert dec.stats.unsupported == 1 and dec.stats.frames_bad == 1
    assert dec.stats.seq_gaps == 0  # the skipped frame's seq was still seen


def test_advisory_flags_are_ignored():
    ping = Ping(token=1)
    out = Decoder().feed(encode(ping, 0, flags=0x0F))
    assert out == [ping]


def test_malformed_payload_is_counted_and_skipped():
    bad_status = encode_frame(MsgType.STATUS, bytes(31), 0)
    bad_line = encode_frame(MsgType.ECHO_LINE, bytes(40) + b"\x01", 1)  # says 0 samples
    dec = Decoder()
    out = dec.feed(bad_status + bad_line + encode(Status(), 2))
    assert out == [Status()]
    assert dec.stats.malformed == 2


def test_sequence_gaps_are_counted():
    dec = Decoder()
    stream = b"".join(encode(line(i), i) for i in (0, 1, 5, 6, 10))
    assert len(dec.feed(stream)) == 5
    assert dec.stats.seq_gaps == 3 + 3
    assert dec.stats.seq_resets == 0


def test_sequence_wraps_without_gaps():
    dec = Decoder()
    seqs = [0xFFFFFFFE, 0xFFFFFFFF, 0, 1]
    dec.feed(b"".join(encode(Ping(token=s), s) for s in seqs))
    assert dec.stats.seq_gaps == 0 and dec.stats.seq_resets == 0
    assert dec.stats.last_seq == 1


def test_gap_across_the_wrap():
    dec = Decoder()
    dec.feed(encode(Ping(), 0xFFFFFFFD) + encode(Ping(), 2))
    assert dec.stats.seq_gaps == 4  # FFFFFFFE, FFFFFFFF, 0, 1
    assert dec.stats.seq_resets == 0


def test_device_restart_is_a_reset_not_four_billion_gaps():
    dec = Decoder()
    dec.feed(b"".join(encode(Ping(), s) for s in (1000, 1001, 0, 1, 2)))
    assert dec.stats.seq_resets == 1
    assert dec.stats.seq_gaps == 0


@settings(max_examples=400)
@given(st.binary(max_size=4096))
def test_fuzz_arbitrary_bytes_never_raise(data):
    dec = Decoder()
    dec.feed(data)
    dec.feed(data[::-1])
    s = dec.stats
    assert s.decoder_errors == 0
    assert s.bytes_in == 2 * len(data)
    assert dec.buffered <= frame_len(MAX_PAYLOAD)


@settings(max_examples=200)
@given(st.lists(st.one_of(st.binary(max_size=64), st.sampled_from(frames(4, n=16)),
                          st.just(SYNC), st.just(_header(10)), st.just(_header(MAX_PAYLOAD)))),
       st.integers(1, 50))
def test_fuzz_frames_mixed_with_noise_decode_every_intact_frame(parts, chunk):
    good = set(frames(4, n=16))
    stream = b"".join(parts)
    dec = Decoder()
    out = feed_all(dec, stream, chunk)
    # every inserted intact frame is found unless a bogus header announced a length that
    # spans it (then the good frame is recovered after the bogus one fails its CRC) ...
    expected = sum(1 for p in parts if p in good)
    # ... or the stream ended while a bogus header still waits for its payload
    assert len(out) <= expected
    out += dec.feed(bytes(frame_len(MAX_PAYLOAD)))
    assert len(out) == expected
    assert dec.stats.decoder_errors == 0


def test_non_bytes_inputs_are_accepted():
    data = encode(line(0), 0)
    assert Decoder().feed(bytearray(data)) == [line(0)]
    assert Decoder().feed(memoryview(data)) == [line(0)]


def test_stats_account_for_every_byte():
    good = frames(5)
    stream = b"junk" + good[0] + good[1][:50] + good[2] + b"\xa5\x5a\x00" + good[3] + good[4]
    dec = Decoder()
    feed_all(dec, stream, 33)
    consumed = sum(len(good[i]) for i in (0, 2, 3, 4))
    s = dec.stats
    assert s.bytes_in == len(stream)
    assert consumed + s.bytes_discarded + dec.buffered == s.bytes_in


def test_zero_copy_when_aligned():
    data = encode(line(0), 0)
    (out,) = Decoder().feed(data)
    assert out.samples.base is not None  # a view of the received bytes, not a copy
    assert not out.samples.flags.owndata
    assert not out.samples.flags.writeable


def test_on_reject_reports_why_an_intact_frame_was_dropped():
    seen = []
    dec = Decoder(on_reject=seen.append)
    dec.feed(encode_frame(0x55, b"", 4) + encode_frame(MsgType.PING, b"", 5, version=2)
             + encode_frame(MsgType.PING, b"\0\0\0\0", 6, flags=0x20)
             + encode_frame(MsgType.STATUS, b"\0", 7))
    assert [(r.seq, r.reason) for r in seen] == [(4, "type"), (5, "version"), (6, "flags"),
                                                 (7, "length")]


def test_decoded_messages_carry_header_flags():
    (msg,) = Decoder().feed(encode(Ping(token=3), 9, flags=0x02))
    assert msg.seq == 9 and msg.flags == 0x02
