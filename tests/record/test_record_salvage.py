"""Salvage of damaged HDF5 recordings: truncated at any point, a damaged superblock or root
group, damaged rows; what is kept is exactly what was stored intact, and a salvage that finds
nothing leaves nothing behind."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sonobridge.record import RecordingError, open_recording, salvage_recording, verify_recording
from sonobridge.record.hdf5_schema import row_offset
from sonobridge.record.meta import info_to_dict
from sonobridge.record.salvage import _lookup3

from .record_fixtures import (
    INFO,
    flip_byte,
    rows_stored_before,
    synthetic_lines,
    write_recording,
)


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    """A recording of 1600 rows over two samples chunks and its rows (samples, metadata)."""
    path = tmp_path_factory.mktemp("salvage") / "rec.h5"
    write_recording(path, [(synthetic_lines(200, 8, 512), None)])
    with open_recording(path) as rec:
        seg = rec.segments[0]
        assert seg.samples.chunks[0] < seg.n_rows  # more than one chunk
        return path, seg.samples[:], seg.lines.copy()


def _cut(src: Path, dst: Path, at: int) -> None:
    dst.write_bytes(src.read_bytes()[:at])


def _assert_prefix(path: Path, samples: np.ndarray, lines: np.ndarray, n: int) -> None:
    with open_recording(path) as rec:
        assert rec.n_lines == n and not rec.complete
        np.testing.assert_array_equal(rec.segments[0].samples[:], samples[:n])
        np.testing.assert_array_equal(rec.segments[0].lines, lines[:n])
        assert rec.device_info == INFO
        assert verify_recording(rec) == []


@pytest.mark.parametrize("percent", [1, 10, 25, 50, 60, 90])
def test_a_truncated_recording_gives_back_every_row_stored_before_the_cut(
        recording, tmp_path, percent):
    path, samples, lines = recording
    size = path.stat().st_size
    at = size * percent // 100
    cut, fixed = tmp_path / "cut.h5", tmp_path / "fixed.h5"
    _cut(path, cut, at)
    expected = rows_stored_before(path, at)
    if percent >= 10:
        assert expected > 0  # the file layout puts rows this early: the test means something
    if expected == 0:
        with pytest.raises(RecordingError, match="nothing can be salvaged") as info:
            salvage_recording(cut, fixed)
        assert f"truncated at byte offset {at}" in str(info.value)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.h5"]  # nothing left over
        return
    report = salvage_recording(cut, fixed)
    assert report.rows_kept == expected
    assert report.rows_truncated == report.rows_dropped == len(samples) - expected
    assert report.damaged == [] and report.rows_unreadable == 0
    assert f"truncated at byte offset {at}" in report.message
    _assert_prefix(fixed, samples, lines, expected)
    assert not (tmp_path / "fixed.h5.partial").exists()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fraction=st.floats(0.0, 1.0, exclude_max=True))
def test_any_cut_point_salvages_exactly_the_stored_prefix(recording, tmp_path, fraction):
    path, samples, lines = recording
    at = 8 + int(fraction * (path.stat().st_size - 8))
    cut, fixed = tmp_path / "cut.h5", tmp_path / "fixed.h5"
    fixed.unlink(missing_ok=True)
    _cut(path, cut, at)
    expected = rows_stored_before(path, at)
    try:
        report = salvage_recording(cut, fixed)
    except RecordingError as exc:
        # a cut inside the superblock, or before any row: said plainly, nothing left behind
        assert expected == 0, exc
        assert "nothing" in str(exc)
        assert not fixed.exists() and not (tmp_path / "fixed.h5.partial").exists()
        return
    assert report.rows_kept == expected
    _assert_prefix(fixed, samples, lines, expected)


def test_a_failed_salvage_leaves_nothing_so_a_retry_works(recording, tmp_path):
    path, samples, lines = recording
    cut, fixed = tmp_path / "cut.h5", tmp_path / "fixed.h5"
    _cut(path, cut, path.stat().st_size // 100)
    with pytest.raises(RecordingError, match="no output was written"):
        salvage_recording(cut, fixed)
    assert not fixed.exists() and not (tmp_path / "fixed.h5.partial").exists()
    _cut(path, cut, path.stat().st_size // 2)  # a better copy turns up
    report = salvage_recording(cut, fixed)
    _assert_prefix(fixed, samples, lines, report.rows_kept)
    with pytest.raises(FileExistsError, match="--force"):
        salvage_recording(cut, fixed)
    assert salvage_recording(cut, fixed, overwrite=True).rows_kept == report.rows_kept


def test_the_superblock_checksum_is_hdf5s(recording):
    path, _, _ = recording
    head = path.read_bytes()[:48]
    assert head[8] == 2  # what libver='v108' writes
    assert _lookup3(head[:44]) == int.from_bytes(head[44:48], "little")


@pytest.mark.parametrize("offset", [1, 21, 30, 41])
def test_a_damaged_superblock_is_rebuilt(recording, tmp_path, offset):
    path, samples, lines = recording
    bad = tmp_path / "bad.h5"
    shutil.copyfile(path, bad)
    flip_byte(bad, offset)
    with pytest.raises(RecordingError) as info:
        open_recording(bad)
    assert info.value.salvage and str(bad) in str(info.value)
    assert "sonobridge convert" in str(info.value)
    report = salvage_recording(bad, tmp_path / "fixed.h5")
    assert any("superblock" in r for r in report.repairs)
    assert report.rows_kept == len(samples) and not report.damaged
    _assert_prefix(tmp_path / "fixed.h5", samples, lines, len(samples))


def test_a_damaged_root_group_is_bypassed_by_scanning_the_object_headers(tmp_path):
    path = tmp_path / "two.h5"
    a = synthetic_lines(40, 8, 256)
    b = synthetic_lines(30, 4, 128, config_id=2, seq0=1000)
    write_recording(path, [(a, {"n": 1}), (b, {"n": 2})])
    data = path.read_bytes()
    root = int.from_bytes(data[36:44], "little")
    assert data[root : root + 4] == b"OHDR"
    flip_byte(path, root + 12)
    with pytest.raises(RecordingError, match="damaged"):
        open_recording(path)
    report = salvage_recording(path, tmp_path / "fixed.h5")
    assert report.rows_kept == len(a) + len(b)
    assert any("scanning" in r for r in report.repairs)
    with open_recording(tmp_path / "fixed.h5") as rec:
        assert [s.name for s in rec.segments] == ["/segments/0000", "/segments/0001"]
        for seg, lines in zip(rec.segments, (a, b), strict=True):
            np.testing.assert_array_equal(seg.samples[:], np.stack([ln.samples for ln in lines]))
            assert seg.lines["seq"].tolist() == [ln.seq for ln in lines]
        assert rec.segments[1].config == {"n": 2} and rec.segments[1].attrs["n_samples"] == 128
        assert rec.device_info_dict == info_to_dict(INFO)  # its own group survived


def test_damaged_rows_are_left_out_and_named(recording, tmp_path):
    path, samples, lines = recording
    bad = tmp_path / "bad.h5"
    shutil.copyfile(path, bad)
    with h5py.File(path, "r") as f:
        ds = f["segments/0000/samples"]
        offsets = {r: row_offset(ds, r) for r in (9, 1500)}
    for off in offsets.values():
        flip_byte(bad, off + 100, 0x01)
    report = salvage_recording(bad, tmp_path / "fixed.h5")
    assert [(d.segment, d.row, d.frame_index, d.line_index, d.offset) for d in report.damaged] \
        == [("/segments/0000", 9, 1, 1, offsets[9]),
            ("/segments/0000", 1500, 187, 4, offsets[1500])]
    assert report.rows_kept == len(samples) - 2 and report.rows_truncated == 0
    assert "2 failing their CRC-32" in report.message and "row 9 (frame 1, line 1)" in \
        report.message
    keep = np.ones(len(samples), bool)
    keep[[9, 1500]] = False
    with open_recording(tmp_path / "fixed.h5") as rec:
        np.testing.assert_array_equal(rec.segments[0].samples[:], samples[keep])
        np.testing.assert_array_equal(rec.segments[0].lines, lines[keep])
        note = json.loads(rec.attrs["salvage"])
        assert note["damaged_rows"] == [["/segments/0000", 9, 1, 1],
                                        ["/segments/0000", 1500, 187, 4]]
        assert rec.attrs["salvaged_from"] == str(bad)


def test_a_damaged_chunk_index_is_reported_and_nothing_is_invented(recording, tmp_path):
    path, _, _ = recording
    bad = tmp_path / "bad.h5"
    shutil.copyfile(path, bad)
    data = bad.read_bytes()
    trees = [m.start() for m in re.finditer(b"TREE", data)]
    with h5py.File(path, "r") as f:  # the samples' chunk index is the one just before them
        first_chunk = row_offset(f["segments/0000/samples"], 0)
    index = max(t for t in trees if t < first_chunk)
    flip_byte(bad, index)  # its signature
    with pytest.raises(RecordingError) as info:
        salvage_recording(bad, tmp_path / "fixed.h5")
    assert "nothing can be salvaged" in str(info.value)
    assert "could not locate or read" in str(info.value)
    assert not (tmp_path / "fixed.h5").exists()
    assert salvage_recording(bad, None).rows_unreadable == 1600  # a dry run counts the same


def test_an_intact_or_foreign_file_is_not_salvaged(recording, tmp_path):
    path, _, _ = recording
    with pytest.raises(RecordingError, match="not truncated or damaged"):
        salvage_recording(path, tmp_path / "x.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"no hdf5 here" * 100)
    with pytest.raises(RecordingError, match="not an HDF5 file"):
        salvage_recording(junk, tmp_path / "x.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.h5"]
