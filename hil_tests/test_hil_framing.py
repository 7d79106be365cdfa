"""HIL-FRM: how the board answers frames it cannot use (docs/protocol.md, section 3)."""

# The tests live in the package (sonobridge.hil); this file only collects them here.
from sonobridge.hil.test_hil_framing import *  # noqa: F403
