"""What the viewer's Record button uses: the same Recorder as ``sonobridge record``."""

from __future__ import annotations

import time
from pathlib import Path

from sonobridge.device import Device

from .recorder import Recorder


class ViewerRecording:
    """A recording started from the viewer: HDF5 in the current folder, until stopped."""

    def __init__(self, device: Device, folder: str | Path | None = None) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.path = Path(folder or Path.cwd()) / f"sonobridge-{stamp}.h5"
        self.device = device
        # attached to a device that is already open: the Recorder accounts from its own
        # first line, not from the start of the device's session
        self.recorder = Recorder(self.path).attach(device)

    def stop(self) -> None:
        """Close the file (it stays valid and readable)."""
        # the viewer's stream usually goes on: only a stopped device can have cut a sweep short
        self.recorder.close(stopped=not self.device.streaming)


def recorder_factory(device: Device) -> ViewerRecording:
    """Start recording ``device`` to a new HDF5 file; the viewer calls ``stop()`` later."""
    return ViewerRecording(device)
