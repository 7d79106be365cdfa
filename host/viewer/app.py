"""Starting the viewer: interactive, or headless with ``--snapshot`` (tests and ``make demo``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .platform_check import check_xcb

DEMO_PORT = "sim://?phantom=cyst&name=demo"

#: set to N, the interactive viewer exits 0 after N frames were drawn *and painted*, printing
#: how many and on which Qt platform: how the Xvfb test proves a real window is updated
EXIT_AFTER_FRAMES_ENV = "SONOBRIDGE_VIEW_EXIT_AFTER_FRAMES"

#: Qt warns about this on every offscreen run; it is harmless and only hides real messages
_QT_NOISE = ("This plugin does not support propagateSizeHints()",)

NO_PORT_CHOSEN = ("no port chosen: pass one on the command line, e.g. sonobridge view "
                  "/dev/ttyACM0 (COM3 on Windows), or sonobridge view 'sim://?phantom=cyst' "
                  "for the simulated board")


class SnapshotError(Exception):
    """The snapshot cannot be written where the user asked (the message says why)."""


def has_display() -> bool:
    """True if a window can be shown (X11, Wayland, macOS or Windows)."""
    if sys.platform in ("darwin", "win32"):
        return True
    # DISPLAY= (set but empty) is what a CI runner or `env DISPLAY=` leaves: no display at all
    return bool(os.environ.get("DISPLAY", "").strip()
                or os.environ.get("WAYLAND_DISPLAY", "").strip())


def _forget_empty_display() -> None:
    """Drop DISPLAY/WAYLAND_DISPLAY set to "" so Qt does not try to connect to them."""
    for var in ("DISPLAY", "WAYLAND_DISPLAY"):
        if var in os.environ and not os.environ[var].strip():
            del os.environ[var]


def check_snapshot_path(path: str | Path, *, force: bool = False) -> Path:
    """The snapshot's path if a PNG can be written there.

    Raises :class:`FileExistsError` when the file exists and ``force`` is false, and
    :class:`SnapshotError` when it cannot be written (a folder, a missing or read-only folder).
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise SnapshotError(f"--snapshot {path} is a folder: give a file name, such as "
                            f"{path / 'view.png'}")
    folder = path.parent
    if not folder.is_dir():
        raise SnapshotError(f"--snapshot {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SnapshotError(f"--snapshot {path}: the folder {folder} is not writable")
    if path.exists() and not force:
        raise FileExistsError(f"{path} already exists: pass --force to overwrite it, or choose "
                              "another name")
    return path


def _install_qt_message_filter() -> None:
    """Hide Qt's known-harmless offscreen warning; pass every other Qt message on unchanged."""
    from PySide6 import QtCore

    previous = None

    def handler(mode: QtCore.QtMsgType, context: QtCore.QMessageLogContext, message: str
                ) -> None:
        if message in _QT_NOISE:
            return
        if previous is not None:
            previous(mode, context, message)
        else:
            print(QtCore.qFormatLogMessage(mode, context, message), file=sys.stderr)

    previous = QtCore.qInstallMessageHandler(handler)


def _qt_app(headless: bool):
    _forget_empty_display()
    if headless and not has_display():
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    _install_qt_message_filter()
    from PySide6 import QtWidgets

    return QtWidgets.QApplication.instance() or QtWidgets.QApplication(["sonobridge"])


def _open(port: str, headless: bool, baudrate: int | None = None, dialect: str = "auto"):
    """Open the device or explain why not (dialog when interactive, stderr when headless)."""
    from sonobridge.device import DeviceError, open_device

    try:
        return open_device(port, queue_frames=2, baudrate=baudrate, dialect=dialect)
    except DeviceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if not headless:
            from PySide6 import QtWidgets

            QtWidgets.QMessageBox.critical(None, "sonobridge: cannot open the board", str(exc))
        return None


def _check_frames(frames: int) -> int:
    """``frames`` as a count of at least 1, or ValueError (0 or fewer frames draw nothing)."""
    if isinstance(frames, bool) or int(frames) != frames or frames < 1:
        raise ValueError(f"--frames must be 1 or more (got {frames})")
    return int(frames)


def _choose_port() -> str | None:
    """The port picked in the picker, or None if the user cancelled."""
    from PySide6 import QtWidgets

    from .picker import PortPicker

    picker = PortPicker()
    if picker.exec() != QtWidgets.QDialog.DialogCode.Accepted:
        return None
    return picker.selected_port()


def run_viewer(port: str | None, *, snapshot: str | Path | None = None, frames: int = 10,
               timeout_s: float = 60.0, depth_cm: float | None = None,
               force: bool = False, baudrate: int | None = None, dialect: str = "auto",
               sound_speed_m_s: float | None = None, lite: bool = False) -> int:
    """Show the live viewer; with ``snapshot``, draw ``frames`` frames offscreen and save a PNG.

    ``lite`` is the display preset for slow hosts (``view --lite``).

    Exit codes: 0 done, 1 the snapshot could not be saved / no port chosen / too few frames,
    2 a refused argument (existing snapshot without ``force``, ``frames`` < 1, a depth the
    board refuses, a port that cannot be opened, no display, missing system libraries).
    """
    headless = snapshot is not None
    snapshot_path: Path | None = None
    if headless:
        if port is None:
            print("error: --snapshot needs a PORT (e.g. sim://?phantom=cyst)", file=sys.stderr)
            return 2
        try:
            frames = _check_frames(frames)
        except (TypeError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        try:
            snapshot_path = check_snapshot_path(snapshot, force=force)  # type: ignore[arg-type]
        except FileExistsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except (SnapshotError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    _forget_empty_display()
    if not headless and not has_display() and os.environ.get("QT_QPA_PLATFORM") is None:
        print("error: no display found (DISPLAY and WAYLAND_DISPLAY are unset), so no window "
              "can open. Run it on a desktop session, or render a picture instead: "
              "sonobridge view PORT --snapshot out.png", file=sys.stderr)
        return 2
    problem = check_xcb()
    if problem is not None:
        if not headless:
            print(problem, file=sys.stderr)
            return 2
        # a snapshot needs no window: render it offscreen rather than fail
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    app = _qt_app(headless)

    if port is None:
        port = _choose_port()
        if not port:
            print(NO_PORT_CHOSEN, file=sys.stderr)
            return 1
    dev = _open(port, headless, baudrate, dialect)
    if dev is None:
        return 2
    try:
        return _run_window(app, dev, snapshot_path, frames=frames, timeout_s=timeout_s,
                           depth_cm=depth_cm, force=force, sound_speed_m_s=sound_speed_m_s,
                           lite=lite)
    finally:
        dev.close()


def _run_window(app, dev, snapshot: Path | None, *, frames: int, timeout_s: float,
                depth_cm: float | None, force: bool, sound_speed_m_s: float | None = None,
                lite: bool = False) -> int:
    """Configure the board, show the window, and run until it closes (or the snapshot is saved)."""
    from PySide6 import QtCore

    from sonobridge.device import DeviceError

    from .window import ViewerWindow

    _install_recorder()
    if depth_cm is not None:
        fixed = _fixed_depth_refusal(dev, depth_cm, sound_speed_m_s)
        if fixed:
            print(f"error: {fixed}", file=sys.stderr)
            return 2
        try:
            dev.configure(depth_m=depth_cm / 100)
        except (DeviceError, ValueError) as exc:
            # never open the viewer on a configuration the user did not ask for
            print(f"error: the board refused --depth-cm {depth_cm:g}: {exc}", file=sys.stderr)
            return 2
    win = ViewerWindow(dev, sound_speed_m_s=sound_speed_m_s, lite=lite)
    win.show()
    win.start_streaming()
    status = {"code": 0}
    timer = QtCore.QTimer()
    deadline = QtCore.QElapsedTimer()
    deadline.start()

    def finish(code: int) -> None:
        # stopped first: a check that fails must never run (and fail) again
        timer.stop()
        status["code"] = code
        app.quit()  # the window is closed once the loop has ended (see below)

    def check_snapshot() -> None:
        if win.frames_drawn >= frames:
            timer.stop()  # one attempt, whatever happens below
            try:
                win.refresh_status()
                app.processEvents()
                path = win.snapshot(snapshot, force=force)
            except Exception as exc:  # whatever it is, one message and exit 1, never a loop
                print(f"error: could not save the snapshot {snapshot}: {exc}", file=sys.stderr)
                finish(1)
                return
            print(path)
            print(dev.stats.summary())
            finish(0)
        elif deadline.elapsed() > timeout_s * 1000:
            print(f"error: only {win.frames_drawn} of {frames} frames drawn in {timeout_s} s"
                  f"\n{dev.stats.summary()}", file=sys.stderr)
            finish(1)

    exit_after = _exit_after_frames()

    def check_painted() -> None:
        painted = len(win.latencies_ms)
        if win.frames_drawn >= exit_after and painted >= 1 and win.isVisible():
            from PySide6 import QtGui

            platform = QtGui.QGuiApplication.platformName()
            exposed = win.windowHandle() is not None and win.windowHandle().isExposed()
            print(f"drew {win.frames_drawn} frames ({painted} painted) on the {platform} "
                  f"platform, window exposed: {exposed}")
            finish(0)
        elif deadline.elapsed() > timeout_s * 1000:
            print(f"error: only {win.frames_drawn} frames drawn ({painted} painted) in "
                  f"{timeout_s} s", file=sys.stderr)
            finish(1)

    if snapshot is not None:
        timer.timeout.connect(check_snapshot)
        timer.start(50)
    elif exit_after:
        timer.timeout.connect(check_painted)
        timer.start(50)
    code = app.exec()
    win.close()
    # closing the last window posts a Quit that would reach the *next* event loop and end it
    # (and every later one) at once: drop it, for callers that keep using Qt (the tests)
    QtCore.QCoreApplication.removePostedEvents(app, QtCore.QEvent.Type.Quit)
    return status["code"] or code


def _fixed_depth_refusal(dev, depth_cm: float, sound_speed_m_s: float | None = None) -> str:
    """Why ``--depth-cm`` cannot be met on a board whose line length is fixed ("" if it can)."""

    from .presets import preset_for

    info = dev.info
    if info.min_samples_per_line != info.max_samples_per_line:
        return ""
    preset = preset_for(info, dev.dialect.name, sound_speed_m_s)
    reach = dev.default_config().depth_range_m(info, preset.sound_speed_m_s)[1]
    shown = f"{reach / preset.depth_unit_m:.1f} {preset.depth_unit}"
    # like any depth the board cannot do: refused, never a picture of another depth
    return (f"the board refused --depth-cm {depth_cm:g}: the {info.board_name} records a fixed "
            f"{info.max_samples_per_line} samples per line, so its depth is fixed at {shown} "
            f"({preset.medium}, {preset.sound_speed_m_s:g} m/s); leave out --depth-cm")


def _exit_after_frames() -> int:
    """The frame count of :data:`EXIT_AFTER_FRAMES_ENV`, or 0 (run until closed)."""
    value = os.environ.get(EXIT_AFTER_FRAMES_ENV, "").strip()
    try:
        return max(0, int(value)) if value else 0
    except ValueError:
        print(f"warning: {EXIT_AFTER_FRAMES_ENV}={value!r} is not a number; ignored",
              file=sys.stderr)
        return 0


def _install_recorder() -> None:
    """Enable the record button when the recording package is present."""
    try:
        from sonobridge.record.viewer_hook import recorder_factory  # type: ignore[import-not-found]
    except ImportError:
        return
    from .window import ViewerWindow

    ViewerWindow.recorder_factory = staticmethod(recorder_factory)  # type: ignore[assignment]


def run_demo(snapshot: str | Path = "sonobridge-demo.png", frames: int = 10, *,
             force: bool = False) -> int:
    """``make demo``: the viewer on the simulated board, or a headless snapshot with no display."""
    if has_display():
        return run_viewer(DEMO_PORT)
    print("no display found: rendering the simulated board's cyst phantom offscreen")
    return run_viewer(DEMO_PORT, snapshot=snapshot, frames=frames, depth_cm=6.0, force=force)
