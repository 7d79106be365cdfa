"""Make the sim test helpers importable as ``sim_fixtures`` and share the expensive synths."""

import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from sim_fixtures import default_cyst_synth  # noqa: E402


@pytest.fixture(scope="session")
def cyst_synth():
    """The builtin cyst phantom prepared for the default 128 × 4096 sector acquisition."""
    return default_cyst_synth()
