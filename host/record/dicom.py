"""Export a recording as one DICOM Ultrasound Multi-frame Image (``sonobridge export --dicom``).

The cine loop holds the B-mode pictures PNG export draws (:func:`~.export.iter_frame_images`:
the same chain, scan converter and damaged-row handling), grey 8-bit MONOCHROME2, written with
plain pydicom (the ``formats`` extra). The Sequence of Ultrasound Regions carries the scan
converter's pixel size in cm, so a viewer's calipers measure real distances. Left out, and
said in docs/formats.md: colour Doppler overlays and recordings whose frames are not
scan-converted (a fixed single-element beam, such as a pic0rick's or an Open Echo's).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from sonobridge.protocol import SweepKind

from .export import ExportError, damaged_rows, iter_frame_images
from .formats import open_for
from .hdf5_reader import Recording
from .hdf5_schema import BadRow

#: Ultrasound Multi-frame Image Storage
US_MULTIFRAME_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.3.1"
#: (0018,1063) Frame Time: what the Frame Increment Pointer points at
_FRAME_TIME_TAG = 0x00181063
#: Physical Units code 3 = cm; Region Spatial Format 1 = 2D; Region Data Type 1 = tissue
_UNITS_CM, _SPATIAL_2D, _DATA_TISSUE = 3, 1, 1
#: pixel extents within this relative spread share one calibration
_SAME_GEOMETRY = 1e-3
#: DICOM's Rows and Columns are 16-bit
_MAX_SIDE = 65535
#: Pixel Data's length is a 32-bit field (its largest even value)
_MAX_PIXEL_BYTES = 0xFFFF_FFFE


class _Picture(NamedTuple):
    """An exported frame, its picture spooled to disk: where it came from, its geometry."""

    segment: str
    frame_index: int
    extent_m: tuple[float, float, float, float] | None
    shape: tuple[int, int]


class RequestError(ExportError):
    """The request cannot be met as given: ``--frames`` beyond the recording, a patient's name
    or ID DICOM cannot hold."""


@dataclass
class DicomResult:
    """What a DICOM export wrote, and the damaged rows it found."""

    path: str
    frames: int
    bytes: int
    #: the cine loop's frame interval in ms
    frame_time_ms: float
    #: (rows, columns) cm per pixel, as written to the region calibration
    pixel_spacing_cm: tuple[float, float]
    sop_instance_uid: str
    damaged: list[BadRow] = field(default_factory=list)
    kept_damaged: bool = False


def export_dicom(path: str | os.PathLike, out_path: str | os.PathLike, *,
                 frames: slice | None = None, patient_name: str = "", patient_id: str = "",
                 size: tuple[int, int] = (512, 512), dynamic_range_db: float = 50.0,
                 center_freq_hz: float | None = None, overwrite: bool = False,
                 keep_damaged: bool = False) -> DicomResult:
    """Write frames ``frames`` (all by default) of the recording at ``path`` as one Ultrasound
    Multi-frame Image; ``size`` is ``(height, width)`` as for PNG export."""
    from pydicom.uid import generate_uid

    _check_patient(patient_name, "PN", "--patient-name")
    _check_patient(patient_id, "LO", "--patient-id")
    out = Path(out_path)
    # checked before any work: a directory cannot be replaced by the finished file
    if out.is_dir():
        raise ExportError(f"{out} is a directory; give a file name for the DICOM file")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; use --force to overwrite it")
    tmp = out.with_name(out.name + ".partial")
    # the pictures go to an anonymous file beside the output as they are drawn, so a long
    # recording never has to fit in memory (pydicom copies Pixel Data from it when saving)
    with open_for(path, "export") as rec, \
            tempfile.TemporaryFile(dir=out.parent if out.parent.is_dir() else None) as pixels:
        total = sum(len(seg.frame_runs()) for seg in rec.segments)
        start, stop = _frame_bounds(frames, total, path)
        bad = damaged_rows(rec)
        images: list[_Picture] = []
        for fr in iter_frame_images(rec, size=size, dynamic_range_db=dynamic_range_db,
                                    center_freq_hz=center_freq_hz,
                                    skip=None if keep_damaged else bad, one_grid=True):
            if fr.number >= stop:
                break
            if fr.number >= start:
                pixels.write(np.ascontiguousarray(fr.image).tobytes())  # uint8, as PNGs
                images.append(_Picture(fr.segment, fr.frame_index, fr.extent_m, fr.image.shape))
        spacing = _pixel_spacing_cm(images, path, rec)
        if pixels.tell() >= _MAX_PIXEL_BYTES:
            raise RequestError(f"{len(images)} frames of {images[0].shape[1]}x"
                               f"{images[0].shape[0]} are more than one DICOM image holds "
                               "(4 GiB); export fewer with --frames, or a smaller --size")
        frame_time_ms = _frame_time_ms(rec, images)
        ds = _dataset(rec, images, spacing, frame_time_ms, patient_name, patient_id,
                      center_freq_hz)
        pixels.seek(0)
        ds.add_new(0x7FE00010, "OB", pixels)  # Pixel Data, 8-bit frames back to back
        uid = generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
        try:
            ds.save_as(tmp, enforce_file_format=True)
            os.replace(tmp, out)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a half-written DICOM file (disk full) is no image
            raise
    # only the damaged rows of the exported frames concern this file
    chosen = {(fr.segment, fr.frame_index) for fr in images}
    in_file = [b for rows in bad.values() for b in rows if (b.segment, b.frame_index) in chosen]
    return DicomResult(str(out), len(images), out.stat().st_size, frame_time_ms,
                       (spacing[0], spacing[1]), uid, in_file, keep_damaged)


def _check_patient(value: str, vr: str, option: str) -> None:
    """Refuse a patient's name or ID the file could not hold as one valid value."""
    from pydicom import config
    from pydicom.valuerep import validate_value

    try:
        if "\\" in value:  # DICOM's value separator: it would make two values of one
            raise ValueError("a backslash separates values in DICOM")
        validate_value(vr, value, config.RAISE)
    except ValueError as exc:
        raise RequestError(f"{option} {value!r} cannot be stored in DICOM: {exc}") from None


def _frame_bounds(frames: slice | None, total: int, path: str | os.PathLike
                  ) -> tuple[int, int]:
    """``(start, stop)`` of the selected frames; a selection past the end is refused (a typo
    should not quietly give a shorter loop)."""
    if total == 0:
        raise ExportError(f"{path} holds no frames: there is nothing to export")
    if frames is None:
        return 0, total
    start = frames.start or 0
    stop = total if frames.stop is None else frames.stop
    if start >= total or stop > total or stop <= start:
        raise RequestError(f"--frames {start}:{'' if frames.stop is None else frames.stop} "
                           f"is beyond {path}, which has {total} frames (0 to {total - 1})")
    return start, stop


def _pixel_spacing_cm(images: list[_Picture], path: str | os.PathLike, rec: Recording
                      ) -> tuple[float, float, float, float]:
    """``(dz, dx, x_min, z_min)`` in cm, shared by every frame: frames without a scan
    converter's geometry, or whose geometry differs, cannot be calibrated as one region."""
    if any(fr.extent_m is None for fr in images):
        kinds = {int(seg.attrs.get("sweep_kind", -1)) for seg in rec.segments}
        what = ("a fixed single-element beam (M-mode data, not a 2D picture)"
                if SweepKind.FIXED in kinds else "a sweep without usable line positions")
        raise ExportError(f"{path}: its frames are not scan-converted pictures ({what}), so "
                          "they cannot carry a calibrated 2D ultrasound region; export them "
                          "with --png or --npz")
    extents = np.array([fr.extent_m for fr in images], float)
    span = np.ptp(extents, axis=0)
    size = max(extents[0, 1] - extents[0, 0], extents[0, 3] - extents[0, 2])
    shapes = {fr.shape for fr in images}
    if len(shapes) > 1 or (span > _SAME_GEOMETRY * size).any():
        raise ExportError(f"{path}: the frames' field of view changes within the selection "
                          "(a new configuration; one DICOM region calibrates all frames): "
                          "export one configuration's frames with --frames")
    height, width = images[0].shape
    if max(height, width) > _MAX_SIDE:
        raise ExportError(f"a picture of {width}x{height} is too large for DICOM")
    x_min, x_max, z_min, z_max = (v * 100.0 for v in extents[0])  # m → cm
    return (z_max - z_min) / height, (x_max - x_min) / width, x_min, z_min


def _frame_time_ms(rec: Recording, images: list[_Picture]) -> float:
    """The median interval between the selected frames' first firings (the device clock), or
    the configured sweep time when there is only one frame."""
    starts = {}
    for seg in rec.segments:
        stamps = seg.lines["timestamp_us"]
        for fi, a, b in seg.frame_runs():
            starts[(seg.name, fi)] = float(stamps[a:b].min())
    t = np.array([starts[(fr.segment, fr.frame_index)] for fr in images])
    steps = np.diff(t)
    steps = steps[steps > 0]  # a new segment or a device reset restarts the clock
    if steps.size:
        return float(np.median(steps)) / 1000.0
    config = rec.config or {}
    prf = config.get("prf_hz")
    lines = config.get("lines_per_frame", 1) * config.get("ensemble_size", 1)
    return 1000.0 * lines / prf if prf else 0.0


def _recorded_at(rec: Recording) -> datetime.datetime:
    """When the recording started (UTC; now if the file does not say)."""
    text = rec.attrs.get("created_utc")
    try:
        when = datetime.datetime.fromisoformat(str(text))
    except ValueError:
        return datetime.datetime.now(datetime.timezone.utc)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.astimezone(datetime.timezone.utc)


def _dataset(rec: Recording, images: list[_Picture], spacing: tuple[float, float, float, float],
             frame_time_ms: float, patient_name: str, patient_id: str,
             center_freq_hz: float | None) -> Any:
    """The DICOM data set (everything but Pixel Data and the SOP Instance UID)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    import sonobridge

    info = rec.device_info
    when = _recorded_at(rec)
    date, time = when.strftime("%Y%m%d"), when.strftime("%H%M%S.%f")
    now = datetime.datetime.now(datetime.timezone.utc)
    height, width = images[0].shape

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = US_MULTIFRAME_SOP_CLASS
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    # SOP Common
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: a patient's name may need it
    ds.SOPClassUID = US_MULTIFRAME_SOP_CLASS
    ds.InstanceCreationDate, ds.InstanceCreationTime = now.strftime("%Y%m%d"), \
        now.strftime("%H%M%S")
    ds.TimezoneOffsetFromUTC = "+0000"  # every date and time here is UTC
    # Patient: anonymous unless given, never invented
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    # General Study, General Series
    ds.StudyInstanceUID = generate_uid()
    ds.StudyDate, ds.StudyTime = date, time
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.Modality = "US"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 1
    ds.Laterality = ""  # type 2C: dciodvfy asks for it; which side is not known
    ds.SeriesDate, ds.SeriesTime = date, time
    ds.SeriesDescription = f"sonobridge recording {rec.path.name}"[:64]
    # General Equipment: the board as it described itself in DEVICE_INFO
    board = (info.board_name if info is not None else "") or "unknown board"
    ds.Manufacturer = board
    ds.ManufacturerModelName = board
    if info is not None:
        ds.DeviceSerialNumber = f"{info.board_id:#x}"
    firmware = "firmware unknown" if info is None else \
        f"firmware {info.fw_major}.{info.fw_minor}.{info.fw_patch}"
    ds.SoftwareVersions = [firmware, f"sonobridge {sonobridge.__version__}"]
    # General Image
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.ContentDate, ds.ContentTime = date, time
    ds.AcquisitionDateTime = f"{date}{time}+0000"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    # Image Pixel, US Image: 8-bit grey
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = height, width
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelRepresentation = 0
    # Multi-frame, Cine
    ds.NumberOfFrames = len(images)
    ds.FrameIncrementPointer = _FRAME_TIME_TAG
    ds.FrameTime = f"{frame_time_ms:.6g}"[:16]
    if frame_time_ms > 0:
        ds.RecommendedDisplayFrameRate = max(1, round(1000.0 / frame_time_ms))
        ds.CineRate = ds.RecommendedDisplayFrameRate
    ds.SequenceOfUltrasoundRegions = Sequence([_region(rec, images[0], spacing,
                                                       center_freq_hz)])
    return ds


def _region(rec: Recording, first: _Picture, spacing: tuple[float, float, float, float],
            center_freq_hz: float | None) -> Any:
    """The one calibrated region: the whole picture, tissue, 2D, cm per pixel."""
    from pydicom.dataset import Dataset

    dz, dx, x_min, z_min = spacing
    height, width = first.shape
    r = Dataset()
    r.RegionSpatialFormat = _SPATIAL_2D
    r.RegionDataType = _DATA_TISSUE
    r.RegionFlags = 0
    r.RegionLocationMinX0, r.RegionLocationMinY0 = 0, 0
    r.RegionLocationMaxX1, r.RegionLocationMaxY1 = width - 1, height - 1
    # the reference pixel: the top row's pixel nearest the probe's axis (x = 0), its centre's
    # exact position as the physical value, so depth and lateral readouts are absolute
    col = int(np.clip(round(-x_min / dx - 0.5), 0, width - 1))
    r.ReferencePixelX0, r.ReferencePixelY0 = col, 0
    r.PhysicalUnitsXDirection = r.PhysicalUnitsYDirection = _UNITS_CM
    r.ReferencePixelPhysicalValueX = x_min + (col + 0.5) * dx
    r.ReferencePixelPhysicalValueY = z_min + 0.5 * dz
    r.PhysicalDeltaX, r.PhysicalDeltaY = dx, dz
    config = rec.segments[0].config or {}
    f0 = center_freq_hz or config.get("pulse_freq_hz")
    if f0:
        r.TransducerFrequency = round(f0 / 1000.0)  # in kHz
    if config.get("prf_hz"):
        r.PulseRepetitionFrequency = round(config["prf_hz"])
    return r


def cmd_export_dicom(args: argparse.Namespace) -> int:
    """``sonobridge export FILE --dicom OUT``: one-line errors, exit 2 for a request that
    cannot be met as given, 1 for a recording that cannot be exported."""
    from .commands import _damaged_rows_message, _err, _recording_error
    from .hdf5_schema import RecordingError

    try:
        import pydicom  # noqa: F401
    except ImportError:
        _err("DICOM export needs pydicom: pip install 'sonobridge[formats]'")
        return 2
    width, height = args.size
    try:
        res = export_dicom(
            args.file, args.dicom, frames=args.frames, patient_name=args.patient_name,
            patient_id=args.patient_id, size=(height, width),
            dynamic_range_db=args.dynamic_range,
            center_freq_hz=args.center_freq_mhz and args.center_freq_mhz * 1e6,
            overwrite=args.force, keep_damaged=args.keep_damaged)
    except (FileExistsError, RequestError) as exc:
        _err(str(exc))
        return 2
    except RecordingError as exc:
        _recording_error(exc)
        return 1
    except (ExportError, FileNotFoundError) as exc:
        _err(str(exc))
        return 1
    except OSError as exc:  # the disk is full or the folder went away: nothing half-made kept
        _err(f"cannot write the export: {exc}")
        return 1
    print(f"wrote {res.path} ({res.frames} frames of {width}x{height}, "
          f"{res.pixel_spacing_cm[1] * 10:.3g} x {res.pixel_spacing_cm[0] * 10:.3g} mm per "
          f"pixel, frame time {res.frame_time_ms:.4g} ms, {res.bytes / 1e6:.1f} MB)")
    if not res.damaged:
        return 0
    if res.kept_damaged:
        print("warning: " + _damaged_rows_message(
            args.file, res.damaged, f"kept in {res.path} as stored (--keep-damaged)"),
            file=sys.stderr)
        return 0
    _err(_damaged_rows_message(
        args.file, res.damaged, f"drawn as missing lines in {res.path}; use --keep-damaged "
        "to export them anyway"))
    return 1
