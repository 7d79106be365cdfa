"""Tests of the Doppler chain against a moving-scatterer model."""
