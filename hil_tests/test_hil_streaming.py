"""HIL-STR and HIL-LAT-2: start/stop behaviour, and streaming at the board's rated throughput."""

# The tests live in the package (sonobridge.hil); this file only collects them here.
from sonobridge.hil.test_hil_streaming import *  # noqa: F403
