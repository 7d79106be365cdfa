"""Every message type survives encode → Decoder.feed → equal message, in any chunking."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sonobridge.protocol import Decoder, EchoLine, MsgType, decode_payload, encode, encode_payload
from sonobridge.protocol.messages import MESSAGE_CLASSES

from .proto_strategies import BY_TYPE, echo_lines, messages, seqs


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(message=messages, seq=seqs)
def test_every_message_round_trips(message, seq):
    frame = encode(message, seq)
    dec = Decoder()
    out = dec.feed(frame)
    assert out == [message]
    assert out[0].seq == seq
    assert dec.stats.frames_ok == 1
    assert dec.stats.bytes_discarded == 0
    assert len(frame) % 4 == 0


@settings(max_examples=300)
@given(message=messages)
def test_payload_codec_is_symmetric(message):
    payload = encode_payload(message)
    assert decode_payload(message.MSG_TYPE, payload) == message


@settings(max_examples=5)
@given(data=st.data())
def test_strategy_covers_every_message_type(data):
    # a new message type must get a generator too, or the round trips above silently skip it
    assert set(BY_TYPE) == set(MsgType) == set(MESSAGE_CLASSES)
    for msg_type, strategy in BY_TYPE.items():
        assert msg_type == data.draw(strategy).MSG_TYPE


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(messages, min_size=1, max_size=12), data=st.data())
def test_random_chunking_yields_the_same_messages(batch, data):
    stream = b"".join(encode(m, i) for i, m in enumerate(batch))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=40)))
    dec = Decoder()
    out = []
    prev = 0
    for cut in [*cuts, len(stream)]:
        out += dec.feed(stream[prev:cut])
        prev = cut
    assert out == batch
    assert [m.seq for m in out] == list(range(len(batch)))
    assert dec.stats.seq_gaps == 0 and dec.stats.frames_bad == 0
    assert dec.buffered == 0


def test_one_byte_at_a_time_and_megabyte_chunks_agree():
    rng = np.random.default_rng(5)
    lines = [EchoLine(rng.integers(-500, 500, 2048, dtype=np.int16), 40_000_000,
                      frame_index=0, line_index=i, lines_per_frame=300) for i in range(300)]
    stream = b"".join(encode(m, i) for i, m in enumerate(lines))
    assert len(stream) > 1_000_000
    big = Decoder().feed(stream)
    small_dec = Decoder()
    small = []
    for i in range(0, 40_000):  # the first ~10 lines byte by byte is plenty
        small += small_dec.feed(stream[i : i + 1])
    small += small_dec.feed(stream[40_000:])
    assert big == lines
    assert small == lines


@given(line=echo_lines(max_samples=64))
def test_decoded_samples_keep_dtype_and_values(line):
    (out,) = Decoder().feed(encode(line, 0))
    assert out.samples.dtype == line.samples.dtype
    np.testing.assert_array_equal(out.samples, line.samples)
