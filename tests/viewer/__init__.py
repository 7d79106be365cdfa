"""Tests of the PyQtGraph viewer, offscreen."""
