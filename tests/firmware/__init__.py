"""Tests of the reference firmware: the C unit tests, the host build on a pty, board profiles."""
