"""The viewer's Record button writes a valid HDF5 recording with the same code as the CLI."""

from __future__ import annotations

import h5py


def test_record_button_records_to_hdf5(qtbot, viewer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from sonobridge.viewer.app import _install_recorder

    _install_recorder()
    win, dev, _ = viewer
    win.record_button.setEnabled(True)
    win.start_streaming()
    qtbot.waitUntil(lambda: win.frames_drawn >= 2, timeout=20000)
    qtbot.keyClick(win, "R")
    assert win.record_button.isChecked()
    n = dev.stats.lines_received
    qtbot.waitUntil(lambda: dev.stats.lines_received > n + 200, timeout=20000)
    qtbot.keyClick(win, "R")
    assert not win.record_button.isChecked()
    (path,) = tmp_path.glob("sonobridge-*.h5")
    with h5py.File(path, "r") as f:
        segments = f["segments"]
        rows = sum(segments[name]["samples"].shape[0] for name in segments)
    assert rows >= 200
