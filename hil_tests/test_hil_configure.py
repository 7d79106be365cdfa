"""HIL-CFG: CONFIGURE validation at every boundary DEVICE_INFO announces."""

# The tests live in the package (sonobridge.hil); this file only collects them here.
from sonobridge.hil.test_hil_configure import *  # noqa: F403
