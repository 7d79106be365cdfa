"""Tests of wire protocol v1: layouts, round trips, the streaming decoder, the vectors."""
