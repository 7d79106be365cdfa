"""The recording as an HDF5 dataset: every received line, its metadata, and the session's facts.

Layout (docs/recording.md has the full schema)::

    /                       attrs: format, versions, port, created, device_info, config,
                                   config_changes, stats, decoder_stats, accounting, complete…
    /device_info            attrs: every DEVICE_INFO field
    /segments/0000/samples  (n_rows, n_samples) in the wire's sample dtype, chunked, extendable
    /segments/0000/lines    (n_rows,) LINE_DTYPE: seq, frame/line/ensemble index, beam position,
                            device and host timestamps, config id, CRC-32 of the row
    /frames                 (n_frames,) FRAME_DTYPE: what the client made of every sweep

A new segment starts whenever a line's self-description (configuration id, sample count,
format, rate…) changes, so each segment has one configuration and one array shape.

:class:`DatasetWriter` runs on its own thread. The device's reader thread only appends a line
to a bounded queue (lines that cannot be kept are counted, never silently lost); the writer
thread writes them in batches and flushes the file at least every ``flush_interval_s``.

Why not SWMR or ``libver='latest'``: files in the 1.10+ format carry an "open for writing"
flag, so a recorder killed with ``kill -9`` leaves a file that plain ``h5py.File(path)``
refuses to open; and SWMR forbids creating groups, which a configuration change needs. The
1.8 format (``libver='v108'``) with explicit flushes and uncompressed fixed-size chunks (always
rewritten in place) leaves a file that opens normally and holds everything up to the last
flush. Disk space is checked before it runs out, and a failed write stops the writer cleanly.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import re
import shutil
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import sonobridge
from sonobridge.device import Frame
from sonobridge.protocol import PROTOCOL_VERSION, DeviceInfo, EchoLine, SampleFormat
from sonobridge.protocol.samples import DTYPES

from .meta import (
    FORMAT_NAME,
    FORMAT_VERSION,
    ConfigChange,
    info_from_dict,
    info_to_dict,
    segment_key,
    to_json,
)
from .raw import check_flush_interval

#: per-line metadata, one record per row of ``samples``
LINE_DTYPE = np.dtype([
    ("seq", "<i8"),             # frame sequence number; -1 if unknown
    ("frame_index", "<u4"),
    ("line_index", "<u2"),
    ("ensemble_index", "u1"),
    ("beam_position", "<i4"),   # µrad (sector) or µm (linear), as on the wire
    ("timestamp_us", "<u8"),    # device clock at the pulse
    ("host_time_ns", "<i8"),    # host monotonic clock when the line was read
    ("config_id", "<u2"),
    ("crc32", "<u4"),           # zlib CRC-32 of the row's sample bytes
])

#: per sweep, as the device client handed it on
FRAME_DTYPE = np.dtype([
    ("frame_index", "<u4"),
    ("config_id", "<u2"),
    ("n_lines", "<u2"),
    ("ensemble_size", "u1"),
    ("received", "<u4"),        # firings that arrived
    ("missing", "<u4"),         # firings that did not
    ("lost_link", "<u4"),       # … of which lost on the link (CRC, sequence gaps)
    ("lost_device", "<u4"),     # … of which the device dropped (send buffer full)
    ("lost_host", "<u4"),       # … of which the host lost (its acquisition buffer overflowed)
    ("device_sent", "<i4"),     # FRAME_END.lines_sent, -1 without a FRAME_END
    ("end_received", "?"),
    ("complete", "?"),
    ("host_time_ns", "<i8"),
])

DEFAULT_FLUSH_S = 0.5
DEFAULT_QUEUE_BYTES = 512 << 20
#: by default the writer stops (cleanly) when less than this many seconds of data at the
#: board's rated throughput (DEVICE_INFO) are free on the recording's disk …
RESERVE_SECONDS = 5.0
#: … and never keeps less than this in reserve (HDF5's own metadata, the final attributes)
RESERVE_FLOOR = 4 << 20
_CHUNK_BYTES = 1 << 20
_LINES_CHUNK = 4096
_FRAMES_CHUNK = 1024
_BATCH_BYTES = 2 << 20
_WAKE_BYTES = 2 << 20
_LIBVER = ("v108", "v108")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class RecordingError(ValueError):
    """A recording cannot be read (not one, truncated, corrupted); the text says where.

    ``salvage`` is True when ``sonobridge convert`` may recover rows from the file (it is
    truncated or damaged, not merely something else); ``problem`` is the message without the
    advice, so a caller that knows more (how many rows) can give better advice.
    """

    def __init__(self, message: str, offset: int | None = None, *,
                 path: str | os.PathLike | None = None, salvage: bool = False,
                 problem: str | None = None) -> None:
        super().__init__(message)
        self.offset = offset
        self.path = None if path is None else Path(path)
        self.salvage = salvage
        self.problem = problem or message


#: what h5py raises when the bytes of a file are not what HDF5 expects
H5_ERRORS = (OSError, RuntimeError, KeyError)


def salvage_command(path: str | os.PathLike) -> str:
    """The ``sonobridge convert`` command line that salvages ``path`` into a new file."""
    p = Path(path)
    return f"sonobridge convert {p} -o {p.with_name(p.stem + '-salvaged.h5')}"


def damage_error(path: str | os.PathLike, what: str, exc: BaseException | str,
            offset: int | None = None) -> RecordingError:
    """The error for a recording HDF5 cannot read (``what`` it was reading, h5py's reason)."""
    detail = str(exc).strip("'\"") if not isinstance(exc, str) else exc
    problem = f"{path} is damaged: HDF5 cannot read {what} ({detail})"
    return RecordingError(f"{problem}; run `{salvage_command(path)}` to salvage the rows that "
                          "still pass their CRC-32", offset, path=path, salvage=True,
                          problem=problem)


@dataclass
class WriterStats:
    """What a :class:`DatasetWriter` did so far."""

    lines_written: int = 0
    #: rows known to be on disk in a readable state (as of the last flush)
    lines_flushed: int = 0
    sample_bytes: int = 0
    frames_written: int = 0
    segments: int = 0
    #: lines handed to the writer that could not be kept (queue full, disk full, write error)
    lines_not_kept: int = 0
    error: str | None = None
    stop_reason: str | None = None


class _Segment:
    __slots__ = ("index", "key", "lines", "n_samples", "row_bytes", "rows", "samples")

    def __init__(self, index: int, key: tuple, samples: h5py.Dataset, lines: h5py.Dataset,
                 n_samples: int, row_bytes: int) -> None:
        self.index = index
        self.key = key
        self.rows = 0
        self.samples = samples
        self.lines = lines
        self.n_samples = n_samples
        self.row_bytes = row_bytes


class DatasetWriter:
    """Writes lines into a new HDF5 recording from a background thread (module docs)."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        overwrite: bool = False,
        flush_interval_s: float = DEFAULT_FLUSH_S,
        max_queue_bytes: int = DEFAULT_QUEUE_BYTES,
        min_free_bytes: int | None = None,
        block_when_full: bool = False,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        check_flush_interval(flush_interval_s)
        check_reserve(min_free_bytes)
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path} exists; use --force (overwrite=True) to replace")
        self.flush_interval_s = min(1.0, flush_interval_s)
        self.max_queue_bytes = max_queue_bytes
        #: the free space to keep on the disk; None: :data:`RESERVE_SECONDS` of data at the
        #: board's rated throughput (or the measured rate while that is unknown)
        self.min_free_bytes = min_free_bytes
        self._rated_bps = 0
        self._t_start = time.monotonic()
        #: conversion wants back-pressure instead of dropping when the disk is slow
        self.block_when_full = block_when_full
        self.stats = WriterStats()
        self._file = h5py.File(self.path, "w", libver=_LIBVER)
        a = self._file.attrs
        a["format"] = FORMAT_NAME
        a["format_version"] = FORMAT_VERSION
        a["software_version"] = sonobridge.__version__
        a["protocol_version"] = PROTOCOL_VERSION
        a["created_utc"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
        a["complete"] = False
        for key, value in (attrs or {}).items():
            a[key] = _attr_value(value)
        self._file.create_group("segments")
        self._frames = self._file.create_dataset(
            "frames", shape=(0,), maxshape=(None,), dtype=FRAME_DTYPE, chunks=(_FRAMES_CHUNK,),
            dcpl=_early_alloc())
        self._file.flush()
        self._seg: _Segment | None = None
        self._changes: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._queue: deque[tuple] = deque()
        self._queued = 0
        self._closing = False
        self._failed = False
        self._last_space_check = 0.0
        #: lines taken off the queue whose write has not completed yet
        self._inflight = 0
        self._thread = threading.Thread(target=self._run, name="sonobridge-hdf5", daemon=True)
        self._thread.start()

    # -- producer side (any thread) --------------------------------------------------------------

    def add_line(self, line: EchoLine, host_ns: int, change: ConfigChange | None = None) -> None:
        """Queue one line (``change`` when it starts a new configuration); never blocks unless
        ``block_when_full``."""
        n = line.samples.nbytes
        with self._cond:
            if self.block_when_full:
                while self._queued + n > self.max_queue_bytes and not self._failed:
                    self._cond.notify()
                    self._cond.wait(0.1)
            if self._closing:
                return  # arrived after the recording ended: not part of it
            if self._failed or self._queued + n > self.max_queue_bytes:
                self.stats.lines_not_kept += 1
                return
            self._queue.append(("L", line, host_ns, change))
            self._queued += n
            if self._queued >= _WAKE_BYTES:
                self._cond.notify()

    def add_frame(self, frame: Frame) -> None:
        """Queue the summary of a sweep the client handed on."""
        row = (frame.index & 0xFFFFFFFF, frame.config_id, frame.n_lines, frame.ensemble_size,
               int(np.count_nonzero(frame.present)), frame.n_missing, frame.lost_link,
               frame.lost_device, frame.lost_host,
               -1 if frame.device_sent is None else frame.device_sent,
               frame.end_received, frame.complete, frame.host_time_ns)
        self._put(("F", row))

    def set_device_info(self, info: DeviceInfo) -> None:
        """Store DEVICE_INFO (every field) as attributes; its rated throughput sizes the
        default disk reserve from now on."""
        self._rated_bps = int(info.rated_throughput_bps or 0)
        self._put(("I", info_to_dict(info)))

    def set_attrs(self, **attrs: Any) -> None:
        """Store root attributes (dicts and lists as JSON strings)."""
        self._put(("A", attrs))

    def _put(self, item: tuple) -> None:
        with self._cond:
            if not self._failed and not self._closing:
                self._queue.append(item)

    def close(self, accounting: dict[str, Any] | None = None, **final_attrs: Any
              ) -> WriterStats:
        """Write everything queued, the final attributes, flush and close the file.

        ``accounting`` (the session's delivery and loss counters) is completed with what this
        writer kept (``lines_recorded``) and could not keep (``lines_not_recorded``).
        """
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()
        if accounting is not None:
            final_attrs["accounting"] = {**accounting,
                                         "lines_recorded": self.stats.lines_written,
                                         "lines_not_recorded": self.stats.lines_not_kept}
        try:
            a = self._file.attrs
            for key, value in final_attrs.items():
                a[key] = _attr_value(value)
            a["stop_reason"] = self.stats.stop_reason or "closed"
            if self.stats.error:
                a["error"] = self.stats.error
            a["complete"] = True
            self._file.flush()
        except Exception as exc:  # a full disk may refuse even this; the last flush stands
            self.stats.error = self.stats.error or f"finishing {self.path} failed: {exc}"
        with contextlib.suppress(Exception):
            self._file.close()
        return self.stats

    @property
    def failed(self) -> bool:
        """True once writing stopped because of an error (see ``stats.error``)."""
        return self._failed

    # -- writer thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        last_flush = time.monotonic()
        poll = min(0.05, self.flush_interval_s)
        while True:
            with self._cond:
                if not self._queue and not self._closing:
                    self._cond.wait(poll)
                items, self._queue = self._queue, deque()
                self._queued = 0
                self._cond.notify_all()  # a blocked producer may go on
                closing = self._closing
            if items and not self._failed:
                try:
                    self._check_space()
                    self._write(items)
                except OSError as exc:
                    full = exc.errno == errno.ENOSPC or "space" in str(exc).lower()
                    self._fail("disk-full" if full else "write-error",
                               f"writing {self.path} failed: {exc}", items)
            now = time.monotonic()
            if not self._failed and (now - last_flush >= self.flush_interval_s or closing):
                try:
                    self._file.flush()
                    self.stats.lines_flushed = self.stats.lines_written
                except OSError as exc:
                    self._fail("write-error", f"flushing {self.path} failed: {exc}", deque())
                last_flush = now
            if closing:
                with self._cond:
                    if not self._queue:
                        return

    @property
    def reserve_bytes(self) -> int:
        """The free space the writer keeps on the disk now (see ``min_free_bytes``)."""
        if self.min_free_bytes is not None:
            return self.min_free_bytes
        return reserve_for(self._rate_bps())

    def _rate_bps(self) -> float:
        """The data rate the reserve is sized for: rated if the board says, else measured."""
        if self._rated_bps:
            return float(self._rated_bps)
        elapsed = time.monotonic() - self._t_start
        return self.stats.sample_bytes / elapsed if elapsed > 1.0 else 0.0

    def _check_space(self) -> None:
        now = time.monotonic()
        if now - self._last_space_check < 0.2:
            return
        self._last_space_check = now
        free = free_bytes(self.path.parent)
        reserve = self.reserve_bytes
        if free < reserve:
            if self.min_free_bytes is not None:
                why = "as asked (--reserve-mb)"
            else:
                why = (f"{RESERVE_SECONDS:g} s of data at {self._rate_bps() / 1e6:.1f} MB/s, at "
                       f"least {RESERVE_FLOOR >> 20} MiB; --reserve-mb sets it")
            raise OSError(errno.ENOSPC, f"No space left: only {free / 1e6:.1f} MB free on "
                          f"{self.path.parent} and the recorder keeps {reserve / 1e6:.1f} MB "
                          f"in reserve ({why}); free some space or record to another disk")

    def _fail(self, reason: str, message: str, pending: deque) -> None:
        with self._cond:
            self._failed = True
            self.stats.error = message
            self.stats.stop_reason = reason
            self.stats.lines_not_kept += self._inflight
            self._inflight = 0
            self.stats.lines_not_kept += sum(1 for it in pending if it[0] == "L")
            self.stats.lines_not_kept += sum(1 for it in self._queue if it[0] == "L")
            self._queue.clear()
            self._queued = 0
            self._cond.notify_all()
        # keep what is on disk consistent: the last flush stays the valid state
        with contextlib.suppress(Exception):
            self._file.flush()

    def _write(self, items: deque) -> None:
        batch: list[tuple[EchoLine, int]] = []
        batch_bytes = 0
        frames: list[tuple] = []
        while items:
            item = items[0]
            kind = item[0]
            if kind == "L":
                line, host_ns, change = item[1], item[2], item[3]
                key = segment_key(line)
                if self._seg is None or key != self._seg.key:
                    if batch:
                        self._append(batch)
                        batch, batch_bytes = [], 0
                    self._new_segment(line, host_ns, change)
                batch.append((line, host_ns))
                batch_bytes += line.samples.nbytes
                if batch_bytes >= _BATCH_BYTES:
                    self._append(batch)
                    batch, batch_bytes = [], 0
            else:
                if batch:
                    self._append(batch)
                    batch, batch_bytes = [], 0
                if kind == "F":
                    frames.append(item[1])
                elif kind == "I":
                    self._write_info(item[1])
                elif kind == "A":
                    for key, value in item[1].items():
                        self._file.attrs[key] = _attr_value(value)
            items.popleft()
        if batch:
            self._append(batch)
        if frames:
            n0 = self._frames.shape[0]
            self._frames.resize((n0 + len(frames),))
            self._frames[n0:] = np.array(frames, dtype=FRAME_DTYPE)
            self.stats.frames_written += len(frames)

    def _new_segment(self, line: EchoLine, host_ns: int, change: ConfigChange | None) -> None:
        index = 0 if self._seg is None else self._seg.index + 1
        g = self._file["segments"].create_group(f"{index:04d}")
        n = line.n_samples
        dtype = DTYPES[line.sample_format]
        row_bytes = n * dtype.itemsize
        rows_per_chunk = max(1, min(4096, _CHUNK_BYTES // max(1, row_bytes)))
        samples = g.create_dataset("samples", shape=(0, n), maxshape=(None, n), dtype=dtype,
                                   chunks=(rows_per_chunk, n), dcpl=_early_alloc(),
                                   rdcc_nbytes=4 * _CHUNK_BYTES + row_bytes)
        lines = g.create_dataset("lines", shape=(0,), maxshape=(None,), dtype=LINE_DTYPE,
                                 chunks=(_LINES_CHUNK,), dcpl=_early_alloc())
        a = g.attrs
        a["n_samples"] = n
        a["sample_format"] = int(line.sample_format)
        a["sample_format_name"] = SampleFormat(line.sample_format).name
        a["adc_bits"] = int(line.adc_bits)
        a["zero_level"] = int(line.zero_level)
        a["sample_rate_hz"] = int(line.sample_rate_hz)
        a["start_delay_samples"] = int(line.start_delay_samples)
        a["lines_per_frame"] = int(line.lines_per_frame)
        a["ensemble_size"] = int(line.ensemble_size)
        a["sweep_kind"] = int(line.sweep_kind)
        a["config_id"] = int(line.config_id)
        a["frame_flags"] = int(line.flags)
        a["first_host_time_ns"] = int(host_ns)
        config = change.config if change is not None else None
        a["config"] = to_json(config)
        self._seg = _Segment(index, segment_key(line), samples, lines, n, row_bytes)
        self.stats.segments = index + 1
        self._changes.append({"host_time_ns": int(host_ns), "config_id": int(line.config_id),
                              "segment": index, "config": config})
        root = self._file.attrs
        if index == 0 or "config" not in root or root["config"] == "null":
            root["config"] = to_json(config)
        root["config_changes"] = to_json(self._changes)
        # metadata gets its file space when flushed: now, ahead of the samples that follow
        self._file.flush()

    def _append(self, batch: list[tuple[EchoLine, int]]) -> None:
        seg = self._seg
        assert seg is not None
        k = len(batch)
        self._inflight = k
        block = np.empty((k, seg.n_samples), dtype=seg.samples.dtype)
        meta = np.empty(k, dtype=LINE_DTYPE)
        crc = zlib.crc32
        for i, (line, _t) in enumerate(batch):
            block[i] = line.samples
        meta["seq"] = [-1 if ln.seq is None else ln.seq for ln, _ in batch]
        meta["frame_index"] = [ln.frame_index for ln, _ in batch]
        meta["line_index"] = [ln.line_index for ln, _ in batch]
        meta["ensemble_index"] = [ln.ensemble_index for ln, _ in batch]
        meta["beam_position"] = [ln.beam_position for ln, _ in batch]
        meta["timestamp_us"] = [ln.timestamp_us for ln, _ in batch]
        meta["host_time_ns"] = [t for _, t in batch]
        meta["config_id"] = [ln.config_id for ln, _ in batch]
        meta["crc32"] = [crc(row) for row in block]
        n0 = seg.rows
        # metadata first: its chunk is then allocated before the samples it describes
        seg.lines.resize((n0 + k,))
        seg.lines[n0:] = meta
        seg.samples.resize((n0 + k, seg.n_samples))
        seg.samples[n0:] = block
        seg.rows += k
        self._inflight = 0
        self.stats.lines_written += k
        self.stats.sample_bytes += block.nbytes

    def _write_info(self, info: dict[str, Any]) -> None:
        g = self._file.require_group("device_info")
        for key, value in info.items():
            g.attrs[key] = value
        self._file.attrs["device_info"] = to_json(info)
        self._file.flush()


def _early_alloc() -> h5py.h5p.PropDCID:
    """Chunks get their file space when the dataset grows (in row order, metadata before the
    samples it describes), never filled first: a cut file then loses only its tail."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    return dcpl


def _attr_value(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)) or value is None:
        return to_json(value)
    return value


def free_bytes(directory: str | os.PathLike) -> int:
    """Free bytes on the file system holding ``directory``."""
    return shutil.disk_usage(directory).free


def reserve_for(rate_bps: float) -> int:
    """The default free-space reserve for a data rate in bytes/s (:data:`RESERVE_SECONDS` of
    data, at least :data:`RESERVE_FLOOR`)."""
    return max(RESERVE_FLOOR, int(RESERVE_SECONDS * max(0.0, rate_bps)))


def check_reserve(reserve_bytes: int | None) -> None:
    """Raise ValueError unless ``reserve_bytes`` is None (scale with the rate) or >= 0."""
    if reserve_bytes is not None and not reserve_bytes >= 0:
        raise ValueError(f"the disk reserve must be >= 0 bytes (None: scale it with the data "
                         f"rate), got {reserve_bytes!r}")


# -- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadRow:
    """A stored row whose samples no longer match their CRC-32 (or could not be read)."""

    segment: str
    row: int
    offset: int | None
    frame_index: int | None = None
    line_index: int | None = None
    ensemble_index: int | None = None

    def __str__(self) -> str:
        where = [f"frame {self.frame_index}"] if self.frame_index is not None else []
        if self.line_index is not None:
            where.append(f"line {self.line_index}")
        if self.ensemble_index:
            where.append(f"firing {self.ensemble_index}")
        text = f"segment {self.segment.rsplit('/', 1)[-1]} row {self.row}"
        if where:
            text += f" ({', '.join(where)})"
        if self.offset is not None:
            text += f" at byte offset {self.offset}"
        return text


def describe_rows(rows: list[BadRow], limit: int = 10) -> str:
    """The first ``limit`` rows by name, and how many more."""
    text = "; ".join(str(r) for r in rows[:limit])
    if len(rows) > limit:
        text += f"; and {len(rows) - limit} more"
    return text


class Segment:
    """One configuration's rows: ``samples`` (an h5py dataset) and ``lines`` (metadata)."""

    def __init__(self, group: h5py.Group, path: str | os.PathLike | None = None) -> None:
        self.name = group.name
        self.group = group
        self.path = Path(path if path is not None else group.file.filename)
        self.samples: h5py.Dataset = group["samples"]
        self._lines_ds: h5py.Dataset = group["lines"]
        self.attrs: dict[str, Any] = {k: _plain(v) for k, v in group.attrs.items()}
        self.config: dict[str, Any] | None = json_attr(self.path, self.attrs, "config",
                                                       f"{self.name}'s")
        self._lines: np.ndarray | None = None

    @property
    def lines(self) -> np.ndarray:
        """Per-row metadata (``LINE_DTYPE``), read once."""
        if self._lines is None:
            try:
                self._lines = self._lines_ds[: self.n_rows]
            except H5_ERRORS as exc:
                raise damage_error(self.path, f"the per-line metadata of {self.name}", exc) from exc
        return self._lines

    @property
    def n_rows(self) -> int:
        """Rows stored (lines received in this configuration)."""
        return min(self.samples.shape[0], self._lines_ds.shape[0])

    @property
    def n_samples(self) -> int:
        """Samples per line."""
        return int(self.samples.shape[1])

    def rows(self, start: int, end: int) -> np.ndarray:
        """The samples of rows ``start`` to ``end`` (HDF5 failures raise RecordingError)."""
        try:
            return self.samples[start:end]
        except H5_ERRORS as exc:
            raise damage_error(self.path, f"rows {start} to {end - 1} of {self.name}", exc) from exc

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(first_row, samples)`` one stored chunk of rows at a time."""
        step = self.samples.chunks[0] if self.samples.chunks else 1024
        n = self.n_rows
        for start in range(0, n, step):
            yield start, self.rows(start, min(n, start + step))

    def bad_row(self, row: int) -> BadRow:
        """A :class:`BadRow` naming ``row`` (frame, line, byte offset)."""
        m = self.lines[row]
        return BadRow(self.name, row, row_offset(self.samples, row), int(m["frame_index"]),
                      int(m["line_index"]), int(m["ensemble_index"]))

    def bad_rows(self) -> list[BadRow]:
        """Rows whose samples fail the CRC-32 stored with them."""
        crcs = self.lines["crc32"]
        bad: list[BadRow] = []
        for start, block in self.blocks():
            for i, row in enumerate(block):
                if zlib.crc32(row) != int(crcs[start + i]):
                    bad.append(self.bad_row(start + i))
        return bad

    def frame_runs(self) -> list[tuple[int, int, int]]:
        """``(frame_index, first_row, end_row)`` for each run of rows of one sweep."""
        fi = self.lines["frame_index"]
        if fi.size == 0:
            return []
        cuts = np.flatnonzero(np.diff(fi.astype(np.int64)) != 0) + 1
        starts = np.concatenate(([0], cuts))
        ends = np.concatenate((cuts, [fi.size]))
        return [(int(fi[s]), int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


#: attributes that hold JSON text
JSON_ATTRS = frozenset({"device_info", "config", "config_changes", "stats", "decoder_stats",
                        "accounting", "salvage"})


def json_attr(path: str | os.PathLike, attrs: dict[str, Any], key: str, whose: str) -> Any:
    """The JSON value of attribute ``key`` (None if absent); text that is not JSON any more
    (damaged bytes) raises RecordingError."""
    value = attrs.get(key)
    if not isinstance(value, str):
        return None
    try:
        return json.loads(value)
    except ValueError as exc:
        raise damage_error(path, f"{whose} {key!r} attribute", f"not valid JSON: {exc}") \
            from exc


def frames_table(data: np.ndarray) -> np.ndarray:
    """A ``frames`` table in today's :data:`FRAME_DTYPE` (columns added since are 0)."""
    if data.dtype == FRAME_DTYPE:
        return data
    out = np.zeros(len(data), FRAME_DTYPE)
    for name in data.dtype.names or ():
        if name in (FRAME_DTYPE.names or ()):
            out[name] = data[name]
    return out


class Recording:
    """An open recording (see :func:`open_recording`); use as a context manager."""

    def __init__(self, path: str | os.PathLike, file: h5py.File) -> None:
        self.path = Path(path)
        self.file = file
        self.attrs: dict[str, Any] = {k: _plain(v) for k, v in file.attrs.items()}
        if self.attrs.get("format") != FORMAT_NAME:
            raise RecordingError(f"{self.path} is an HDF5 file but not a sonobridge recording "
                                 "(no format='sonobridge-recording' attribute)", path=self.path)
        self.segments = [Segment(file["segments"][k], self.path)
                         for k in sorted(file["segments"])]
        self.frames: np.ndarray = frames_table(file["frames"][:]) if "frames" in file else \
            np.zeros(0, FRAME_DTYPE)

    def _json(self, key: str) -> Any:
        return json_attr(self.path, self.attrs, key, "its")

    @property
    def device_info_dict(self) -> dict[str, Any] | None:
        """DEVICE_INFO fields, as recorded."""
        try:
            info = self._json("device_info")
        except RecordingError:
            info = None  # the group below holds the same fields
        if info is None:
            # the group's attributes are written once, early: they survive when the root's
            # (rewritten at the end) do not
            try:
                if "device_info" in self.file:
                    group = self.file["device_info"]
                    info = {k: _plain(v) for k, v in group.attrs.items()} or None
            except H5_ERRORS as exc:
                raise damage_error(self.path, "its device_info group", exc) from exc
        return info

    @property
    def device_info(self) -> DeviceInfo | None:
        """DEVICE_INFO as a message object."""
        d = self.device_info_dict
        return None if d is None else info_from_dict(d)

    @property
    def config(self) -> dict[str, Any] | None:
        """The configuration at the start of the recording."""
        return self._json("config")

    @property
    def config_changes(self) -> list[dict[str, Any]]:
        """Every configuration with the host time it took effect and its segment."""
        return self._json("config_changes") or []

    @property
    def stats(self) -> dict[str, Any] | None:
        """The device client's final DeviceStats (None if the recorder did not finish)."""
        return self._json("stats")

    @property
    def decoder_stats(self) -> dict[str, Any] | None:
        """The decoder's final counters."""
        return self._json("decoder_stats")

    @property
    def accounting(self) -> dict[str, Any] | None:
        """Delivery and loss counters of the session, and what the recorder could not keep
        (files written before ``lines_lost_host`` existed lack that key: read it with
        ``.get('lines_lost_host', 0)``)."""
        return self._json("accounting")

    @property
    def complete(self) -> bool:
        """True if the recorder closed the file (False after a crash, kill or disk failure)."""
        return bool(self.attrs.get("complete", False))

    @property
    def n_lines(self) -> int:
        """Rows in all segments."""
        return sum(s.n_rows for s in self.segments)

    def close(self) -> None:
        """Close the file."""
        self.file.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_TRUNCATED = re.compile(r"truncated file: eof = (\d+).*stored_eof = (\d+)")


def open_recording(path: str | os.PathLike) -> Recording:
    """Open a recording for reading; damage raises :class:`RecordingError` naming the offset."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist or is not a file")
    try:
        file = h5py.File(path, "r")
    except OSError as exc:
        raise _open_error(path, exc) from exc
    try:
        return Recording(path, file)
    except RecordingError:
        file.close()
        raise
    except H5_ERRORS as exc:
        file.close()
        raise damage_error(path, "the recording's structure", exc) from exc


def _open_error(path: Path, exc: OSError) -> RecordingError:
    text = str(exc)
    m = _TRUNCATED.search(text)
    if m:
        eof, stored = int(m.group(1)), int(m.group(2))
        problem = (f"{path} is truncated: it ends at byte offset {eof} but its HDF5 superblock "
                   f"says {stored} bytes")
        return RecordingError(f"{problem}; run `{salvage_command(path)}` to salvage the rows "
                              f"stored before offset {eof}", offset=eof, path=path,
                              salvage=True, problem=problem)
    with path.open("rb") as f:
        head = f.read(56)
    # a damaged signature in front of an intact root object header is still worth salvaging
    if head[:8] != HDF5_SIGNATURE and head[48:52] != b"OHDR":
        return RecordingError(f"{path} is not an HDF5 file (no HDF5 signature at byte offset "
                              "0)", offset=0, path=path)
    return damage_error(path, "the file's superblock or root group", exc)


def verify_recording(rec: Recording) -> list[BadRow]:
    """Check every row against its CRC-32; returns the damaged rows with their file offsets."""
    return [bad for seg in rec.segments for bad in seg.bad_rows()]


def row_offset(ds: h5py.Dataset, row: int) -> int | None:
    """Byte offset of a stored row in the file (chunked, unfiltered datasets), or None."""
    if ds.chunks is None:
        return None
    per = ds.chunks[0]
    try:
        info = ds.id.get_chunk_info_by_coord((row // per * per,) + (0,) * (ds.ndim - 1))
    except (AttributeError, ValueError, *H5_ERRORS):
        return None
    if info.byte_offset is None:
        return None
    row_bytes = int(np.prod(ds.shape[1:], dtype=np.int64)) * ds.dtype.itemsize
    return int(info.byte_offset) + (row % per) * row_bytes


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    return value
