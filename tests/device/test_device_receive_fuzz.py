"""Fuzzing the client's receive path: a ``Receiver`` fed from a ``Decoder``, as the device does.

Hypothesis builds streams of DEVICE_INFOs (solicited and unsolicited, with small and absurd
limits), ECHO_LINEs within and far beyond those limits, FRAME_ENDs, replies and LOGs, intact
frames the client cannot use (other versions, unknown types, bad lengths), garbage with false
syncs, truncated and bit-flipped frames, messages lost on the link, sequence jumps and resets.
The bytes are cut into random chunks, and the host drops its buffer (``host_gap``) at random
points. Checked:

* ``feed`` never raises;
* every line handed on was within the limits of the DEVICE_INFO in force when it arrived, and
  every frame's size is that of its lines: no allocation beyond what the board announced;
* exactly the intact in-limit lines are taken (decided independently of the receiver, from
  what a reference decoder finds in the same bytes), each one ends up in a frame, at its
  slot and with its samples, or is counted as a duplicate; every other line is malformed;
* ``lines_missing == lines_lost_link + lines_lost_device + lines_lost_host`` after every
  chunk, no count is ever negative, and without a host gap nothing is blamed on the host;
* replies and device resets are handed on exactly once, in order;
* how the bytes were chunked changes nothing.

The examples are derandomized so that a run is repeatable; for a longer randomized campaign run
``SONOBRIDGE_FUZZ_EXAMPLES=5000 SONOBRIDGE_FUZZ_RANDOM=1`` with
``pytest tests/device/test_device_receive_fuzz.py``.
"""

from __future__ import annotations

import dataclasses
import itertools
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sonobridge.device.frames import Frame
from sonobridge.device.receiver import ReceiveCounts, Receiver
from sonobridge.protocol import (
    SYNC,
    UNSOLICITED,
    Ack,
    Decoder,
    DeviceInfo,
    EchoLine,
    FrameEnd,
    Log,
    Message,
    Nak,
    Pong,
    SampleFormat,
    Status,
    encode,
    encode_frame,
    next_seq,
)
from sonobridge.protocol.limits import device_info_problems
from sonobridge.protocol.samples import DTYPES

EXAMPLES = int(os.environ.get("SONOBRIDGE_FUZZ_EXAMPLES", "400"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize=not os.environ.get("SONOBRIDGE_FUZZ_RANDOM"),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)

# -- the stream's ingredients --------------------------------------------------------------------

infos = st.builds(
    dict, kind=st.just("info"), max_lines_per_frame=st.integers(0, 16),
    ensemble_max=st.integers(0, 4), max_samples_per_line=st.integers(0, 128),
    sample_formats=st.integers(0, 15), unsolicited=st.booleans())

#: a board whose limits the usual lines mostly fit
roomy_infos = st.builds(
    dict, kind=st.just("info"), max_lines_per_frame=st.integers(4, 16),
    ensemble_max=st.integers(1, 4), max_samples_per_line=st.sampled_from([16, 64, 128]),
    sample_formats=st.sampled_from([0b1111, 0b0010, 0b1011]), unsolicited=st.booleans())

#: lines that often fit the limits and often belong to the same few sweeps
usual_lines = st.builds(
    dict, kind=st.just("line"), frame_index=st.integers(0, 3),
    lines_per_frame=st.integers(1, 4), line_index=u16, ensemble_size=st.integers(1, 2),
    ensemble_index=u8, n_samples=st.sampled_from([0, 2, 8, 16]),
    sample_format=st.sampled_from([1, 1, 1, 0, 2, 3]), config_id=st.integers(0, 1))

#: lines with any size the wire can carry
wild_lines = st.builds(
    dict, kind=st.just("line"), frame_index=st.one_of(st.integers(0, 5), u32),
    lines_per_frame=st.integers(1, 0xFFFF), line_index=u16, ensemble_size=st.integers(1, 0xFF),
    ensemble_index=u8, n_samples=st.integers(0, 300), sample_format=st.integers(0, 3),
    config_id=st.integers(0, 1))

frame_ends = st.builds(
    dict, kind=st.just("end"), frame_index=st.one_of(st.integers(0, 4), u32),
    lines_sent=u16, lines_per_frame=st.one_of(st.integers(0, 8), u16))

replies = st.builds(dict, kind=st.just("reply"), msg=st.one_of(
    st.builds(Ack, request_seq=u32, request_type=u8),
    st.builds(Nak, request_seq=u32, request_type=u8, error_code=u8, field_id=u8,
              text=st.text(max_size=8)),
    st.builds(Pong, request_seq=u32, token=u32, data=st.binary(max_size=16)),
    st.builds(Status, request_seq=st.one_of(u32, st.just(UNSOLICITED)), state=u8,
              temperature_cdeg=st.integers(-0x8000, 0x7FFF), buffer_fill_permille=u16),
    st.builds(Log, level=u8, text=st.text(max_size=8)),
))

#: intact frames the client cannot use: another version, a must-understand flag, an unknown
#: type, a payload that does not fit (at most 32 bytes: never a DEVICE_INFO or an ECHO_LINE)
aliens = st.builds(dict, kind=st.just("alien"), msg_type=u8, version=st.integers(0, 3),
                   flags=u8, payload=st.binary(max_size=32))

garbage = st.builds(dict, kind=st.just("garbage"), data=st.lists(
    st.one_of(st.binary(min_size=1, max_size=48), st.just(SYNC), st.just(SYNC[:1])),
    min_size=1, max_size=6).map(b"".join))

#: a line cut short, and a line with one bit flipped: both consume a sequence number
damaged = st.builds(dict, kind=st.sampled_from(["truncate", "flip"]),
                    line=st.one_of(usual_lines, wild_lines), where=st.floats(0, 1),
                    bit=st.integers(0, 7))

#: a valid header (CRC-16 and all) promising up to 3000 bytes, then something else
false_headers = st.builds(dict, kind=st.just("false_header"),
                          payload_len=st.one_of(st.integers(0, 300), st.integers(0, 3000)),
                          tail=st.binary(max_size=40))

seq_events = st.one_of(
    st.builds(dict, kind=st.just("lost"), n=st.integers(1, 4)),
    st.builds(dict, kind=st.just("jump"), n=st.integers(5, 5000)),
    st.builds(dict, kind=st.just("reset"), to=st.integers(0, 3)),
)

host_gaps = st.builds(dict, kind=st.just("host_gap"), n_bytes=st.integers(1, 1 << 20))

#: a whole sweep as a board sends it (some firings left out, maybe its FRAME_END)
sweeps = st.builds(
    dict, kind=st.just("sweep"), frame_index=st.integers(0, 5),
    lines_per_frame=st.integers(1, 4), ensemble_size=st.integers(1, 2),
    n_samples=st.sampled_from([0, 2, 8, 16]), sample_format=st.sampled_from([1, 1, 1, 0, 2, 3]),
    config_id=st.integers(0, 1), skip=st.sets(st.integers(0, 7), max_size=3),
    frame_end=st.booleans())

#: mostly the traffic of a working board, with every kind of trouble mixed in (picked from
#: a list with repeats: ``one_of`` would weigh every kind alike)
events = st.sampled_from(
    [sweeps] * 5 + [usual_lines] * 2 + [roomy_infos, frame_ends, replies, infos, wild_lines,
                                        aliens, garbage, damaged, false_headers, seq_events,
                                        host_gaps]).flatmap(lambda kind: kind)

#: mostly a DEVICE_INFO first, as after a handshake; then anything
streams = st.tuples(st.sampled_from([0, 1, 1, 1]).flatmap(lambda n: st.lists(
                        roomy_infos, min_size=n, max_size=n)),
                    st.lists(events, min_size=8, max_size=60)
                    ).map(lambda t: t[0] + t[1])


@dataclasses.dataclass
class Stream:
    """The bytes between host gaps, and what went into them."""

    segments: list[bytearray]
    gaps: list[int]  # the host_gap(n_bytes) after each segment but the last
    intact: list[tuple[type, int]]  # (type, seq) of every message sent whole, in order
    clean: bool  # nothing but whole messages and sequence gaps: no byte damage


def _line(p: dict, uid: int) -> EchoLine:
    fmt = p["sample_format"]
    n = p["n_samples"] - (p["n_samples"] & 1 if fmt == SampleFormat.PACKED12 else 0)
    top = {0: 0xFF, 1: 0x7FFF, 2: 0xFFFF, 3: 0xFFF}[fmt]
    samples = ((np.arange(n) * 7919 + uid) % top).astype(DTYPES[fmt])
    lpf, ens = p["lines_per_frame"], p["ensemble_size"]
    # timestamp_us carries a unique id: every firing in a frame can be traced to its line
    return EchoLine(samples=samples, sample_rate_hz=1000, frame_index=p["frame_index"],
                    line_index=p["line_index"] % lpf, lines_per_frame=lpf,
                    ensemble_size=ens, ensemble_index=p["ensemble_index"] % ens,
                    config_id=p["config_id"], sample_format=fmt, timestamp_us=uid)


def build(evs: list[dict], first_seq: int) -> Stream:
    """Encode the events: every frame takes the next seq, whatever becomes of it."""
    seq = first_seq
    segments, gaps, intact = [bytearray()], [], []
    clean = True
    uids = itertools.count(1)

    def take() -> int:
        nonlocal seq
        s, seq = seq, next_seq(seq)
        return s

    for ev in evs:
        out = segments[-1]
        kind = ev["kind"]
        msg: Message | None = None
        if kind == "info":
            msg = DeviceInfo(
                request_seq=UNSOLICITED if ev["unsolicited"] else 1,
                max_lines_per_frame=ev["max_lines_per_frame"], ensemble_max=ev["ensemble_max"],
                max_samples_per_line=ev["max_samples_per_line"],
                sample_formats=ev["sample_formats"], board_name="fuzz")
        elif kind == "line":
            msg = _line(ev, next(uids))
        elif kind == "sweep":
            lpf, ens = ev["lines_per_frame"], ev["ensemble_size"]
            firings = [(li, ei) for li in range(lpf) for ei in range(ens)]
            for k, (li, ei) in enumerate(firings):
                s = take()
                if k not in ev["skip"]:
                    line = _line({**ev, "line_index": li, "ensemble_index": ei}, next(uids))
                    out += encode(line, s)
                    intact.append((EchoLine, s))
            if ev["frame_end"]:
                msg = FrameEnd(frame_index=ev["frame_index"], lines_per_frame=lpf,
                               lines_sent=len(firings))
        elif kind == "end":
            msg = FrameEnd(frame_index=ev["frame_index"], lines_sent=ev["lines_sent"],
                           lines_per_frame=ev["lines_per_frame"])
        elif kind == "reply":
            msg = ev["msg"]
        if msg is not None:
            s = take()
            out += encode(msg, s)
            intact.append((type(msg), s))
        elif kind == "alien":
            out += encode_frame(ev["msg_type"], ev["payload"], take(), flags=ev["flags"],
                                version=ev["version"])
            clean = False  # a frame of another version may or may not decode: not "intact"
        elif kind in ("truncate", "flip"):
            frame = bytearray(encode(_line(ev["line"], next(uids)), take()))
            at = int(ev["where"] * (len(frame) - 1))
            if kind == "truncate":
                del frame[max(1, at):]
            else:
                frame[at] ^= 1 << ev["bit"]
            out += frame
            clean = False
        elif kind == "false_header":
            header = encode_frame(0x90, bytes(ev["payload_len"]), take())[:16]
            out += header + ev["tail"]
            clean = False
        elif kind == "garbage":
            out += ev["data"]
            clean = False
        elif kind == "lost":
            for _ in range(ev["n"]):
                take()
        elif kind == "jump":
            seq = next_seq(seq, ev["n"])
        elif kind == "reset":
            seq = ev["to"]
        elif kind == "host_gap":
            gaps.append(ev["n_bytes"])
            segments.append(bytearray())
            clean = False
    return Stream(segments, gaps, intact, clean)


def within_limits(line: EchoLine, info: DeviceInfo | None, cap: int) -> bool:
    """The rule, restated independently: no size above what the board announced."""
    if info is None:
        return False
    n_bytes = line.lines_per_frame * line.ensemble_size * line.samples.nbytes
    return (line.lines_per_frame <= info.max_lines_per_frame
            and line.ensemble_size <= max(1, info.ensemble_max)
            and line.n_samples <= info.max_samples_per_line
            and bool(info.sample_formats >> line.sample_format & 1)
            and n_bytes <= cap)


def check_counts(c: ReceiveCounts) -> None:
    values = dataclasses.asdict(c)
    assert all(v >= 0 for v in values.values()), values
    assert c.lines_missing == c.lines_lost_link + c.lines_lost_device + c.lines_lost_host, values


@dataclasses.dataclass
class Run:
    rx: Receiver
    frames: list[Frame]
    accepted: dict[int, tuple[EchoLine, DeviceInfo]]  # uid -> line, limits when it came
    order: list[int]
    replies: list[Message]
    resets: list[DeviceInfo]
    lost_lines: int


def feed(stream: Stream, chunk_sizes: list[int], cap: int) -> Run:
    """Feed the stream to a fresh Receiver in chunks of the given sizes (cycled)."""
    frames: list[Frame] = []
    replies: list[Message] = []
    resets: list[DeviceInfo] = []
    rx = Receiver(Decoder(), on_frame=frames.append, on_reply=replies.append,
                  on_reset=resets.append)
    rx.max_frame_bytes = cap
    run = Run(rx, frames, {}, [], replies, resets, 0)

    def on_line(line: EchoLine, host_ns: int) -> None:
        assert rx.limits is not None
        assert line.timestamp_us not in run.accepted, "a line was handed on twice"
        run.accepted[line.timestamp_us] = (line, rx.limits)
        run.order.append(line.timestamp_us)

    rx.line_listeners.add(on_line)
    report_lost = rx.assembler.on_lost

    def on_lost(frame_index: int, per_sweep: int, device_sent: int | None,
                n_sweeps: int) -> None:
        run.lost_lines += per_sweep * n_sweeps
        report_lost(frame_index, per_sweep, device_sent, n_sweeps)

    rx.assembler.on_lost = on_lost
    sizes = itertools.cycle(chunk_sizes)
    host_ns = 0
    for i, segment in enumerate(stream.segments):
        data = bytes(segment)
        pos = 0
        while pos < len(data):
            n = next(sizes)
            host_ns += 1
            rx.feed(data[pos: pos + n], host_ns)
            pos += n
            check_counts(rx.counts)
        if i < len(stream.gaps):
            rx.host_gap(stream.gaps[i])
    rx.assembler.flush()
    check_counts(rx.counts)
    return run


@FUZZ
@given(evs=streams, first_seq=u32,
       chunk_sizes=st.lists(st.integers(1, 300), min_size=1, max_size=8),
       cap=st.sampled_from([1 << 30, 1 << 30, 0, 64, 256, 1024, 4096]))
def test_the_receive_path_survives_any_stream(evs, first_seq, chunk_sizes, cap) -> None:
    stream = build(evs, first_seq)
    run = feed(stream, chunk_sizes, cap)
    rx, c = run.rx, run.rx.counts

    # what arrived intact, found by a reference decoder in the same bytes, split the same way
    oracle = Decoder()
    decoded: list[Message] = []
    for i, segment in enumerate(stream.segments):
        decoded += oracle.feed(bytes(segment))
        if i < len(stream.gaps):
            oracle.reset()
    if stream.clean:  # the harness itself: whole messages always arrive, in order
        assert [(type(m), m.seq) for m in decoded] == stream.intact

    limits: DeviceInfo | None = None
    take, malformed, resets, answers = [], 0, [], []
    for m in decoded:
        if isinstance(m, EchoLine):
            if within_limits(m, limits, cap):
                take.append(m.timestamp_us)
            else:
                malformed += 1
        elif isinstance(m, FrameEnd):
            if limits is not None and m.lines_per_frame > limits.max_lines_per_frame:
                malformed += 1  # a FRAME_END claiming more than the board announced
        elif isinstance(m, DeviceInfo):
            if not device_info_problems(m):  # an impossible one bounds nothing
                limits = m
            (resets if m.request_seq == UNSOLICITED else answers).append(m)
        elif getattr(m, "request_seq", None) is not None:  # ACK, NAK, STATUS, PONG
            answers.append(m)

    # exactly the intact in-limit lines were taken; the others were counted as malformed
    assert run.order == take
    assert c.lines_received == len(take) and c.lines_malformed == malformed
    assert c.device_resets == len(resets) == len(run.resets)
    assert [(type(m), m.seq) for m in run.replies] == [(type(m), m.seq) for m in answers]

    # every line taken was within the limits in force when it came
    for line, info in run.accepted.values():
        assert within_limits(line, info, cap)

    # ... and every frame is made of such lines, sized as they say; each line is in one frame
    placed: set[int] = set()
    for f in run.frames:
        assert f.lost_link >= 0 and f.lost_device >= 0 and f.lost_host >= 0
        assert f.lost_link + f.lost_device + f.lost_host == f.n_missing
        assert f.present.any(), "a frame without a single line"
        for li, ei in zip(*np.nonzero(f.present), strict=True):
            uid = int(f.meta["timestamp_us"][li, ei])
            assert uid in run.accepted and uid not in placed
            placed.add(uid)
            line, info = run.accepted[uid]
            assert (f.index, f.n_lines, f.ensemble_size, f.samples.shape[1]) == (
                line.frame_index, line.lines_per_frame, line.ensemble_size, line.n_samples)
            assert (li, ei) == (line.line_index, line.ensemble_index)
            assert f.sample_format == line.sample_format
            np.testing.assert_array_equal(f.ensembles[li, ei], line.samples)
            assert f.n_lines <= info.max_lines_per_frame
            assert f.ensemble_size <= max(1, info.ensemble_max)
            assert f.samples.shape[1] <= info.max_samples_per_line
    assert len(run.accepted) - len(placed) == rx.assembler.duplicates

    # the counts add up
    assert c.frames_complete + c.frames_incomplete == len(run.frames)
    assert c.frames_complete == sum(f.complete for f in run.frames)
    assert c.lines_missing == sum(f.n_missing for f in run.frames) + run.lost_lines
    if not stream.gaps:
        assert c.lines_lost_host == 0

    # chunking changes nothing: the same stream, each segment in one piece
    whole = feed(stream, [1 << 30], cap)
    assert dataclasses.asdict(whole.rx.counts) == dataclasses.asdict(c)
    assert whole.order == run.order
    assert [(f.index, f.present.tolist(), f.lost_link, f.lost_device, f.lost_host)
            for f in whole.frames] == [
        (f.index, f.present.tolist(), f.lost_link, f.lost_device, f.lost_host)
        for f in run.frames]
