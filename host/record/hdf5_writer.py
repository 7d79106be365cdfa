"""Writing an HDF5 recording (layout in :mod:`sonobridge.record.hdf5_schema`).

:class:`DatasetWriter` writes from a background thread
(:class:`~sonobridge.record.background_writer.BackgroundWriter`). The device's reader thread
only appends a line to a bounded queue (lines that cannot be kept are counted, never silently
lost); the writer thread writes them in batches and flushes the file at least every
``flush_interval_s``, so a killed recorder leaves a file that holds everything up to the last
flush. Disk space is checked before it runs out, and a failed write stops the writer cleanly.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import os
import shutil
import time
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import sonobridge
from sonobridge.device import Frame
from sonobridge.protocol import PROTOCOL_VERSION, DeviceInfo, EchoLine, SampleFormat
from sonobridge.protocol.samples import DTYPES

from .background_writer import BackgroundWriter, check_flush_interval
from .hdf5_schema import CHUNK_BYTES, FRAME_DTYPE, FRAMES_CHUNK, LIBVER, LINE_DTYPE, LINES_CHUNK
from .meta import (
    FORMAT_NAME,
    FORMAT_VERSION,
    BoardOrigin,
    ConfigChange,
    info_to_dict,
    segment_key,
    to_json,
)

DEFAULT_FLUSH_S = 0.5
DEFAULT_QUEUE_BYTES = 512 << 20
#: by default the writer stops (cleanly) when less than this many seconds of data at the
#: board's rated throughput (DEVICE_INFO) are free on the recording's disk …
RESERVE_SECONDS = 5.0
#: … and never keeps less than this in reserve (HDF5's own metadata, the final attributes)
RESERVE_FLOOR = 4 << 20
_BATCH_BYTES = 2 << 20
_WAKE_BYTES = 2 << 20


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
        #: the free space to keep on the disk; None: :data:`RESERVE_SECONDS` of data at the
        #: board's rated throughput (or the measured rate while that is unknown)
        self.min_free_bytes = min_free_bytes
        self._rated_bps = 0
        self._t_start = time.monotonic()
        self.stats = WriterStats()
        self._file = h5py.File(self.path, "w", libver=LIBVER)
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
            "frames", shape=(0,), maxshape=(None,), dtype=FRAME_DTYPE, chunks=(FRAMES_CHUNK,),
            dcpl=_early_alloc())
        self._file.flush()
        self._seg: _Segment | None = None
        self._changes: list[dict[str, Any]] = []
        self._last_space_check = 0.0
        #: lines taken off the queue whose write has not completed yet
        self._inflight = 0
        self._bg = BackgroundWriter(
            name="sonobridge-hdf5", write_batch=self._write_batch, flush=self._flush,
            on_failure=self._failed_with, settle=self._file.flush,
            flush_interval_s=self.flush_interval_s, max_queue_bytes=max_queue_bytes,
            wake_bytes=_WAKE_BYTES,
            # conversion wants back-pressure instead of dropping when the disk is slow
            block_when_full=block_when_full)

    # -- producer side (any thread) --------------------------------------------------------------

    def add_line(self, line: EchoLine, host_ns: int, change: ConfigChange | None = None) -> None:
        """Queue one line (``change`` when it starts a new configuration); never blocks unless
        ``block_when_full``."""
        with self._bg.lock:
            if self._bg.closing:
                return  # arrived after the recording ended: not part of it
            if not self._bg.put(("L", line, host_ns, change), line.samples.nbytes):
                self.stats.lines_not_kept += 1

    def add_frame(self, frame: Frame) -> None:
        """Queue the summary of a sweep the client handed on."""
        row = (frame.index & 0xFFFFFFFF, frame.config_id, frame.n_lines, frame.ensemble_size,
               int(np.count_nonzero(frame.present)), frame.n_missing, frame.lost_link,
               frame.lost_device, frame.lost_host,
               -1 if frame.device_sent is None else frame.device_sent,
               frame.end_received, frame.complete, frame.host_time_ns)
        self._put(("F", row))

    def set_device_info(self, info: DeviceInfo, origin: BoardOrigin | None = None) -> None:
        """Store DEVICE_INFO (every field) as attributes, with the dialect that built it and
        the fields it assumed (``origin``; None: a sonobridge-v1 board); its rated throughput
        sizes the default disk reserve from now on."""
        self._rated_bps = int(info.rated_throughput_bps or 0)
        self._put(("I", info_to_dict(info), origin or BoardOrigin()))

    def set_attrs(self, **attrs: Any) -> None:
        """Store root attributes (dicts and lists as JSON strings)."""
        self._put(("A", attrs))

    def _put(self, item: tuple) -> None:
        self._bg.put(item)

    def close(self, accounting: dict[str, Any] | None = None, **final_attrs: Any
              ) -> WriterStats:
        """Write everything queued, the final attributes, flush and close the file.

        ``accounting`` (the session's delivery and loss counters) is completed with what this
        writer kept (``lines_recorded``) and could not keep (``lines_not_recorded``).
        """
        self._bg.close()
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
        return self._bg.failed

    # -- writer thread ---------------------------------------------------------------------------

    def _write_batch(self, items: deque) -> None:
        self._check_space()
        self._write(items)

    def _flush(self) -> None:
        self._file.flush()
        self.stats.lines_flushed = self.stats.lines_written

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

    def _failed_with(self, exc: OSError, lost: deque, during: str) -> None:
        """Writing stopped (called with the queue's lock held): count what was not kept."""
        if during == "flush":
            reason, message = "write-error", f"flushing {self.path} failed: {exc}"
        else:
            full = exc.errno == errno.ENOSPC or "space" in str(exc).lower()
            reason, message = "disk-full" if full else "write-error", \
                f"writing {self.path} failed: {exc}"
        self.stats.error = message
        self.stats.stop_reason = reason
        self.stats.lines_not_kept += self._inflight + sum(1 for it in lost if it[0] == "L")
        self._inflight = 0

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
                    self._write_info(item[1], item[2])
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
        rows_per_chunk = max(1, min(4096, CHUNK_BYTES // max(1, row_bytes)))
        samples = g.create_dataset("samples", shape=(0, n), maxshape=(None, n), dtype=dtype,
                                   chunks=(rows_per_chunk, n), dcpl=_early_alloc(),
                                   rdcc_nbytes=4 * CHUNK_BYTES + row_bytes)
        lines = g.create_dataset("lines", shape=(0,), maxshape=(None,), dtype=LINE_DTYPE,
                                 chunks=(LINES_CHUNK,), dcpl=_early_alloc())
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

    def _write_info(self, info: dict[str, Any], origin: BoardOrigin) -> None:
        g = self._file.require_group("device_info")
        for key, value in info.items():
            g.attrs[key] = value
        self._file.attrs["device_info"] = to_json(info)
        # beside DEVICE_INFO, not in its group: the group holds the board's fields only
        for key, value in origin.as_dict().items():
            self._file.attrs[key] = _attr_value(value)
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
