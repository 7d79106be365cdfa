"""Tests of the device client: handshake, streaming, faults, hostile boards, acquisition."""
