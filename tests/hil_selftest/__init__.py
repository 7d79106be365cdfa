"""Tests of the HIL suite itself: its options, report and verdicts."""
