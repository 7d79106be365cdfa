"""HIL-HS: the handshake and what the board announces about itself."""

# The tests live in the package (sonobridge.hil); this file only collects them here.
from sonobridge.hil.test_hil_handshake import *  # noqa: F403
