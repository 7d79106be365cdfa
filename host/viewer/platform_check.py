"""Before Qt starts on X11: are the system libraries its xcb platform plugin loads installed?

Without them Qt prints "Could not load the Qt platform plugin "xcb"" and aborts the process
(exit 134), which a new user cannot act on. The PySide6 wheels bundle Qt itself but not these
X11 client libraries, and a stock desktop (or a CI runner with Xvfb) often lacks a few of them
(libxcb-cursor0 first of all, also libxcb-icccm4 and libxcb-keysyms1). So the viewer checks
first and names the Debian/Ubuntu packages to install.

Standard library only: this runs before PySide6 is imported, and ``.ci/run`` runs this file
with the system Python (before any virtual environment exists) to get the package list.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

#: what Qt's xcb platform plugin (``libqxcb.so`` and the ``libQt6XcbQpa`` it loads) links
#: beyond Qt and the libraries the offscreen platform needs too (libGL, libxkbcommon, glib):
#: shared library → the Debian/Ubuntu package that provides it. The one home of this list:
#: the message, the README and ``.ci/run`` are written from it (``tests/viewer`` checks both).
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
}

_NOT_FOUND = re.compile(r"^\s*(\S+)\s*=>\s*not found", re.MULTILINE)


def xcb_packages() -> list[str]:
    """The Debian/Ubuntu packages the xcb platform plugin needs, sorted."""
    return sorted(set(XCB_LIBRARIES.values()))


def xcb_will_be_used(environ: Mapping[str, str] | None = None,
                     platform: str | None = None) -> bool:
    """True if Qt will start its xcb (X11) plugin: Linux, a DISPLAY, no other platform chosen."""
    env = os.environ if environ is None else environ
    if not (platform or sys.platform).startswith("linux"):
        return False
    if not env.get("DISPLAY", "").strip():
        return False
    chosen = env.get("QT_QPA_PLATFORM", "").strip()
    if chosen:
        # a list such as "wayland;xcb" is tried in order: only its first entry counts here
        return chosen.split(";")[0].split(":")[0] == "xcb"
    # Qt 6 prefers Wayland in a Wayland session and falls back to xcb only if that fails
    return not (env.get("WAYLAND_DISPLAY", "").strip()
                and env.get("XDG_SESSION_TYPE", "") == "wayland")


def xcb_plugin_path() -> Path | None:
    """The installed PySide6's ``libqxcb.so``, if there is one."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("PySide6")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return path if path.exists() else None


def _ldd_missing(plugin: Path, run_ldd: Callable[[Path], str]) -> list[str] | None:
    """Libraries the dynamic loader cannot find for the plugin, by ``ldd``; None if ldd failed."""
    try:
        output = run_ldd(plugin)
    except (OSError, subprocess.SubprocessError):
        return None
    return list(dict.fromkeys(_NOT_FOUND.findall(output)))


def _run_ldd(plugin: Path) -> str:
    ldd = shutil.which("ldd")
    if ldd is None:
        raise FileNotFoundError("ldd")
    return subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=20,
                          check=False).stdout


def _can_load(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def missing_xcb_libraries(plugin: Path | None = None, *,
                          run_ldd: Callable[[Path], str] = _run_ldd,
                          can_load: Callable[[str], bool] = _can_load) -> list[str]:
    """The shared libraries the xcb plugin needs that this system cannot load.

    ``ldd`` on the plugin is what the loader itself will do (it also finds libraries that a
    newer PySide6 needs and the table does not know); without ``ldd``, each library of
    :data:`XCB_LIBRARIES` is loaded with ``ctypes``.
    """
    plugin = plugin or xcb_plugin_path()
    if plugin is not None:
        found = _ldd_missing(plugin, run_ldd)
        if found is not None:
            return found
    return [name for name in XCB_LIBRARIES if not can_load(name)]


def missing_libraries_message(missing: Iterable[str]) -> str:
    """One message naming the missing libraries and the ``apt-get install`` line that adds them."""
    missing = list(missing)
    packages = sorted({XCB_LIBRARIES[m] for m in missing if m in XCB_LIBRARIES})
    unknown = [m for m in missing if m not in XCB_LIBRARIES]
    lines = [f"error: the viewer cannot open a window: Qt's X11 (xcb) platform plugin needs "
             f"{', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
             "installed."]
    if packages:
        lines.append(f"On Debian/Ubuntu install: sudo apt-get install {' '.join(packages)}")
    if unknown:
        lines.append(f"Find the package providing {', '.join(unknown)} with your distribution's "
                     "package search (Debian/Ubuntu: apt-file search NAME).")
    lines.append("Or render a picture without a window: sonobridge view PORT --snapshot out.png")
    return "\n".join(lines)


def check_xcb(environ: Mapping[str, str] | None = None) -> str | None:
    """If Qt will use xcb and a library it needs is missing, the message to print; else None."""
    if not xcb_will_be_used(environ):
        return None
    missing = missing_xcb_libraries()
    return missing_libraries_message(missing) if missing else None


def main() -> int:
    """Print "library package" per line: ``.ci/run`` reads the list from here (stdlib only)."""
    for library, package in XCB_LIBRARIES.items():
        print(library, package)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
