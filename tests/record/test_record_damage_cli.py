"""Damaged recordings through the commands a user runs: export, replay and convert name the
damage, say what can be salvaged and never show a traceback; the recorder's flush interval and
disk reserve options."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from sonobridge.record import open_recording
from sonobridge.record.commands import main
from sonobridge.record.export import iter_frame_images
from sonobridge.record.hdf5_schema import row_offset

from .record_fixtures import (
    flip_byte,
    rows_stored_before,
    sim_url,
    synthetic_lines,
    write_recording,
)

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--lines", "8", "--samples", "512", "--prf", "4000"]
ROWS = 1600


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """1600 rows (200 sweeps of 8 lines × 512 samples) over two samples chunks."""
    path = tmp_path_factory.mktemp("damage") / "rec.h5"
    write_recording(path, [(synthetic_lines(200, 8, 512), None)])
    return path


def _copy(src: Path, tmp_path: Path, name: str = "bad.h5") -> Path:
    dst = tmp_path / name
    shutil.copyfile(src, dst)
    return dst


def _flip_row(path: Path, row: int) -> int:
    """Flip one bit in the samples of ``row``; returns the row's byte offset."""
    with h5py.File(path, "r") as f:
        offset = row_offset(f["segments/0000/samples"], row)
    flip_byte(path, offset + 33, 0x10)
    return offset


# -- damaged rows --------------------------------------------------------------------------------


def test_export_leaves_out_a_damaged_row_names_it_and_exits_1(recording, tmp_path, capsys):
    bad = _copy(recording, tmp_path)
    offset = _flip_row(bad, 9)
    npz = tmp_path / "out.npz"
    assert main(["export", str(bad), "--npz", str(npz)]) == 1
    err = capsys.readouterr().err
    assert f"{bad} has 1 damaged rows" in err
    assert f"segment 0000 row 9 (frame 1, line 1) at byte offset {offset}" in err
    assert "--keep-damaged" in err and "Traceback" not in err
    with open_recording(recording) as rec:
        samples, seqs = rec.segments[0].samples[:], rec.segments[0].lines["seq"]
    with np.load(npz) as z:  # written, without the damaged row
        assert z["samples"].shape == (ROWS - 1, 512)
        np.testing.assert_array_equal(z["samples"], np.delete(samples, 9, axis=0))
        np.testing.assert_array_equal(z["seq"], np.delete(seqs, 9))

    assert main(["export", str(bad), "--npz", str(npz), "--force", "--keep-damaged"]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "row 9 (frame 1, line 1)" in err and "kept" in err
    with np.load(npz) as z:  # every row, the damaged one as stored
        assert z["samples"].shape == (ROWS, 512)
        assert (z["samples"][9] != samples[9]).sum() == 1
        np.testing.assert_array_equal(np.delete(z["samples"], 9, axis=0),
                                      np.delete(samples, 9, axis=0))


def test_export_png_draws_a_damaged_row_as_a_missing_line(recording, tmp_path, capsys):
    small = tmp_path / "small.h5"
    write_recording(small, [(synthetic_lines(3, 8, 512), None)])
    _flip_row(small, 9)
    assert main(["export", str(small), "--png", str(tmp_path / "skip")]) == 1
    assert "row 9 (frame 1, line 1)" in capsys.readouterr().err
    assert main(["export", str(small), "--png", str(tmp_path / "keep"), "--keep-damaged"]) == 0
    assert "row 9 (frame 1, line 1)" in capsys.readouterr().err
    skip = sorted(p.read_bytes() for p in (tmp_path / "skip").iterdir())
    keep = sorted(p.read_bytes() for p in (tmp_path / "keep").iterdir())
    assert len(skip) == len(keep) == 3
    frame_1 = [(tmp_path / d / "frame_000001.png").read_bytes() for d in ("skip", "keep")]
    assert frame_1[0] != frame_1[1]  # frame 1 lost a line in one of them
    assert (tmp_path / "skip" / "frame_000000.png").read_bytes() == \
        (tmp_path / "keep" / "frame_000000.png").read_bytes()
    with open_recording(small) as rec:
        images = list(iter_frame_images(rec, skip={"/segments/0000": rec.segments[0].bad_rows()}))
        assert images[1].lines_present == 7 and images[0].lines_present == 8


# -- truncated files -----------------------------------------------------------------------------


@pytest.mark.parametrize("percent", [1, 10, 50, 90])
def test_convert_salvages_a_truncated_recording_at_any_cut(recording, tmp_path, capsys, percent):
    data = recording.read_bytes()
    at = len(data) * percent // 100
    cut, fixed = tmp_path / "cut.h5", tmp_path / "fixed.h5"
    cut.write_bytes(data[:at])
    expected = rows_stored_before(recording, at)
    code = main(["convert", str(cut), "-o", str(fixed)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    if expected == 0:
        assert percent < 10
        assert code == 1 and "nothing can be salvaged" in err and "no output" in err
        assert not fixed.exists() and not Path(f"{fixed}.partial").exists()
        return
    assert code == 0, err
    assert f"truncated at byte offset {at}" in out and f"kept {expected} of {ROWS} rows" in out
    with open_recording(fixed) as rec, open_recording(recording) as full:
        assert rec.n_lines == expected
        np.testing.assert_array_equal(rec.segments[0].samples[:],
                                      full.segments[0].samples[:expected])
        np.testing.assert_array_equal(rec.segments[0].lines,
                                      full.segments[0].lines[:expected])


# -- HDF5 metadata damage ------------------------------------------------------------------------


def test_a_damaged_superblock_is_one_clear_message_and_convert_repairs_it(
        recording, tmp_path, capsys):
    bad = _copy(recording, tmp_path)
    flip_byte(bad, 21)  # inside the superblock's addresses: its checksum no longer matches
    hint = f"run `sonobridge convert {bad} -o {tmp_path / 'bad-salvaged.h5'}` to salvage " \
           f"{ROWS} rows"
    assert main(["export", str(bad), "--npz", str(tmp_path / "x.npz")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad} is damaged") and hint in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert main(["replay", str(bad), "--url"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad} is damaged") and hint in err
    assert main(["convert", str(bad), "-o", str(tmp_path / "fixed.h5")]) == 0
    assert "superblock was damaged and has been rebuilt" in capsys.readouterr().out
    with open_recording(tmp_path / "fixed.h5") as rec, open_recording(recording) as full:
        np.testing.assert_array_equal(rec.segments[0].samples[:], full.segments[0].samples[:])


def _break_chunk_index(path: Path) -> None:
    """Corrupt the signature of the samples' chunk index (the B-tree node just before them)."""
    data = path.read_bytes()
    with h5py.File(path, "r") as f:
        first_chunk = row_offset(f["segments/0000/samples"], 0)
    flip_byte(path, max(m.start() for m in re.finditer(b"TREE", data) if m.start() < first_chunk))


def test_a_damaged_chunk_index_is_one_clear_message(recording, tmp_path, capsys):
    bad = _copy(recording, tmp_path)
    _break_chunk_index(bad)
    assert main(["export", str(bad), "--npz", str(tmp_path / "x.npz")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad} is damaged: HDF5 cannot read rows")
    assert "nothing in it can be salvaged" in err and "Traceback" not in err
    assert not (tmp_path / "x.npz").exists() and not (tmp_path / "x.npz.partial").exists()
    assert main(["convert", str(bad), "-o", str(tmp_path / "fixed.h5")]) == 1
    err = capsys.readouterr().err
    assert "nothing can be salvaged" in err and "could not locate or read" in err
    assert not (tmp_path / "fixed.h5").exists()


def test_the_real_command_line_shows_no_traceback(recording, tmp_path):
    """``python -m sonobridge``: the installed ``sonobridge`` entry point, in its own process."""
    sb, tree = _copy(recording, tmp_path, "sb.h5"), _copy(recording, tmp_path, "tree.h5")
    flip_byte(sb, 41)
    _break_chunk_index(tree)
    for args, code in ((["export", str(sb), "--npz", str(tmp_path / "a.npz")], 1),
                       (["export", str(tree), "--png", str(tmp_path / "png")], 1),
                       (["convert", str(tree), "-o", str(tmp_path / "t.h5")], 1),
                       (["replay", str(sb), "--url"], 2)):
        proc = subprocess.run([sys.executable, "-m", "sonobridge", *args], capture_output=True,
                              text=True, cwd=ROOT, timeout=60)
        assert proc.returncode == code, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: "), args
        assert str(args[1]) in proc.stderr


# -- recorder options ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_record_refuses_a_flush_interval_of_zero_or_less(tmp_path, capsys, value):
    h5 = tmp_path / "rec.h5"
    with pytest.raises(SystemExit) as info:
        main(["record", sim_url(), "-o", str(h5), "--frames", "2", "--flush-interval", value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--flush-interval" in err and "> 0" in err
    assert not h5.exists()


def test_record_keeps_the_reserve_it_is_given(tmp_path, capsys, monkeypatch):
    import sonobridge.record.hdf5_writer as hdf5_writer

    monkeypatch.setattr(hdf5_writer, "free_bytes", lambda directory: 100_000_000)  # 100 MB free
    # by default the simulated board's rated 35 MB/s asks for 5 s = 175 MB: too little room
    h5 = tmp_path / "default.h5"
    assert main(["record", sim_url(), "-o", str(h5), "--frames", "20", *SMALL]) == 1
    out = capsys.readouterr().out
    assert "175.0 MB in reserve" in out and "--reserve-mb" in out
    with open_recording(h5) as rec:
        assert rec.attrs["stop_reason"] == "disk-full"
    # asked for 20 MB, it records
    h5 = tmp_path / "asked.h5"
    assert main(["record", sim_url(), "-o", str(h5), "--frames", "20", "--reserve-mb", "20",
                 *SMALL]) == 0
    out = capsys.readouterr().out
    assert "0 by this host falling behind" in out
    with open_recording(h5) as rec:
        assert rec.n_lines == 160 and rec.attrs["stop_reason"] == "closed"
        assert rec.accounting.get("lines_lost_host", 0) == 0
    with pytest.raises(SystemExit):
        main(["record", sim_url(), "-o", str(tmp_path / "x.h5"), "--reserve-mb", "-5"])
    assert "--reserve-mb" in capsys.readouterr().err
