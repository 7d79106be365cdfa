"""Boards people already own, in the viewer: each twin on a real pty, found without --dialect.

An Open Echo gets the echogram (the sea floor a bright band at its depth, the newest ping on
the right); a pic0rick gets A-mode and M-mode (the wires at their depths), neither a B-mode.
The pixel checks read the PNG the snapshot wrote, at the places the window's axes map to.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore, QtGui

from sonobridge.device import open_device
from sonobridge.dsp.echogram import envelope_to_grey, peak_decimate
from sonobridge.protocol.boards import open_echo, pic0rick_shell
from sonobridge.sim import load_phantom
from sonobridge.sim.profile import load_profile
from sonobridge.sim.twins.open_echo import FLOOR_DEPTH_M
from sonobridge.viewer import run_viewer
from sonobridge.viewer.presets import ECHOGRAM, SCANNER, SINGLE_ELEMENT, preset_for
from sonobridge.viewer.window import ViewerWindow

from ..device.device_fixtures import twin_on_pty


def grey(path) -> np.ndarray:
    """A PNG as a (H, W) grey uint8 array."""
    image = QtGui.QImage(str(path)).convertToFormat(QtGui.QImage.Format.Format_Grayscale8)
    ptr = image.constBits()
    return np.array(ptr, dtype=np.uint8).reshape(image.height(), image.bytesPerLine())[
        :, : image.width()].copy()


def window_pixel(win, widget, view_box, x: float, y: float) -> tuple[int, int]:
    """(row, col) in the window's picture of the point (x, y) of a plot's view box."""
    scene = view_box.mapViewToScene(QtCore.QPointF(x, y))
    local = widget.mapFromScene(scene)
    point = widget.mapTo(win, local)
    return point.y(), point.x()


@pytest.fixture
def snapshot_spy(monkeypatch):
    """Calls ``inspect(window)`` right before the snapshot is taken; collects its results."""
    seen: list = []
    original = ViewerWindow.snapshot

    def install(inspect):
        def spying(self, *args, **kwargs):
            seen.append(inspect(self))
            return original(self, *args, **kwargs)

        monkeypatch.setattr(ViewerWindow, "snapshot", spying)
        return seen

    return install


def test_open_echo_shows_an_echogram_with_the_floor_at_its_depth(qtbot, tmp_path, capsys,
                                                                 snapshot_spy):
    depths = {"floor": FLOOR_DEPTH_M + 0.05, "water": FLOOR_DEPTH_M - 0.6}

    def inspect(win):
        vb = win.echogram.plot.getViewBox()
        spots = {(name, ago): window_pixel(win, win.echogram, vb, -ago - 0.5, depth)
                 for name, depth in depths.items() for ago in (0, 2, 4, 300)}
        return {"spots": spots, "bmode": win.bmode.isVisible(),
                "panels": win.panels.isVisible(), "echogram": win.echogram.isVisible(),
                "poller": win.status_poller, "board": win.status_board.text(),
                "health": win.status.device.text(), "frame": win.last_frame}

    seen = snapshot_spy(inspect)
    out = tmp_path / "echo.png"
    with twin_on_pty("open-echo") as (_, port):
        assert run_viewer(port, snapshot=out, frames=10, timeout_s=30) == 0
    captured = capsys.readouterr()
    assert str(out) in captured.out and "Traceback" not in captured.err
    state = seen[-1]
    assert state["echogram"] and not state["bmode"] and not state["panels"]
    assert state["poller"] is None  # no STATUS asked of a board that has none
    assert "open-echo" in state["board"] and "°C" not in state["health"]
    frame = state["frame"]
    assert frame.echogram and frame.rf is None
    # the echogram's depth axis is the water's: 1800 samples of 13.2 µs reach 17.6 m
    uno = next(v for v in open_echo.VARIANTS if v.name == "uno-r3")
    assert frame.depth_m[-1] == pytest.approx(
        open_echo.SOUND_SPEED_M_S * (uno.n_samples - 1) * uno.sample_period_s / 2, rel=0.01)
    assert frame.depth_m[-1] == pytest.approx(17.6, abs=0.05)
    shot = grey(out)

    def peak(name: str, ago: int) -> int:
        r, c = state["spots"][(name, ago)]
        return int(shot[r - 3 : r + 4, c].max())

    for ago in (0, 2, 4):  # the newest pings, at the right edge
        assert peak("floor", ago) > 150, (ago, peak("floor", ago))
        assert peak("water", ago) < 90, (ago, peak("water", ago))
    # 300 pings ago nothing had arrived yet: the pings fill the picture from the right
    assert peak("floor", 300) < 20
    c_new, c_old = state["spots"][("floor", 0)][1], state["spots"][("floor", 300)][1]
    assert c_new > c_old


def test_pic0rick_shows_a_and_m_mode_with_the_wires_at_their_depths(qtbot, tmp_path, capsys,
                                                                    snapshot_spy):
    wires = sorted(z for x, z, _ in load_phantom("wire").truth()["points"] if x == 0.0)
    between = [z + 0.005 for z in wires[:3]]

    def inspect(win):
        vb = win.panels.mmode_plot.getViewBox()
        # a column of the newest firings, clear of the yellow cursor at the write index
        newest = win.last_frame.mmode_write - 1.5
        spots = {z: window_pixel(win, win.panels.mmode_plot, vb, newest, z * 100)
                 for z in wires[:3] + between}
        pw = win.tabs.indexOf(win.pw_plot)
        return {"spots": spots, "frame": win.last_frame, "bmode": win.bmode.isVisible(),
                "panels": win.panels.isVisible(), "pw": win.tabs.isTabVisible(pw),
                "poller": win.status_poller, "health": win.status.device.text(),
                "depth_enabled": win.depth_spin.isEnabled()}

    seen = snapshot_spy(inspect)
    out = tmp_path / "pic0rick.png"
    with twin_on_pty("pic0rick") as (_, port):
        assert run_viewer(port, snapshot=out, frames=3, timeout_s=30) == 0
    assert "Traceback" not in capsys.readouterr().err
    state = seen[-1]
    assert state["panels"] and not state["bmode"] and not state["pw"]
    assert state["poller"] is None and "°C" not in state["health"]
    assert not state["depth_enabled"]  # 8000 samples, always
    frame = state["frame"]
    # 8000 samples at 60 MS/s in soft tissue: 10.3 cm
    assert frame.depth_m[-1] == pytest.approx(
        1540 * (pic0rick_shell.N_SAMPLES - 1) / pic0rick_shell.SAMPLE_RATE_HZ / 2, rel=0.01)
    env = frame.envelope
    floor = float(np.median(env))
    for z in wires[:5]:  # the sixth is faint after 12 cm of round trip at 5 MHz
        near = np.abs(frame.depth_m - z) < 0.001
        assert env[near].max() > 10 * floor, z
        assert abs(frame.depth_m[near][np.argmax(env[near])] - z) < 0.0005, z
    shot = grey(out)
    # on the M-mode, the wires are white; the phantom's faint background between them is not
    for z in wires[:3]:
        r, c = state["spots"][z]
        assert shot[r - 2 : r + 3, c].max() > 200, z
    for z in between:
        r, c = state["spots"][z]
        assert shot[r - 2 : r + 3, c].max() < 170, z


def test_a_depth_on_a_fixed_length_board_is_refused_with_the_reason(qtbot, tmp_path, capsys):
    out = tmp_path / "x.png"
    with twin_on_pty("pic0rick") as (_, port):
        assert run_viewer(port, snapshot=out, frames=1, depth_cm=5) == 2
    err = capsys.readouterr().err
    assert "--depth-cm 5" in err and "fixed 8000 samples" in err and "10.3 cm" in err
    assert not out.exists()


def test_the_controls_offer_what_the_board_can_do_and_survive_refusals(qtbot):
    with twin_on_pty("open-echo") as (_, port):
        dev = open_device(port, queue_frames=2)
        win = ViewerWindow(dev)
        qtbot.addWidget(win)
        try:
            assert win.preset is ECHOGRAM
            assert not win.depth_spin.isEnabled() and win.depth_spin.suffix() == " m"
            assert not win.controls.prf_spin.isEnabled()  # the board pings at its own pace
            assert win.controls.lines_spin.maximum() == open_echo.MAX_LINES_PER_SWEEP
            assert not win.tgc_slope.isEnabled()  # its gain is the firmware's
            win.apply_acquisition(prf_hz=3)
            qtbot.waitUntil(lambda: "prf_hz" in win.error_label.text(), timeout=5000)
            win.apply_acquisition(lines=4)  # the host's grouping of pings: accepted
            qtbot.waitUntil(lambda: win.error_label.text() == ""
                            and dev.config.lines_per_frame == 4, timeout=5000)
            win.start_streaming()
            qtbot.waitUntil(lambda: win.last_frame is not None and win.last_frame.n_lines == 4,
                            timeout=10000)
            # every ping of the frame is a column, not just one of them
            pushed = win.last_frame.mmode.any(axis=0)
            assert pushed[-4:].all() and pushed.sum() % 4 == 0
        finally:
            win.close()
            dev.close()
    with twin_on_pty("pic0rick") as (engine, port):
        dev = open_device(port, queue_frames=2)
        win = ViewerWindow(dev)
        qtbot.addWidget(win)
        try:
            assert win.preset is SINGLE_ELEMENT
            gain = win.controls.tgc_sliders[0]
            assert (gain.minimum(), gain.maximum()) == (8, 55)  # the AD8331's 7.5–55.5 dB
            assert not any(s.isVisibleTo(win) for s in win.controls.tgc_sliders[1:])
            gain.setValue(40)

            def dac_code() -> int:
                with engine.lock:
                    return engine.board._dac_code

            code = round((40 - pic0rick_shell.GAIN_MIN_DB)
                         / (pic0rick_shell.GAIN_MAX_DB - pic0rick_shell.GAIN_MIN_DB)
                         * pic0rick_shell.DAC_MAX_CODE)
            qtbot.waitUntil(lambda: dac_code() == code, timeout=5000)
            win.apply_acquisition(prf_hz=500)  # far beyond a shell's dumps per second
            qtbot.waitUntil(lambda: "prf_hz" in win.error_label.text(), timeout=5000)
        finally:
            win.close()
            dev.close()


def test_the_preset_rule():
    uno = next(v for v in open_echo.VARIANTS if v.name == "uno-r3")
    echo = open_echo.device_info(uno)
    assert preset_for(echo, "open-echo") is ECHOGRAM
    # a recording of one, replayed through protocol v1, is still a sonar
    assert preset_for(echo, "sonobridge-v1") is ECHOGRAM
    assert preset_for(pic0rick_shell.device_info(), "pic0rick-shell") is SINGLE_ELEMENT
    assert preset_for(load_profile("sim").info, "sonobridge-v1") is SCANNER
    # --sound-speed: another medium, the same layout
    sea = preset_for(echo, "open-echo", sound_speed_m_s=1520.0)
    assert sea.sound_speed_m_s == 1520.0 and sea.echogram and sea.name == ECHOGRAM.name
    assert preset_for(echo, "open-echo", open_echo.SOUND_SPEED_M_S) is ECHOGRAM


def test_an_echogram_keeps_a_thin_echo_and_the_boards_own_scale():
    line = np.zeros(1800, dtype=np.uint8)
    line[1001] = 200  # one sample thick
    rows = peak_decimate(line[np.newaxis], 4, axis=-1)
    assert rows.shape == (1, 450) and rows[0, 250] == 200 and rows.sum() == 200
    assert peak_decimate(np.arange(10), 4).tolist() == [3, 7, 9]
    # no compression: the codes are the log amplifier's, shown linearly
    assert envelope_to_grey(np.array([0, 51, 255]), 8).tolist() == [0, 51, 255]
    assert envelope_to_grey(np.array([0, 1023]), 10).tolist() == [0, 255]
    assert envelope_to_grey(np.array([100, 200]), 8, gain_db=6.0206).tolist() == [200, 255]
