"""The record, convert and export commands as a user runs them, including kill -9."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from sonobridge.protocol import Decoder, EchoLine, MsgType
from sonobridge.record import CaptureReader, iter_rx, open_recording, verify_recording
from sonobridge.record.commands import main
from sonobridge.record.export import iter_frame_images
from sonobridge.record.raw import KIND_RX
from sonobridge.record.wire import FrameSplitter

from .record_fixtures import decode_png, sim_url

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--lines", "8", "--samples", "512", "--prf", "4000"]


def _record(tmp_path: Path, frames: int = 12, *extra: str) -> tuple[Path, Path]:
    h5, raw = tmp_path / "rec.h5", tmp_path / "rec.sbcap"
    assert main(["record", sim_url(), "-o", str(h5), "--raw", str(raw), "--frames",
                 str(frames), *SMALL, *extra]) == 0
    return h5, raw


def test_record_writes_the_frames_and_a_summary(tmp_path, capsys):
    h5, raw = _record(tmp_path)
    out = capsys.readouterr()
    assert "frame count reached (12)" in out.out and "lost lines: 0" in out.out
    assert "frames" in out.err and "on disk" in out.err  # progress on stderr
    with open_recording(h5) as rec:
        assert rec.n_lines == 12 * 8 and len(rec.frames) == 12 and rec.complete
        assert rec.accounting["lines_recorded"] == 96
        assert rec.segments[0].attrs["n_samples"] == 512
    dec = Decoder()
    assert sum(isinstance(m, EchoLine) for c, _ in iter_rx(raw) for m in dec.feed(c)) == 96


def test_record_refuses_to_overwrite_without_force(tmp_path, capsys):
    h5 = tmp_path / "rec.h5"
    h5.write_bytes(b"precious")
    assert main(["record", sim_url(), "-o", str(h5), "--frames", "2", *SMALL]) == 2
    assert "--force" in capsys.readouterr().err
    assert h5.read_bytes() == b"precious"
    assert main(["record", sim_url(), "-o", str(h5), "--frames", "2", "--force", *SMALL]) == 0
    with open_recording(h5) as rec:
        assert rec.n_lines == 16


def test_record_from_a_missing_port_is_a_clear_error(tmp_path, capsys):
    h5 = tmp_path / "rec.h5"
    assert main(["record", str(tmp_path / "no-such-tty"), "-o", str(h5), "--seconds", "1"]) == 2
    assert "cannot open" in capsys.readouterr().err
    assert not h5.exists()  # nothing half-made left behind


def _lines_in(raw: Path, start: int, end: int) -> set[int]:
    """Sequence numbers of the ECHO_LINEs whose bytes overlap the payload of the (intact)
    capture's record(s) between file offsets ``start`` and ``end``."""
    records = list(CaptureReader(raw).records())
    pos, spans = 0, []  # each RX payload's place in the received byte stream
    for r in records:
        if r.kind == KIND_RX:
            spans.append((r.offset, pos, pos + len(r.data)))
            pos += len(r.data)
    lost = [(a, b) for off, a, b in spans if start <= off < end]
    splitter, stream_pos, seqs = FrameSplitter(), 0, set()
    for r in records:
        if r.kind != KIND_RX:
            continue
        for item in splitter.feed(r.data, 0):
            item_start = stream_pos
            stream_pos += len(item.data)
            if item.msg_type == MsgType.ECHO_LINE and any(
                    item_start < b and a < stream_pos for a, b in lost):
                seqs.add(item.seq)
    return seqs


def test_convert_skips_a_damaged_record_names_it_and_converts_the_rest(tmp_path, capsys):
    h5, raw = _record(tmp_path)
    records = list(CaptureReader(raw).records())
    # a record from the middle that holds bytes of at least one line (read while intact)
    k, lost = next((k, lost) for k in range(len(records) // 2, len(records) - 1)
                   if (lost := _lines_in(raw, records[k].offset, records[k + 1].offset)))
    victim, after = records[k], records[k + 1]
    with raw.open("r+b") as f:
        f.seek(victim.offset + 20)
        f.write(b"\xff\xff")
    out = tmp_path / "conv.h5"
    assert main(["convert", str(raw), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"damaged at byte offset {victim.offset}" in err
    assert f"skipped bytes {victim.offset}-{after.offset}" in err
    with open_recording(out) as conv, open_recording(h5) as full:
        full_rows = dict(zip(full.segments[0].lines["seq"].tolist(),
                             full.segments[0].samples[:], strict=True))
        conv_seqs = conv.segments[0].lines["seq"].tolist()
        # every line outside the damaged bytes, and none from them
        assert set(conv_seqs) == set(full_rows) - lost
        for seq, row in zip(conv_seqs, conv.segments[0].samples[:], strict=True):
            np.testing.assert_array_equal(row, full_rows[seq])
        assert conv.accounting["lines_lost_link"] == len(lost)
        assert "skipped bytes" in conv.attrs["capture_damage"]
    assert main(["convert", str(raw), "-o", str(out)]) == 2  # exists now
    assert main(["convert", str(tmp_path / "missing"), "-o", str(tmp_path / "x.h5")]) == 2


def test_convert_salvages_a_truncated_hdf5_recording(tmp_path, capsys):
    h5, _ = _record(tmp_path, 40)
    cut = tmp_path / "cut.h5"
    data = h5.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    assert main(["convert", str(cut), "-o", str(tmp_path / "fixed.h5")]) == 0
    assert f"truncated at byte offset {len(data) * 2 // 3}" in capsys.readouterr().out
    with open_recording(tmp_path / "fixed.h5") as rec:
        assert rec.n_lines > 0 and verify_recording(rec) == []


def test_export_png_and_npz(tmp_path, capsys):
    h5, _ = _record(tmp_path, 5)
    png_dir = tmp_path / "png"
    assert main(["export", str(h5), "--png", str(png_dir), "--size", "320x240"]) == 0
    files = sorted(png_dir.iterdir())
    assert [p.name for p in files] == [f"frame_{k:06d}.png" for k in range(5)]
    with open_recording(h5) as rec:
        expected = [fr.image for fr in iter_frame_images(rec, size=(240, 320))]
    for path, image in zip(files, expected, strict=True):
        pixels = decode_png(path.read_bytes())
        assert pixels.shape == (240, 320)
        np.testing.assert_array_equal(pixels, image)
    assert expected[0].max() > 200 and (expected[0] == 0).any()  # a picture, outside black
    assert main(["export", str(h5), "--png", str(png_dir)]) == 2  # not empty: refused
    assert main(["export", str(h5), "--png", str(png_dir), "--force"]) == 0

    npz = tmp_path / "rec.npz"
    assert main(["export", str(h5), "--npz", str(npz)]) == 0
    with np.load(npz) as z, open_recording(h5) as rec:
        seg = rec.segments[0]
        np.testing.assert_array_equal(z["samples"], seg.samples[:])
        np.testing.assert_array_equal(z["seq"], seg.lines["seq"])
        np.testing.assert_array_equal(z["timestamp_us"], seg.lines["timestamp_us"])
        assert z["frames_complete"].all() and len(z["frames_complete"]) == 5
        assert "sonobridge-sim" in str(z["device_info"])
    assert main(["export", str(h5), "--npz", str(npz)]) == 2
    capsys.readouterr()


def test_kill_9_keeps_both_files_readable_up_to_the_last_flush(tmp_path):
    """``python -m sonobridge.record.commands record`` (the same code as ``sonobridge record``)."""
    h5, raw = tmp_path / "k.h5", tmp_path / "k.sbcap"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sonobridge.record.commands", "record", sim_url(), "-o", str(h5),
         "--raw", str(raw), "--lines", "16", "--samples", "1024", "--prf", "4000",
         "--progress-interval", "0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    flushed_lines = flushed_raw_mb = 0.0
    try:
        for line in proc.stderr:
            m = re.search(r"on disk (\d+) lines, raw ([\d.]+) MB", line)
            if m:
                flushed_lines, flushed_raw_mb = int(m.group(1)), float(m.group(2))
                if flushed_lines >= 500 and flushed_raw_mb >= 1.0:
                    break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert flushed_lines >= 500, "the recorder never reported a flush"
    with open_recording(h5) as rec:  # plain open: no repair tool needed
        assert not rec.complete
        assert rec.n_lines >= flushed_lines
        assert verify_recording(rec) == []
        rows = rec.segments[0].samples[:]
        meta = rec.segments[0].lines
    reader = CaptureReader(raw, strict=False)
    chunks = [r.data for r in reader.records() if r.kind == 1]
    assert reader.damage is None or reader.damage.truncated
    assert reader.end_offset >= (flushed_raw_mb - 0.05) * 1e6  # printed to 0.1 MB
    dec = Decoder()
    lines = [m for c in chunks for m in dec.feed(c) if isinstance(m, EchoLine)]
    # the two files agree on everything both of them hold
    n = min(len(lines), len(rows))
    assert n >= min(flushed_lines, 500)
    assert [ln.seq for ln in lines[:n]] == meta["seq"][:n].tolist()
    for k in range(0, n, 97):
        np.testing.assert_array_equal(lines[k].samples, rows[k])
