"""Loss accounting with one vocabulary: on a faulty usb-fs session, what the device client
prints (``DeviceStats.summary()``), what the recording stores and what ``convert`` prints are
the same figures under the same names, and they add up to what the board really acquired:

    lines_expected = lines_received + lines_lost_link + lines_lost_device + lines_lost_host
                     + lines_cut_by_stop;  lines_received = lines_recorded + lines_not_recorded
"""

from __future__ import annotations

import itertools
import re
from importlib import resources
from pathlib import Path
from urllib.parse import urlencode

import pytest

from sonobridge.device import Device
from sonobridge.device.accounting import LossAccount
from sonobridge.protocol import EchoLine, FrameEnd
from sonobridge.record import Recorder, convert_capture, open_recording
from sonobridge.record.commands import main
from sonobridge.sim.urlhandler.protocol_sim import engine_for

from .record_fixtures import sim_drained, wait_until

_names = itertools.count()
LINES = 8
N_FRAMES = 60
# 8 × 512 i16 at PRF 4000 is about 4.3 MB/s: usb-fs (1 MB/s) makes the board drop lines itself
CONFIG = {"samples_per_line": 512, "lines_per_frame": LINES, "prf_hz": 4000}
SMALL = ["--lines", "8", "--samples", "512", "--prf", "4000"]
#: the accounting line every tool prints (LossAccount.text()), figures captured by name
ACCOUNT_RE = re.compile(
    r"lines expected (?P<lines_expected>\d+) = received (?P<lines_received>\d+) \+ lost "
    r"(?P<lines_missing>\d+) \+ cut by STOP (?P<lines_cut_by_stop>\d+); lost lines: \d+ "
    r"\((?P<lines_lost_link>\d+) on the link, (?P<lines_lost_device>\d+) dropped by the device, "
    r"(?P<lines_lost_host>\d+) by this host falling behind\)"
    r"(?:; received \d+ = recorded (?P<lines_recorded>\d+) \+ not recorded "
    r"(?P<lines_not_recorded>\d+))?")


def _faulty_usb_fs(tmp: Path, faults: str = "bitflip=6e-5", buffer_bytes: int = 65536) -> str:
    """A fresh in-process board on the usb-fs link profile, with link damage, truth kept.

    Its send buffer is 64 KiB instead of the simulated board's 4 MiB (4 s at usb-fs), so it
    overflows, and drops lines itself, within a run of a fraction of a second.
    """
    profile = tmp / "small-buffer.toml"
    text = (resources.files("sonobridge.sim") / "boards" / "sim.toml").read_text()
    small = re.sub(r"(?m)^send_buffer_bytes = \d+$", f"send_buffer_bytes = {buffer_bytes}", text)
    assert small != text
    profile.write_text(small)
    query = urlencode({"phantom": "wire", "truth": 1, "seed": 5, "link": "usb-fs",
                       "profile": str(profile), "faults": faults,
                       "name": f"accounting-{next(_names)}"})
    return f"sim://?{query}"


def _printed(text: str) -> dict[str, int]:
    """The figures of the one accounting line in ``text``, by name."""
    found = ACCOUNT_RE.findall(text)
    assert len(found) == 1, f"expected one accounting line in:\n{text}"
    m = ACCOUNT_RE.search(text)
    assert m is not None
    return {k: int(v) for k, v in m.groupdict().items() if v is not None}


def _truth(url: str) -> tuple[int, int, int, int]:
    """What the board really did: firings, lines it dropped, lines damaged on the link, and
    FRAME_ENDs damaged on the link."""
    engine = engine_for(url)
    with engine.lock:
        board = engine.board
        kinds = {seq: msg for seq, msg in board.truth}
        damaged = engine.injector.damaged_seqs()
        dropped = board.dropped_lines
        fired = board.dropped_lines + board.lines_sent
    lines = sum(isinstance(kinds.get(s), EchoLine) for s in damaged)
    ends = sum(isinstance(kinds.get(s), FrameEnd) for s in damaged)
    return fired, dropped, lines, ends


def test_stream_record_and_convert_print_the_same_account_of_a_faulty_usb_fs_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = _faulty_usb_fs(tmp_path)
    h5, raw, out = tmp_path / "a.h5", tmp_path / "a.sbcap", tmp_path / "c.h5"
    dev = Device(url)
    rec = Recorder(h5, raw).attach(dev)
    with dev:
        dev.open()
        dev.configure(**CONFIG)
        dev.start(n_frames=N_FRAMES)
        wait_until(lambda: sim_drained(url, dev), 15.0, "the board to send everything")
        dev.stop()
        dev.flush()
        dev.status()
        summary = rec.close(stopped=True)
        stats = dev.stats
        fired, dropped, damaged_lines, damaged_ends = _truth(url)

    # the run was faulty in both ways: the board dropped lines, the link damaged some
    assert fired == N_FRAMES * LINES and dropped > 0 and damaged_lines > 0
    stream = stats.account.check()
    assert stream.lines_received == fired - dropped - damaged_lines
    assert stream.lines_lost_host == 0 and stream.lines_cut_by_stop == 0
    if not damaged_ends:
        # every firing the board acquired is placed exactly once, under its true cause
        assert stream.lines_expected == fired
        assert (stream.lines_lost_link, stream.lines_lost_device) == (damaged_lines, dropped)
    else:
        # a sweep the board dropped whole whose FRAME_END the link then damaged leaves no
        # trace at all (nothing says it existed); each damaged FRAME_END can hide one
        assert fired - damaged_ends * LINES <= stream.lines_expected <= fired
    printed_stream = _printed(stats.summary())
    assert printed_stream == stream.as_dict()

    # the recording stores the same figures under the same names, plus its rows
    with open_recording(h5) as r:
        stored = dict(r.accounting)
        rows = r.n_lines
        recorded = r.loss_account.check()
    assert recorded.lines_recorded == rows == stream.lines_received
    assert recorded.lines_not_recorded == 0
    assert stored["lines_expected"] == fired
    same = {k: v for k, v in recorded.as_dict().items()
            if k not in ("lines_recorded", "lines_not_recorded")}
    assert same == stream.as_dict()
    assert _printed(summary.text()) == recorded.as_dict()

    # convert prints what its file stores, and that is the recording's account too
    capsys.readouterr()
    assert main(["convert", str(raw), "-o", str(out)]) == 0
    printed_convert = _printed(capsys.readouterr().out)
    with open_recording(out) as c:
        converted = dict(c.accounting)
    assert printed_convert == LossAccount.from_counts(converted).check().as_dict()
    assert converted == stored


def test_the_record_command_prints_what_it_stores_and_convert_agrees(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = _faulty_usb_fs(tmp_path)
    h5, raw, out = tmp_path / "r.h5", tmp_path / "r.sbcap", tmp_path / "c.h5"
    assert main(["record", url, "-o", str(h5), "--raw", str(raw), "--frames", str(N_FRAMES),
                 *SMALL]) == 0
    printed_record = _printed(capsys.readouterr().out)
    with open_recording(h5) as r:
        stored = dict(r.accounting)
    account = LossAccount.from_counts(stored).check()
    assert printed_record == account.as_dict()
    assert account.lines_lost_device > 0 and account.lines_lost_link > 0
    # every sweep of the run is accounted for (their FRAME_ENDs say what the board dropped),
    # bar one the board dropped whole and whose FRAME_END the link damaged: nothing shows it
    assert N_FRAMES * LINES - LINES <= account.lines_expected <= N_FRAMES * LINES
    assert main(["convert", str(raw), "-o", str(out)]) == 0
    assert _printed(capsys.readouterr().out) == printed_record


def test_a_recording_started_mid_session_accounts_from_its_own_start(tmp_path: Path) -> None:
    """The viewer's Record button: the device has streamed (and counted) for a while."""
    from sonobridge.record.viewer_hook import ViewerRecording

    url = _faulty_usb_fs(tmp_path)
    dev = Device(url)
    with dev:
        dev.open()
        dev.configure(**CONFIG)
        dev.start()
        wait_until(lambda: dev.stats.lines_received >= 100, 10.0, "a hundred lines")
        viewer = ViewerRecording(dev, tmp_path)
        wait_until(lambda: viewer.recorder.frames >= 5, 10.0, "five recorded frames")
        viewer.stop()  # the stream goes on, as in the viewer
        before_stop = dev.stats
        dev.stop()
    with open_recording(viewer.path) as r:
        acc = dict(r.accounting)
        account = r.loss_account.check()
        assert r.n_lines == acc["lines_recorded"]
    assert 0 < account.lines_recorded == acc["lines_received"] == viewer.recorder.lines
    assert acc["lines_not_recorded"] == 0
    # the whole session had more: the recording did not report the device's totals
    assert before_stop.lines_received > acc["lines_received"]
    assert acc["frames_complete"] + acc["frames_incomplete"] <= viewer.recorder.frames + 1


def test_a_flush_while_lines_still_arrive_is_repeated_by_convert(tmp_path: Path) -> None:
    """STOP, then flush and close while the board's send buffer still empties (4 MiB on the
    simulated board: seconds at usb-fs): the capture says where the client handed the partial
    sweep on, so the converted file assembles and counts the very same sweeps."""
    query = urlencode({"phantom": "wire", "seed": 5, "link": "usb-fs", "faults": "bitflip=6e-5",
                       "name": f"accounting-{next(_names)}"})
    url = f"sim://?{query}"
    h5, raw, out = tmp_path / "f.h5", tmp_path / "f.sbcap", tmp_path / "c.h5"
    dev = Device(url)
    rec = Recorder(h5, raw).attach(dev)
    with dev:
        dev.open()
        dev.configure(**CONFIG)
        dev.start()
        wait_until(lambda: rec.frames >= 20, 10.0, "twenty frames")
        dev.stop()
        dev.flush()  # the board is still sending what it queued before STOP
        arrived = rec.lines
        wait_until(lambda: rec.lines > arrived + LINES, 10.0, "lines after the flush")
        summary = rec.close(stopped=True)
    assert convert_capture(raw, out).error is None
    with open_recording(h5) as a, open_recording(out) as c:
        assert dict(c.accounting) == dict(a.accounting) == summary.accounting
        assert c.frames.tolist() == a.frames.tolist()
        LossAccount.from_counts(a.accounting).check()


def test_stream_waits_for_the_boards_backlog_before_it_counts(tmp_path: Path, capsys) -> None:
    """``stream`` on a link slower than the acquisition: the board's send buffer still holds
    half a second of sweeps at STOP; their FRAME_ENDs report the board's drops, so the
    summary is printed only after they arrived (``Device.settle``) and agrees with the board."""
    from sonobridge.cli import main as cli_main

    url = _faulty_usb_fs(tmp_path, faults="", buffer_bytes=512 * 1024)
    assert cli_main(["stream", url, "--seconds", "1", *SMALL]) == 0
    out = capsys.readouterr().out
    printed = _printed(out)
    # the board's own count, from the STATUS before START and the one after the drain
    m = re.search(r"the board dropped (\d+) lines since this session's START", out)
    assert m, out
    dropped = int(m.group(1))
    assert dropped > 1000  # the board really dropped lines: 4.3 MB/s offered to 1 MB/s
    # every line the board dropped is in the summary, except in the sweep STOP cut short: no
    # FRAME_END says how far it got, so its missing tail is put on the STOP when what arrived
    # is its first firings, else on the device, and if none of its lines arrived the client
    # never sees it (only the board's counter does). So they agree within that one sweep.
    device, cut = printed["lines_lost_device"], printed["lines_cut_by_stop"]
    assert abs((device + cut) - dropped) < LINES and cut < LINES
    assert printed["lines_lost_link"] == printed["lines_lost_host"] == 0
