"""``sonobridge store``: C-ECHO and C-STORE to a real Orthanc, read back over its REST API."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from pydicom import Dataset, FileMetaDataset, dcmread
from pydicom.sequence import Sequence
from pydicom.uid import (
    ExplicitVRLittleEndian,
    UltrasoundMultiFrameImageStorage,
    generate_uid,
)
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification

from sonobridge.cli import main
from sonobridge.record.pacs import (
    PacsAddress,
    PacsAddressError,
    PacsError,
    StoreResult,
    store,
)

from . import orthanc_fixture
from .orthanc_fixture import Orthanc, free_port, running_orthanc
from .record_fixtures import SAMPLES, sim_url

FRAMES, ROWS, COLUMNS = 6, 48, 64


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    """One Orthanc for this module's tests."""
    with running_orthanc(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


@pytest.fixture
def empty_orthanc(orthanc: Orthanc) -> Orthanc:
    """The module's Orthanc with nothing stored in it."""
    orthanc.delete_all()
    return orthanc


def us_multiframe(path: Path) -> Dataset:
    """Write a small Ultrasound Multi-frame Image with one calibrated region to ``path``."""
    rng = np.random.default_rng(16)
    pixels = rng.integers(0, 256, size=(FRAMES, ROWS, COLUMNS), dtype=np.uint8)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "US"
    ds.PatientName = ""
    ds.PatientID = ""
    ds.StudyDate = ds.SeriesDate = "20261201"
    ds.NumberOfFrames = FRAMES
    ds.FrameTime = 33.3
    ds.FrameIncrementPointer = 0x00181063
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = ROWS, COLUMNS
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    region = Dataset()
    region.RegionSpatialFormat = 1  # 2D
    region.RegionDataType = 1  # tissue
    region.RegionFlags = 0
    region.RegionLocationMinX0, region.RegionLocationMinY0 = 0, 0
    region.RegionLocationMaxX1, region.RegionLocationMaxY1 = COLUMNS - 1, ROWS - 1
    region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = 3  # cm
    region.PhysicalDeltaX, region.PhysicalDeltaY = 0.0125, 0.025
    ds.SequenceOfUltrasoundRegions = Sequence([region])
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return ds


@pytest.fixture
def dicom_file(tmp_path: Path) -> Path:
    path = tmp_path / "cine.dcm"
    us_multiframe(path)
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``sonobridge ARGV`` in-process: its exit code, stdout and stderr."""
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str) -> str:
    """``err`` is exactly one ``error: …`` line (no traceback, no log spill); its text."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def read_back(orthanc: Orthanc, sop_instance_uid: str) -> Dataset:
    """The one instance stored in ``orthanc``, fetched as a file over its REST API."""
    instances = orthanc.get_json("/instances")
    assert len(instances) == 1, instances
    tags = orthanc.get_json(f"/instances/{instances[0]}/simplified-tags")
    assert tags["SOPInstanceUID"] == sop_instance_uid
    return dcmread(BytesIO(orthanc.get(f"/instances/{instances[0]}/file")))


# -- storing to Orthanc --------------------------------------------------------------------------


def test_store_sends_the_file_and_orthanc_keeps_it_unchanged(empty_orthanc: Orthanc,
                                                              dicom_file: Path, capsys):
    sent = dcmread(dicom_file)
    code, out, err = run(["store", str(dicom_file), "--pacs", empty_orthanc.pacs], capsys)
    assert (code, err) == (0, "")
    assert out.strip() == (f"stored Ultrasound Multi-frame Image Storage {sent.SOPInstanceUID} "
                           f"on {empty_orthanc.pacs} (status 0x0000: success)")
    got = read_back(empty_orthanc, sent.SOPInstanceUID)
    assert got.SOPClassUID == UltrasoundMultiFrameImageStorage
    assert got.PixelData == sent.PixelData
    np.testing.assert_array_equal(got.pixel_array, sent.pixel_array)
    assert got.pixel_array.shape == (FRAMES, ROWS, COLUMNS)
    assert got.SequenceOfUltrasoundRegions == sent.SequenceOfUltrasoundRegions
    assert float(got.SequenceOfUltrasoundRegions[0].PhysicalDeltaX) == 0.0125


def test_a_recording_exported_as_dicom_round_trips_through_orthanc(empty_orthanc: Orthanc,
                                                                    tmp_path: Path, capsys):
    h5, dcm = tmp_path / "run.h5", tmp_path / "run.dcm"
    assert main(["record", sim_url(), "-o", str(h5), "--frames", "4", "--lines", "16",
                 "--samples", str(SAMPLES), "--prf", "4000"]) == 0
    assert main(["export", str(h5), "--dicom", str(dcm)]) == 0
    capsys.readouterr()
    code, _, err = run(["store", str(dcm), "--pacs", empty_orthanc.pacs], capsys)
    assert (code, err) == (0, "")
    sent = dcmread(dcm)
    got = read_back(empty_orthanc, sent.SOPInstanceUID)
    assert int(got.NumberOfFrames) == 4
    np.testing.assert_array_equal(got.pixel_array, sent.pixel_array)
    assert got.SequenceOfUltrasoundRegions == sent.SequenceOfUltrasoundRegions
    assert len(got.SequenceOfUltrasoundRegions) >= 1


def test_store_reports_the_calling_aet_orthanc_saw(empty_orthanc: Orthanc, dicom_file: Path):
    result = store(dicom_file, PacsAddress.parse(empty_orthanc.pacs), calling_aet="PROBE7")
    assert isinstance(result, StoreResult) and result.ok and result.status == 0
    instance = empty_orthanc.get_json("/instances")[0]
    origin = empty_orthanc.get_json(f"/instances/{instance}/metadata?expand")
    assert origin["RemoteAET"] == "PROBE7"
    assert origin["CalledAET"] == "ORTHANC"


def test_a_wrong_called_aet_is_refused_with_what_to_change(orthanc: Orthanc, dicom_file: Path,
                                                           capsys):
    pacs = f"WRONG@127.0.0.1:{orthanc.dicom_port}"
    code, out, err = run(["store", str(dicom_file), "--pacs", pacs], capsys)
    line = assert_one_line_error(err)
    assert code == 1 and out == ""
    assert f"{pacs} rejected the association" in line
    assert "(called AE title not recognised)" in line
    assert "its AE title is not WRONG" in line


def test_orthanc_s_web_port_is_not_its_dicom_port(orthanc: Orthanc, dicom_file: Path, capsys):
    pacs = f"ORTHANC@127.0.0.1:{orthanc.http_port}"
    code, _, err = run(["store", str(dicom_file), "--pacs", pacs], capsys)
    line = assert_one_line_error(err)
    assert code == 1
    assert "DICOM port" in line and f"127.0.0.1:{orthanc.http_port}" in line


# -- what other archives answer: a pynetdicom SCP in this process -----------------------------


@contextmanager
def scp(*, store_status: int = 0x0000, echo_status: int = 0x0000,
        accepts_ultrasound: bool = True, known_callers: tuple[str, ...] = ()) -> Iterator[str]:
    """A minimal archive (a pynetdicom SCP) answering with the given statuses; its --pacs."""
    ae = AE(ae_title="TESTSCP")
    ae.require_calling_aet = list(known_callers)
    ae.add_supported_context(Verification)
    if accepts_ultrasound:
        ae.add_supported_context(UltrasoundMultiFrameImageStorage, ExplicitVRLittleEndian)
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[
        (evt.EVT_C_STORE, lambda _event: store_status),
        (evt.EVT_C_ECHO, lambda _event: echo_status)])
    try:
        yield f"TESTSCP@127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_a_failure_status_is_exit_1_with_its_meaning(dicom_file: Path, capsys):
    with scp(store_status=0xA700) as pacs:
        code, out, err = run(["store", str(dicom_file), "--pacs", pacs], capsys)
    line = assert_one_line_error(err)
    assert code == 1 and out == ""
    assert f"{pacs} did not store Ultrasound Multi-frame Image Storage" in line
    assert "status 0xA700 (failure: Refused: Out of Resources)" in line


def test_a_warning_status_is_stored_and_says_so(dicom_file: Path, capsys):
    with scp(store_status=0xB000) as pacs:
        code, out, err = run(["store", str(dicom_file), "--pacs", pacs], capsys)
    assert code == 0 and out == ""
    assert err.startswith(f"warning: {pacs} stored Ultrasound Multi-frame Image Storage ")
    assert err.strip().endswith("status 0xB000 (warning: Coercion of Data Elements)")


def test_a_failed_echo_stops_before_storing(dicom_file: Path, capsys):
    with scp(echo_status=0x0110, store_status=0xA700) as pacs:
        code, _, err = run(["store", str(dicom_file), "--pacs", pacs], capsys)
    line = assert_one_line_error(err)
    assert code == 1 and f"{pacs} answered C-ECHO with status 0x0110" in line


def test_an_unknown_calling_aet_is_refused_with_what_to_change(dicom_file: Path, capsys):
    with scp(known_callers=("US_CART_3",)) as pacs:
        code, _, err = run(["store", str(dicom_file), "--pacs", pacs], capsys)
        assert run(["store", str(dicom_file), "--pacs", pacs, "--aet", "US_CART_3"],
                   capsys)[0] == 0
    line = assert_one_line_error(err)
    assert code == 1
    assert f"{pacs} rejected the association (calling AE title not recognised)" in line
    assert "this side's AE title SONOBRIDGE" in line and "--aet" in line


def test_an_archive_without_the_storage_class_says_which(dicom_file: Path, capsys):
    with scp(accepts_ultrasound=False) as pacs:
        code, _, err = run(["store", str(dicom_file), "--pacs", pacs], capsys)
    line = assert_one_line_error(err)
    assert code == 1
    assert (f"{pacs} does not accept Ultrasound Multi-frame Image Storage in Explicit VR Little "
            "Endian") in line


# -- when the archive cannot be reached ----------------------------------------------------------


def test_nothing_listening_is_one_line_naming_host_and_port(dicom_file: Path, capsys):
    port = free_port()
    code, out, err = run(["store", str(dicom_file), "--pacs", f"ORTHANC@127.0.0.1:{port}"],
                         capsys)
    line = assert_one_line_error(err)
    assert code == 1 and out == ""
    assert f"connection to 127.0.0.1:{port} refused" in line
    assert "check that the archive is running" in line


def test_an_archive_that_never_answers_times_out(dicom_file: Path):
    # a listening socket nobody accepts from: the kernel completes the TCP handshake, and the
    # association request is never answered
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        with pytest.raises(PacsError, match=r"did not answer the association request within "
                                            r"0\.5 s"):
            store(dicom_file, PacsAddress("ORTHANC", "127.0.0.1", port), timeout_s=0.5)


def test_an_unknown_host_is_named(dicom_file: Path, capsys):
    # .invalid never resolves (RFC 2606)
    code, _, err = run(["store", str(dicom_file), "--pacs", "PACS@pacs.invalid:104"], capsys)
    line = assert_one_line_error(err)
    assert code == 1
    assert "cannot find the host 'pacs.invalid'" in line


# -- argument mistakes: exit 2 -------------------------------------------------------------------


@pytest.mark.parametrize(("pacs", "says"), [
    ("ORTHANC127.0.0.1:4242", "names no AE title"),
    ("ORTHANC@127.0.0.1", "names no port"),
    ("ORTHANC@127.0.0.1:", "names no port"),
    ("ORTHANC@:4242", "names no host"),
    ("ORTHANC@127.0.0.1:0", "the port must be a number in 1..65535"),
    ("ORTHANC@127.0.0.1:65536", "the port must be a number in 1..65535"),
    ("ORTHANC@127.0.0.1:http", "the port must be a number in 1..65535"),
    ("@127.0.0.1:4242", "AE title is empty"),
    ("   @127.0.0.1:4242", "AE title is empty"),
    ("SEVENTEEN_CHARS_X@127.0.0.1:4242", "has 17 characters; DICOM allows at most 16"),
    ("OR\\THANC@127.0.0.1:4242", "except backslash"),
    ("ORTHANÇ@127.0.0.1:4242", "printable ASCII"),
    ("ORTHANC@pacs_host!:4242", "is not a host name or IP address"),
    ("ORTHANC@::1:4242", "put an IPv6 address in brackets"),
])
def test_a_bad_pacs_address_is_exit_2(pacs: str, says: str, dicom_file: Path, capsys):
    code, out, err = run(["store", str(dicom_file), "--pacs", pacs], capsys)
    line = assert_one_line_error(err)
    assert code == 2 and out == ""
    assert line.startswith("error: argument --pacs: ")
    assert says in line


def test_a_bad_calling_aet_is_exit_2(dicom_file: Path, capsys):
    code, _, err = run(["store", str(dicom_file), "--pacs", "ORTHANC@127.0.0.1:4242",
                        "--aet", "A" * 17], capsys)
    line = assert_one_line_error(err)
    assert code == 2 and line.startswith("error: argument --aet: the calling AE title")


def test_a_missing_file_is_exit_2(tmp_path: Path, capsys):
    code, _, err = run(["store", str(tmp_path / "none.dcm"), "--pacs", "PACS@127.0.0.1:104"],
                       capsys)
    line = assert_one_line_error(err)
    assert code == 2 and "none.dcm does not exist" in line


@pytest.mark.parametrize(("content", "says"), [
    (b"not a dicom file\n", "is not a DICOM file (no 'DICM' after its 128-byte preamble)"),
    (b"\0" * 128 + b"DICM\x02\x00", "lacks SOP Class UID and SOP Instance UID and Transfer "
                                     "Syntax UID, which C-STORE needs"),
    ("half", f"is truncated: its pixel data has {FRAMES * ROWS * COLUMNS // 2} of "
             f"{FRAMES * ROWS * COLUMNS} bytes"),
])
def test_a_file_that_cannot_be_sent_is_exit_2(content: bytes | str, says: str, tmp_path: Path,
                                              capsys):
    path = tmp_path / "notes.dcm"
    if content == "half":  # a whole file cut short, as an interrupted copy leaves it
        us_multiframe(path)
        whole = path.read_bytes()
        content = whole[:len(whole) - FRAMES * ROWS * COLUMNS // 2]
    path.write_bytes(content)
    # nothing listens on this port: the file must be refused before any connection
    port = free_port()
    code, _, err = run(["store", str(path), "--pacs", f"PACS@127.0.0.1:{port}"], capsys)
    line = assert_one_line_error(err)
    assert code == 2 and f"error: {path} {says}" in line


def test_a_recording_is_not_dicom_and_the_export_is_named(tmp_path: Path, capsys):
    h5 = tmp_path / "run.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(120))  # an HDF5 file's signature
    code, _, err = run(["store", str(h5), "--pacs", "PACS@127.0.0.1:104"], capsys)
    line = assert_one_line_error(err)
    assert code == 2
    assert (f"{h5} is a sonobridge HDF5 recording (.h5), not a DICOM file: make one with "
            f"`sonobridge export {h5} --dicom {tmp_path / 'run.dcm'}` and store that") in line


def test_without_pynetdicom_it_names_the_extra(dicom_file: Path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pynetdicom", None)  # import now raises ImportError
    code, _, err = run(["store", str(dicom_file), "--pacs", "PACS@127.0.0.1:104"], capsys)
    line = assert_one_line_error(err)
    assert code == 2 and "pip install 'sonobridge[formats]'" in line


def test_a_machine_without_orthanc_fails_with_the_install_command(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(orthanc_fixture, "ORTHANC_PATHS", (str(tmp_path / "Orthanc"),))
    with pytest.raises(pytest.fail.Exception, match=r"sudo apt-get install orthanc"):
        orthanc_fixture.orthanc_binary()


# -- the address and the status, as values ------------------------------------------------------


@pytest.mark.parametrize(("text", "address"), [
    ("ORTHANC@127.0.0.1:4242", PacsAddress("ORTHANC", "127.0.0.1", 4242)),
    ("  PACS 1 @pacs.example.org:104", PacsAddress("PACS 1", "pacs.example.org", 104)),
    ("A@B@[::1]:11112", PacsAddress("A@B", "::1", 11112)),
])
def test_pacs_address_parses_and_prints_back(text: str, address: PacsAddress):
    assert PacsAddress.parse(text) == address
    assert PacsAddress.parse(str(address)) == address


def test_pacs_address_errors_are_value_errors():
    with pytest.raises(ValueError, match="names no AE title"):
        PacsAddress.parse("127.0.0.1:104")
    assert issubclass(PacsAddressError, ValueError)


@pytest.mark.parametrize(("status", "category", "says"), [
    (0xB000, "Warning", "PACS@h:104 stored Ultrasound Multi-frame Image Storage 1.2.3: status "
                        "0xB000 (warning: Coercion of Data Elements)"),
    (0xA701, "Failure", "PACS@h:104 did not store Ultrasound Multi-frame Image Storage 1.2.3: "
                        "status 0xA701 (failure: Refused: Out of Resources; disk full)"),
])
def test_store_result_describes_the_status(status: int, category: str, says: str):
    result = StoreResult(PacsAddress("PACS", "h", 104), UltrasoundMultiFrameImageStorage, "1.2.3",
                         ExplicitVRLittleEndian, status, category,
                         "Coercion of Data Elements" if status == 0xB000 else
                         "Refused: Out of Resources", "disk full" if status == 0xA701 else "")
    assert result.describe() == says
    assert result.ok is (category == "Warning")
