"""The HDF5 dataset: schema, segments, the documented plain-h5py reading, damage and disk full."""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from record_fixtures import wait_until

from host.device import AcquisitionConfig, Frame, FrameAssembler
from host.protocol import DeviceInfo, EchoLine, SampleFormat
from host.record import (
    DatasetWriter,
    RecordingError,
    open_recording,
    salvage_recording,
    verify_recording,
)
from host.record.hdf5 import LINE_DTYPE, row_offset
from host.record.meta import ConfigChange, config_to_dict, info_to_dict

DOCS = Path(__file__).resolve().parents[2] / "docs" / "recording.md"
INFO = DeviceInfo(board_name="test-board", board_id=0x1234, fw_major=1, adc_bits=12,
                  sample_formats=0b1111)


def _lines(n_frames: int, n_lines: int, n_samples: int, fmt: int = SampleFormat.I16,
           config_id: int = 1, seq0: int = 0) -> list[EchoLine]:
    dtype = {SampleFormat.I16: np.int16, SampleFormat.U8: np.uint8}.get(fmt, np.uint16)
    out = []
    seq = seq0
    for f in range(n_frames):
        for i in range(n_lines):
            samples = ((np.arange(n_samples) * 7 + f * 31 + i) % 200).astype(dtype)
            line = EchoLine(samples, 40_000_000, frame_index=f, line_index=i,
                            lines_per_frame=n_lines, beam_position=-1000 + 100 * i,
                            sweep_kind=1, timestamp_us=10_000 * f + 100 * i,
                            config_id=config_id, sample_format=fmt,
                            adc_bits=12 if fmt != SampleFormat.U8 else 8)
            line.seq = seq
            seq += 1
            out.append(line)
    return out


def _write(path: Path, groups, **kw) -> None:
    """Write lines of several configurations (each a (lines, config) pair) plus their sweeps."""
    w = DatasetWriter(path, **kw)
    w.set_device_info(INFO)
    frames: list[Frame] = []
    asm = FrameAssembler(frames.append)
    t = 1_000
    for lines, config in groups:
        for k, line in enumerate(lines):
            change = ConfigChange(t, line.config_id, config) if k == 0 else None
            w.add_line(line, t, change)
            asm.add_line(line, t)
            t += 1_000
    asm.flush()
    for fr in frames:
        w.add_frame(fr)
    return w.close(accounting={"lines_missing": 0}, stats={"lines_received": t})


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
