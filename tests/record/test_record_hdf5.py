"""The HDF5 dataset: schema, segments, the documented plain-h5py reading, damage and disk full."""

from __future__ import annotations

import errno
import os
import re
import shutil
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from sonobridge.device import AcquisitionConfig
from sonobridge.protocol import SampleFormat
from sonobridge.record import (
    DatasetWriter,
    RecordingError,
    open_recording,
    salvage_recording,
    verify_recording,
)
from sonobridge.record.hdf5_schema import FRAME_DTYPE, LINE_DTYPE, row_offset
from sonobridge.record.hdf5_writer import RESERVE_FLOOR, RESERVE_SECONDS, reserve_for
from sonobridge.record.meta import config_to_dict, info_to_dict

from .record_fixtures import INFO, synthetic_lines, wait_until, write_recording

DOCS = Path(__file__).resolve().parents[2] / "docs" / "recording.md"
_lines = synthetic_lines
_write = write_recording


def test_schema_segments_and_metadata(tmp_path):
    path = tmp_path / "r.h5"
    cfg_a = config_to_dict(AcquisitionConfig(samples_per_line=64, lines_per_frame=4))
    cfg_b = config_to_dict(AcquisitionConfig(samples_per_line=96, lines_per_frame=2,
                                             sample_format=SampleFormat.U8))
    a = _lines(3, 4, 64)
    b = _lines(2, 2, 96, SampleFormat.U8, config_id=2, seq0=100)
    stats = _write(path, [(a, cfg_a), (b, cfg_b)])
    assert stats.lines_written == len(a) + len(b) and stats.lines_not_kept == 0
    assert stats.segments == 2
    with open_recording(path) as rec:
        assert rec.complete
        assert [s.name for s in rec.segments] == ["/segments/0000", "/segments/0001"]
        s0, s1 = rec.segments
        assert s0.samples.dtype == np.int16 and s0.samples.shape == (12, 64)
        assert s1.samples.dtype == np.uint8 and s1.samples.shape == (4, 96)
        np.testing.assert_array_equal(s0.samples[:], np.stack([ln.samples for ln in a]))
        np.testing.assert_array_equal(s1.samples[:], np.stack([ln.samples for ln in b]))
        assert s0.lines["seq"].tolist() == list(range(12))
        assert s1.lines["line_index"].tolist() == [0, 1, 0, 1]
        assert s0.lines["beam_position"][:4].tolist() == [-1000, -900, -800, -700]
        assert s0.lines["timestamp_us"][5] == 10_000 + 100
        assert s1.attrs["sample_format_name"] == "U8" and s1.attrs["n_samples"] == 96
        assert s0.config == cfg_a and s1.config == cfg_b
        assert rec.config == cfg_a
        assert [c["segment"] for c in rec.config_changes] == [0, 1]
        assert rec.config_changes[1]["config"] == cfg_b
        assert rec.device_info_dict == info_to_dict(INFO)
        assert rec.device_info == INFO
        assert rec.file["device_info"].attrs["board_name"] == "test-board"
        assert s0.frame_runs() == [(0, 0, 4), (1, 4, 8), (2, 8, 12)]
        assert len(rec.frames) == 5 and rec.frames["complete"].all()
        assert rec.accounting == {"lines_missing": 0, "lines_recorded": 16,
                                  "lines_not_recorded": 0}
        assert rec.attrs["software_version"] and rec.attrs["protocol_version"] == 1
        assert verify_recording(rec) == []


def test_the_documented_plain_h5py_example_runs(tmp_path):
    """docs/recording.md's reading example works on a real file, as written."""
    path = tmp_path / "session.h5"
    _write(path, [(_lines(3, 4, 64), None)])
    code = re.search(r"<!-- example:read -->\s*```python\n(.*?)```", DOCS.read_text(), re.S)
    assert code, "docs/recording.md lost its reading example"
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        scope: dict = {}
        exec(compile(code.group(1), str(DOCS), "exec"), scope)
    finally:
        os.chdir(cwd)
    assert scope["samples"].shape == (12, 64)
    assert scope["lines"]["frame_index"].tolist() == [0] * 4 + [1] * 4 + [2] * 4


def test_refuses_to_overwrite(tmp_path):
    path = tmp_path / "r.h5"
    path.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="--force"):
        DatasetWriter(path)
    assert path.read_bytes() == b"keep me"


def test_lines_beyond_the_queue_bound_are_counted(tmp_path):
    path = tmp_path / "r.h5"
    w = DatasetWriter(path, max_queue_bytes=100)
    for line in _lines(1, 4, 64):  # 128 bytes each: more than the whole bound
        w.add_line(line, 1)
    stats = w.close()
    assert stats.lines_not_kept == 4 and stats.lines_written == 0
    with open_recording(path) as rec:
        assert rec.n_lines == 0 and rec.complete


def test_low_disk_space_stops_writing_cleanly(tmp_path):
    path = tmp_path / "r.h5"
    w = DatasetWriter(path, min_free_bytes=1 << 62)  # no disk has that much free
    lines = _lines(2, 4, 64)
    for line in lines:
        w.add_line(line, 1)
    stats = w.close()
    assert stats.stop_reason == "disk-full"
    assert "No space left" in stats.error
    assert stats.lines_not_kept == len(lines)
    with open_recording(path) as rec:  # still a valid file
        assert rec.n_lines == 0
        assert rec.attrs["stop_reason"] == "disk-full"
        assert "No space" in rec.attrs["error"]


def test_a_failing_write_keeps_what_was_flushed(tmp_path, monkeypatch):
    path = tmp_path / "r.h5"
    w = DatasetWriter(path, flush_interval_s=0.05)
    first = _lines(2, 4, 64)
    for line in first:
        w.add_line(line, 1)
    # the first lines reach the disk, then the disk fails
    wait_until(lambda: w.stats.lines_flushed == len(first), 5.0, "the first flush")

    def enospc(batch):
        w._inflight = len(batch)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(w, "_append", enospc)
    more = _lines(1, 4, 64, seq0=50)
    for line in more:
        w.add_line(line, 2)
    stats = w.close()
    assert stats.stop_reason == "disk-full" and stats.lines_not_kept == len(more)
    with open_recording(path) as rec:
        np.testing.assert_array_equal(rec.segments[0].samples[:],
                                      np.stack([ln.samples for ln in first]))


def test_corrupted_samples_are_found_with_their_offset(tmp_path):
    path = tmp_path / "r.h5"
    lines = _lines(4, 4, 64)
    _write(path, [(lines, None)])
    with h5py.File(path, "r") as f:
        offset = row_offset(f["segments/0000/samples"], 9)
    assert offset is not None
    with path.open("r+b") as f:
        f.seek(offset + 10)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xFF]))
    with open_recording(path) as rec:
        bad = verify_recording(rec)
    assert [(b.segment, b.row, b.offset) for b in bad] == [("/segments/0000", 9, offset)]


def test_truncated_file_error_names_the_offset_and_salvage_keeps_the_prefix(tmp_path):
    path = tmp_path / "r.h5"
    lines = _lines(200, 8, 512)  # ~1.6 MB of samples: several chunks
    _write(path, [(lines, None)])
    cut = tmp_path / "cut.h5"
    shutil.copyfile(path, cut)
    size = path.stat().st_size
    os.truncate(cut, size // 2)
    with pytest.raises(RecordingError) as info:
        open_recording(cut)
    assert info.value.offset == size // 2
    assert f"byte offset {size // 2}" in str(info.value)
    report = salvage_recording(cut, tmp_path / "fixed.h5")
    assert 0 < report.rows_kept < len(lines)
    assert report.rows_kept + report.rows_dropped == len(lines)
    with open_recording(tmp_path / "fixed.h5") as rec:
        n = rec.n_lines
        assert n == report.rows_kept and not rec.complete
        np.testing.assert_array_equal(rec.segments[0].samples[:],
                                      np.stack([ln.samples for ln in lines[:n]]))
        assert rec.segments[0].lines["seq"].tolist() == list(range(n))
        assert rec.device_info == INFO
        assert verify_recording(rec) == []


def test_not_a_recording(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all" * 10)
    with pytest.raises(RecordingError, match="not an HDF5 file"):
        open_recording(junk)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(RecordingError, match="not a sonobridge recording"):
        open_recording(other)
    whole = tmp_path / "whole.h5"
    _write(whole, [(_lines(1, 4, 64), None)])
    with pytest.raises(RecordingError, match="not truncated"):
        salvage_recording(whole, tmp_path / "y.h5")


def test_line_dtype_is_documented():
    text = DOCS.read_text()
    for name in LINE_DTYPE.names:
        assert f"`{name}`" in text, f"docs/recording.md does not describe {name}"


def test_the_disk_reserve_scales_with_the_rated_throughput(tmp_path):
    assert reserve_for(0) == RESERVE_FLOOR == 4 << 20
    assert reserve_for(35e6) == int(RESERVE_SECONDS * 35e6) == 175_000_000
    w = DatasetWriter(tmp_path / "a.h5")
    try:
        assert w.reserve_bytes == RESERVE_FLOOR  # no DEVICE_INFO, nothing measured yet
        w.set_device_info(replace(INFO, rated_throughput_bps=35_000_000))
        assert w.reserve_bytes == 175_000_000
    finally:
        w.close()
    slow = DatasetWriter(tmp_path / "b.h5")
    try:
        slow.set_device_info(replace(INFO, rated_throughput_bps=100_000))  # 0.5 MB in 5 s
        assert slow.reserve_bytes == RESERVE_FLOOR
    finally:
        slow.close()
    fixed = DatasetWriter(tmp_path / "c.h5", min_free_bytes=12_345)
    fixed.set_device_info(replace(INFO, rated_throughput_bps=35_000_000))
    assert fixed.close().stop_reason is None
    assert fixed.reserve_bytes == 12_345
    with pytest.raises(ValueError, match="reserve"):
        DatasetWriter(tmp_path / "d.h5", min_free_bytes=-1)
    assert not (tmp_path / "d.h5").exists()


def test_the_reserve_decides_when_the_disk_counts_as_full(tmp_path, monkeypatch):
    import sonobridge.record.hdf5_writer as hdf5_writer

    monkeypatch.setattr(hdf5_writer, "free_bytes", lambda directory: 100_000_000)  # 100 MB free
    fast = replace(INFO, rated_throughput_bps=35_000_000)  # 175 MB reserve by default
    for name, kw, full in (("default", {}, True), ("asked", {"min_free_bytes": 50_000_000},
                                                    False)):
        w = DatasetWriter(tmp_path / f"{name}.h5", **kw)
        w.set_device_info(fast)
        for line in _lines(2, 4, 64):
            w.add_line(line, 1)
        stats = w.close()
        assert (stats.stop_reason == "disk-full") is full, name
        if full:
            assert "175.0 MB in reserve" in stats.error and "--reserve-mb" in stats.error
            assert stats.lines_not_kept == 8
        else:
            assert stats.lines_written == 8


@pytest.mark.parametrize("bad", [0, -0.5, float("nan"), float("inf")])
def test_a_flush_interval_of_zero_or_less_is_refused(tmp_path, bad):
    from sonobridge.record import Recorder
    from sonobridge.record.raw import CaptureWriter

    with pytest.raises(ValueError, match=r"flush interval must be .* > 0"):
        DatasetWriter(tmp_path / "a.h5", flush_interval_s=bad)
    with pytest.raises(ValueError, match="flush interval"):
        CaptureWriter(tmp_path / "a.sbcap", flush_interval_s=bad)
    with pytest.raises(ValueError, match="flush interval"):
        Recorder(tmp_path / "r.h5", tmp_path / "r.sbcap", flush_interval_s=bad)
    assert list(tmp_path.iterdir()) == []  # refused before any file was made


def test_frames_tables_written_before_lost_host_read_with_it_zero(tmp_path):
    path = tmp_path / "old.h5"
    _write(path, [(_lines(3, 4, 64), None)])
    old_dtype = np.dtype([(n, FRAME_DTYPE[n]) for n in FRAME_DTYPE.names if n != "lost_host"])
    with h5py.File(path, "r+") as f:
        table = f["frames"][:]
        del f["frames"]
        f.create_dataset("frames", data=np.array(
            [tuple(row[n] for n in old_dtype.names) for row in table], dtype=old_dtype))
    with open_recording(path) as rec:
        assert rec.frames.dtype == FRAME_DTYPE and len(rec.frames) == 3
        assert (rec.frames["lost_host"] == 0).all()
        np.testing.assert_array_equal(rec.frames["frame_index"], table["frame_index"])


def test_a_frames_host_loss_is_stored(tmp_path):
    from sonobridge.device import FrameAssembler

    frames = []
    asm = FrameAssembler(frames.append)
    lines = _lines(1, 4, 64)
    for line in lines[:1] + lines[3:]:  # two lines lost while the host fell behind
        asm.add_line(line, 1, host_gap=2 if line.line_index == 3 else 0)
    asm.flush()
    assert frames[0].lost_host == 2
    w = DatasetWriter(tmp_path / "a.h5")
    w.add_frame(frames[0])
    w.close()
    with open_recording(tmp_path / "a.h5") as rec:
        assert rec.frames["lost_host"].tolist() == [2]
        assert rec.frames["missing"].tolist() == [2]


def test_lines_lost_host_is_accounted_and_a_stop_cut_comes_off_it_last():
    from sonobridge.device.accounting import adjust_for_stop
    from sonobridge.record.meta import ACCOUNTING_FIELDS
    from sonobridge.record.recorder import accounting_from

    assert "lines_lost_host" in ACCOUNTING_FIELDS
    stats = {"lines_missing": 10, "lines_lost_link": 3, "lines_lost_device": 2,
             "lines_lost_host": 5, "frames_incomplete": 1}
    acc = accounting_from(stats, lines_recorded=90, lines_not_recorded=0)
    assert acc["lines_lost_host"] == 5
    cut = adjust_for_stop(acc, 6)
    assert (cut["lines_missing"], cut["lines_lost_device"], cut["lines_lost_link"],
            cut["lines_lost_host"], cut["lines_cut_by_stop"]) == (4, 0, 0, 4, 6)
    # accounting from before lines_lost_host existed keeps its shape
    old = adjust_for_stop({"lines_missing": 4, "lines_lost_link": 1, "lines_lost_device": 3}, 2)
    assert "lines_lost_host" not in old and old["lines_lost_device"] == 1
