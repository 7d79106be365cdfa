"""Where every expected line went: one vocabulary for streams, recordings, conversions and reports.

Every firing the board acquired during a session ends up in exactly one place::

    lines_expected = lines_received + lines_lost_link + lines_lost_device + lines_lost_host
                     + lines_cut_by_stop

and, for a recording, every line received while it recorded is either a row or counted::

    lines_received = lines_recorded + lines_not_recorded

:class:`LossAccount` holds these figures under the names ``DeviceStats``, the HDF5
``accounting`` attribute, ``convert`` and the HIL report all use, checks the identities and
renders them as one line of text, so every tool prints the same words for the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

#: the causes a missing firing is attributed to, in the order a STOP cut takes them back off
#: (what no sequence gap explains is put on the device, so the device's share goes first)
LOSS_CAUSES = ("lines_lost_device", "lines_lost_link", "lines_lost_host")


def stop_cut(present: np.ndarray, end_received: bool) -> int:
    """Firings a STOP cut off the end of a sweep: the sweep has no FRAME_END and what arrived
    is exactly its first firings in acquisition order. 0 if the sweep does not look cut."""
    if end_received:
        return 0
    flat = np.asarray(present, dtype=bool).ravel()
    got = int(np.count_nonzero(flat))
    if got == 0 or got == flat.size or not flat[:got].all():
        return 0
    return flat.size - got


def adjust_for_stop(counts: Mapping[str, Any], cut: int) -> dict[str, Any]:
    """``counts`` with the firings a STOP prevented moved from the losses to ``lines_cut_by_stop``.

    The receive path counts them as missing (it cannot tell them from lost ones); they were
    never acquired. They come off ``lines_missing``, off the causes in :data:`LOSS_CAUSES`
    order, and the sweep off ``frames_incomplete``.
    """
    acc = dict(counts)
    acc["lines_cut_by_stop"] = cut
    if cut and acc.get("lines_missing") is not None:
        acc["lines_missing"] -= cut
        rest = cut
        for cause in LOSS_CAUSES:
            if cause not in acc and cause == "lines_lost_host":
                continue  # written by a client that did not count it yet
            take = min(rest, acc.get(cause) or 0)
            acc[cause] = (acc.get(cause) or 0) - take
            rest -= take
        if rest:  # more cut than attributed (should not happen): keep the sums consistent
            acc["lines_lost_link"] = (acc.get("lines_lost_link") or 0) - rest
        acc["frames_incomplete"] = max(0, (acc.get("frames_incomplete") or 0) - 1)
    return acc


@dataclass(frozen=True)
class LossAccount:
    """The expected lines of a session (or recording), each counted once under one cause.

    ``lines_recorded`` and ``lines_not_recorded`` are None for a session that was not recorded.
    """

    lines_received: int = 0
    lines_lost_link: int = 0
    lines_lost_device: int = 0
    lines_lost_host: int = 0
    lines_cut_by_stop: int = 0
    lines_recorded: int | None = None
    lines_not_recorded: int | None = None
    #: ``lines_missing`` as the source reported it (None: not given), checked against the causes
    lines_missing_reported: int | None = None

    @property
    def lines_lost(self) -> int:
        """Firings that never arrived: link + device + host (``lines_missing``)."""
        return self.lines_lost_link + self.lines_lost_device + self.lines_lost_host

    @property
    def lines_expected(self) -> int:
        """Firings the board acquired in the span accounted for."""
        return self.lines_received + self.lines_lost + self.lines_cut_by_stop

    @classmethod
    def from_counts(cls, counts: Mapping[str, Any]) -> LossAccount:
        """Read the figures from a flat dict (``DeviceStats.as_dict()``, an HDF5 ``accounting``)."""

        def get(name: str) -> int:
            return int(counts.get(name) or 0)

        def maybe(name: str) -> int | None:
            value = counts.get(name)
            return None if value is None else int(value)

        return cls(lines_received=get("lines_received"), lines_lost_link=get("lines_lost_link"),
                   lines_lost_device=get("lines_lost_device"),
                   lines_lost_host=get("lines_lost_host"),
                   lines_cut_by_stop=get("lines_cut_by_stop"),
                   lines_recorded=maybe("lines_recorded"),
                   lines_not_recorded=maybe("lines_not_recorded"),
                   lines_missing_reported=maybe("lines_missing"))

    def as_dict(self) -> dict[str, int]:
        """The figures under their names, ``lines_expected`` and ``lines_missing`` included."""
        out = {"lines_expected": self.lines_expected, "lines_received": self.lines_received,
               "lines_missing": self.lines_lost, "lines_lost_link": self.lines_lost_link,
               "lines_lost_device": self.lines_lost_device,
               "lines_lost_host": self.lines_lost_host,
               "lines_cut_by_stop": self.lines_cut_by_stop}
        if self.lines_recorded is not None:
            out["lines_recorded"] = self.lines_recorded
            out["lines_not_recorded"] = self.lines_not_recorded or 0
        return out

    def problems(self) -> list[str]:
        """Every way the figures break the identities (empty: they add up)."""
        p = [f"{name} is negative ({value})" for name, value in self.as_dict().items()
             if value < 0]
        if (self.lines_missing_reported is not None
                and self.lines_missing_reported != self.lines_lost):
            p.append(f"lines_missing {self.lines_missing_reported} is not lines_lost_link + "
                     f"lines_lost_device + lines_lost_host = {self.lines_lost}")
        if self.lines_recorded is not None:
            kept = self.lines_recorded + (self.lines_not_recorded or 0)
            if kept != self.lines_received:
                p.append(f"lines_received {self.lines_received} is not lines_recorded "
                         f"{self.lines_recorded} + lines_not_recorded "
                         f"{self.lines_not_recorded or 0} = {kept}")
        return p

    def check(self) -> LossAccount:
        """Raise ``ValueError`` naming what does not add up; return self if everything does."""
        p = self.problems()
        if p:
            raise ValueError("the line accounting does not add up: " + "; ".join(p))
        return self

    def text(self) -> str:
        """The identity as one line for people: the words every tool prints for these figures."""
        out = (f"lines expected {self.lines_expected} = received {self.lines_received} + lost "
               f"{self.lines_lost} + cut by STOP {self.lines_cut_by_stop}; lost lines: "
               f"{self.lines_lost} ({self.lines_lost_link} on the link, "
               f"{self.lines_lost_device} dropped by the device, {self.lines_lost_host} by this "
               "host falling behind)")
        if self.lines_recorded is not None:
            out += (f"; received {self.lines_received} = recorded {self.lines_recorded} + not "
                    f"recorded {self.lines_not_recorded or 0}")
        return out
