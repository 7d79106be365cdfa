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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import host
from host.device import Frame
from host.protocol import PROTOCOL_VERSION, DeviceInfo, EchoLine, SampleFormat
from host.protocol.samples import DTYPES

from .meta import (
    FORMAT_NAME,
    FORMAT_VERSION,
    ConfigChange,
    info_from_dict,
    info_to_dict,
    segment_key,
    to_json,
)

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
    ("device_sent", "<i4"),     # FRAME_END.lines_sent, -1 without a FRAME_END
    ("end_received", "?"),
    ("complete", "?"),
    ("host_time_ns", "<i8"),
])

DEFAULT_FLUSH_S = 0.5
DEFAULT_QUEUE_BYTES = 512 << 20
#: stop writing (cleanly) when less than this is free on the recording's disk
DEFAULT_MIN_FREE = 64 << 20
_CHUNK_BYTES = 1 << 20
_LINES_CHUNK = 4096
_FRAMES_CHUNK = 1024
_BATCH_BYTES = 2 << 20
_WAKE_BYTES = 2 << 20
_LIBVER = ("v108", "v108")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class RecordingError(ValueError):
    """A recording cannot be read (not one, truncated, corrupted); the text says where."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


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
        min_free_bytes: int = DEFAULT_MIN_FREE,
        block_when_full: bool = False,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path} exists; use --force (overwrite=True) to replace")
        self.flush_interval_s = min(1.0, flush_interval_s)
        self.max_queue_bytes = max_queue_bytes
        self.min_free_bytes = min_free_bytes
        #: conversion wants back-pressure instead of dropping when the disk is slow
        self.block_when_full = block_when_full
        self.stats = WriterStats()
        self._file = h5py.File(self.path, "w", libver=_LIBVER)
        a = self._file.attrs
        a["format"] = FORMAT_NAME
        a["format_version"] = FORMAT_VERSION
        a["software_version"] = host.__version__
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
               frame.lost_device, -1 if frame.device_sent is None else frame.device_sent,
               frame.end_received, frame.complete, frame.host_time_ns)
        self._put(("F", row))

    def set_device_info(self, info: DeviceInfo) -> None:
        """Store DEVICE_INFO (every field) as attributes."""
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

    def _check_space(self) -> None:
        now = time.monotonic()
        if now - self._last_space_check < 0.2:
            return
        self._last_space_check = now
        free = free_bytes(self.path.parent)
        if free < self.min_free_bytes:
            raise OSError(errno.ENOSPC, f"No space left: only {free / 1e6:.1f} MB free on "
                          f"{self.path.parent} (the recorder keeps "
                          f"{self.min_free_bytes / 1e6:.0f} MB in reserve)")

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


# -- reading -------------------------------------------------------------------------------------


class Segment:
    """One configuration's rows: ``samples`` (an h5py dataset) and ``lines`` (metadata)."""

    def __init__(self, group: h5py.Group) -> None:
        self.name = group.name
        self.group = group
        self.samples: h5py.Dataset = group["samples"]
        self.attrs: dict[str, Any] = {k: _plain(v) for k, v in group.attrs.items()}
        config = self.attrs.get("config")
        self.config: dict[str, Any] | None = json.loads(config) if isinstance(config, str) \
            else None
        self._lines: np.ndarray | None = None

    @property
    def lines(self) -> np.ndarray:
        """Per-row metadata (``LINE_DTYPE``), read once."""
        if self._lines is None:
            n = min(self.samples.shape[0], self.group["lines"].shape[0])
            self._lines = self.group["lines"][:n]
        return self._lines

    @property
    def n_rows(self) -> int:
        """Rows stored (lines received in this configuration)."""
        return min(self.samples.shape[0], self.group["lines"].shape[0])

    @property
    def n_samples(self) -> int:
        """Samples per line."""
        return int(self.samples.shape[1])

    def frame_runs(self) -> list[tuple[int, int, int]]:
        """``(frame_index, first_row, end_row)`` for each run of rows of one sweep."""
        fi = self.lines["frame_index"]
        if fi.size == 0:
            return []
        cuts = np.flatnonzero(np.diff(fi.astype(np.int64)) != 0) + 1
        starts = np.concatenate(([0], cuts))
        ends = np.concatenate((cuts, [fi.size]))
        return [(int(fi[s]), int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


class Recording:
    """An open recording (see :func:`open_recording`); use as a context manager."""

    def __init__(self, path: str | os.PathLike, file: h5py.File) -> None:
        self.path = Path(path)
        self.file = file
        self.attrs: dict[str, Any] = {k: _plain(v) for k, v in file.attrs.items()}
        if self.attrs.get("format") != FORMAT_NAME:
            raise RecordingError(f"{self.path} is an HDF5 file but not a sonobridge recording "
                                 "(no format='sonobridge-recording' attribute)")
        self.segments = [Segment(file["segments"][k]) for k in sorted(file["segments"])]
        self.frames: np.ndarray = file["frames"][:] if "frames" in file else \
            np.zeros(0, FRAME_DTYPE)

    def _json(self, key: str) -> Any:
        value = self.attrs.get(key)
        return json.loads(value) if isinstance(value, str) else None

    @property
    def device_info_dict(self) -> dict[str, Any] | None:
        """DEVICE_INFO fields, as recorded."""
        info = self._json("device_info")
        if info is None and "device_info" in self.file:
            # the group's attributes are written once, early: they survive when the root's
            # (rewritten at the end) do not
            info = {k: _plain(v) for k, v in self.file["device_info"].attrs.items()} or None
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
        """Delivery and loss counters of the session, and what the recorder could not keep."""
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
    except (KeyError, OSError) as exc:
        file.close()
        raise RecordingError(f"{path}: the recording's structure is damaged: {exc}") from exc


def _open_error(path: Path, exc: OSError) -> RecordingError:
    text = str(exc)
    m = _TRUNCATED.search(text)
    if m:
        eof, stored = int(m.group(1)), int(m.group(2))
        return RecordingError(
            f"{path} is truncated: it ends at byte offset {eof} but its HDF5 superblock says "
            f"{stored} bytes; `sonobridge convert {path} -o FIXED.h5` salvages the rows "
            f"stored before offset {eof}", offset=eof)
    with path.open("rb") as f:
        head = f.read(8)
    if head != HDF5_SIGNATURE:
        return RecordingError(f"{path} is not an HDF5 file (no HDF5 signature at byte offset "
                              "0)", offset=0)
    return RecordingError(f"{path}: HDF5 cannot open it: {text}")


@dataclass(frozen=True)
class BadRow:
    """A stored row whose samples no longer match their CRC-32."""

    segment: str
    row: int
    offset: int | None


def verify_recording(rec: Recording) -> list[BadRow]:
    """Check every row against its CRC-32; returns the damaged rows with their file offsets."""
    bad: list[BadRow] = []
    for seg in rec.segments:
        ds = seg.samples
        crcs = seg.lines["crc32"]
        step = ds.chunks[0] if ds.chunks else 1024
        for start in range(0, seg.n_rows, step):
            block = ds[start : min(seg.n_rows, start + step)]
            for i, row in enumerate(block):
                if zlib.crc32(row) != int(crcs[start + i]):
                    bad.append(BadRow(seg.name, start + i, row_offset(ds, start + i)))
    return bad


def row_offset(ds: h5py.Dataset, row: int) -> int | None:
    """Byte offset of a stored row in the file (chunked, unfiltered datasets), or None."""
    if ds.chunks is None:
        return None
    per = ds.chunks[0]
    try:
        info = ds.id.get_chunk_info_by_coord((row // per * per,) + (0,) * (ds.ndim - 1))
    except (AttributeError, OSError, ValueError):
        return None
    if info.byte_offset is None:
        return None
    row_bytes = int(np.prod(ds.shape[1:], dtype=np.int64)) * ds.dtype.itemsize
    return int(info.byte_offset) + (row % per) * row_bytes


@dataclass
class SalvageReport:
    """What :func:`salvage_recording` kept."""

    source_bytes: int
    expected_bytes: int
    rows_kept: int
    rows_dropped: int
    message: str


def salvage_recording(src: str | os.PathLike, dst: str | os.PathLike, *,
                      overwrite: bool = False) -> SalvageReport:
    """Copy what survives of a truncated recording into a new file ``dst``.

    A copy of ``src`` is padded with zeros to the length HDF5 expects, so it opens again. Then
    every attribute that still reads is copied, and for each segment the longest prefix of rows
    stored wholly before the cut whose samples pass their CRC-32. Segments after one that
    cannot be read are not copied (everything before the damage is kept, nothing after it).
    """
    src, dst = Path(src), Path(dst)
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst} exists; use --force to overwrite it")
    m = _TRUNCATED.search(_raw_open_error(src))
    if m is None:
        try:
            open_recording(src).close()
        except RecordingError:
            raise
        raise RecordingError(f"{src} is not truncated; nothing to salvage")
    cut, expected = int(m.group(1)), int(m.group(2))
    padded = dst.with_name(dst.name + ".padded")
    shutil.copyfile(src, padded)
    try:
        os.truncate(padded, expected)  # zero-filled: whatever lay past the cut is gone anyway
        try:
            old = h5py.File(padded, "r")
        except OSError as exc:
            raise RecordingError(f"{src} is truncated at byte offset {cut} and its HDF5 "
                                 f"superblock lay past the cut; nothing can be salvaged "
                                 f"({exc})", offset=cut) from exc
        with old, h5py.File(dst, "w", libver=_LIBVER) as new:
            kept, dropped = _copy_salvageable(old, new, cut)
            new.attrs["complete"] = False
            new.attrs["salvaged_from"] = str(src)
            note = (f"{src} was truncated at byte offset {cut} (HDF5 expects {expected} "
                    f"bytes): kept {kept} rows stored before it, dropped {dropped}")
            new.attrs["salvage_note"] = note
    finally:
        with contextlib.suppress(OSError):
            padded.unlink()
    return SalvageReport(src.stat().st_size, expected, kept, dropped, note)


def _copy_attrs(old: h5py.AttributeManager, new: h5py.AttributeManager) -> None:
    try:
        names = list(old.keys())
    except Exception:  # the attribute index lay past the cut
        return
    for name in names:
        with contextlib.suppress(Exception):
            new[name] = old[name]


def _copy_salvageable(old: h5py.File, new: h5py.File, cut: int) -> tuple[int, int]:
    """Copy attributes and the rows that lie before ``cut``; returns (kept, dropped) rows."""
    _copy_attrs(old.attrs, new.attrs)
    if "format" not in new.attrs:
        new.attrs["format"] = FORMAT_NAME
    with contextlib.suppress(Exception):
        _copy_attrs(old["device_info"].attrs, new.require_group("device_info").attrs)
    segs = new.create_group("segments")
    kept = dropped = 0
    try:
        names = sorted(old["segments"])
    except Exception:
        names = []
    for name in names:
        try:
            g = old["segments"][name]
            samples, lines = g["samples"], g["lines"]
            n = min(samples.shape[0], lines.shape[0])
        except Exception:
            break
        good = min(_rows_before(samples, n, cut), _rows_before(lines, n, cut))
        meta = np.zeros(0, LINE_DTYPE)
        try:
            meta = lines[:good]
            block = samples[:good]
        except Exception:
            good, block = 0, np.zeros((0, samples.shape[1]), samples.dtype)
        for i in range(good):
            if zlib.crc32(block[i]) != int(meta["crc32"][i]):
                good = i
                break
        ng = segs.create_group(name)
        _copy_attrs(g.attrs, ng.attrs)
        ns = ng.create_dataset("samples", data=block[:good], maxshape=(None, samples.shape[1]),
                               chunks=samples.chunks)
        del ns
        ng.create_dataset("lines", data=meta[:good], maxshape=(None,), chunks=(_LINES_CHUNK,))
        kept += good
        dropped += n - good
        if good < n:
            break
    frames = np.zeros(0, FRAME_DTYPE)
    with contextlib.suppress(Exception):
        f = old["frames"]
        frames = f[: _rows_before(f, f.shape[0], cut)]
    new.create_dataset("frames", data=frames, maxshape=(None,), chunks=(_FRAMES_CHUNK,))
    return kept, dropped


def _raw_open_error(path: Path) -> str:
    try:
        h5py.File(path, "r").close()
    except OSError as exc:
        return str(exc)
    return ""


def _rows_before(ds: h5py.Dataset, n: int, cut: int) -> int:
    """Length of the prefix of ``ds``'s first ``n`` rows stored wholly before byte ``cut``."""
    if n == 0 or ds.chunks is None:
        return 0
    per = ds.chunks[0]
    row_bytes = int(np.prod(ds.shape[1:], dtype=np.int64)) * ds.dtype.itemsize
    good = 0
    for start in range(0, n, per):
        try:
            info = ds.id.get_chunk_info_by_coord((start,) + (0,) * (ds.ndim - 1))
        except (OSError, ValueError):
            break
        if info.byte_offset is None:
            break
        rows = min(per, n - start)
        fit = (cut - int(info.byte_offset)) // row_bytes
        if fit < rows:
            good += max(0, fit)
            break
        good += rows
    return good


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    return value
