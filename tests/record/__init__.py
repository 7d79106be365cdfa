"""Tests of recording, replay, salvage and export."""
