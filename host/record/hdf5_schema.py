"""The HDF5 recording's layout: its tables' dtypes, chunking, and what writer, reader and
salvage share (the error a damaged file raises, a damaged row, where a row lies in the file).

Layout (docs/recording.md has the full schema)::

    /                       attrs: format, versions, port, created, device_info, dialect,
                                   nominal_fields, config, config_changes, stats,
                                   decoder_stats, accounting, complete…
    /device_info            attrs: every DEVICE_INFO field
    /segments/0000/samples  (n_rows, n_samples) in the wire's sample dtype, chunked, extendable
    /segments/0000/lines    (n_rows,) LINE_DTYPE: seq, frame/line/ensemble index, beam position,
                            device and host timestamps, config id, CRC-32 of the row
    /frames                 (n_frames,) FRAME_DTYPE: what the client made of every sweep

A new segment starts whenever a line's self-description (configuration id, sample count,
format, rate…) changes, so each segment has one configuration and one array shape.

Why not SWMR or ``libver='latest'``: files in the 1.10+ format carry an "open for writing"
flag, so a recorder killed with ``kill -9`` leaves a file that plain ``h5py.File(path)``
refuses to open; and SWMR forbids creating groups, which a configuration change needs. The
1.8 format (``libver='v108'``) with explicit flushes and uncompressed fixed-size chunks (always
rewritten in place) leaves a file that opens normally and holds everything up to the last
flush.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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

#: bytes of samples per chunk (rows per chunk follow from the row size)
CHUNK_BYTES = 1 << 20
LINES_CHUNK = 4096
FRAMES_CHUNK = 1024
#: the HDF5 1.8 file format (see the module docs)
LIBVER = ("v108", "v108")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

#: attributes that hold JSON text
JSON_ATTRS = frozenset({"device_info", "nominal_fields", "config", "config_changes", "stats",
                        "decoder_stats", "accounting", "salvage"})

#: what h5py raises when the bytes of a file are not what HDF5 expects
H5_ERRORS = (OSError, RuntimeError, KeyError)


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


def frames_table(data: np.ndarray) -> np.ndarray:
    """A ``frames`` table in today's :data:`FRAME_DTYPE` (columns added since are 0)."""
    if data.dtype == FRAME_DTYPE:
        return data
    out = np.zeros(len(data), FRAME_DTYPE)
    for name in data.dtype.names or ():
        if name in (FRAME_DTYPE.names or ()):
            out[name] = data[name]
    return out


def chunk_offset(ds: Any, row: int) -> int | None:
    """File offset of the chunk of ``ds`` (an h5py dataset) holding ``row``, or None if it is
    not chunked or HDF5 cannot locate the chunk (a damaged chunk index)."""
    if ds.chunks is None:
        return None
    per = ds.chunks[0]
    try:
        info = ds.id.get_chunk_info_by_coord((row // per * per,) + (0,) * (ds.ndim - 1))
    except Exception:  # whatever a damaged chunk index makes HDF5 raise
        return None
    return None if info.byte_offset is None else int(info.byte_offset)


def row_offset(ds: Any, row: int) -> int | None:
    """Byte offset of a stored row in the file (chunked, unfiltered datasets), or None."""
    start = chunk_offset(ds, row)
    if start is None:
        return None
    row_bytes = int(np.prod(ds.shape[1:], dtype=np.int64)) * ds.dtype.itemsize
    return start + (row % ds.chunks[0]) * row_bytes
