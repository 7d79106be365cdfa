"""``sonobridge export run.h5 --dicom out.dcm``: one Ultrasound Multi-frame Image of a
simulated sector run, read back with pydicom, its calipers checked against the scan
converter, and validated by dicom3tools' ``dciodvfy``."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pydicom
import pytest
from pydicom.uid import UID

from sonobridge.cli import main
from sonobridge.dsp import ScanConverter
from sonobridge.dsp.flow_overlay import flow_over_bmode
from sonobridge.protocol import SampleFormat
from sonobridge.record import open_recording
from sonobridge.record.export import iter_frame_images
from sonobridge.record.hdf5_schema import row_offset
from sonobridge.sim import load_phantom

from .record_fixtures import (
    SAMPLES,
    flip_byte,
    record_sector_run,
    record_session,
    sim_drained,
    synthetic_lines,
    write_recording,
)

N_FRAMES = 8
LINES = 16
SOUND_SPEED_M_S = 1540.0
US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, Path]:
    """A short sector run of the simulated board (HDF5 and raw capture)."""
    return record_sector_run(tmp_path_factory.mktemp("dicom"), N_FRAMES, LINES, SAMPLES)


@pytest.fixture(scope="module")
def exported(run) -> Path:
    """``sonobridge export run.h5 --dicom run.dcm`` with the defaults."""
    h5, _ = run
    out = h5.with_suffix(".dcm")
    assert main(["export", str(h5), "--dicom", str(out)]) == 0
    return out


def test_the_file_is_a_us_multiframe_cine_of_every_frame(run, exported):
    h5, _ = run
    ds = pydicom.dcmread(exported)
    assert ds.SOPClassUID == US_MULTIFRAME == ds.file_meta.MediaStorageSOPClassUID
    assert ds.Modality == "US"
    assert int(ds.NumberOfFrames) == N_FRAMES
    assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.BitsAllocated == 8
    assert ds.FrameIncrementPointer == 0x00181063
    # 16 lines at 4000 Hz PRF: a sweep every 4 ms
    assert float(ds.FrameTime) == pytest.approx(LINES / 4000 * 1000, rel=0.01)
    with open_recording(h5) as rec:
        info = rec.device_info
        expected = [fr.image for fr in iter_frame_images(rec)]
    assert ds.Manufacturer == info.board_name == ds.ManufacturerModelName
    assert f"firmware {info.fw_major}.{info.fw_minor}.{info.fw_patch}" in ds.SoftwareVersions
    pixels = ds.pixel_array
    assert pixels.shape == (N_FRAMES, 512, 512)
    np.testing.assert_array_equal(pixels, np.stack(expected))  # the PNG export's pictures


def test_patient_is_anonymous_by_default_and_uids_are_valid_and_distinct(exported):
    ds = pydicom.dcmread(exported)
    assert str(ds.PatientName) == "" and ds.PatientID == ""
    uids = [ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID]
    assert all(UID(u).is_valid for u in uids)
    assert len(set(uids)) == 3
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
    assert len(ds.StudyDate) == 8 and ds.StudyTime  # from the recording's start


def test_the_region_calibrates_the_scan_converters_pixels(run, exported):
    h5, _ = run
    ds = pydicom.dcmread(exported)
    (region,) = ds.SequenceOfUltrasoundRegions
    assert region.RegionSpatialFormat == 1 and region.RegionDataType == 1
    assert region.PhysicalUnitsXDirection == region.PhysicalUnitsYDirection == 3  # cm
    assert (region.RegionLocationMaxX1, region.RegionLocationMaxY1) == (511, 511)
    # the scan converter built here from the recorded beam positions and sample depths
    with open_recording(h5) as rec:
        seg = rec.segments[0]
        _, start, end = seg.frame_runs()[0]
        positions = np.sort(seg.lines["beam_position"][start:end] * 1e-6)
        fs = seg.attrs["sample_rate_hz"]
    depth_m = SOUND_SPEED_M_S * np.arange(SAMPLES) / fs / 2
    dz_m, dx_m = ScanConverter(positions, depth_m, "sector").pixel_size_m
    assert region.PhysicalDeltaX * 10 == pytest.approx(dx_m * 1000, rel=0.01)  # mm
    assert region.PhysicalDeltaY * 10 == pytest.approx(dz_m * 1000, rel=0.01)


def _dciodvfy_errors(path: Path) -> tuple[list[str], str]:
    """dicom3tools' verdict on ``path``: its Error lines and the whole report."""
    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.fail("dciodvfy is missing: apt-get install dicom3tools")
    proc = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60)
    report = proc.stdout + proc.stderr
    return [line for line in report.splitlines() if line.startswith("Error")], report


def test_dciodvfy_finds_no_error(exported):
    errors, report = _dciodvfy_errors(exported)
    assert not errors, report
    assert "USMultiFrameImage" in report  # it checked the file against the right IOD


def test_a_frame_range_and_a_named_patient(run, tmp_path, capsys):
    h5, _ = run
    out = tmp_path / "part.dcm"
    assert main(["export", str(h5), "--dicom", str(out), "--frames", "2:5",
                 "--patient-name", "Müller^Jürgen", "--patient-id", "P-0042"]) == 0
    ds = pydicom.dcmread(out)
    assert int(ds.NumberOfFrames) == 3
    assert str(ds.PatientName) == "Müller^Jürgen" and ds.PatientID == "P-0042"
    errors, report = _dciodvfy_errors(out)  # UTF-8 names need ISO_IR 192, declared
    assert not errors, report
    with open_recording(h5) as rec:
        expected = [fr.image for fr in iter_frame_images(rec)][2:5]
    np.testing.assert_array_equal(ds.pixel_array, np.stack(expected))
    assert "3 frames" in capsys.readouterr().out


def test_refusals_are_one_line_with_their_exit_codes(run, exported, tmp_path, capsys):
    h5, raw = run
    before = exported.read_bytes()
    assert main(["export", str(h5), "--dicom", str(exported)]) == 2
    assert "--force" in capsys.readouterr().err
    assert exported.read_bytes() == before
    assert main(["export", str(raw), "--dicom", str(tmp_path / "raw.dcm")]) == 2
    assert "convert it first" in capsys.readouterr().err
    for frames in (f"{N_FRAMES}:", f"2:{N_FRAMES + 1}"):
        assert main(["export", str(h5), "--dicom", str(tmp_path / "x.dcm"),
                     "--frames", frames]) == 2
        err = capsys.readouterr().err
        assert f"has {N_FRAMES} frames" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*.dcm*"))  # nothing half-made left behind


def test_a_fixed_beam_recording_is_refused_clearly(tmp_path, capsys):
    lines = synthetic_lines(3, 1, SAMPLES, SampleFormat.I16)
    for line in lines:
        line.sweep_kind = 0  # one fixed beam: no 2D geometry to calibrate
    h5 = tmp_path / "fixed.h5"
    write_recording(h5, [(lines, None)])
    assert main(["export", str(h5), "--dicom", str(tmp_path / "f.dcm")]) == 1
    err = capsys.readouterr().err
    assert "not scan-converted" in err and "--png" in err and "Traceback" not in err
    assert not (tmp_path / "f.dcm").exists()


def test_a_linear_sweep_is_calibrated_by_its_lateral_extent(tmp_path):
    lines = synthetic_lines(2, 8, SAMPLES, SampleFormat.I16)
    for line in lines:
        line.sweep_kind = 2  # linear: beam_position in µm, -1000 to -300 µm
    h5, out = tmp_path / "linear.h5", tmp_path / "linear.dcm"
    write_recording(h5, [(lines, None)])
    assert main(["export", str(h5), "--dicom", str(out), "--size", "256x128"]) == 0
    ds = pydicom.dcmread(out)
    (region,) = ds.SequenceOfUltrasoundRegions
    assert (ds.Rows, ds.Columns) == (128, 256)
    assert region.PhysicalDeltaX == pytest.approx(0.07 / 256, rel=1e-6)  # 0.7 mm in cm
    # the reference pixel's physical value is its centre's lateral position
    assert region.ReferencePixelPhysicalValueX == pytest.approx(
        -0.1 + (region.ReferencePixelX0 + 0.5) * region.PhysicalDeltaX)


def test_a_damaged_row_is_a_missing_line_named_with_exit_1(tmp_path, capsys):
    h5 = tmp_path / "damaged.h5"
    write_recording(h5, [(synthetic_lines(3, 8, SAMPLES), None)])
    with h5py.File(h5, "r") as f:
        offset = row_offset(f["segments/0000/samples"], 9)
    flip_byte(h5, offset + 33, 0x10)  # row 9: frame 1, line 1
    skip, keep = tmp_path / "skip.dcm", tmp_path / "keep.dcm"
    assert main(["export", str(h5), "--dicom", str(skip)]) == 1
    err = capsys.readouterr().err
    assert "row 9 (frame 1, line 1)" in err and "--keep-damaged" in err
    assert main(["export", str(h5), "--dicom", str(keep), "--keep-damaged"]) == 0
    assert "warning:" in capsys.readouterr().err
    a, b = pydicom.dcmread(skip).pixel_array, pydicom.dcmread(keep).pixel_array
    assert (a[1] != b[1]).any() and (a[0] == b[0]).all()  # frame 1 lost a line in one
    # a range without the damaged frame is not concerned by it
    assert main(["export", str(h5), "--dicom", str(tmp_path / "clean.dcm"),
                 "--frames", "2:3"]) == 0


def test_a_patient_field_dicom_cannot_hold_is_refused(run, tmp_path, capsys):
    h5, _ = run
    for option, value in (("--patient-name", "x" * 65), ("--patient-id", "A\\B")):
        assert main(["export", str(h5), "--dicom", str(tmp_path / "p.dcm"), option,
                     value]) == 2
        err = capsys.readouterr().err
        assert option in err and "cannot be stored in DICOM" in err
    assert not (tmp_path / "p.dcm").exists()


def test_a_servos_jitter_keeps_one_grid_for_every_frame(tmp_path):
    lines = synthetic_lines(3, 8, SAMPLES, SampleFormat.I16)
    rng = np.random.default_rng(1)
    for line in lines:  # actual angles off by up to 30 µrad, fresh every sweep
        line.beam_position += int(rng.integers(-30, 31))
    h5, out = tmp_path / "jitter.h5", tmp_path / "jitter.dcm"
    write_recording(h5, [(lines, None)])
    assert main(["export", str(h5), "--dicom", str(out)]) == 0
    ds = pydicom.dcmread(out)
    assert int(ds.NumberOfFrames) == 3
    with open_recording(h5) as rec:
        first = next(iter_frame_images(rec))
    x_min, x_max, _, _ = first.extent_m
    (region,) = ds.SequenceOfUltrasoundRegions
    assert region.PhysicalDeltaX == pytest.approx((x_max - x_min) * 100 / 512, rel=1e-9)


# --- colour flow: a run of the vessel phantom whose lines fire ensembles ---------------------

FLOW_FRAMES = 3
FLOW_LINES = 16
FLOW_CONFIG = {"depth_m": 0.045, "lines_per_frame": FLOW_LINES, "sector_deg": 16.0,
               "ensemble_size": 8, "prf_hz": 3000}


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory) -> tuple[Path, Path]:
    """A short sector run of the simulated board over the vessel phantom (an artery toward
    the transducer, a vein away), 8 firings per line, exported with the defaults."""
    tmp = tmp_path_factory.mktemp("dicom-flow")
    h5, out = tmp / "flow.h5", tmp / "flow.dcm"
    url = f"sim://?phantom=vessel&seed=2&name=dicom-flow-{next(_flow_names)}"
    record_session(url, h5, None, done=lambda dev: sim_drained(url, dev),
                   n_frames=FLOW_FRAMES, config=FLOW_CONFIG)
    assert main(["export", str(h5), "--dicom", str(out)]) == 0
    return h5, out


_flow_names = itertools.count()


def _pixel_positions_m(ds) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's (x, z) in metres, from the tissue region's calibration."""
    region = ds.SequenceOfUltrasoundRegions[0]
    cols = np.arange(int(ds.Columns)) - region.ReferencePixelX0
    rows = np.arange(int(ds.Rows)) - region.ReferencePixelY0
    x = (region.ReferencePixelPhysicalValueX + cols * region.PhysicalDeltaX) / 100.0
    z = (region.ReferencePixelPhysicalValueY + rows * region.PhysicalDeltaY) / 100.0
    return np.meshgrid(x, z)


def _near(vessel, x: np.ndarray, z: np.ndarray, margin_m: float) -> np.ndarray:
    """Pixels within ``margin_m`` of the vessel's lumen."""
    u, s = vessel.local_coords(x, z)
    return (np.abs(u) <= vessel.length_m / 2 + margin_m) & \
        (np.abs(s) <= vessel.radius_m + margin_m)


def test_ensembles_give_rgb_frames_grey_where_there_is_no_flow(flow_run):
    h5, out = flow_run
    ds = pydicom.dcmread(out)
    assert ds.PhotometricInterpretation == "RGB"
    assert ds.SamplesPerPixel == 3 and ds.PlanarConfiguration == 0
    assert ds.BitsAllocated == 8 and int(ds.NumberOfFrames) == FLOW_FRAMES
    pixels = ds.pixel_array
    assert pixels.shape == (FLOW_FRAMES, 512, 512, 3)
    with open_recording(h5) as rec:
        assert int(rec.segments[0].attrs["ensemble_size"]) == 8
        grey = np.stack([fr.image for fr in iter_frame_images(rec)])
    # away from the vessels the picture is the PNG export's B-mode, as grey RGB
    x, z = _pixel_positions_m(ds)
    artery, vein = load_phantom("vessel").vessels
    far = ~_near(artery, x, z, 0.004) & ~_near(vein, x, z, 0.004)
    np.testing.assert_array_equal(pixels[:, far], np.repeat(grey[:, far, None], 3, axis=-1))


def test_the_flow_is_coloured_in_the_vessels_red_toward_blue_away(flow_run):
    _, out = flow_run
    ds = pydicom.dcmread(out)
    rgb = ds.pixel_array.astype(int)
    red = rgb[..., 0] - rgb[..., 2] > 30
    blue = rgb[..., 2] - rgb[..., 0] > 30
    x, z = _pixel_positions_m(ds)
    artery, vein = load_phantom("vessel").vessels
    in_artery, in_vein = _near(artery, x, z, 0), _near(vein, x, z, 0)
    near_flow = _near(artery, x, z, 0.003) | _near(vein, x, z, 0.003)
    for f in range(FLOW_FRAMES):
        # the artery flows toward the transducer (red), the vein away (blue) ...
        assert (red[f] & in_artery).sum() > 0.3 * in_artery.sum()
        assert (red[f] & in_artery).sum() > 10 * (blue[f] & in_artery).sum()
        assert (blue[f] & in_vein).sum() > 0.5 * in_vein.sum()
        assert (blue[f] & in_vein).sum() > 10 * (red[f] & in_vein).sum()
        # ... and the colour stays with them: (almost) none beyond 3 mm of a lumen
        coloured = red[f] | blue[f]
        assert (coloured & ~near_flow).sum() < 0.005 * coloured.sum()


def test_a_colour_flow_region_shares_the_tissue_calibration_and_dciodvfy_agrees(flow_run):
    _, out = flow_run
    ds = pydicom.dcmread(out)
    tissue, flow = ds.SequenceOfUltrasoundRegions
    assert tissue.RegionDataType == 1 and flow.RegionDataType == 2  # tissue, colour flow
    for key in ("RegionSpatialFormat", "RegionLocationMinX0", "RegionLocationMinY0",
                "RegionLocationMaxX1", "RegionLocationMaxY1", "PhysicalUnitsXDirection",
                "PhysicalUnitsYDirection", "ReferencePixelX0", "ReferencePixelY0",
                "ReferencePixelPhysicalValueX", "ReferencePixelPhysicalValueY",
                "PhysicalDeltaX", "PhysicalDeltaY", "PulseRepetitionFrequency"):
        assert flow[key].value == tissue[key].value, key
    assert flow.PulseRepetitionFrequency == FLOW_CONFIG["prf_hz"]
    errors, report = _dciodvfy_errors(out)
    assert not errors, report
    assert "USMultiFrameImage" in report


def test_a_grey_recording_stays_monochrome_with_one_region(exported):
    ds = pydicom.dcmread(exported)
    assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.SamplesPerPixel == 1
    assert "PlanarConfiguration" not in ds
    assert [r.RegionDataType for r in ds.SequenceOfUltrasoundRegions] == [1]


def test_the_flow_over_bmode_blend():
    grey = np.array([[0, 100], [200, 255]], np.uint8)
    flow = np.zeros((2, 2, 4), np.uint8)
    flow[0, 0] = (255, 0, 0, 255)  # opaque red
    flow[1, 0] = (0, 0, 255, 0)  # transparent: the grey shows through
    flow[0, 1] = (0, 0, 200, 128)  # half blue over grey 100
    rgb = flow_over_bmode(grey, flow)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 2, 3)
    assert tuple(rgb[0, 0]) == (255, 0, 0)
    assert tuple(rgb[1, 0]) == (200, 200, 200) and tuple(rgb[1, 1]) == (255, 255, 255)
    assert tuple(rgb[0, 1]) == (50, 50, 150)
    with pytest.raises(ValueError, match="flow must be uint8"):
        flow_over_bmode(grey, flow[..., :3])
