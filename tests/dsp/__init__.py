"""Tests of the B-mode DSP chain against a self-contained RF model."""
