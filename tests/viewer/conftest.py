"""Viewer tests run offscreen with pytest-qt."""

from __future__ import annotations

import itertools
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

_names = itertools.count()


@pytest.fixture
def viewer(qtbot, request):
    """A ViewerWindow on a fresh simulated board: yields (window, device, url)."""
    from sonobridge.device import open_device
    from sonobridge.viewer.window import ViewerWindow

    params = getattr(request, "param", {})
    query = "&".join(f"{k}={v}" for k, v in {"phantom": "wire", **params}.items())
    url = f"sim://?{query}&name=viewer-{next(_names)}"
    dev = open_device(url, queue_frames=2)
    win = ViewerWindow(dev)
    qtbot.addWidget(win)
    win.show()
    yield win, dev, url
    win.close()
    dev.close()
