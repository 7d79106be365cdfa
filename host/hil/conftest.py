"""Activates the HIL suite's hooks and fixtures where the packaged suite is collected."""

from sonobridge.hil.suite import *  # noqa: F403
