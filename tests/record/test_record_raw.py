"""The raw capture format: byte-exact round trip, bounded queue, damage found and salvaged."""

from __future__ import annotations

import errno
import itertools
import json
import struct

import numpy as np
import pytest
from record_fixtures import wait_until

from host.protocol import Decoder, EchoLine, Ping, encode
from host.record.raw import (
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


def test_corrupted_record_is_found_by_its_crc(tmp_path):
    path = tmp_path / "c.sbcap"
    chunks = _stream()
    _write(path, chunks)
    offsets = _offsets(path)
    victim = offsets[3]
    with path.open("r+b") as f:
        f.seek(victim + RECORD_HEADER.size + 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0x40]))
    reader = CaptureReader(path, strict=False)
    assert [r.data for r in reader.records()] == chunks[:3]
    assert reader.damage.offset == victim and not reader.damage.truncated
    assert "CRC-32" in reader.damage.reason
    with pytest.raises(CaptureError, match=f"offset {victim}"):
        list(CaptureReader(path).records())


def test_a_corrupted_length_is_caught_before_reading_it(tmp_path):
    path = tmp_path / "c.sbcap"
    _write(path, _stream())
    offsets = _offsets(path)
    with path.open("r+b") as f:
        f.seek(offsets[2] + 8)
        f.write(struct.pack("<I", 0x7FFFFFFF))
    reader = CaptureReader(path, strict=False)
    assert len(list(reader.records())) == 2
    assert reader.damage.offset == offsets[2] and "maximum" in reader.damage.reason


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
