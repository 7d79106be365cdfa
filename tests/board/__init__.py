"""Tests of the board-side layer (host/board): responder, engine, transports."""
