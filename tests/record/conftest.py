"""Make the record test helpers importable as ``record_fixtures``; enable ``replay://``."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from sonobridge.record.urlhandler import register  # noqa: E402

register()
