"""Export a recording as one DICOM Ultrasound Multi-frame Image (``sonobridge export --dicom``).

The cine loop holds the B-mode pictures PNG export draws (:func:`~.export.iter_frame_images`:
the same chain, scan converter and damaged-row handling), grey 8-bit MONOCHROME2, written with
plain pydicom (the ``formats`` extra). When the frames carry ensembles (``ensemble_size`` >= 2)
the colour flow is drawn over them, as the viewer shows it (``sonobridge.dsp``: regression
wall filter, Loupas estimate, power threshold, scan-converted onto the B-mode grid), and the
frames are 8-bit RGB. The Sequence of Ultrasound Regions carries the scan converter's pixel
size in cm, so a viewer's calipers measure real distances (a second region, same calibration,
marks the colour flow). Left out, and said in docs/formats.md: recordings whose frames are
not scan-converted (a fixed single-element beam, such as a pic0rick's or an Open Echo's).
"""

from __future__ import annotations

import argparse
import datetime
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from sonobridge.protocol import SweepKind

from .export import DSP_INPUT_FORMATS, ExportError, damaged_rows, fill_positions, iter_frame_images
from .formats import open_for
from .hdf5_reader import Recording
from .hdf5_schema import BadRow

#: Ultrasound Multi-frame Image Storage
US_MULTIFRAME_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.3.1"
#: (0018,1063) Frame Time: what the Frame Increment Pointer points at
_FRAME_TIME_TAG = 0x00181063
#: Physical Units code 3 = cm; Region Spatial Format 1 = 2D; Region Data Type 1 = tissue,
#: 2 = colour flow
_UNITS_CM, _SPATIAL_2D, _DATA_TISSUE, _DATA_COLOR_FLOW = 3, 1, 1, 2
#: the viewer's colour-flow defaults: power below this (dB re full scale²) is not coloured,
#: a first-order regression wall filter, averaging over 9 samples in depth
FLOW_THRESHOLD_DB = -24.0
WALL_FILTER_ORDER = 1
_FLOW_AVERAGE = (1, 9)
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
    #: the frames are RGB with the colour flow drawn over the B-mode
    color_flow: bool = False


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
        skip = None if keep_damaged else bad
        flow = _Flow(rec, center_freq_hz, skip) if _Flow.wanted(rec) else None
        images: list[_Picture] = []
        for fr in iter_frame_images(rec, size=size, dynamic_range_db=dynamic_range_db,
                                    center_freq_hz=center_freq_hz, skip=skip, one_grid=True):
            if fr.number >= stop:
                break
            if fr.number >= start:
                picture = _Picture(fr.segment, fr.frame_index, fr.extent_m, fr.image.shape)
                image = fr.image if flow is None else flow.paint(picture, fr.image)
                pixels.write(np.ascontiguousarray(image).tobytes())  # uint8, as PNGs
                images.append(picture)
        spacing = _pixel_spacing_cm(images, path, rec)
        if pixels.tell() >= _MAX_PIXEL_BYTES:
            raise RequestError(f"{len(images)} frames of {images[0].shape[1]}x"
                               f"{images[0].shape[0]} are more than one DICOM image holds "
                               "(4 GiB); export fewer with --frames, or a smaller --size")
        frame_time_ms = _frame_time_ms(rec, images)
        ds = _dataset(rec, images, spacing, frame_time_ms, patient_name, patient_id,
                      center_freq_hz, color=flow is not None)
        pixels.seek(0)
        ds.add_new(0x7FE00010, "OB", pixels)  # Pixel Data, 8-bit frames (RGB: by pixel)
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
                       (spacing[0], spacing[1]), uid, in_file, keep_damaged, flow is not None)


class _Flow:
    """Colour flow of each exported frame, from its ensembles, drawn over its B-mode picture
    on the same pixel grid (frames without ensembles stay grey, as RGB)."""

    @staticmethod
    def wanted(rec: Recording) -> bool:
        """Whether any segment's sweep fires ensembles that colour flow can be made of."""
        return any(int(seg.attrs.get("ensemble_size", 1)) >= 2
                   and int(seg.attrs.get("lines_per_frame", 1)) >= 2
                   and int(seg.attrs.get("sweep_kind", SweepKind.FIXED)) != SweepKind.FIXED
                   for seg in rec.segments)

    def __init__(self, rec: Recording, center_freq_hz: float | None,
                 skip: dict[str, list[BadRow]] | None) -> None:
        self.rec = rec
        self.center_freq_hz = center_freq_hz
        self.skip = skip or {}
        self._segments = {seg.name: seg for seg in rec.segments}
        self._runs: dict[str, dict[int, tuple[int, int]]] = {}
        self._chains: dict[str, Any] = {}
        self._converter: tuple[bytes, Any] | None = None

    def paint(self, picture: _Picture, grey: np.ndarray) -> np.ndarray:
        """RGB ``(h, w, 3)``: ``grey`` with the frame's colour flow blended in."""
        from sonobridge.dsp.flow_overlay import flow_over_bmode

        rgba = self._rgba(picture)
        if rgba is None:
            return np.repeat(grey[..., None], 3, axis=-1)
        return flow_over_bmode(grey, rgba)

    def _f0(self, seg: Any) -> float:
        """The centre frequency B-mode export uses for this segment."""
        info = self.rec.device_info
        recorded = (seg.config or {}).get("pulse_freq_hz") or \
            (info.transducer_freq_hz if info is not None else 0)
        return float(self.center_freq_hz or recorded or 5e6)

    def _chain(self, seg: Any) -> Any:
        from sonobridge.dsp import Chain, ChainConfig
        from sonobridge.protocol import SampleFormat

        chain = self._chains.get(seg.name)
        if chain is None:
            a = seg.attrs
            fmt = int(a["sample_format"])
            bits = int(a["adc_bits"]) if fmt in (SampleFormat.I16, SampleFormat.U16_OB) else None
            fs = float(a["sample_rate_hz"])
            chain = self._chains[seg.name] = Chain(ChainConfig(
                sample_rate_hz=fs, center_freq_hz=self._f0(seg),
                start_delay_s=int(a["start_delay_samples"]) / fs,
                input_format=DSP_INPUT_FORMATS[fmt],
                adc_bits=bits if bits is None or bits >= 2 else None))
        return chain

    def _rgba(self, picture: _Picture) -> np.ndarray | None:
        """The frame's colour flow as RGBA on the picture's grid, or None when it has none."""
        from sonobridge.dsp import ScanConverter, color_flow, ensemble_iq, nyquist_velocity_m_s
        from sonobridge.dsp.flow_colormap import flow_rgba

        seg = self._segments[picture.segment]
        a = seg.attrs
        n_lines, ens = int(a["lines_per_frame"]), int(a["ensemble_size"])
        kind = int(a["sweep_kind"])
        if picture.extent_m is None or ens < 2 or n_lines < 2 or kind == SweepKind.FIXED:
            return None
        runs = self._runs.get(seg.name)
        if runs is None:
            runs = self._runs[seg.name] = {fi: (s, e) for fi, s, e in seg.frame_runs()}
        start, end = runs[picture.frame_index]
        meta = seg.lines[start:end]
        rows = seg.rows(start, end)
        ok = (meta["line_index"] < n_lines) & (meta["ensemble_index"] < ens)
        skipped = [b.row - start for b in self.skip.get(seg.name, ()) if start <= b.row < end]
        ok[skipped] = False
        line = meta["line_index"][ok].astype(np.int64)
        firing = meta["ensemble_index"][ok].astype(np.int64)
        ensembles = np.full((n_lines, ens, seg.n_samples), int(a["zero_level"]),
                            dtype=seg.samples.dtype)
        ensembles[line, firing] = rows[ok]
        have = np.zeros((n_lines, ens), bool)
        have[line, firing] = True
        # the beam positions as B-mode export takes them: each line's first firing
        pos = np.full(n_lines, np.nan)
        first = ok & (meta["ensemble_index"] == 0)
        pos[meta["line_index"][first].astype(np.int64)] = meta["beam_position"][first]
        positions = fill_positions(pos, seg.config)
        if positions is None or not have.all(axis=1).any():
            return None
        prf = self._prf_hz(seg, meta)
        if prf is None:
            return None
        iq, res = ensemble_iq(self._chain(seg), ensembles)
        est = color_flow(iq, prf, demod_freq_hz=res.demod_freq_hz,
                         sample_rate_out_hz=res.sample_rate_out_hz,
                         wall_filter_order=min(WALL_FILTER_ORDER, ens - 1),
                         average=_FLOW_AVERAGE)
        velocity = est.velocity_m_s.astype(np.float32)
        power = est.power_db().astype(np.float32)
        incomplete = ~have.all(axis=1)  # a line that lost a firing has no flow estimate
        velocity[incomplete] = np.nan
        power[incomplete] = -np.inf
        p = positions * 1e-6  # µrad → rad, µm → m
        key = p.tobytes() + np.asarray(picture.extent_m).tobytes() + res.depth_m.tobytes()
        if self._converter is None or self._converter[0] != key:
            try:
                conv = ScanConverter(p, res.depth_m,
                                     "sector" if kind == SweepKind.SECTOR else "linear",
                                     out_shape=picture.shape, extent_m=picture.extent_m)
            except ValueError:
                return None
            self._converter = (key, conv)
        conv = self._converter[1]
        # convert() reuses one output buffer per dtype: copy the first result
        v = conv.convert(velocity).copy()
        pw = conv.convert(power).copy()
        pw[~conv.fov_mask] = -np.inf  # outside the sector: never coloured
        return flow_rgba(v, nyquist_velocity_m_s(prf, self._f0(seg)), power=pw,
                         power_threshold=FLOW_THRESHOLD_DB)

    @staticmethod
    def _prf_hz(seg: Any, meta: np.ndarray) -> float | None:
        """The configured PRF, else from the firings' timestamps."""
        prf = (seg.config or {}).get("prf_hz")
        if prf:
            return float(prf)
        dt = np.diff(np.sort(meta["timestamp_us"].astype(np.float64)))
        dt = dt[dt > 0]
        return 1e6 / float(np.median(dt)) if dt.size else None


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
             center_freq_hz: float | None, color: bool = False) -> Any:
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
    # Image Pixel, US Image: 8-bit grey, or 8-bit RGB by pixel with colour flow
    if color:
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = "RGB"
        ds.PlanarConfiguration = 0
    else:
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
    regions = [_region(rec, images[0], spacing, center_freq_hz)]
    if color:
        # the colour flow covers the same picture, calibrated alike
        flow = _region(rec, images[0], spacing, center_freq_hz)
        flow.RegionDataType = _DATA_COLOR_FLOW
        regions.append(flow)
    ds.SequenceOfUltrasoundRegions = Sequence(regions)
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
    from .commands import _err, run_export

    try:
        import pydicom  # noqa: F401
    except ImportError:
        _err("DICOM export needs pydicom: pip install 'sonobridge[formats]'")
        return 2
    width, height = args.size
    return run_export(
        args,
        lambda: export_dicom(
            args.file, args.dicom, frames=args.frames, patient_name=args.patient_name,
            patient_id=args.patient_id, size=(height, width),
            dynamic_range_db=args.dynamic_range,
            center_freq_hz=args.center_freq_mhz and args.center_freq_mhz * 1e6,
            overwrite=args.force, keep_damaged=args.keep_damaged),
        lambda res: (f"wrote {res.path} ({res.frames} "
                     f"{'RGB colour-flow ' if res.color_flow else ''}frames of {width}x{height}, "
                     f"{res.pixel_spacing_cm[1] * 10:.3g} x {res.pixel_spacing_cm[0] * 10:.3g} "
                     f"mm per pixel, frame time {res.frame_time_ms:.4g} ms, "
                     f"{res.bytes / 1e6:.1f} MB)"),
        "drawn as missing lines", refused=(RequestError,))
