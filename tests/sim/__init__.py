"""Tests of the simulated board: phantoms, acoustics, the served board."""
