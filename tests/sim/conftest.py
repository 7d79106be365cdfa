"""Share the expensive phantom synths between the sim tests."""

import pytest

from .sim_fixtures import default_cyst_synth


@pytest.fixture(scope="session")
def cyst_synth():
    """The builtin cyst phantom prepared for the default 128 × 4096 sector acquisition."""
    return default_cyst_synth()
