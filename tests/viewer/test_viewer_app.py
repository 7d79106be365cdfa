"""Starting the viewer as a new user meets it: bad snapshot paths, refused settings, the
picker's Cancel, an empty DISPLAY, the status bar in the picture, Qt's noise."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from sonobridge.viewer import app, run_demo, run_viewer
from sonobridge.viewer.window import ViewerWindow, _save_png_atomically

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("where", ["folder", "missing folder"])
def test_an_unusable_snapshot_path_ends_with_one_message(tmp_path, capsys, where):
    target = tmp_path if where == "folder" else tmp_path / "nonexistent" / "v.png"
    assert run_viewer("sim://?phantom=wire", snapshot=target, frames=1) == 1
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err
    assert str(target.parent if where != "folder" else target) in err
    assert _leftovers(tmp_path) == []


def test_a_failing_save_exits_1_once_and_leaves_no_file(qtbot, tmp_path, capsys, monkeypatch):
    calls = []

    def broken_grab(self, *args):
        calls.append(1)
        raise RuntimeError("the GPU went away")

    monkeypatch.setattr(ViewerWindow, "grab", broken_grab)
    out = tmp_path / "v.png"
    assert run_viewer("sim://?phantom=wire", snapshot=out, frames=1, timeout_s=30) == 1
    err = capsys.readouterr().err
    assert calls == [1]  # tried once: the old code retried every 50 ms, forever
    assert err.count("could not save the snapshot") == 1 and "the GPU went away" in err
    assert "Traceback" not in err
    assert _leftovers(tmp_path) == []


def test_a_png_that_fails_halfway_leaves_nothing_behind(tmp_path):
    class HalfWrite:
        def save(self, path: str, fmt: str) -> bool:
            with open(path, "wb") as f:
                f.write(PNG_MAGIC + b"truncated")
            return False

    with pytest.raises(OSError, match="could not write"):
        _save_png_atomically(HalfWrite(), tmp_path / "v.png", force=True)  # type: ignore[arg-type]
    assert _leftovers(tmp_path) == []


def test_an_existing_snapshot_is_kept_unless_force(qtbot, tmp_path, capsys):
    out = tmp_path / "v.png"
    out.write_bytes(b"mine")
    assert run_viewer("sim://?phantom=wire", snapshot=out, frames=1) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "--force" in err
    assert out.read_bytes() == b"mine"
    assert run_viewer("sim://?phantom=wire", snapshot=out, frames=1, force=True) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert _leftovers(tmp_path) == ["v.png"]


@pytest.mark.parametrize("frames", [0, -3])
def test_frames_below_one_are_refused(tmp_path, capsys, frames):
    assert run_viewer("sim://?phantom=wire", snapshot=tmp_path / "v.png", frames=frames) == 2
    assert "--frames must be 1 or more" in capsys.readouterr().err
    assert _leftovers(tmp_path) == []


def test_a_depth_the_board_refuses_does_not_open_the_viewer(qtbot, tmp_path, capsys):
    out = tmp_path / "v.png"
    assert run_viewer("sim://?phantom=wire", snapshot=out, frames=1, depth_cm=200) == 2
    err = capsys.readouterr().err
    assert "refused --depth-cm 200" in err
    assert not out.exists()


def test_the_status_bar_is_refreshed_right_before_the_snapshot(qtbot, tmp_path, capsys,
                                                               monkeypatch):
    events: list[str] = []
    rates: list[str] = []
    show, snapshot = ViewerWindow._update_status, ViewerWindow.snapshot

    def logged_update(self):
        events.append("status")
        show(self)

    def logged_snapshot(self, *args, **kwargs):
        events.append("snapshot")
        rates.append(self.status_rates.text())
        return snapshot(self, *args, **kwargs)

    monkeypatch.setattr(ViewerWindow, "_update_status", logged_update)
    monkeypatch.setattr(ViewerWindow, "snapshot", logged_snapshot)
    out = tmp_path / "v.png"
    assert run_viewer("sim://?phantom=wire", snapshot=out, frames=2) == 0
    assert events[-2:] == ["status", "snapshot"]
    # the picture shows the rates data arrived at, not the zeros of an unrefreshed bar
    frames_per_s, mb_per_s = (float(w) for w in re.findall(r"([\d.]+) (?:frames|MB)/s",
                                                            rates[-1]))
    assert frames_per_s > 0 and mb_per_s > 0, rates[-1]
    assert str(out) in capsys.readouterr().out


def test_the_saved_message_shows_the_whole_path(qtbot, viewer, tmp_path):
    win, _, _ = viewer
    deep = tmp_path / ("a-rather-long-folder-name-" * 4)
    deep.mkdir()
    path = win.snapshot(deep / "sonobridge-20260101-120000.png")
    label = win.controls.notice_label
    assert label.text() == f"saved {path}" and label.wordWrap()
    # the status bar's message area is what its permanent fields leave: the name fits there
    assert win.statusBar().currentMessage() == f"saved {path.name}"


def test_cancel_in_the_picker_says_how_to_pass_a_port(qtbot, monkeypatch, capsys):
    from sonobridge.viewer import picker

    monkeypatch.setattr(picker.PortPicker, "exec",
                        lambda self: QtWidgets.QDialog.DialogCode.Rejected)
    assert run_viewer(None) == 1
    err = capsys.readouterr().err
    assert "no port chosen" in err and "sonobridge view /dev/ttyACM0" in err


@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_display_is_no_display(monkeypatch, value):
    monkeypatch.setenv("DISPLAY", value)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not app.has_display()


def test_demo_with_an_empty_display_renders_a_png(qtbot, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DISPLAY", "")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    out = tmp_path / "demo.png"
    assert run_demo(snapshot=out, frames=1) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert "no display found" in capsys.readouterr().out
    assert "DISPLAY" not in os.environ  # set but empty is forgotten, so Qt never tries it


def test_qt_message_filter_drops_only_the_propagate_size_hints_warning(qtbot, qtlog):
    app._install_qt_message_filter()
    QtCore.qWarning("This plugin does not support propagateSizeHints()")
    QtCore.qWarning("a real problem")
    messages = [r.message for r in qtlog.records]
    assert "a real problem" in messages
    assert not any("propagateSizeHints" in m for m in messages)


@pytest.mark.parametrize("extra", [[], ["--lite"]])
def test_snapshot_cli_is_quiet_and_draws_the_picture(tmp_path, extra):
    out = tmp_path / "view.png"
    proc = subprocess.run(
        [sys.executable, "-m", "sonobridge", "view", "sim://?phantom=wire", "--snapshot",
         str(out), "--frames", "2", *extra],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "propagateSizeHints" not in proc.stderr
    assert QtGui.QImage(str(out)).width() >= 800


def test_a_failing_snapshot_button_says_why_in_the_window(qtbot, viewer, tmp_path, monkeypatch):
    win, _, _ = viewer
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()  # the current folder vanished: where the button saves
    win.controls.snapshot_button.click()
    assert win.error_label.text().startswith("snapshot: ")
    assert win.controls.notice_label.text() == ""
