"""``sonobridge import``: other tools' files of the boards people own → sonobridge recordings.

One module per format (``pic0lib``, ``pic0rick_npz``, ``un0rick_npz``, ``npusz``), each with
``NAME``, ``DESCRIPTION``, ``looks_like`` and ``read(path, allow_pickle=)`` → :class:`Imported`;
:mod:`.detect` picks one by the file's content; :mod:`.npz` and :mod:`.safe_unpickle` read
npz files and pickles without trusting them; :mod:`.common` writes the recording with the
ordinary :class:`~sonobridge.record.hdf5_writer.DatasetWriter`.

The recording's origin is the dialect-like name ``import:<format>`` (root attribute
``dialect``); DEVICE_INFO values the file does not state are in ``nominal_fields``, other
guesses (gain, timing) in ``import_nominal``, and the source in ``imported_from``,
``import_format``, ``import_source_sha256`` (docs/formats.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .common import ImportFailure

__all__ = ["ImportFailure", "ImportResult", "cmd_import", "import_file"]


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote."""

    source: Path
    output: Path
    format: str
    frames: int
    lines: int
    sample_rate_hz: int
    #: False when the samples are not exactly the board's codes (see ``notes``)
    exact: bool
    notes: tuple[str, ...] = field(default=())
    nominal: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        """A short summary for people."""
        head = (f"imported {self.source} ({self.format}) into {self.output}: {self.frames} "
                f"frames, {self.lines} lines at {self.sample_rate_hz / 1e6:g} MS/s"
                + ("" if self.exact else "; samples NOT exactly the board's codes"))
        return "\n".join([head, *(f"note: {n}" for n in self.notes)])


def import_file(path: str | os.PathLike, out: str | os.PathLike, *, format: str | None = None,
                allow_pickle: bool = False, overwrite: bool = False) -> ImportResult:
    """Import ``path`` (format detected from its content unless ``format`` names one) into a
    new recording ``out``; ImportFailure says why not."""
    from .common import write_recording
    from .detect import FORMATS, detect_format, format_names

    src, dst = Path(path), Path(out)
    if format is not None and format not in FORMATS:
        raise ImportFailure(f"unknown format {format!r}; choose one of: {format_names()}", 2)
    if not src.is_file():
        raise ImportFailure(f"{src} does not exist or is not a file", 2)
    if dst.exists() and not overwrite:
        raise ImportFailure(f"{dst} exists; use --force to overwrite it", 2)
    if dst.exists() and dst.resolve() == src.resolve():
        raise ImportFailure(f"{dst} is the file being imported; write elsewhere", 2)
    name = format or detect_format(src)
    imported = FORMATS[name].read(src, allow_pickle=allow_pickle)
    rows = write_recording(imported, src.resolve(), dst, overwrite=overwrite)
    return ImportResult(src, dst, name, len(imported.frames), rows, imported.sample_rate_hz,
                        imported.exact, tuple(imported.notes), dict(imported.nominal))


def cmd_import(args: argparse.Namespace) -> int:
    """The ``sonobridge import`` command: 0 done, 1 bad content, 2 argument mistake."""
    try:
        import h5py  # noqa: F401
    except ImportError:
        print("error: importing needs h5py: pip install 'sonobridge[hdf5]'", file=sys.stderr)
        return 2
    try:
        result = import_file(args.file, args.output, format=args.format,
                             allow_pickle=args.allow_pickle, overwrite=args.force)
    except ImportFailure as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except MemoryError:
        print(f"error: {args.file} needs more memory than this machine has", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return 1
    print(result.text())
    return 0


def _one_line(text: str) -> str:
    return " ".join(text.split())
