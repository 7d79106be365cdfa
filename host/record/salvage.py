"""Salvage: what survives of a truncated or damaged HDF5 recording, copied into a new file.

How a damaged file is read (every step is reported in the salvage note):

* **Truncated** (a partial copy, a full disk): HDF5 refuses a file shorter than its superblock
  says. The file is opened through a view that reads as zeros past the cut, so HDF5 opens it
  without a padded copy on disk; only rows stored wholly before the cut are kept.
* **Damaged superblock**: a recording's superblock (version 2, written with
  ``libver='v108'``) holds nothing that cannot be rebuilt: the view carries a rebuilt one
  (end of file, root group address, checksum).
* **Damaged root group or other metadata**: when the recording's structure cannot be read
  from the root, every object header (``OHDR``) in the file is tried as the root group, the
  view's superblock pointing at it. Each segment group found that way is copied, named as the
  recording's ``config_changes`` says when those survived, else in order of first host time.
* **Damaged rows**: every row is checked against its CRC-32. Rows that fail, and rows whose
  chunk HDF5 cannot locate or read, are left out and listed (segment, row, frame, line).

The output is written to ``DST.partial`` and renamed when complete. When no row can be
salvaged nothing is left behind, so a retry is never blocked by an empty file.
"""

from __future__ import annotations

import contextlib
import io
import json
import mmap
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .hdf5_schema import (
    FRAME_DTYPE,
    FRAMES_CHUNK,
    HDF5_SIGNATURE,
    JSON_ATTRS,
    LIBVER,
    LINE_DTYPE,
    LINES_CHUNK,
    BadRow,
    RecordingError,
    chunk_offset,
    describe_rows,
    frames_table,
)
from .meta import FORMAT_NAME

_UNDEF = 0xFFFFFFFFFFFFFFFF
_M32 = 0xFFFFFFFF
#: superblock version 2/3 up to its checksum: signature, version, sizes of offsets and
#: lengths, flags, base address, extension address, end of file, root group object header
_SUPERBLOCK = struct.Struct("<8sBBBBQQQQ")
_OHDR = b"OHDR"
#: at most this many damaged rows are listed in the salvaged file's ``salvage`` attribute
_LISTED_ROWS = 1000


@dataclass
class SalvageReport:
    """What :func:`salvage_recording` kept, and what it had to leave out and why."""

    source_bytes: int
    expected_bytes: int
    rows_kept: int
    rows_dropped: int
    message: str
    #: rows whose samples fail their CRC-32 (left out)
    damaged: list[BadRow] = field(default_factory=list)
    #: rows stored past the end of a truncated file
    rows_truncated: int = 0
    #: rows HDF5 could not locate or read (a damaged chunk index)
    rows_unreadable: int = 0
    #: repairs the reading needed (a rebuilt superblock, an object scan) and parts it lost
    repairs: list[str] = field(default_factory=list)
    #: True when the file needed no salvage (not truncated, nothing damaged)
    intact: bool = False
    output: str | None = None


def salvage_command(path: str | os.PathLike) -> str:
    """The ``sonobridge convert`` command line that salvages ``path`` into a new file."""
    p = Path(path)
    return f"sonobridge convert {p} -o {p.with_name(p.stem + '-salvaged.h5')}"


def salvage_recording(src: str | os.PathLike, dst: str | os.PathLike | None, *,
                      overwrite: bool = False) -> SalvageReport:
    """Copy every row of a truncated or damaged recording that passes its CRC-32 into ``dst``.

    ``dst=None`` only counts what could be salvaged (nothing is written). Raises
    :class:`RecordingError` when the file is intact (nothing to salvage) or nothing in it can
    be salvaged; no output file is left behind then.
    """
    src = Path(src)
    out = None if dst is None else Path(dst)
    if out is not None and out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; use --force to overwrite it")
    if not src.is_file():
        raise FileNotFoundError(f"{src} does not exist or is not a file")
    partial = None if out is None else out.with_name(out.name + ".partial")
    try:
        report = _salvage(src, partial)
    except BaseException:
        _remove(partial)
        raise
    if out is None or partial is None:
        return report
    if report.intact:
        _remove(partial)
        raise RecordingError(f"{src} is not truncated or damaged: every row passes its CRC-32; "
                             "nothing to salvage (open it directly)", path=src)
    if report.rows_kept == 0:
        _remove(partial)
        raise RecordingError(f"{src}: nothing can be salvaged: {report.message}; no output was "
                             "written (if it was recorded with --raw, convert its raw capture "
                             "instead)", path=src)
    os.replace(partial, out)
    report.output = str(out)
    return report


def _remove(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


# -- reading a damaged file ------------------------------------------------------------------


def _lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``: the checksum HDF5 puts on its metadata."""
    def rot(x: int, k: int) -> int:
        return ((x << k) | (x >> (32 - k))) & _M32

    n = len(data)
    a = b = c = (0xDEADBEEF + n + initval) & _M32
    i = 0
    while n > 12:
        a = (a + int.from_bytes(data[i : i + 4], "little")) & _M32
        b = (b + int.from_bytes(data[i + 4 : i + 8], "little")) & _M32
        c = (c + int.from_bytes(data[i + 8 : i + 12], "little")) & _M32
        a = (a - c) & _M32
        a ^= rot(c, 4)
        c = (c + b) & _M32
        b = (b - a) & _M32
        b ^= rot(a, 6)
        a = (a + c) & _M32
        c = (c - b) & _M32
        c ^= rot(b, 8)
        b = (b + a) & _M32
        a = (a - c) & _M32
        a ^= rot(c, 16)
        c = (c + b) & _M32
        b = (b - a) & _M32
        b ^= rot(a, 19)
        a = (a + c) & _M32
        c = (c - b) & _M32
        c ^= rot(b, 4)
        b = (b + a) & _M32
        n -= 12
        i += 12
    if n == 0:
        return c
    tail = data[i:] + bytes(12 - n)
    a = (a + int.from_bytes(tail[0:4], "little")) & _M32
    b = (b + int.from_bytes(tail[4:8], "little")) & _M32
    c = (c + int.from_bytes(tail[8:12], "little")) & _M32
    c = ((c ^ b) - rot(b, 14)) & _M32
    a = ((a ^ c) - rot(c, 11)) & _M32
    b = ((b ^ a) - rot(a, 25)) & _M32
    c = ((c ^ b) - rot(b, 16)) & _M32
    a = ((a ^ c) - rot(c, 4)) & _M32
    b = ((b ^ a) - rot(a, 14)) & _M32
    c = ((c ^ b) - rot(b, 24)) & _M32
    return c


def _superblock(version: int, eof: int, root: int) -> bytes:
    """A version 2/3 superblock for a file of ``eof`` bytes whose root group is at ``root``."""
    body = _SUPERBLOCK.pack(HDF5_SIGNATURE, version, 8, 8, 0, 0, _UNDEF, eof, root)
    return body + struct.pack("<I", _lookup3(body))


class _View(io.RawIOBase):
    """A file as HDF5 should see it: its bytes, zeros from its end up to ``length``, and a
    replacement superblock; read-only, nothing is copied."""

    def __init__(self, path: Path, length: int, superblock: bytes | None) -> None:
        super().__init__()
        self._file = path.open("rb", buffering=0)
        self._size = os.fstat(self._file.fileno()).st_size
        self._length = max(length, self._size)
        self._superblock = superblock
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self._length - self._pos))
        got = 0
        if self._pos < self._size:
            self._file.seek(self._pos)
            want = min(n, self._size - self._pos)
            while got < want:
                k = self._file.readinto(view[got:want])
                if not k:
                    break
                got += k
        view[got:n] = bytes(n - got)
        sb = self._superblock
        if sb is not None and self._pos < len(sb):
            k = min(n, len(sb) - self._pos)
            view[:k] = sb[self._pos : self._pos + k]
        self._pos += n
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


@dataclass
class _Layout:
    """What the superblock says (or what it must have said, if it is damaged)."""

    size: int
    eof: int
    version: int
    root: int | None
    superblock: bytes | None = None
    repairs: list[str] = field(default_factory=list)

    @property
    def truncated(self) -> bool:
        return self.eof > self.size


def _layout(path: Path, buf: mmap.mmap, size: int) -> _Layout:
    head = bytes(buf[:_SUPERBLOCK.size + 4])
    sig_ok = head[:8] == HDF5_SIGNATURE
    version = head[8] if len(head) > 8 else -1
    if len(head) == _SUPERBLOCK.size + 4 and version in (2, 3) and (
            sig_ok or buf[48:52] == _OHDR):
        _sig, _v, s_off, s_len, flags, _base, _ext, eof, root = _SUPERBLOCK.unpack_from(head)
        (crc,) = struct.unpack_from("<I", head, _SUPERBLOCK.size)
        if sig_ok and (s_off, s_len, flags) == (8, 8, 0) and \
                _lookup3(head[:_SUPERBLOCK.size]) == crc:
            return _Layout(size, max(eof, size), version, root)
        # a recording's superblock holds nothing that cannot be rebuilt: sizes 8, no flags,
        # no base offset or extension; the end of file and root from what is still plausible
        if not size <= eof < (1 << 48):
            eof = size
        if not (root < size and buf[root : root + 4] == _OHDR):
            found = buf.find(_OHDR, 48)  # the root group is the first object HDF5 wrote
            root = found if found >= 0 else 48
        lay = _Layout(size, eof, version, root, _superblock(version, eof, root))
        lay.repairs.append("the HDF5 superblock was damaged and has been rebuilt")
        return lay
    if sig_ok and version in (0, 1) and len(head) >= 52:
        eof = struct.unpack_from("<Q", head, 40 if version == 0 else 44)[0]
        return _Layout(size, max(eof, size), version, None)
    raise RecordingError(f"{path} is not an HDF5 file (no HDF5 signature or superblock at byte "
                         "offset 0); nothing to salvage", offset=0, path=path)


@contextlib.contextmanager
def _opened(path: Path, lay: _Layout, root: int | None = None) -> Iterator[h5py.File]:
    """The file through its view; ``root``: with the superblock pointing at that object."""
    sb = lay.superblock
    if root is not None:
        sb = _superblock(lay.version, lay.eof, root)
    view = _View(path, lay.eof, sb)
    try:
        f = h5py.File(view, "r")
    except BaseException:
        view.close()
        raise
    try:
        yield f
    finally:
        with contextlib.suppress(Exception):
            f.close()
        view.close()


def _attrs(attrs: h5py.AttributeManager, lost: list[str] | None = None, what: str = ""
           ) -> dict[str, Any]:
    """Every attribute that still reads; what does not is noted in ``lost``."""
    try:
        names = list(attrs.keys())
    except Exception as exc:  # the attribute index itself is damaged
        if lost is not None:
            lost.append(f"the attributes of {what} cannot be read ({_reason(exc)})")
        return {}
    out = {}
    bad = []
    for name in names:
        try:
            value = attrs[name]
            if name in JSON_ATTRS and _text(value) is not None:
                json.loads(_text(value) or "")  # damaged text is worse than none
            out[name] = value
        except Exception:
            bad.append(name)
    if bad and lost is not None:
        lost.append(f"attributes of {what} cannot be read: {', '.join(bad)}")
    return out


def _reason(exc: BaseException) -> str:
    return str(exc).strip("'\"")


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


# -- copying ---------------------------------------------------------------------------------


class _Copier:
    """Copies segments, sweeps and attributes into the output (or only counts, without one)."""

    def __init__(self, src: Path, lay: _Layout, out: h5py.File | None) -> None:
        self.src = src
        self.cut = lay.size
        self.truncated = lay.truncated
        self.out = out
        self.kept = self.total = self.truncated_rows = self.unreadable = 0
        self.damaged: list[BadRow] = []
        self.problems: list[str] = []
        self.frames: list[np.ndarray] = []
        self.root_attrs: dict[str, Any] = {}
        self.info_attrs: dict[str, Any] = {}

    def segment(self, name: str, g: h5py.Group) -> None:
        """Copy the rows of one segment group that lie before the cut and pass their CRC."""
        try:
            samples, lines = g["samples"], g["lines"]
            n = min(samples.shape[0], lines.shape[0])
            width = int(samples.shape[1])
            dtype = samples.dtype
            per = samples.chunks[0] if samples.chunks else 1024
        except Exception as exc:
            self.problems.append(f"segment {name}: HDF5 cannot read its datasets "
                                 f"({_reason(exc)})")
            return
        self.total += n
        row_bytes = width * dtype.itemsize
        attrs = _attrs(g.attrs, self.problems, f"segment {name}")
        target: tuple[h5py.Dataset, h5py.Dataset] | None = None
        for start in range(0, n, per):
            end = min(n, start + per)
            keep = self._check(name, samples, lines, start, end, row_bytes)
            if keep is None:
                continue
            meta, block, mask = keep
            k = int(np.count_nonzero(mask))
            self.kept += k
            if self.out is None or k == 0:
                continue
            if target is None:
                target = self._new_segment(name, attrs, width, dtype, samples.chunks)
            ds, ls = target
            n0 = ds.shape[0]
            ds.resize((n0 + k, width))
            ds[n0:] = block[mask]
            ls.resize((n0 + k,))
            ls[n0:] = meta[mask]

    def _check(self, name: str, samples: h5py.Dataset, lines: h5py.Dataset, start: int,
               end: int, row_bytes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Rows ``start``..``end`` that can be kept: ``(metadata, samples, mask)``."""
        count = end - start
        s_off = chunk_offset(samples, start)
        per_l = lines.chunks[0] if lines.chunks else LINES_CHUNK
        # a row is only trusted when both its samples and its metadata lie before the cut
        stored = np.zeros(count, bool)
        if s_off is not None:
            s_end = s_off + (np.arange(count) + 1) * row_bytes
            l_ends = np.full(count, self.cut + 1, np.int64)
            for first in range(start - start % per_l, end, per_l):
                l_off = chunk_offset(lines, first)
                if l_off is None:
                    continue
                rows = np.arange(max(first, start), min(first + per_l, end))
                l_ends[rows - start] = l_off + (rows - first + 1) * LINE_DTYPE.itemsize
            stored = (s_end <= self.cut) & (l_ends <= self.cut)
        if not stored.any():
            self._lost(count)
            return None
        try:
            meta = lines[start:end]
            block = samples[start:end]
        except Exception:  # a damaged chunk index or chunk: these rows cannot be read
            self.unreadable += count
            return None
        mask = stored.copy()
        for i in np.flatnonzero(stored):
            if zlib.crc32(block[i]) != int(meta["crc32"][i]):
                mask[i] = False
                m = meta[i]
                self.damaged.append(BadRow(f"/segments/{name}", start + int(i),
                                           s_off + int(i) * row_bytes
                                           if s_off is not None else None,
                                           int(m["frame_index"]), int(m["line_index"]),
                                           int(m["ensemble_index"])))
        self._lost(int(count - np.count_nonzero(stored)))
        return meta, block, mask

    def _lost(self, count: int) -> None:
        """Rows not stored before the cut: lost with a truncated file's tail (a chunk index
        past the cut reads as zeros, so its rows went with it too), else unreadable."""
        if self.truncated:
            self.truncated_rows += count
        else:
            self.unreadable += count

    def _new_segment(self, name: str, attrs: dict[str, Any], width: int, dtype: np.dtype,
                     chunks: tuple | None) -> tuple[h5py.Dataset, h5py.Dataset]:
        assert self.out is not None
        ng = self.out.require_group("segments").create_group(name)
        for key, value in attrs.items():
            with contextlib.suppress(Exception):
                ng.attrs[key] = value
        ds = ng.create_dataset("samples", shape=(0, width), maxshape=(None, width), dtype=dtype,
                               chunks=chunks or (max(1, (1 << 20) // max(1, width *
                                                                          dtype.itemsize)),
                                                 width))
        ls = ng.create_dataset("lines", shape=(0,), maxshape=(None,), dtype=LINE_DTYPE,
                               chunks=(LINES_CHUNK,))
        return ds, ls

    def sweeps(self, f: h5py.File) -> None:
        """The ``frames`` rows stored before the cut."""
        try:
            ds = f["frames"]
            n = ds.shape[0]
            per = ds.chunks[0] if ds.chunks else FRAMES_CHUNK
        except Exception as exc:
            self.problems.append(f"the frames table cannot be read ({_reason(exc)})")
            return
        item = ds.dtype.itemsize
        for start in range(0, n, per):
            end = min(n, start + per)
            off = chunk_offset(ds, start)
            if off is None:
                where = "lay past the cut" if self.truncated else "cannot be located"
                self.problems.append(f"frames {start} to {n - 1} {where}")
                return
            fit = min(end - start, max(0, (self.cut - off) // item))
            if fit <= 0:
                self.problems.append(f"frames {start} to {n - 1} lay past the cut")
                return
            try:
                self.frames.append(frames_table(ds[start : start + fit]))
            except Exception as exc:
                self.problems.append(f"frames {start} to {n - 1} cannot be read "
                                     f"({_reason(exc)})")
                return
            if fit < end - start:
                self.problems.append(f"frames {start + fit} to {n - 1} lay past the cut")
                return

    def finish(self, note: str, repairs: list[str]) -> None:
        """Write the sweeps and the attributes (the originals that read, and the salvage's)."""
        if self.out is None:
            return
        out = self.out
        for key, value in self.root_attrs.items():
            with contextlib.suppress(Exception):
                out.attrs[key] = value
        if "format" not in out.attrs:
            out.attrs["format"] = FORMAT_NAME
        if self.info_attrs:
            g = out.require_group("device_info")
            for key, value in self.info_attrs.items():
                with contextlib.suppress(Exception):
                    g.attrs[key] = value
        out.require_group("segments")
        frames = np.concatenate(self.frames) if self.frames else np.zeros(0, FRAME_DTYPE)
        out.create_dataset("frames", data=frames, maxshape=(None,), chunks=(FRAMES_CHUNK,))
        out.attrs["complete"] = False
        out.attrs["salvaged_from"] = str(self.src)
        out.attrs["salvage_note"] = note
        out.attrs["salvage"] = json.dumps({
            "rows_kept": self.kept, "rows_damaged": len(self.damaged),
            "rows_truncated": self.truncated_rows, "rows_unreadable": self.unreadable,
            "damaged_rows": [[r.segment, r.row, r.frame_index, r.line_index]
                             for r in self.damaged[:_LISTED_ROWS]],
            "repairs": repairs, "problems": self.problems}, separators=(",", ":"))


def _salvage(src: Path, partial: Path | None) -> SalvageReport:
    size = src.stat().st_size
    if size == 0:
        raise RecordingError(f"{src} is empty; nothing to salvage", offset=0, path=src)
    with src.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        lay = _layout(src, buf, size)
        ohdrs = _ohdr_offsets(buf, size)
    out = None if partial is None else h5py.File(partial, "w", libver=LIBVER)
    try:
        copier = _Copier(src, lay, out)
        repairs = list(lay.repairs)
        if not _from_root(src, lay, copier):
            repairs.append("the root group could not be read: segments were found by scanning "
                           "the file's object headers")
            _from_object_scan(src, lay, ohdrs, copier)
        note = _note(src, lay, copier, repairs)
        copier.finish(note, repairs)
    finally:
        if out is not None:
            out.close()
    intact = (not lay.truncated and not repairs and not copier.problems
              and copier.kept == copier.total)
    return SalvageReport(size, lay.eof, copier.kept, copier.total - copier.kept, note,
                         copier.damaged, copier.truncated_rows, copier.unreadable,
                         repairs + copier.problems, intact)


def _from_root(src: Path, lay: _Layout, copier: _Copier) -> bool:
    """Copy through the root group; False (nothing copied) if the recording's structure
    cannot be read from there."""
    with contextlib.ExitStack() as stack:
        try:
            f = stack.enter_context(_opened(src, lay))
            groups = [(name, f["segments"][name]) for name in sorted(f["segments"])]
            for _name, g in groups:
                _ = (g["samples"], g["lines"])  # a segment that cannot be opened: scan instead
        except Exception:  # no usable structure: the object scan takes over
            return False
        copier.root_attrs = _attrs(f.attrs, copier.problems, "the recording")
        try:
            copier.info_attrs = _attrs(f["device_info"].attrs, copier.problems, "device_info")
        except Exception as exc:
            copier.problems.append(f"device_info cannot be read ({_reason(exc)})")
        for name, g in groups:
            copier.segment(name, g)
        copier.sweeps(f)
    return True


def _ohdr_offsets(buf: mmap.mmap, size: int) -> list[int]:
    out = []
    pos = buf.find(_OHDR, 0)
    while 0 <= pos < size:
        out.append(pos)
        pos = buf.find(_OHDR, pos + 1)
    return out


def _from_object_scan(src: Path, lay: _Layout, ohdrs: list[int], copier: _Copier) -> None:
    """Find the segment groups, the root's attributes and DEVICE_INFO by trying every object
    header as the root group."""
    found: list[tuple[int, int, int]] = []  # (first host time, config id, address)
    if lay.version not in (2, 3):
        copier.problems.append("the superblock is too old to point at other objects")
        return
    for addr in ohdrs:
        with contextlib.suppress(Exception), _opened(src, lay, root=addr) as f:
            keys = set(f.keys())
            attrs = _attrs(f.attrs)
            if {"samples", "lines"} <= keys:
                found.append((int(attrs.get("first_host_time_ns", 0)),
                              int(attrs.get("config_id", 0)), addr))
            elif _text(attrs.get("format")) == FORMAT_NAME and not copier.root_attrs:
                copier.root_attrs = attrs
                if "frames" in keys:
                    copier.sweeps(f)
            elif "board_name" in attrs and not copier.info_attrs:
                copier.info_attrs = attrs
    if not found:
        copier.problems.append("no segment group could be found: their HDF5 object headers "
                               "are damaged or lie past the cut")
    names = _segment_names(copier.root_attrs, sorted(found))
    for (_t, _c, addr), name in zip(sorted(found), names, strict=True):
        try:
            with _opened(src, lay, root=addr) as f:
                copier.segment(name, f)
        except Exception as exc:
            copier.problems.append(f"segment {name}: cannot be read ({_reason(exc)})")


def _segment_names(root_attrs: dict[str, Any], found: list[tuple[int, int, int]]
                   ) -> list[str]:
    """Each found segment's original name where ``config_changes`` survived, else its order."""
    known: dict[tuple[int, int], int] = {}
    with contextlib.suppress(Exception):
        for change in json.loads(_text(root_attrs.get("config_changes")) or "[]"):
            known[(int(change["host_time_ns"]), int(change["config_id"]))] = \
                int(change["segment"])
    names: list[str] = []
    for k, (t, config_id, _addr) in enumerate(found):
        index = known.get((t, config_id), k)
        name = f"{index:04d}"
        while name in names:
            index += 1
            name = f"{index:04d}"
        names.append(name)
    return names


def _note(src: Path, lay: _Layout, c: _Copier, repairs: list[str]) -> str:
    parts = []
    if lay.truncated:
        parts.append(f"{src} was truncated at byte offset {lay.size} (HDF5 expects {lay.eof} "
                     "bytes)")
    else:
        parts.append(f"{src} is {lay.size} bytes")
    parts.extend(repairs)
    parts.extend(c.problems)
    text = "; ".join(parts)
    text += f": kept {c.kept} of {c.total} rows"
    lost = []
    if c.truncated_rows:
        lost.append(f"{c.truncated_rows} stored past the cut")
    if c.damaged:
        lost.append(f"{len(c.damaged)} failing their CRC-32 ({describe_rows(c.damaged, 5)})")
    if c.unreadable:
        lost.append(f"{c.unreadable} HDF5 could not locate or read")
    if lost:
        text += ", left out " + ", ".join(lost)
    return text
