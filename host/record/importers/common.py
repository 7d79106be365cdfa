"""What every importer shares: the error it raises, the limits on what a file may claim, the
imported data before it is written, code recovery from normalised floats, and the writer.

An importer reads the whole source into an :class:`Imported` (bounded by :data:`MAX_BYTES`)
before anything is written, and the recording is written to a temporary file that replaces the
output only once it is complete: a malformed source never leaves a half-written output.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sonobridge.protocol import DeviceInfo, EchoLine, SampleFormat, SweepKind

#: the most sample bytes an import keeps in memory (what any one file may claim in all)
MAX_BYTES = 512 << 20
#: the most samples one line may claim
MAX_SAMPLES_PER_LINE = 1 << 20
#: the most lines one acquisition (frame) may claim: the line index is 16 bits on the wire
MAX_LINES_PER_FRAME = 4096
#: the most acquisitions (groups, frames) a file may claim
MAX_ACQUISITIONS = 1_000_000
#: what the provenance attributes keep of a file's own per-acquisition metadata, at most
MAX_METADATA_ITEMS = 10_000
#: a code is "recovered" when the de-normalised float is this close to an integer
CODE_TOLERANCE = 1e-6


class ImportFailure(ValueError):
    """A file cannot be imported; the text is one line for people.

    ``exit_code`` is 1 for a file whose content is wrong (malformed, hostile, unsupported) and
    2 for an argument mistake (unknown format name, existing output, missing input).
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class ImportedFrame:
    """One acquisition: ``codes`` ``(n_lines, n_samples)`` in the output's sample dtype."""

    codes: np.ndarray
    #: µs since the file's first acquisition (0 where unknown, see ``Imported.nominal``)
    timestamp_us: int = 0
    #: acquisitions with different settings get different configuration ids (segments)
    config_id: int = 0


@dataclass
class Imported:
    """A source file read into memory, ready to be written as a recording."""

    format: str
    frames: list[ImportedFrame]
    sample_rate_hz: int
    sample_format: int
    adc_bits: int
    info: DeviceInfo
    #: DEVICE_INFO field → why its value is an assumption (``BoardOrigin.nominal_fields``)
    nominal_fields: dict[str, str]
    #: anything else guessed (gain, timing, …) → why; root attribute ``import_nominal``
    nominal: dict[str, str] = field(default_factory=dict)
    #: sentences for people: what was corrected or could not be recovered exactly
    notes: list[str] = field(default_factory=list)
    #: the file's own metadata, as plain JSON-able values; root attribute ``import_metadata``
    metadata: dict[str, Any] = field(default_factory=dict)
    #: False when the samples are not exactly the board's codes (rounded, clipped, rescaled)
    exact: bool = True

    @property
    def n_lines(self) -> int:
        """Lines (rows) in all frames."""
        return sum(int(f.codes.shape[0]) for f in self.frames)


def fail(message: str) -> ImportFailure:
    """An ImportFailure for bad content (exit code 1)."""
    return ImportFailure(message, 1)


def check_count(what: str, n: int, limit: int) -> int:
    """``n`` if it is within 1..limit, else ImportFailure (the file claims too much)."""
    if not 1 <= n <= limit:
        raise fail(f"{what} is {n}; an import accepts 1 to {limit}")
    return n


def check_bytes(what: str, n_items: int, itemsize: int, budget: int = MAX_BYTES) -> None:
    """Refuse an allocation of ``n_items`` × ``itemsize`` bytes beyond ``budget``."""
    if n_items < 0 or n_items * itemsize > budget:
        raise fail(f"{what} claims {n_items * itemsize / 1e6:.0f} MB; an import holds at most "
                   f"{budget / 1e6:.0f} MB")


def recover_codes(signal: np.ndarray, *, what: str, zero_level: int, scales: tuple[int, ...],
                  adc_bits: int, out: Imported) -> np.ndarray:
    """Integer ADC codes from samples normalised as ``(code - zero_level) / scale``.

    The first of ``scales`` that gives whole codes within the ADC's range wins (a note says
    which, when it is not the first). If none does, the nearest codes of the first scale are
    kept (clipped to the range), ``out.exact`` is set False and a note says how far off they
    were. Non-finite samples are refused.
    """
    with np.errstate(all="ignore"):  # a damaged file's odd values are reported below instead
        x = np.asarray(signal, dtype=np.float64)
    if not np.isfinite(x).all():
        raise fail(f"{what} holds NaN or infinite samples: they cannot be ADC codes")
    top = (1 << adc_bits) - 1
    for i, scale in enumerate(scales):
        codes = x * scale + zero_level
        rounded = np.rint(codes)
        if (np.abs(codes - rounded).max(initial=0.0) <= CODE_TOLERANCE
                and rounded.min(initial=0) >= 0 and rounded.max(initial=0) <= top):
            if i:
                note = (f"{what} is normalised as (code - {zero_level}) / {scale}, not / "
                        f"{scales[0]}; codes recovered exactly with that scale")
                if note not in out.notes:
                    out.notes.append(note)
            return rounded.astype(np.uint16)
    codes = x * scales[0] + zero_level
    rounded = np.rint(codes)
    off = float(np.abs(codes - rounded).max(initial=0.0))
    clipped = int(np.count_nonzero((rounded < 0) | (rounded > top)))
    out.exact = False
    out.notes.append(f"{what} is not exactly (code - {zero_level}) / {scales[0]} of {adc_bits}-bit "
                     f"codes: rounded to the nearest code (up to {off:.3g} codes off)"
                     + (f", {clipped} samples clipped to 0..{top}" if clipped else ""))
    return np.clip(rounded, 0, top).astype(np.uint16)


def u16_ob(adc_bits: int) -> tuple[int, int]:
    """``(sample_format, adc_bits)`` for offset-binary codes of ``adc_bits`` in uint16."""
    return int(SampleFormat.U16_OB), adc_bits


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_recording(imported: Imported, source: Path, out: Path, *,
                    overwrite: bool) -> int:
    """Write ``imported`` as a sonobridge recording at ``out``; returns the rows written.

    The recording goes to a temporary file beside ``out`` first and replaces it only when
    complete, so a failure leaves no output (and an existing one untouched).
    """
    from sonobridge.device.frames import FrameAssembler

    from ..hdf5_writer import DatasetWriter
    from ..meta import BoardOrigin, ConfigTracker

    if out.exists() and not overwrite:
        raise ImportFailure(f"{out} exists; use --force to overwrite it", 2)
    tmp = out.with_name(f".{out.name}.importing-{os.getpid()}")
    origin = BoardOrigin(f"import:{imported.format}", dict(imported.nominal_fields))
    attrs = {
        "port": f"file:{source}",
        "imported_from": str(source),
        "import_format": imported.format,
        "import_source_sha256": sha256_of(source),
        "import_source_bytes": source.stat().st_size,
        "import_exact": bool(imported.exact),
        "import_nominal": dict(imported.nominal),
        "import_notes": list(imported.notes),
        "import_metadata": imported.metadata,
    }
    writer = DatasetWriter(tmp, overwrite=True, block_when_full=True, attrs=attrs)
    try:
        writer.set_device_info(imported.info, origin)
        assembler = FrameAssembler(writer.add_frame)
        tracker = ConfigTracker(lambda _line, _ns: None)
        rows = 0
        for fi, frame in enumerate(imported.frames):
            n_lines = int(frame.codes.shape[0])
            host_ns = int(frame.timestamp_us) * 1000
            for li in range(n_lines):
                line = EchoLine(frame.codes[li], imported.sample_rate_hz, frame_index=fi,
                                line_index=li, lines_per_frame=n_lines,
                                sweep_kind=SweepKind.FIXED, timestamp_us=frame.timestamp_us,
                                config_id=frame.config_id, adc_bits=imported.adc_bits,
                                sample_format=imported.sample_format)
                writer.add_line(line, host_ns, tracker.check(line, host_ns))
                assembler.add_line(line, host_ns)
                rows += 1
        assembler.flush()
        stats = writer.close()
        if stats.error:
            raise fail(f"writing {out} failed: {stats.error}")
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(Exception):
            writer.close()
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return rows
