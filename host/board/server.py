"""Serving a board until the user stops it (SIGINT/SIGTERM)."""

from __future__ import annotations

import signal
import sys
import threading

from .engine import BoardEngine


def run_until_stopped(engine: BoardEngine, stop: threading.Event | None = None,
                      what: str = "simulator") -> int:
    """Run an engine until SIGINT/SIGTERM (or ``stop``); 1 if it failed, else 0."""
    stop = stop or threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    engine.start()
    try:
        while not stop.wait(0.2):
            if engine.error is not None:
                print(f"{what} failed: {engine.error!r}", file=sys.stderr)
                return 1
    finally:
        engine.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
