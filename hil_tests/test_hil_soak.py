"""HIL-SOAK: long streaming (``--soak``, ``--soak-minutes``)."""

# The tests live in the package (sonobridge.hil); this file only collects them here.
from sonobridge.hil.test_hil_soak import *  # noqa: F403
