"""The device-side decoder's idle-gap rule: a partial frame expires, what follows it decodes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sonobridge.protocol import Configure, Decoder, GetStatus, Ping, encode, next_seq
from sonobridge.protocol.constants import PARTIAL_FRAME_TIMEOUT_S

from .proto_strategies import messages

GAP = PARTIAL_FRAME_TIMEOUT_S
# the messages are big (ECHO_LINE, PING data); what matters is every cut of every type
SLOW = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def chunks(data: bytes, sizes: list[int]) -> list[bytes]:
    """``data`` split at the given chunk sizes (cycled), never into empty pieces."""
    out, i, k = [], 0, 0
    while i < len(data):
        n = sizes[k % len(sizes)] if sizes else len(data)
        out.append(data[i : i + n])
        i += n
        k += 1
    return out


@SLOW
@given(msg=messages, cut=st.floats(0.0, 1.0, exclude_max=True), seq=st.integers(0, 2**32 - 1),
       sizes=st.lists(st.integers(1, 300), max_size=4), behind=st.booleans())
def test_any_truncated_frame_then_an_idle_gap_releases_the_good_frame(msg, cut, seq, sizes,
                                                                      behind):
    """Cut anywhere, then a good frame at once (behind) or after the gap: the good one decodes."""
    frame = encode(msg, seq)
    head = frame[: max(1, int(cut * len(frame)))]
    good = encode(Ping(token=0xFEED, data=b"\xa5\x5a sync inside"), next_seq(seq))
    dec = Decoder(partial_timeout_s=GAP)
    out = []
    t = 100.0
    for piece in chunks(head + good if behind else head, sizes):
        out += dec.feed(piece, t)
        t += GAP / 10  # bytes keep coming: inside the gap, nothing expires
    if behind:
        out += dec.expire(t - GAP / 10 + GAP * 0.999)
        out += dec.expire(t - GAP / 10 + GAP)
    else:
        assert dec.expire(t - GAP / 10 + GAP * 0.999) == []
        out += dec.feed(good, t - GAP / 10 + GAP)  # the expiry runs before these bytes count
    assert [m.token for m in out if isinstance(m, Ping)] == [0xFEED]
    assert len(out) == 1
    assert dec.buffered == 0
    assert dec.stats.bytes_discarded == len(head)  # the truncated bytes, each counted once
    assert dec.stats.bytes_in == len(head) + len(good)


@SLOW
@given(data=st.binary(max_size=600), times=st.lists(st.floats(0, 10), min_size=1, max_size=8),
       sizes=st.lists(st.integers(1, 120), max_size=4))
def test_garbage_then_a_gap_leaves_nothing_held_and_decodes_on(data, times, sizes):
    """Whatever was held, an idle gap leaves nothing behind, and the next frame decodes."""
    dec = Decoder(partial_timeout_s=GAP)
    t = 0.0
    for k, piece in enumerate(chunks(data, sizes)):
        t += times[k % len(times)] * GAP / 5
        dec.feed(piece, t)
    dec.expire(t + GAP)
    assert dec.buffered == 0
    good = encode(GetStatus(), 5)
    (status,) = dec.feed(good, t + 2 * GAP)
    assert isinstance(status, GetStatus)
    # random bytes hold no intact frame, so every one of them was discarded, once
    assert dec.stats.bytes_discarded == len(data)
    assert dec.stats.bytes_in == len(data) + len(good)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=400), sizes=st.lists(st.integers(1, 100), max_size=4),
       times=st.lists(st.floats(0, 1e6), min_size=1, max_size=4))
def test_without_a_timeout_time_changes_nothing(data, sizes, times):
    """A decoder without ``partial_timeout_s`` decodes exactly as it always did."""
    frames = data + encode(Configure(), 1)[:60] + encode(GetStatus(), 2) + data
    plain, timed_calls = Decoder(), Decoder()
    a, b = [], []
    for k, piece in enumerate(chunks(frames, sizes)):
        a += plain.feed(piece)
        b += timed_calls.feed(piece, times[k % len(times)])
        b += timed_calls.expire(1e9)
    assert a == b
    assert plain.stats == timed_calls.stats
    assert plain.buffered == timed_calls.buffered
    assert timed_calls.partials_expired == 0


def test_the_truncated_configure_holds_the_ping_until_the_gap_ends():
    head = encode(Configure(), 1)[:60]
    ping = encode(Ping(token=1), 2)
    untimed, timed = Decoder(), Decoder(partial_timeout_s=GAP)
    assert untimed.feed(head + ping) == [] and untimed.buffered == 60 + len(ping)
    assert timed.feed(head + ping, 0.0) == []
    assert timed.expire(GAP - 1e-6) == [] and timed.buffered == 60 + len(ping)
    (pong_request,) = timed.expire(GAP)
    assert isinstance(pong_request, Ping) and pong_request.seq == 2
    assert timed.partials_expired == 1
    assert timed.stats.bytes_discarded == 60
    assert (timed.stats.crc_errors, timed.stats.header_errors) == (0, 0)
    assert timed.expire(10 * GAP) == [] and timed.partials_expired == 1  # nothing held
    # the host's decoder (no timeout) would wait: a slow link may pause mid-frame
    assert untimed.expire(10 * GAP) == [] and untimed.buffered == 60 + len(ping)


def test_an_empty_feed_is_a_timer_tick():
    timed = Decoder(partial_timeout_s=GAP)
    timed.feed(encode(Configure(), 1)[:60] + encode(GetStatus(), 2), 5.0)
    assert timed.feed(b"", 5.0 + GAP / 2) == []
    (status,) = timed.feed(b"", 5.0 + GAP)
    assert isinstance(status, GetStatus)


def test_a_timed_decoder_needs_the_arrival_time():
    with pytest.raises(ValueError, match="now_s"):
        Decoder(partial_timeout_s=GAP).feed(b"\xa5")
    with pytest.raises(ValueError, match="partial_timeout_s"):
        Decoder(partial_timeout_s=0)
