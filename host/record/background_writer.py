"""The background thread both recording writers use (:class:`~.hdf5_writer.DatasetWriter`
and :class:`~.raw.CaptureWriter`).

Producers (the device's reader thread) only append to a bounded queue and never wait for the
disk; a writer thread takes everything queued in one batch, hands it to the owner's
``write_batch`` and calls its ``flush`` at least every ``flush_interval_s`` (and once more when
closing). An ``OSError`` from either stops writing for good: the owner's ``on_failure`` is told
what could not be kept (the batch in hand and everything still queued), and nothing is queued
after that.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any


def check_flush_interval(seconds: float) -> None:
    """Raise ValueError unless ``seconds`` is a usable flush interval (finite and > 0)."""
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"the flush interval must be a number of seconds > 0 (e.g. 0.5), "
                         f"got {seconds!r}")


#: ``on_failure(exc, lost, during)``: ``during`` is "write" or "flush"; ``lost`` holds the
#: items that will never be written
FailureHandler = Callable[[OSError, deque, str], None]


class BackgroundWriter:
    """A writer thread with a bounded queue, a flush interval, ``close`` and a failed state.

    ``lock`` (a re-entrant condition) may be held by the owner around several calls of
    :meth:`put` that must be queued together, or to read its own counters consistently.
    ``on_failure`` runs under ``lock``; ``settle`` (optional) runs after it, outside the lock,
    to leave the file consistent.
    """

    def __init__(self, *, name: str, write_batch: Callable[[deque], None],
                 on_failure: FailureHandler, flush: Callable[[], None] | None = None,
                 settle: Callable[[], None] | None = None, flush_interval_s: float = 0.5,
                 max_queue_bytes: int, wake_bytes: int = 1 << 20,
                 block_when_full: bool = False) -> None:
        check_flush_interval(flush_interval_s)
        self.flush_interval_s = flush_interval_s
        self.max_queue_bytes = max_queue_bytes
        self.wake_bytes = wake_bytes
        #: producers wait for room instead of being refused (conversion wants back-pressure)
        self.block_when_full = block_when_full
        self.lock = threading.Condition()
        self.closing = False
        self.failed = False
        self._write_batch = write_batch
        self._flush = flush
        self._settle = settle
        self._on_failure = on_failure
        self._queue: deque[Any] = deque()
        self._queued = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- producer side (any thread) --------------------------------------------------------------

    def has_room(self, nbytes: int) -> bool:
        """True if ``nbytes`` more would be queued now (not failed, not closing, in bound)."""
        with self.lock:
            return not self.failed and not self.closing and \
                self._queued + nbytes <= self.max_queue_bytes

    def put(self, item: Any, nbytes: int = 0, *, wake: bool = False) -> bool:
        """Queue ``item`` (``nbytes`` of it count against the bound); False when it cannot be
        kept (failed, closing, or the queue is full). Never waits unless ``block_when_full``."""
        with self.lock:
            if self.block_when_full:
                while self._queued + nbytes > self.max_queue_bytes and not self.failed \
                        and not self.closing:
                    self.lock.notify()
                    self.lock.wait(0.1)
            if not self.has_room(nbytes):
                return False
            self._queue.append(item)
            self._queued += nbytes
            if wake or self._queued >= self.wake_bytes:
                self.lock.notify()
            return True

    def close(self) -> None:
        """Write everything queued, flush once more and end the thread."""
        with self.lock:
            self.closing = True
            self.lock.notify()
        self._thread.join()

    # -- writer thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        last_flush = time.monotonic()
        poll = min(0.05, self.flush_interval_s)
        while True:
            with self.lock:
                if not self._queue and not self.closing:
                    self.lock.wait(poll)
                items, self._queue = self._queue, deque()
                self._queued = 0
                self.lock.notify_all()  # a blocked producer may go on
                closing = self.closing
            if items and not self.failed:
                try:
                    self._write_batch(items)
                except OSError as exc:
                    self._fail(exc, items, "write")
            now = time.monotonic()
            if self._flush is not None and not self.failed and (
                    now - last_flush >= self.flush_interval_s or closing):
                try:
                    self._flush()
                except OSError as exc:
                    self._fail(exc, deque(), "flush")
                last_flush = now
            if closing:
                with self.lock:
                    if not self._queue:
                        return

    def _fail(self, exc: OSError, pending: deque, during: str) -> None:
        with self.lock:
            self.failed = True
            lost = deque(pending)
            lost.extend(self._queue)
            self._queue.clear()
            self._queued = 0
            self.lock.notify_all()
            self._on_failure(exc, lost, during)
        if self._settle is not None:
            with contextlib.suppress(Exception):
                self._settle()
