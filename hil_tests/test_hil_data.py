"""HIL-DATA: the samples themselves: DC offset, noise floor, stuck bits, saturation, formats."""

# The tests live in the package (sonobridge.hil); this file only collects them here.
from sonobridge.hil.test_hil_data import *  # noqa: F403
