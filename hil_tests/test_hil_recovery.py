"""HIL-REC: the client and board find each other again after a reset or a disconnect."""

# The tests live in the package (sonobridge.hil); this file only collects them here.
from sonobridge.hil.test_hil_recovery import *  # noqa: F403
