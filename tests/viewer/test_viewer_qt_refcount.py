"""Guards the Qt binding: drawing must not leak references to None (PySide6 6.12.0 did)."""

from __future__ import annotations

import sys

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore


def test_drawing_does_not_leak_references_to_none(qtbot):
    w = pg.PlotWidget()
    qtbot.addWidget(w)
    w.show()
    image = pg.ImageItem()
    w.addItem(image)
    curve = w.plot()
    frame = (np.random.default_rng(0).random((256, 256)) * 255).astype(np.uint8)
    x = np.linspace(0, 1, 2000)
    qtbot.wait(10)
    before = sys.getrefcount(None)
    for k in range(50):
        image.setImage(frame, autoLevels=False, levels=(0, 255))
        image.setRect(QtCore.QRectF(0, 0, 1 + k, 1))
        curve.setData(x, np.sin(x * k))
        w.repaint()
    qtbot.wait(10)
    # 6.12.0 loses ~40 references per update here and aborts once None's count reaches 0
    assert sys.getrefcount(None) - before > -50
