"""Reading an HDF5 recording (layout in :mod:`sonobridge.record.hdf5_schema`):
:func:`open_recording` gives a :class:`Recording` of :class:`Segment` objects, and
:func:`verify_recording` checks every row against its CRC-32. A file HDF5 cannot read raises
:class:`~sonobridge.record.hdf5_schema.RecordingError` naming where, with the
``sonobridge convert`` command that salvages it (:mod:`sonobridge.record.salvage`).
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from sonobridge.device.accounting import LossAccount
from sonobridge.protocol import DeviceInfo

from .formats import HDF5, HEAD_BYTES
from .hdf5_schema import (
    FRAME_DTYPE,
    H5_ERRORS,
    BadRow,
    RecordingError,
    frames_table,
    row_offset,
)
from .meta import FORMAT_NAME, BoardOrigin, info_from_dict
from .salvage import salvage_command


def damage_error(path: str | os.PathLike, what: str, exc: BaseException | str,
                 offset: int | None = None) -> RecordingError:
    """The error for a recording HDF5 cannot read (``what`` it was reading, h5py's reason)."""
    detail = str(exc).strip("'\"") if not isinstance(exc, str) else exc
    problem = f"{path} is damaged: HDF5 cannot read {what} ({detail})"
    return RecordingError(f"{problem}; run `{salvage_command(path)}` to salvage the rows that "
                          "still pass their CRC-32", offset, path=path, salvage=True,
                          problem=problem)


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
    def origin(self) -> BoardOrigin:
        """The board's dialect and the DEVICE_INFO fields it assumed (files written before
        dialects existed: sonobridge-v1, none assumed)."""
        return BoardOrigin.from_dict({"dialect": self.attrs.get("dialect"),
                                      "nominal_fields": self._json("nominal_fields")})

    @property
    def dialect(self) -> str:
        """The wire dialect the board spoke (``"sonobridge-v1"``, ``"pic0rick-shell"``, …)."""
        return self.origin.dialect

    @property
    def nominal_fields(self) -> dict[str, str]:
        """DEVICE_INFO field → why its value is an assumption ({} if the board announced it)."""
        return self.origin.nominal_fields

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
    def loss_account(self) -> LossAccount | None:
        """The accounting as a :class:`~sonobridge.device.accounting.LossAccount`: its
        ``check()`` says whether the file's figures add up, ``text()`` prints them."""
        acc = self.accounting
        return None if acc is None else LossAccount.from_counts(acc)

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
        head = f.read(HEAD_BYTES)
    # a damaged signature in front of an intact root object header is still worth salvaging
    if not HDF5.matches(head):
        return RecordingError(f"{path} is not an HDF5 file (no HDF5 signature at byte offset "
                              "0)", offset=0, path=path)
    return damage_error(path, "the file's superblock or root group", exc)


def verify_recording(rec: Recording) -> list[BadRow]:
    """Check every row against its CRC-32; returns the damaged rows with their file offsets."""
    return [bad for seg in rec.segments for bad in seg.bad_rows()]


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    return value
