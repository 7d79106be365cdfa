"""The PyQtGraph live viewer: ``sonobridge view PORT``. Imports Qt; the rest of host does not."""

from .app import run_demo, run_viewer

__all__ = ["run_demo", "run_viewer"]
