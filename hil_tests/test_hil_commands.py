"""HIL-CMD: every command of protocol v1 does what docs/protocol.md says."""

# The tests live in the package (sonobridge.hil); this file only collects them here.
from sonobridge.hil.test_hil_commands import *  # noqa: F403
