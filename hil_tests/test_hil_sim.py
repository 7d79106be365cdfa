"""HIL-SIM: checks that need the simulator's ground truth (the phantom the suite chose)."""

# The tests live in the package (sonobridge.hil); this file only collects them here.
from sonobridge.hil.test_hil_sim import *  # noqa: F403
