"""Doppler in the viewer: colour flow over the B-mode, and the PW spectrogram at a gate."""

from __future__ import annotations

import numpy as np
import pytest

from sonobridge.sim.urlhandler.protocol_sim import engine_for

VESSEL = {"phantom": "vessel"}


def wait_frames(qtbot, win, n: int) -> None:
    target = win.frames_drawn + n
    qtbot.waitUntil(lambda: win.frames_drawn >= target, timeout=60000)


def pixel(win, x_m: float, z_m: float) -> tuple[int, int]:
    r, c = win.pipeline.converter.world_to_pixel(np.array([x_m]), np.array([z_m]))
    return round(float(r[0])), round(float(c[0]))


@pytest.mark.parametrize("viewer", [VESSEL], indirect=True)
def test_flow_toward_the_probe_is_red_and_away_is_blue(qtbot, viewer):
    win, dev, _ = viewer
    dev.configure(depth_m=0.045, lines_per_frame=32, sector_deg=30.0, ensemble_size=8,
                  prf_hz=3000)
    win.start_streaming()
    wait_frames(qtbot, win, 4)
    flow = win.last_frame.flow
    assert flow is not None and flow.shape == (512, 512, 4)
    artery = flow[pixel(win, 0.0, 0.020)]   # flows toward the transducer
    vein = flow[pixel(win, 0.0, 0.035)]     # flows away
    tissue = flow[pixel(win, 0.0, 0.028)]   # still speckle between them
    assert artery[3] == 255 and artery[0] > 150 and artery[2] < 60, artery
    assert vein[3] == 255 and vein[2] > 100 and vein[0] < 60, vein
    assert tissue[3] == 0, tissue
    assert win.flow_image.isVisible()
    assert win.last_frame.nyquist_m_s == pytest.approx(1540 * 3000 / (4 * 5e6))


@pytest.mark.parametrize("viewer", [VESSEL], indirect=True)
def test_pw_spectrogram_at_a_gate_placed_with_the_mouse(qtbot, viewer):
    win, dev, _ = viewer
    dev.configure(depth_m=0.045, lines_per_frame=32, sector_deg=30.0, ensemble_size=8,
                  prf_hz=3000)
    win.start_streaming()
    wait_frames(qtbot, win, 2)
    line = win.place_gate_at(0.0, 0.020)
    assert line is not None
    assert win.tabs.currentWidget() is win.pw_plot
    wait_frames(qtbot, win, 8)
    f = win.last_frame
    assert f.gate_depth_m == pytest.approx(0.020, abs=0.001)
    assert f.pw is not None and f.pw_write >= 6
    recent = f.pw[f.pw_write - 6 : f.pw_write].mean(axis=0)
    peak = f.pw_velocity_m_s[int(np.argmax(recent))]
    assert 0.05 < peak < f.nyquist_m_s  # the artery flows toward the probe at ~0.15 m/s


def test_ensemble_control_reconfigures_the_board(qtbot, viewer):
    win, _, url = viewer
    win.apply_acquisition(ensemble=4, lines=32)
    board = engine_for(url).board
    qtbot.waitUntil(lambda: board.config.ensemble_size == 4, timeout=10000)
    # the GUI learns of the finished command on its next poll
    qtbot.waitUntil(lambda: win.ensemble_spin.value() == 4 and win.error_label.text() == "",
                    timeout=5000)


def test_no_colour_flow_without_ensembles(qtbot, viewer):
    win, _, _ = viewer
    win.start_streaming()
    wait_frames(qtbot, win, 2)
    assert win.last_frame.flow is None and win.last_frame.pw is None
    assert not win.flow_image.isVisible()


def test_colour_flow_box_follows_the_ensemble(qtbot, viewer):
    win, dev, _ = viewer
    box = win.controls.flow_check
    assert dev.config is None or dev.config.ensemble_size == 1
    assert not box.isEnabled() and not box.isChecked()
    assert "ensemble" in box.toolTip() and "2" in box.toolTip()
    win.apply_acquisition(ensemble=4, lines=32)
    qtbot.waitUntil(box.isEnabled, timeout=10000)
    assert box.isChecked()  # the user's choice (on) comes back with the ensembles
    box.setChecked(False)
    assert not win.pipeline.settings.color_flow
    dev.configure(ensemble_size=1)  # from outside the controls: the box still follows
    qtbot.waitUntil(lambda: not box.isEnabled(), timeout=5000)
    dev.configure(ensemble_size=8)
    qtbot.waitUntil(box.isEnabled, timeout=5000)
    assert not box.isChecked()  # unticked by the user, so it stays unticked
