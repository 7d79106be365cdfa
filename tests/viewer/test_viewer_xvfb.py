"""The viewer on a real X server (Xvfb), as on a Linux desktop: Qt's xcb plugin loads, the
window is shown, and frames are drawn and painted in it."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sonobridge.viewer.app import EXIT_AFTER_FRAMES_ENV

START_TIMEOUT_S = 20.0


@pytest.fixture
def xvfb_display() -> Iterator[str]:
    """A fresh Xvfb server; yields its DISPLAY (":N")."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.fail("Xvfb is not installed: run .ci/run, or apt-get install xvfb "
                    "(the viewer's X11 test needs it)")
    read_fd, write_fd = os.pipe()
    # -displayfd: Xvfb picks a free display number itself and writes it once it accepts
    # connections, so two test runs never race for the same number
    proc = subprocess.Popen([xvfb, "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24",
                             "-nolisten", "tcp"], pass_fds=(write_fd,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(write_fd)
    try:
        number = _read_display_number(read_fd, proc)
        socket = Path(f"/tmp/.X11-unix/X{number}")
        deadline = time.monotonic() + START_TIMEOUT_S
        while not socket.exists():  # polled: the number is written as the socket appears
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"Xvfb did not create {socket}")
            select.select([], [], [], 0.02)
        yield f":{number}"
    finally:
        os.close(read_fd)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _read_display_number(fd: int, proc: subprocess.Popen[bytes]) -> int:
    """The display number Xvfb writes to ``fd`` when it is ready (waits at most 20 s)."""
    data = b""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(0.0, left))
        if not ready:
            pytest.fail("Xvfb did not report a display within 20 s")
        chunk = os.read(fd, 16)
        if not chunk:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            pytest.fail(f"Xvfb exited before it was ready: {err}")
        data += chunk
    return int(data)


def test_the_viewer_window_is_shown_and_updated_under_xvfb(xvfb_display):
    env = {k: v for k, v in os.environ.items()
           if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE")}
    env.update({"DISPLAY": xvfb_display, EXIT_AFTER_FRAMES_ENV: "5"})
    proc = subprocess.run([sys.executable, "-m", "sonobridge", "view", "sim://?phantom=cyst"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("drew ")), "")
    assert "on the xcb platform" in line, proc.stdout + proc.stderr
    assert "window exposed: True" in line
    drawn, painted = (int(w.strip("(")) for w in line.split()[1:4:2])
    assert drawn >= 5 and painted >= 1, line
    assert "propagateSizeHints" not in proc.stderr
