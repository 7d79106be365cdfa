"""The raw capture format: byte-exact round trip, bounded queue, damage found and skipped."""

from __future__ import annotations

import errno
import itertools
import json
import struct
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sonobridge.protocol import Decoder, EchoLine, Ping, encode
from sonobridge.record.raw import (
    FILE_HEADER,
    KIND_EVENT,
    KIND_GAP,
    KIND_RX,
    RECORD_HEADER,
    CaptureError,
    CaptureReader,
    CaptureWriter,
    iter_rx,
)

from .record_fixtures import wait_until


def _stream() -> list[bytes]:
    """A realistic byte stream cut into uneven chunks (frames straddle chunk boundaries)."""
    frames = b"junk" + b"".join(
        encode(EchoLine(np.arange(100, dtype=np.int16) + k, 40_000_000, line_index=k % 4,
                        lines_per_frame=4), k) for k in range(20)) + encode(Ping(token=7), 20)
    cuts = [0, 5, 17, 300, 301, 999, 2000, len(frames)]
    return [frames[a:b] for a, b in itertools.pairwise(cuts)]


def _write(path, chunks, events=()):
    w = CaptureWriter(path)
    for i, chunk in enumerate(chunks):
        w.write_rx(chunk, 1000 + i)
    for ev in events:
        w.write_event(ev, 5)
    return w.close()


def _offsets(path) -> list[int]:
    return [r.offset for r in CaptureReader(path).records()]


def test_round_trip_is_byte_exact_and_decodes_the_same(tmp_path):
    path = tmp_path / "c.sbcap"
    chunks = _stream()
    stats = _write(path, chunks, [{"type": "session", "port": "x"}])
    assert stats.rx_bytes == sum(map(len, chunks)) and stats.dropped_bytes == 0
    assert stats.flushed_bytes == stats.file_bytes == path.stat().st_size
    got = list(iter_rx(path))
    assert [c for c, _ in got] == chunks
    assert [t for _, t in got] == [1000 + i for i in range(len(chunks))]
    live, replayed = Decoder(), Decoder()
    want = [m for c in chunks for m in live.feed(c)]
    have = [m for c, _ in got for m in replayed.feed(c)]
    assert have == want and len(want) == 21
    assert replayed.stats == live.stats
    assert CaptureReader(path).events() == [(5, {"type": "session", "port": "x"})]


def test_truncated_capture_names_the_offset_and_keeps_every_earlier_record(tmp_path):
    path = tmp_path / "c.sbcap"
    chunks = _stream()
    _write(path, chunks)
    offsets = _offsets(path)
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(size - 3)  # the last record loses its CRC: stopped mid-write
    with pytest.raises(CaptureError) as info:
        list(iter_rx(path))
    assert info.value.offset == offsets[-1]
    assert info.value.truncated
    assert f"offset {offsets[-1]}" in str(info.value)
    reader = CaptureReader(path, strict=False)
    assert [r.data for r in reader.records()] == chunks[:-1]
    assert reader.damage is not None and reader.damage.records_ok == len(chunks) - 1


def _flip(path, offset: int, mask: int = 0x40) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ mask]))


def test_corrupted_record_is_skipped_and_reading_resumes_after_it(tmp_path):
    path = tmp_path / "c.sbcap"
    chunks = _stream()
    _write(path, chunks)
    offsets = _offsets(path)
    victim = offsets[3]
    _flip(path, victim + RECORD_HEADER.size + 2)
    reader = CaptureReader(path, strict=False)
    assert [r.data for r in reader.records()] == chunks[:3] + chunks[4:]
    assert reader.damage.offset == victim and not reader.damage.truncated
    assert "CRC-32" in reader.damage.reason
    assert reader.skipped == [(victim, offsets[4])]
    assert reader.records_ok == len(chunks) - 1
    assert reader.end_offset == path.stat().st_size
    # strict readers still stop at the first damage
    with pytest.raises(CaptureError, match=f"offset {victim}"):
        list(CaptureReader(path).records())


def test_a_corrupted_length_is_caught_before_reading_it(tmp_path):
    path = tmp_path / "c.sbcap"
    chunks = _stream()
    _write(path, chunks)
    offsets = _offsets(path)
    with path.open("r+b") as f:
        f.seek(offsets[2] + 8)
        f.write(struct.pack("<I", 0x7FFFFFFF))
    reader = CaptureReader(path, strict=False)
    assert [r.data for r in reader.records()] == chunks[:2] + chunks[3:]
    assert reader.damage.offset == offsets[2] and "maximum" in reader.damage.reason
    assert reader.skipped == [(offsets[2], offsets[3])]


def test_a_corrupt_length_never_allocates_what_it_claims(tmp_path):
    """A length under the 64 MiB bound but past the end of the file: nothing near it is
    allocated, the record is skipped, and it is not mistaken for a truncated tail."""
    path = tmp_path / "c.sbcap"
    chunks = [bytes([k]) * 300 for k in range(40)]
    _write(path, chunks)
    offsets = _offsets(path)
    with path.open("r+b") as f:
        f.seek(offsets[5] + 8)
        f.write(struct.pack("<I", 60 << 20))
    tracemalloc.start()
    try:
        reader = CaptureReader(path, strict=False)
        got = [r.data for r in reader.records()]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"reading allocated {peak} bytes at its peak"
    assert got == chunks[:5] + chunks[6:]
    assert not reader.damage.truncated and "length" in reader.damage.reason
    assert reader.skipped == [(offsets[5], offsets[6])]


def _capture_of(path, n: int, size_of=lambda k: 20 + (k * 37) % 200, end_event: bool = False
                ) -> list[bytes]:
    chunks = [bytes((k * 7 + i) & 0xFF for i in range(size_of(k))) for k in range(n)]
    w = CaptureWriter(path)
    for k, chunk in enumerate(chunks):
        w.write_rx(chunk, 1_000_000 + k)
    if end_event:
        w.write_event({"type": "end"}, 2_000_000)
    w.close()
    return chunks


def test_a_flipped_bit_in_record_10_of_1000_keeps_the_other_999(tmp_path):
    path = tmp_path / "c.sbcap"
    chunks = _capture_of(path, 1000, end_event=True)
    offsets = _offsets(path)[:1000]
    for where, what in ((RECORD_HEADER.size + 5, "payload"), (9, "length"), (0, "host time"),
                        (12, "kind")):
        damaged = tmp_path / f"{what.replace(' ', '_')}.sbcap"
        damaged.write_bytes(path.read_bytes())
        _flip(damaged, offsets[10] + where, 0x04)
        reader = CaptureReader(damaged, strict=False)
        got = [r for r in reader.records() if r.kind == KIND_RX]
        assert [r.data for r in got] == chunks[:10] + chunks[11:], what
        assert [r.offset for r in got] == offsets[:10] + offsets[11:], what
        assert reader.skipped == [(offsets[10], offsets[11])], what
        assert reader.damage.offset == offsets[10] and reader.damage.end == offsets[11]
        assert reader.records_ok == 999 + 1  # and the final event
        # the events-only scan (payloads unread) still gets past it to the last event
        assert reader.events() == [(2_000_000, {"type": "end"})], what


def test_resync_past_long_records_checks_what_follows_them(tmp_path):
    """Records longer than the cheap-CRC bound: a corrupt length before one of them, and before
    the last one in the file, still loses only the damaged record."""
    path = tmp_path / "c.sbcap"
    chunks = _capture_of(path, 30, lambda k: 10_000 + k)
    offsets = _offsets(path)
    for k in (10, 28):
        _flip(path, offsets[k] + 10, 0x01)  # length + 64 KiB: runs into the next records
    reader = CaptureReader(path, strict=False)
    assert [r.data for r in reader.records()] == \
        [c for k, c in enumerate(chunks) if k not in (10, 28)]
    assert reader.skipped == [(offsets[10], offsets[11]), (offsets[28], offsets[29])]


def _runs(indices: set[int]) -> list[tuple[int, int]]:
    """Maximal runs ``(first, last + 1)`` of consecutive record indices."""
    out: list[tuple[int, int]] = []
    for k in sorted(indices):
        if out and out[-1][1] == k:
            out[-1] = (out[-1][0], k + 1)
        else:
            out.append((k, k + 1))
    return out


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_bit_flips_lose_only_the_records_they_hit(tmp_path, data):
    path = tmp_path / "h.sbcap"
    path.unlink(missing_ok=True)  # one directory serves every example
    n = data.draw(st.integers(2, 60), label="records")
    sizes = data.draw(st.lists(st.integers(0, 600), min_size=n, max_size=n), label="sizes")
    chunks = _capture_of(path, n, lambda k: sizes[k])
    offsets = _offsets(path)
    ends = [*offsets[1:], path.stat().st_size]
    # up to three distinct bits anywhere in the records (the file header is tested apart)
    bits = data.draw(st.sets(st.integers(offsets[0] * 8, ends[-1] * 8 - 1), min_size=1,
                             max_size=3), label="bits")
    for bit in bits:
        _flip(path, bit // 8, 1 << (bit % 8))
    hit = {k for k in range(n) for bit in bits if offsets[k] <= bit // 8 < ends[k]}
    reader = CaptureReader(path, strict=False)
    got = list(reader.records())
    assert [r.data for r in got] == [c for k, c in enumerate(chunks) if k not in hit]
    assert reader.skipped == [(offsets[a], ends[b - 1]) for a, b in _runs(hit)]
    # only damage to the last record can look like a file that was cut short
    assert all(not d.truncated or d.end == ends[-1] for d in reader.damages)


def test_a_damaged_file_header_is_tolerated_when_not_strict(tmp_path):
    path = tmp_path / "c.sbcap"
    chunks = _stream()
    _write(path, chunks)
    _flip(path, 12)  # the header's own CRC
    with pytest.raises(CaptureError, match="header fails its CRC"):
        CaptureReader(path)
    reader = CaptureReader(path, strict=False)
    assert [r.data for r in reader.records()] == chunks
    assert reader.damage is not None and reader.damage.offset == 0


def test_not_a_capture(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(CaptureError, match="offset 0"):
        CaptureReader(path)
    good = tmp_path / "c.sbcap"
    _write(good, [b"abc"])
    data = bytearray(good.read_bytes())
    data[9] ^= 1  # version field: the header CRC catches it
    good.write_bytes(bytes(data))
    with pytest.raises(CaptureError, match="header fails its CRC"):
        CaptureReader(good)


def test_refuses_to_overwrite(tmp_path):
    path = tmp_path / "c.sbcap"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        CaptureWriter(path)
    assert path.read_bytes() == b"precious"
    CaptureWriter(path, overwrite=True).close()
    assert path.stat().st_size == FILE_HEADER.size


def test_bytes_beyond_the_queue_bound_are_counted_and_marked(tmp_path):
    path = tmp_path / "c.sbcap"
    w = CaptureWriter(path, max_queue_bytes=64)
    w.write_rx(b"x" * 100, 1)  # larger than the whole bound: cannot be kept
    w.write_rx(b"y" * 10, 2)
    stats = w.close()
    assert stats.dropped_bytes == 100
    recs = list(CaptureReader(path).records())
    assert [(r.kind, r.data) for r in recs] == [(KIND_GAP, struct.pack("<Q", 100)),
                                                 (KIND_RX, b"y" * 10)]


def test_a_full_disk_stops_the_capture_cleanly(tmp_path, monkeypatch):
    path = tmp_path / "c.sbcap"
    w = CaptureWriter(path)
    real = w._writev
    calls = []

    def disk(buffers):
        calls.append(len(buffers))
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(buffers)

    monkeypatch.setattr(w, "_writev", disk)
    w.write_rx(b"first", 1)
    wait_until(lambda: w.stats.records == 1, 5.0, "the first record")
    w.write_rx(b"second", 2)
    wait_until(lambda: w.stats.error is not None, 5.0, "the failed write")
    w.write_event({"type": "end"})  # ignored after the failure
    stats = w.close()
    assert "No space left" in stats.error
    assert stats.dropped_bytes == len(b"second")
    assert stats.flushed_bytes == path.stat().st_size
    assert [r.data for r in CaptureReader(path).records()] == [b"first"]


def test_events_are_json_records(tmp_path):
    path = tmp_path / "c.sbcap"
    _write(path, [b"abc"], [{"type": "config", "config": {"prf_hz": 100}}])
    recs = list(CaptureReader(path).records())
    assert recs[1].kind == KIND_EVENT
    assert json.loads(recs[1].data) == {"type": "config", "config": {"prf_hz": 100}}
