"""The live viewer, offscreen: frames arrive, images are right, controls act on the board."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time

import numpy as np
import pytest
from PySide6 import QtCore, QtGui

from sonobridge.sim import load_phantom
from sonobridge.sim.urlhandler.protocol_sim import engine_for


def screenshot(widget) -> np.ndarray:
    """The widget as a (H, W) grey uint8 array."""
    image = widget.grab().toImage().convertToFormat(QtGui.QImage.Format.Format_Grayscale8)
    ptr = image.constBits()
    return np.array(ptr, dtype=np.uint8).reshape(image.height(), image.bytesPerLine())[
        :, : image.width()]


def to_pixel(win, x_m: float, z_m: float) -> tuple[int, int]:
    """Widget pixel (row, col) of a physical point in the B-mode plot."""
    vb = win.bmode_plot.getViewBox()
    scene = vb.mapViewToScene(QtCore.QPointF(x_m * 100, z_m * 100))
    pt = win.bmode_plot.mapFromScene(scene)
    return round(pt.y()), round(pt.x())


def start_and_wait(qtbot, win, frames: int) -> None:
    """Start streaming and wait until ``frames`` more frames were drawn."""
    target = win.frames_drawn + frames
    win.start_streaming()
    qtbot.waitUntil(lambda: win.frames_drawn >= target, timeout=20000)


def test_window_opens_and_frames_arrive(qtbot, viewer):
    win, dev, _ = viewer
    start_and_wait(qtbot, win, 5)
    assert win.last_frame.image.shape == (512, 512)
    assert win.last_frame.complete
    assert dev.streaming
    win._update_status()
    assert "frames/s" in win.status_rates.text()
    assert "sonobridge-sim" in win.status_board.text()


def test_wire_is_bright_where_its_true_position_maps(qtbot, viewer):
    win, dev, _ = viewer
    dev.configure(depth_m=0.06, lines_per_frame=128)
    start_and_wait(qtbot, win, 6)
    shot = screenshot(win.bmode_plot)
    fov = shot[shot > 0]
    for x, z, _amp in load_phantom("wire").truth()["points"]:
        if z > 0.055:
            continue  # the deepest wire sits on the edge of the 6 cm image
        r, c = to_pixel(win, x, z)
        peak = shot[r - 3 : r + 4, c - 3 : c + 4].max()
        assert peak > 200, f"wire at x={x * 100} cm z={z * 100} cm is dark ({peak})"
        assert peak > np.percentile(fov, 95)


def test_lite_preset_draws_fewer_pixels_and_the_side_panels_twice_a_second(qtbot):
    from sonobridge.device import open_device
    from sonobridge.viewer.window import LITE_OUT_SHAPE, LITE_PANEL_INTERVAL_S, ViewerWindow

    dev = open_device("sim://?phantom=wire&name=viewer-lite", queue_frames=2)
    win = ViewerWindow(dev, lite=True)
    qtbot.addWidget(win)
    win.show()
    try:
        drawn: list[float] = []
        panels_draw = win.panels.draw
        win.panels.draw = lambda frame: (drawn.append(time.monotonic()), panels_draw(frame))
        dev.configure(depth_m=0.06, lines_per_frame=128)
        start_and_wait(qtbot, win, 12)
        assert win.last_frame.image.shape == LITE_OUT_SHAPE
        # the first two frames always draw them; after that at most twice a second
        assert len(drawn) < win.frames_drawn
        assert (np.diff(drawn[2:]) >= LITE_PANEL_INTERVAL_S - 0.01).all()
        # and the picture is still right: the wires are bright at their true pixels
        shot = screenshot(win.bmode_plot)
        for x, z, _amp in load_phantom("wire").truth()["points"]:
            if z <= 0.055:
                r, c = to_pixel(win, x, z)
                assert shot[r - 3 : r + 4, c - 3 : c + 4].max() > 200, (x, z)
    finally:
        win.close()
        dev.close()


@pytest.mark.parametrize("viewer", [{"phantom": "cyst"}], indirect=True)
def test_cyst_is_dark(qtbot, viewer):
    win, dev, _ = viewer
    dev.configure(depth_m=0.06, lines_per_frame=128)
    start_and_wait(qtbot, win, 6)
    shot = screenshot(win.bmode_plot).astype(float)
    x, z, radius, _contrast = next(i for i in load_phantom("cyst").truth()["inclusions"]
                                   if i[3] == 0.0)
    r, c = to_pixel(win, x, z)
    r_edge, _ = to_pixel(win, x, z + radius)
    rad_px = abs(r_edge - r)
    rows, cols = np.ogrid[: shot.shape[0], : shot.shape[1]]
    dist = np.hypot(rows - r, cols - c)
    inside = shot[dist < 0.6 * rad_px].mean()
    around = shot[(dist > 1.4 * rad_px) & (dist < 2.2 * rad_px)].mean()
    assert inside < 0.3 * around, (inside, around)


def test_raising_gain_raises_brightness(qtbot, viewer):
    win, _, _ = viewer
    start_and_wait(qtbot, win, 4)
    before = win.last_frame.image[win.last_frame.image > 0].mean()
    win.gain_slider.setValue(15)
    n = win.frames_drawn
    qtbot.waitUntil(lambda: win.frames_drawn >= n + 4, timeout=20000)
    after = win.last_frame.image[win.last_frame.image > 0].mean()
    assert after > before + 20


def test_changing_depth_reconfigures_the_board_and_the_axes(qtbot, viewer):
    win, _, url = viewer
    start_and_wait(qtbot, win, 2)
    win.apply_acquisition(depth_cm=3.0)
    board = engine_for(url).board

    def reconfigured() -> bool:
        f = win.last_frame
        return (f is not None and abs(f.extent_m[3] - 0.03) < 0.001
                and board.config.samples_per_line < 1700)

    qtbot.waitUntil(reconfigured, timeout=20000)
    y_max = win.bmode_plot.getViewBox().viewRange()[1][1]
    assert 3.0 <= y_max < 3.5
    assert win.depth_spin.value() == pytest.approx(3.0, abs=0.05)
    assert win.error_label.text() == ""


def test_invalid_settings_are_refused_with_a_message(qtbot, viewer):
    win, _, url = viewer
    win.apply_acquisition(prf_hz=10**6)
    qtbot.waitUntil(lambda: "prf_hz" in win.error_label.text(), timeout=5000)
    assert "allowed" in win.error_label.text()
    assert engine_for(url).board.config_id == 0  # nothing reached the board


def test_tgc_controls_send_the_curve_to_the_board(qtbot, viewer):
    win, _, url = viewer
    win.tgc_slope.setValue(2.0)
    board = engine_for(url).board
    qtbot.waitUntil(lambda: board.config_id >= 1 and board.config.tgc_count == 8, timeout=5000)
    gains = board.config.tgc_db
    assert gains[0] == pytest.approx(0.0, abs=0.01)
    assert all(b > a for a, b in itertools.pairwise(gains))


def test_clicking_the_bmode_selects_a_line(qtbot, viewer):
    win, dev, _ = viewer
    dev.configure(lines_per_frame=64)
    start_and_wait(qtbot, win, 2)
    line = win.select_line_at(0.01, 0.03)  # right of centre
    assert line is not None and line > 32
    # frames already in flight were processed with the old line; a later one has the new one
    qtbot.waitUntil(lambda: win.last_frame.selected_line == line, timeout=10000)
    marker_x, _ = win.line_marker.getData()
    assert marker_x[-1] > 0  # the dashed marker moved to the right half


def test_space_toggles_streaming(qtbot, viewer):
    win, dev, _ = viewer
    start_and_wait(qtbot, win, 2)
    qtbot.keyClick(win, QtCore.Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not dev.streaming and win.start_button.text().startswith("Start"),
                    timeout=5000)


def test_mmode_is_a_ring_drawn_in_place(qtbot, viewer):
    win, _, _ = viewer
    start_and_wait(qtbot, win, 5)
    f = win.last_frame
    assert f.mmode.shape[1] == 400 and f.mmode.shape[0] <= 512
    assert f.mmode.flags.c_contiguous
    assert f.mmode_write > 0
    assert f.mmode[:, f.mmode_write - 1].any()  # newest column written
    assert not f.mmode[:, (f.mmode_write + 10) % 400].any()  # not yet reached
    assert f.mmode_depth_m.size == f.mmode.shape[0]


@pytest.mark.parametrize("viewer", [{"faults": "disconnect=0.6@0.3"}], indirect=True)
def test_disconnect_banner_appears_and_clears(qtbot, viewer):
    win, dev, _ = viewer
    start_and_wait(qtbot, win, 2)
    qtbot.waitUntil(win.banner.isVisible, timeout=10000)
    assert "disconnected" in win.banner.text()
    qtbot.waitUntil(lambda: not win.banner.isVisible(), timeout=10000)
    n = win.frames_drawn
    qtbot.waitUntil(lambda: win.frames_drawn > n + 2, timeout=10000)
    assert dev.stats.reconnects == 1


def test_snapshot_cli_writes_a_valid_png(tmp_path):
    out = tmp_path / "view.png"
    proc = subprocess.run(
        [sys.executable, "-m", "sonobridge", "view", "sim://?phantom=wire", "--snapshot",
         str(out), "--frames", "3"],
        capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert proc.returncode == 0, proc.stderr
    assert str(out) in proc.stdout and "lost lines: 0" in proc.stdout
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = QtGui.QImage(str(out))
    assert image.width() >= 800 and image.height() >= 500


def test_view_reports_a_protocol_mismatch(tmp_path, capsys):
    from sonobridge.sim.profile import BOARDS_DIR
    from sonobridge.viewer import run_viewer

    profile = tmp_path / "v2.toml"
    profile.write_text((BOARDS_DIR / "sim.toml").read_text().replace(
        "[capabilities]\n", "[capabilities]\nprotocol_version = 2\n"))
    code = run_viewer(f"sim://?profile={profile}", snapshot=tmp_path / "x.png", frames=1)
    assert code == 2
    assert "update sonobridge" in capsys.readouterr().err


def test_view_without_a_display_says_what_to_do(monkeypatch, capsys):
    from sonobridge.viewer import run_viewer

    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    assert run_viewer("sim://?phantom=wire") == 2
    err = capsys.readouterr().err
    assert "no display" in err and "--snapshot" in err
