"""HIL-LAT-1: PING round trip while the board is idle."""

# The tests live in the package (sonobridge.hil); this file only collects them here.
from sonobridge.hil.test_hil_latency import *  # noqa: F403
