"""Starting the viewer: interactive, or headless with ``--snapshot`` (tests and ``make demo``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

DEMO_PORT = "sim://?phantom=cyst&name=demo"


def has_display() -> bool:
    """True if a window can be shown (X11, Wayland, macOS or Windows)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _qt_app(headless: bool):
    if headless and not has_display():
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6 import QtWidgets

    return QtWidgets.QApplication.instance() or QtWidgets.QApplication(["sonobridge"])


def _open(port: str, headless: bool):
    """Open the device or explain why not (dialog when interactive, stderr when headless)."""
    from sonobridge.device import DeviceError, open_device

    try:
        return open_device(port, queue_frames=2)
    except DeviceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if not headless:
            from PySide6 import QtWidgets

            QtWidgets.QMessageBox.critical(None, "sonobridge: cannot open the board", str(exc))
        return None


def run_viewer(port: str | None, *, snapshot: str | Path | None = None, frames: int = 10,
               timeout_s: float = 60.0, depth_cm: float | None = None) -> int:
    """Show the live viewer; with ``snapshot``, draw ``frames`` frames offscreen and save a PNG."""
    headless = snapshot is not None
    if headless and port is None:
        print("error: --snapshot needs a PORT (e.g. sim://?phantom=cyst)", file=sys.stderr)
        return 2
    if not headless and not has_display() and os.environ.get("QT_QPA_PLATFORM") is None:
        print("error: no display found (DISPLAY and WAYLAND_DISPLAY are unset), so no window "
              "can open. Run it on a desktop session, or render a picture instead: "
              "sonobridge view PORT --snapshot out.png", file=sys.stderr)
        return 2
    app = _qt_app(headless)
    from PySide6 import QtCore, QtWidgets

    from .window import ViewerWindow

    if port is None:
        from .picker import PortPicker

        picker = PortPicker()
        if picker.exec() != QtWidgets.QDialog.DialogCode.Accepted or not picker.selected_port():
            return 1
        port = picker.selected_port()
    dev = _open(port, headless)
    if dev is None:
        return 2
    _install_recorder()
    if depth_cm is not None:
        try:
            dev.configure(depth_m=depth_cm / 100)
        except Exception as exc:  # a bad --depth-cm is reported, the viewer still opens
            print(f"error: {exc}", file=sys.stderr)
    win = ViewerWindow(dev)
    win.show()
    win.start_streaming()
    status = {"code": 0}
    if headless:
        deadline = QtCore.QElapsedTimer()
        deadline.start()

        def check() -> None:
            if win.frames_drawn >= frames:
                app.processEvents()
                path = win.snapshot(snapshot)
                print(path)
                print(dev.stats.summary())
                win.close()
                app.quit()
            elif deadline.elapsed() > timeout_s * 1000:
                print(f"error: only {win.frames_drawn} of {frames} frames drawn in {timeout_s} s"
                      f"\n{dev.stats.summary()}", file=sys.stderr)
                status["code"] = 1
                win.close()
                app.quit()

        timer = QtCore.QTimer()
        timer.timeout.connect(check)
        timer.start(50)
    code = app.exec()
    dev.close()
    return status["code"] or code


def _install_recorder() -> None:
    """Enable the record button when the recording package is present."""
    try:
        from sonobridge.record.viewer_hook import recorder_factory  # type: ignore[import-not-found]
    except ImportError:
        return
    from .window import ViewerWindow

    ViewerWindow.recorder_factory = staticmethod(recorder_factory)  # type: ignore[assignment]


def run_demo(snapshot: str | Path = "sonobridge-demo.png", frames: int = 10) -> int:
    """``make demo``: the viewer on the simulated board, or a headless snapshot with no display."""
    if has_display():
        return run_viewer(DEMO_PORT)
    print("no display found: rendering the simulated board's cyst phantom offscreen")
    return run_viewer(DEMO_PORT, snapshot=snapshot, frames=frames, depth_cm=6.0)
