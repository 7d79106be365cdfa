"""Raw capture: an append-only file of every chunk the host received, stamped with host time.

The capture is the ground truth a recording can always be rebuilt from: replaying its
device-to-host records through :class:`sonobridge.protocol.Decoder` gives exactly the messages the
device client decoded live. The format (docs/recording.md) is::

    file header (16 B): magic "SBCAP\\r\\n\\x1a" | u16 version=1 | u16 header size=16 | u32 CRC-32
    record:  u64 host_ns | u32 length | u8 kind | 3 B zero | length bytes | u32 CRC-32

All integers are little-endian. A record's CRC-32 covers its 16-byte header and its payload, so
damage is found where it is: the reader skips the damaged bytes, resumes at the next record
that passes its CRC-32, and reports the byte ranges it skipped. ``host_ns`` is the host's
monotonic clock (``time.monotonic_ns``) when the chunk was read.

Record kinds: ``RX`` (bytes from the device, exactly as read), ``EVENT`` (a UTF-8 JSON object:
session, device info with the board's dialect, configuration, link state, final statistics)
and ``GAP`` (u64: bytes the capture had to drop because the disk could not keep up, never
silently). The bytes of any board are captured; a board that spoke another dialect than
sonobridge-v1 (the ``device_info`` event says) is refused by ``convert`` and ``replay``
(:class:`ForeignCaptureError`).

Writing happens on a background thread (:mod:`sonobridge.record.background_writer`, shared with
the HDF5 writer): :meth:`CaptureWriter.write_rx` only appends to a queue,
so the device's reader thread is never held up by the disk. The file is flushed to the OS at
least every ``flush_interval_s``: the file is unbuffered and every batch (at most 50 ms of
data) is handed to the OS in one gathered write, so a ``kill -9`` keeps everything up to the
last batch. ``fsync=True`` also forces it to the disk every interval (against power loss).
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import re
import struct
import time
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

from .background_writer import BackgroundWriter, check_flush_interval

MAGIC = b"SBCAP\r\n\x1a"
VERSION = 1
FILE_HEADER = struct.Struct("<8sHHI")
_FILE_HEADER_BODY = struct.Struct("<8sHH")
RECORD_HEADER = struct.Struct("<QIB3x")
RECORD_TRAILER = struct.Struct("<I")
#: a record longer than this cannot be genuine (the reader hands out at most 1 MiB per chunk)
MAX_RECORD = 64 << 20
_IOV_MAX = 512

KIND_RX = 1
KIND_EVENT = 2
KIND_GAP = 3
KIND_NAMES = {KIND_RX: "rx", KIND_EVENT: "event", KIND_GAP: "gap"}

#: default bound on what may wait for the disk before chunks are dropped (and counted)
DEFAULT_QUEUE_BYTES = 256 << 20


class CaptureError(ValueError):
    """A capture file is not one, or is damaged at ``offset``.

    ``end`` is where reading resumed past the damage (the next record that passes its CRC-32),
    or the end of the file when nothing intact follows; bytes ``offset`` to ``end`` are lost.
    """

    def __init__(self, path: str | os.PathLike, offset: int, reason: str, *, records_ok: int = 0,
                 truncated: bool = False, end: int | None = None) -> None:
        self.path = str(path)
        self.offset = offset
        self.reason = reason
        self.records_ok = records_ok
        #: True when the file simply ends early (a recorder stopped mid-write)
        self.truncated = truncated
        self.end = end
        super().__init__(f"{self.path}: damaged at byte offset {offset}: {reason} "
                         f"({records_ok} good records before it)")

    @property
    def skipped(self) -> tuple[int, int] | None:
        """The byte range ``(start, end)`` lost to this damage, once known."""
        return None if self.end is None else (self.offset, self.end)


class ForeignCaptureError(ValueError):
    """A capture of a board that spoke another dialect than sonobridge-v1 (its ``device_info``
    event names it): its bytes are that board's own, so ``task`` (``convert``, ``replay``),
    which reads protocol v1 bytes, refuses it and says what to use instead."""

    def __init__(self, path: str | os.PathLike, dialect: str, task: str) -> None:
        self.path = str(path)
        self.dialect = dialect
        self.task = task
        what = {
            "convert": ("convert decodes sonobridge-v1 captures only. That board's bytes decode "
                        "only together with the host's side of the session (which firings it "
                        "asked for, when START opened the gate), which a capture does not "
                        "hold; the HDF5 recording made with it holds every line"),
            "replay": ("a replay serves sonobridge-v1 bytes only: replay the HDF5 recording "
                       "made with it instead (`sonobridge replay FILE.h5`)"),
        }.get(task, f"{task} reads sonobridge-v1 captures only")
        super().__init__(f"{self.path} is a raw capture of a board that spoke {dialect}, not "
                         f"sonobridge-v1: {what}")


class Record(NamedTuple):
    """One record of a capture file."""

    offset: int
    host_ns: int
    kind: int
    data: bytes


def _file_header() -> bytes:
    body = _FILE_HEADER_BODY.pack(MAGIC, VERSION, FILE_HEADER.size)
    return body + struct.pack("<I", zlib.crc32(body))


def encode_record(kind: int, data: bytes, host_ns: int) -> bytes:
    """The bytes of one record (header, payload, CRC-32)."""
    head = RECORD_HEADER.pack(host_ns & 0xFFFFFFFFFFFFFFFF, len(data), kind)
    crc = zlib.crc32(data, zlib.crc32(head))
    return head + data + RECORD_TRAILER.pack(crc)


_OVERHEAD = RECORD_HEADER.size + RECORD_TRAILER.size
#: bytes 12..15 of a plausible record header: a known kind, then the three zero bytes
_KIND_AND_RESERVED = re.compile(b"[\x01-\x03]\x00\x00\x00")
#: a resync candidate this short is checked by its CRC-32 even when what follows it does not
#: look like a record (cheap); longer ones must be followed by a plausible header or the end
#: of the file first, or a damaged stretch of sample data (full of small numbers that look like
#: lengths) would cost a CRC-32 over up to 64 MiB per byte position
_CHEAP_CRC = 4 << 10


def _plausible_header(buf: mmap.mmap, offset: int) -> bool:
    """Bytes 12..15 at ``offset`` look like a record header's kind and reserved bytes."""
    return _KIND_AND_RESERVED.match(buf, offset + 12, offset + 16) is not None


class CaptureReader:
    """Reads a capture. Damaged records are skipped: reading resumes at the next record that
    passes its CRC-32, and ``damages`` lists each damaged stretch (``damage`` is the first).

    With ``strict=True`` (the default) the first damage is raised as :class:`CaptureError`
    after every good record before it was yielded. A length field is never trusted beyond
    :data:`MAX_RECORD` or the end of the file, so a corrupt one cannot make it allocate.
    """

    def __init__(self, path: str | os.PathLike, *, strict: bool = True) -> None:
        self.path = Path(path)
        self.strict = strict
        self.damage: CaptureError | None = None
        self.damages: list[CaptureError] = []
        self.records_ok = 0
        self.end_offset = 0
        self._header_damage: CaptureError | None = None
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path} does not exist or is not a file")
        with self.path.open("rb") as f:
            head = f.read(FILE_HEADER.size)
        if len(head) < FILE_HEADER.size or head[: len(MAGIC)] != MAGIC:
            raise CaptureError(self.path, 0, "not a sonobridge raw capture (no 'SBCAP' magic "
                               "at offset 0)")
        _magic, version, size, crc = FILE_HEADER.unpack(head)
        self.header_size = FILE_HEADER.size
        if zlib.crc32(head[:_FILE_HEADER_BODY.size]) != crc:
            problem = CaptureError(self.path, 0, "the file header fails its CRC-32",
                                   end=FILE_HEADER.size)
            if strict:
                raise problem
            # the magic is intact, so it is a capture whose header took a hit: the records
            # after it carry their own CRCs and can still be read
            self._header_damage = problem
            return
        if version != VERSION:
            raise CaptureError(self.path, 8, f"capture format version {version}; this "
                               f"sonobridge reads version {VERSION}")
        self.header_size = size

    @property
    def skipped(self) -> list[tuple[int, int]]:
        """Byte ranges ``(start, end)`` the last read skipped as damaged."""
        return [d.skipped for d in self.damages if d.skipped is not None]

    def __iter__(self) -> Iterator[Record]:
        return self.records()

    def records(self, kinds: frozenset[int] | None = None) -> Iterator[Record]:
        """Yield intact records in file order; payloads of kinds not in ``kinds`` are skipped
        unread (their CRC is then not checked)."""
        self.damage = self._header_damage
        self.damages = [] if self._header_damage is None else [self._header_damage]
        self.records_ok = 0
        with self.path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size <= self.header_size:
                self.end_offset = size
                return
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                offset = self.header_size
                while offset < size:
                    rec, end, problem = self._read_at(buf, offset, size, kinds)
                    if problem is None:
                        offset = end
                        self.records_ok += 1
                        if rec is not None:
                            yield rec
                        continue
                    resume = self._resync(buf, offset, size)
                    truncated = resume >= size and problem[1]
                    self._damaged(offset, problem[0] if truncated or not problem[1] else
                                  "corrupted record header: its length runs past the end of "
                                  "the file", truncated, resume)
                    offset = resume
                    if truncated:
                        break
                self.end_offset = offset if not self.damages or not self.damages[-1].truncated \
                    else self.damages[-1].offset

    def _read_at(self, buf: mmap.mmap, offset: int, size: int, kinds: frozenset[int] | None
                 ) -> tuple[Record | None, int, tuple[str, bool] | None]:
        """The record at ``offset``: ``(record or None if skipped, its end, problem)``; a
        problem is ``(reason, looks truncated)``."""
        if size - offset < RECORD_HEADER.size:
            return None, size, (f"truncated record header: the file ends {size - offset} "
                                "bytes into it (the recorder was stopped mid-write)", True)
        host_ns, length, kind = RECORD_HEADER.unpack_from(buf, offset)
        if length > MAX_RECORD:
            return None, size, (f"record claims {length} bytes, more than the "
                                f"{MAX_RECORD >> 20} MiB maximum: the file is corrupted here",
                                False)
        end = offset + _OVERHEAD + length
        if end > size:
            return None, end, (f"truncated record: {size - offset} of {end - offset} bytes "
                               "present (the recorder was stopped mid-write)", True)
        if kinds is not None and kind not in kinds and _plausible_header(buf, offset) and (
                end == size or (end + RECORD_HEADER.size <= size and _plausible_header(buf, end))):
            # skipped unread (fast event scans); a length that does not lead to another header
            # is checked by the CRC below instead of being trusted
            return None, end, None
        (stored,) = RECORD_TRAILER.unpack_from(buf, end - RECORD_TRAILER.size)
        with memoryview(buf) as mv:
            computed = zlib.crc32(mv[offset : end - RECORD_TRAILER.size])
        if stored != computed:
            return None, end, (f"record fails its CRC-32 (stored 0x{stored:08X}, computed "
                               f"0x{computed:08X}): the file is corrupted here", False)
        if kinds is not None and kind not in kinds:
            return None, end, None
        data = buf[offset + RECORD_HEADER.size : end - RECORD_TRAILER.size]
        return Record(offset, host_ns, kind, data), end, None

    def _valid_at(self, buf: mmap.mmap, offset: int, size: int, *, chained: bool) -> bool:
        """An intact record starts at ``offset`` (header plausible, length sane, CRC-32 ok).

        ``chained``: a long record must also be followed by the end of the file or by another
        plausible header, so a damaged stretch full of false candidates costs little to scan.
        """
        if offset + _OVERHEAD > size or not _plausible_header(buf, offset):
            return False
        (length,) = struct.unpack_from("<I", buf, offset + 8)
        end = offset + _OVERHEAD + length
        if length > MAX_RECORD or end > size:
            return False
        # what follows must be the end, a tail too short for a header, or a plausible header
        if chained and length > _CHEAP_CRC and end + RECORD_HEADER.size <= size and \
                not _plausible_header(buf, end):
            return False
        (stored,) = RECORD_TRAILER.unpack_from(buf, end - RECORD_TRAILER.size)
        with memoryview(buf) as mv:
            return zlib.crc32(mv[offset : end - RECORD_TRAILER.size]) == stored

    def _resync(self, buf: mmap.mmap, start: int, size: int) -> int:
        """Where the next intact record after the damaged one at ``start`` begins (or
        ``size``), found byte by byte. The damaged record's own length is never trusted: a
        flipped length can point exactly at a later record's start, and every record in
        between would be lost."""
        pos = start + 1
        while True:
            m = _KIND_AND_RESERVED.search(buf, pos + 12)
            if m is None:
                return size
            candidate = m.start() - 12
            if self._valid_at(buf, candidate, size, chained=True):
                return candidate
            pos = candidate + 1

    def _damaged(self, offset: int, reason: str, truncated: bool, end: int) -> None:
        damage = CaptureError(self.path, offset, reason, records_ok=self.records_ok,
                              truncated=truncated, end=end)
        self.damages.append(damage)
        if self.damage is None:
            self.damage = damage
        if self.strict:
            self.end_offset = offset
            raise damage

    def events(self) -> list[tuple[int, dict]]:
        """Every EVENT record as ``(host_ns, object)``, reading nothing else (never raises)."""
        strict, self.strict = self.strict, False
        try:
            out = []
            for rec in self.records(frozenset({KIND_EVENT})):
                with contextlib.suppress(ValueError):
                    out.append((rec.host_ns, json.loads(rec.data)))
            return out
        finally:
            self.strict = strict


def iter_rx(path: str | os.PathLike, *, strict: bool = True) -> Iterator[tuple[bytes, int]]:
    """Yield ``(chunk, host_ns)`` of every device-to-host record, in order."""
    for rec in CaptureReader(path, strict=strict).records():
        if rec.kind == KIND_RX:
            yield rec.data, rec.host_ns


@dataclass
class CaptureStats:
    """What a :class:`CaptureWriter` did."""

    records: int = 0
    rx_bytes: int = 0
    file_bytes: int = 0
    #: bytes known to be on the OS side (survive a kill of this process)
    flushed_bytes: int = 0
    #: received bytes that could not be kept (queue over its bound, or the disk failed)
    dropped_bytes: int = 0
    error: str | None = None


class CaptureWriter:
    """Appends records to a new capture file from a background thread (see the module docs)."""

    def __init__(self, path: str | os.PathLike, *, overwrite: bool = False,
                 flush_interval_s: float = 0.25, max_queue_bytes: int = DEFAULT_QUEUE_BYTES,
                 fsync: bool = False) -> None:
        check_flush_interval(flush_interval_s)
        self.path = Path(path)
        self.flush_interval_s = flush_interval_s
        self.stats = CaptureStats()
        #: os.fsync at every flush interval as well (power-loss safety, at a cost)
        self.fsync = fsync
        self._file: BinaryIO = self.path.open("wb" if overwrite else "xb", buffering=0)
        self._fd = self._file.fileno()
        self._file.write(_file_header())
        self.stats.file_bytes = self.stats.flushed_bytes = FILE_HEADER.size
        #: bytes not kept since the last record queued: the next one is preceded by a GAP
        self._gap = 0
        # an unbuffered file: every batch is handed to the OS as it is written, so only
        # fsync is left to do at the flush interval
        self._bg = BackgroundWriter(
            name="sonobridge-capture", write_batch=self._write_batch,
            flush=self._fsync if fsync else None, on_failure=self._failed_with,
            flush_interval_s=flush_interval_s, max_queue_bytes=max_queue_bytes)

    def write_rx(self, data: bytes, host_ns: int) -> None:
        """Queue received bytes; never blocks (bytes that cannot be kept are counted)."""
        n = len(data)
        with self._bg.lock:
            if not self._bg.has_room(n):
                self.stats.dropped_bytes += n
                self._gap += n
                return
            if self._gap and self._bg.put((KIND_GAP, struct.pack("<Q", self._gap), host_ns)):
                self._gap = 0
            self._bg.put((KIND_RX, data, host_ns), n)

    def write_gap(self, n_bytes: int, host_ns: int) -> None:
        """Mark bytes the host lost before recording them (its acquisition buffer overflowed).

        They go in the same ``gap`` record as bytes this writer could not keep: either way the
        stream has a hole there that a reader must not join across.
        """
        with self._bg.lock:
            gap = struct.pack("<Q", self._gap + n_bytes)
            if self._bg.put((KIND_GAP, gap, host_ns), wake=True):
                self._gap = 0

    def write_event(self, event: dict, host_ns: int | None = None) -> None:
        """Queue a JSON event record."""
        data = json.dumps(event, separators=(",", ":"), default=_json_default).encode()
        self._bg.put((KIND_EVENT, data, time.monotonic_ns() if host_ns is None else host_ns),
                     wake=True)

    def close(self) -> CaptureStats:
        """Write what is queued, flush and close; returns the final counts."""
        self._bg.close()
        with contextlib.suppress(OSError):
            self._file.close()
        return self.stats

    def _fsync(self) -> None:
        os.fsync(self._fd)

    def _write_batch(self, items: deque) -> None:
        """Every queued record in one gathered write: no copies, the GIL released meanwhile
        (the port's reader thread needs it far more than this thread does)."""
        buffers: list[bytes] = []
        rx = nbytes = 0
        for kind, data, host_ns in items:
            head = RECORD_HEADER.pack(host_ns & 0xFFFFFFFFFFFFFFFF, len(data), kind)
            buffers += (head, data, RECORD_TRAILER.pack(zlib.crc32(data, zlib.crc32(head))))
            nbytes += RECORD_HEADER.size + len(data) + RECORD_TRAILER.size
            if kind == KIND_RX:
                rx += len(data)
        self._writev(buffers)
        self.stats.records += len(items)
        self.stats.file_bytes += nbytes
        self.stats.rx_bytes += rx
        # an unbuffered file: written means handed to the OS, which a kill -9 does not undo
        self.stats.flushed_bytes = self.stats.file_bytes

    def _writev(self, buffers: list[bytes]) -> None:
        """Write all of ``buffers`` (raises OSError, e.g. ENOSPC)."""
        for start in range(0, len(buffers), _IOV_MAX):
            part = buffers[start : start + _IOV_MAX]
            total = sum(len(b) for b in part)
            done = os.writev(self._fd, part)
            if done < total:  # short write (rare on regular files): finish it plainly
                rest = b"".join(part)[done:]
                while rest:
                    n = os.write(self._fd, rest)
                    rest = rest[n:]

    def _failed_with(self, exc: OSError, lost: deque, _during: str) -> None:
        """Writing stopped (called with the queue's lock held): count what was not kept."""
        self.stats.error = f"writing {self.path} failed: {exc}"
        self.stats.dropped_bytes += sum(len(d) for k, d, _ in lost if k == KIND_RX)


def _json_default(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a capture event")
