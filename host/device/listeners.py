"""Listeners that cannot break the receive path: failures are caught, counted, logged by name.

A recorder, a viewer hook or a user's callback runs on the receive thread. An exception from
one of them must not stop the thread (and with it every command reply), so it is caught,
counted, and logged with the listener's name; after :data:`MAX_FAILURES` failures in a row the
listener is removed, and the log says so.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger("sonobridge.device")

#: consecutive failures after which a listener is removed
MAX_FAILURES = 3


def listener_name(listener: Callable[..., Any]) -> str:
    """A readable name for a callable (``Recorder._on_line``, ``my_callback``)."""
    return getattr(listener, "__qualname__", None) or repr(listener)


class ListenerSet:
    """Callables called in order with the same arguments; see the module docstring."""

    def __init__(self, what: str) -> None:
        self.what = what
        #: every exception caught, and the listeners removed for failing repeatedly
        self.errors = 0
        self.removed: list[str] = []
        self._items: list[Callable[..., Any]] = []
        self._failures: dict[int, int] = {}
        self._lock = threading.Lock()

    def add(self, listener: Callable[..., Any]) -> None:
        """Call ``listener`` from now on."""
        with self._lock:
            self._items = [*self._items, listener]

    def remove(self, listener: Callable[..., Any]) -> None:
        """Stop calling ``listener`` (ValueError if it was not added)."""
        with self._lock:
            items = list(self._items)
            stored = items[items.index(listener)]  # equal, maybe not the same object
            items.remove(listener)
            self._items = items
            self._failures.pop(id(stored), None)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        return iter(self._items)

    def call(self, *args: Any) -> None:
        """Call every listener; a raising one is counted, logged and, if it keeps failing,
        removed."""
        for listener in self._items:  # a snapshot: add/remove replace the list
            try:
                listener(*args)
            except Exception:
                self._failed(listener)
            else:
                if self._failures:
                    self._failures.pop(id(listener), None)

    def _failed(self, listener: Callable[..., Any]) -> None:
        self.errors += 1
        name = listener_name(listener)
        n = self._failures.get(id(listener), 0) + 1
        self._failures[id(listener)] = n
        log.exception("%s %s failed (%d in a row)", self.what, name, n)
        if n >= MAX_FAILURES:
            with self._lock:
                if listener in self._items:
                    self._items = [x for x in self._items if x is not listener]
            self._failures.pop(id(listener), None)
            self.removed.append(name)
            log.error("%s %s removed after %d failures in a row", self.what, name, n)
