"""The start-up check for the X11 libraries Qt's xcb plugin needs, and its one package list."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sonobridge.viewer import platform_check
from sonobridge.viewer.platform_check import (
    XCB_LIBRARIES,
    missing_libraries_message,
    missing_xcb_libraries,
    xcb_packages,
    xcb_will_be_used,
)

ROOT = Path(__file__).resolve().parents[2]

LDD_ICCCM_MISSING = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f74)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f74)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => /lib/x86_64-linux-gnu/libxcb-keysyms.so.1 (0x00007f74)
\tlibxcb-icccm.so.4 => not found
"""


def test_ldd_output_names_the_missing_library_and_its_package(tmp_path):
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"")
    missing = missing_xcb_libraries(plugin, run_ldd=lambda _p: LDD_ICCCM_MISSING)
    assert missing == ["libxcb-icccm.so.4"]  # once, though ldd lists it for both files
    message = missing_libraries_message(missing)
    assert "libxcb-icccm.so.4" in message
    assert "sudo apt-get install libxcb-icccm4" in message
    assert message.count("\n") == 2  # one message: what, the command, the way around it


def test_without_ldd_each_library_is_loaded(tmp_path):
    def no_ldd(_plugin: Path) -> str:
        raise FileNotFoundError("ldd")

    missing = missing_xcb_libraries(tmp_path / "libqxcb.so", run_ldd=no_ldd,
                                    can_load=lambda name: name != "libxcb-cursor.so.0")
    assert missing == ["libxcb-cursor.so.0"]
    assert "sudo apt-get install libxcb-cursor0" in missing_libraries_message(missing)


def test_a_library_the_table_does_not_know_is_still_named():
    message = missing_libraries_message(["libxcb-new.so.7", "libxcb-keysyms.so.1"])
    assert "libxcb-new.so.7" in message and "apt-file search" in message
    assert "sudo apt-get install libxcb-keysyms1" in message


def test_this_machine_has_every_library(tmp_path):
    # .ci/run installs them; the Xvfb test needs them
    assert missing_xcb_libraries() == [], "run .ci/run (it installs Qt's xcb libraries)"


@pytest.mark.parametrize(("env", "used"), [
    ({"DISPLAY": ":0"}, True),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, True),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, False),
    ({"DISPLAY": ""}, False),
    ({}, False),
    ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, False),
])
def test_when_xcb_will_be_used(env, used):
    assert xcb_will_be_used(env, platform="linux") is used


def test_not_on_windows_or_macos():
    assert not xcb_will_be_used({"DISPLAY": ":0"}, platform="darwin")


def test_run_viewer_stops_with_the_apt_line_instead_of_a_qt_abort(monkeypatch, capsys):
    from sonobridge.viewer import run_viewer

    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(platform_check, "missing_xcb_libraries",
                        lambda: ["libxcb-keysyms.so.1"])
    assert run_viewer("sim://?phantom=wire") == 2
    err = capsys.readouterr().err
    assert "libxcb-keysyms.so.1" in err and "sudo apt-get install libxcb-keysyms1" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("doc", ["README.md", "docs/viewer.md"])
def test_the_docs_name_the_packages_of_the_one_list(doc):
    text = (ROOT / doc).read_text()
    lines = re.findall(r"^sudo apt-get install (.+)$", text, re.MULTILINE)
    assert lines, f"{doc}: no 'sudo apt-get install' line for the viewer"
    assert lines[0].split() == xcb_packages()


def test_ci_reads_the_one_list():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "host/viewer/platform_check.py" in ci and "xvfb" in ci


def test_the_module_prints_its_list_for_ci_with_no_dependencies():
    # .ci/run runs the file with the system Python before any virtual environment exists
    proc = subprocess.run([sys.executable, "-I", "-S", str(ROOT / "host/viewer/platform_check.py")],
                          capture_output=True, text=True, timeout=30, check=True)
    pairs = dict(line.split() for line in proc.stdout.splitlines())
    assert pairs == XCB_LIBRARIES
