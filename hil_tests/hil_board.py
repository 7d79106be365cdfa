"""Compatibility name for :mod:`sonobridge.hil.board` (tests/firmware imports it from here)."""

from sonobridge.hil.board import *  # noqa: F403
