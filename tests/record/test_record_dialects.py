"""Recordings from boards on their own firmware (issue 15): the twins of a pic0rick and an
Open Echo on real ptys, recorded with ``sonobridge record`` as a user runs it (no
``--dialect``), compared with the twins' ground truth bit for bit; the file names the dialect
and the assumed DEVICE_INFO values; replay and export work on it; raw captures of these boards
are refused by convert and replay, clearly."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import h5py
import numpy as np
import pytest

from sonobridge.protocol.boards import open_echo, pic0rick_shell
from sonobridge.record import CaptureReader, open_recording
from sonobridge.record.commands import main
from sonobridge.record.meta import DEFAULT_DIALECT
from sonobridge.record.urlhandler.protocol_replay import replay_url

from ..device.device_fixtures import twin_on_pty
from .record_fixtures import decode_png, sim_url

#: twin (``board`` or ``board:variant``) → (the dialect detection must find, the values its
#: DEVICE_INFO assumes)
BOARDS = {
    "pic0rick": ("pic0rick-shell", pic0rick_shell.NOMINAL_FIELDS),
    "open-echo": ("open-echo", open_echo.NOMINAL_FIELDS),
}


def _same_fields(got: dict[str, str], nominal: dict[str, str]) -> bool:
    """The same assumed fields, each with its reason (a measured one may replace the text)."""
    return set(got) == set(nominal) and all(isinstance(v, str) and v for v in got.values())


def _truth(engine) -> list[np.ndarray]:
    """The samples of every firing the twin made, in order."""
    with engine.lock:
        truth = list(engine.board.truth)
    return [t if isinstance(t, np.ndarray) else t.samples for t in truth]


def _rows(h5: Path) -> np.ndarray:
    with open_recording(h5) as rec:
        assert len(rec.segments) == 1
        return rec.segments[0].samples[:]


@pytest.fixture(scope="module", params=list(BOARDS))
def twin_recording(request, tmp_path_factory):
    """``sonobridge record PORT -o x.h5 --raw x.sbcap --seconds 2`` against a twin, no
    ``--dialect``: (board, h5, raw capture, the twin's truth, record's printout)."""
    board = request.param
    tmp = tmp_path_factory.mktemp(board.replace(":", "-"))
    h5, raw = tmp / "x.h5", tmp / "x.sbcap"
    printed = io.StringIO()
    twin, _, variant = board.partition(":")
    with twin_on_pty(twin, variant) as (engine, port), contextlib.redirect_stdout(printed), \
            contextlib.redirect_stderr(printed):
        code = main(["record", port, "-o", str(h5), "--raw", str(raw), "--seconds", "2"])
        truth = _truth(engine)
    assert code == 0, printed.getvalue()
    return board, h5, raw, truth, printed.getvalue()


def test_the_recorded_lines_are_the_boards_firings_bit_for_bit(twin_recording):
    board, h5, _raw, truth, _printed = twin_recording
    rows = _rows(h5)
    assert len(rows) >= 5, "two seconds hold several firings of either board"
    if board == "pic0rick":
        # the host asks for every capture and waits for every dump before it stops: the file
        # holds all of them, in order
        assert len(rows) == len(truth)
        for k, (row, sent) in enumerate(zip(rows, truth, strict=True)):
            np.testing.assert_array_equal(row, sent, err_msg=f"capture {k}")
    else:
        # the board streams from reset: the host's gate kept a contiguous run of its pings
        first = next(k for k, sent in enumerate(truth) if np.array_equal(sent, rows[0]))
        assert first + len(rows) <= len(truth)
        for k, row in enumerate(rows):
            np.testing.assert_array_equal(row, truth[first + k], err_msg=f"ping {first + k}")
    with open_recording(h5) as rec:
        acc = rec.accounting
        assert acc["lines_recorded"] == len(rows) and acc["lines_missing"] == 0
        assert rec.frames["complete"].all() and len(rec.frames) == len(rows)


def test_the_recording_names_the_dialect_and_the_assumed_values(twin_recording):
    board, h5, raw, _truth, printed = twin_recording
    dialect, nominal = BOARDS[board]
    assert nominal, "the twins' boards cannot announce everything"
    with open_recording(h5) as rec:
        assert rec.dialect == dialect
        assert _same_fields(rec.nominal_fields, nominal)
        assert rec.stats["dialect"] == dialect
        assert set(nominal) <= set(rec.device_info_dict)
    with h5py.File(h5, "r") as f:  # plain h5py: root attributes, the nominal fields as JSON
        assert f.attrs["dialect"] == dialect
        assert _same_fields(json.loads(f.attrs["nominal_fields"]), nominal)
        assert "dialect" not in f["device_info"].attrs  # the group holds DEVICE_INFO only
    # record said so before the data flowed, and its summary is the plain accounting
    assert f"the board speaks the {dialect} dialect" in printed
    assert all(name in printed for name in nominal) and "lost lines: 0" in printed
    events = [ev for _t, ev in CaptureReader(raw).events() if ev.get("type") == "device_info"]
    assert events and events[0]["dialect"] == dialect
    assert _same_fields(events[0]["nominal_fields"], nominal)


def test_a_replay_of_the_recording_plays_the_same_lines(twin_recording, tmp_path):
    board, h5, _raw, _truth, _printed = twin_recording
    rows = _rows(h5)
    again = tmp_path / "again.h5"
    url = replay_url(str(h5), speed=math.inf, loop=False)
    assert main(["record", url, "-o", str(again), "--frames", str(len(rows))]) == 0
    np.testing.assert_array_equal(_rows(again), rows)
    with open_recording(again) as rec:
        # the replay board speaks v1, and says whose recording it plays
        assert rec.dialect == DEFAULT_DIALECT and rec.nominal_fields == {}
        assert any(f"speaking the {BOARDS[board][0]} dialect" in text
                   for text in rec.stats["logs"])


def test_export_writes_a_png_per_firing_and_the_npz(twin_recording, tmp_path):
    board, h5, _raw, _truth, _printed = twin_recording
    rows = _rows(h5)
    png_dir, npz = tmp_path / "png", tmp_path / "x.npz"
    assert main(["export", str(h5), "--png", str(png_dir)]) == 0
    pngs = sorted(png_dir.glob("frame_*.png"))
    assert len(pngs) == len(rows)  # one line per frame: a picture per firing
    first = decode_png(pngs[0].read_bytes())
    if board.startswith("open-echo"):
        # envelope samples (the TUSS4470 detects it): drawn as sent, depth down, the ADC's
        # codes onto 0..255 (u8 codes unchanged)
        with open_recording(h5) as rec:
            top = 2 ** int(rec.segments[0].attrs["adc_bits"]) - 1
        np.testing.assert_array_equal(first[:, 0], np.round(rows[0] * (255 / top)))
    else:
        assert first.shape[1] == 1 and first.any()  # demodulated RF of the one fixed beam
    assert main(["export", str(h5), "--npz", str(npz)]) == 0
    with np.load(npz) as z:
        np.testing.assert_array_equal(z["samples"], rows)
        assert str(z["dialect"]) == BOARDS[board][0]
        assert _same_fields(json.loads(str(z["nominal_fields"])), BOARDS[board][1])


def test_convert_and_replay_refuse_a_raw_capture_of_another_dialect(twin_recording, tmp_path,
                                                                   capsys):
    board, _h5, raw, _truth, _printed = twin_recording
    out = tmp_path / "converted.h5"
    assert main(["convert", str(raw), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"spoke {BOARDS[board][0]}" in err and "HDF5 recording" in err
    assert not out.exists()  # refused before anything was written
    assert main(["replay", str(raw), "--url"]) == 2
    err = capsys.readouterr().err
    assert f"spoke {BOARDS[board][0]}" in err and "replay the HDF5 recording" in err


def test_a_sonobridge_board_is_recorded_as_v1_with_nothing_assumed(tmp_path):
    h5, raw = tmp_path / "v1.h5", tmp_path / "v1.sbcap"
    assert main(["record", sim_url(), "-o", str(h5), "--raw", str(raw), "--frames", "2",
                 "--lines", "4", "--samples", "256", "--prf", "4000"]) == 0
    with open_recording(h5) as rec:
        assert rec.dialect == "sonobridge-v1" and rec.nominal_fields == {}
    # and such a capture still converts
    assert main(["convert", str(raw), "-o", str(tmp_path / "c.h5")]) == 0
    with open_recording(tmp_path / "c.h5") as rec:
        assert rec.dialect == "sonobridge-v1" and rec.n_lines == 8


def test_a_file_from_before_dialects_reads_as_v1(tmp_path):
    h5 = tmp_path / "v1.h5"
    assert main(["record", sim_url(), "-o", str(h5), "--frames", "1", "--lines", "4",
                 "--samples", "256", "--prf", "4000"]) == 0
    with h5py.File(h5, "r+") as f:
        del f.attrs["dialect"], f.attrs["nominal_fields"]
    with open_recording(h5) as rec:
        assert rec.dialect == DEFAULT_DIALECT and rec.nominal_fields == {}


def test_stream_plays_the_replay_url_to_its_end(twin_recording, capsys):
    from sonobridge.cli import main as cli_main

    _board, h5, _raw, _truth, _printed = twin_recording
    n = len(_rows(h5))
    assert main(["replay", str(h5), "--url", "--fast"]) == 0
    url = capsys.readouterr().out.strip()
    # `stream "$(sonobridge replay x.h5 --url --fast)"`: it ends with the recording
    assert cli_main(["stream", url, "--seconds", "20"]) == 0
    out = capsys.readouterr()
    assert f"lines expected {n} = received {n} + lost 0" in out.out + out.err
