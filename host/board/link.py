"""Link realism for the simulated board: throughput profiles and seeded fault injection.

A :class:`LinkProfile` caps throughput like a real UART or USB link. A :class:`FaultPlan`
describes what goes wrong. It is parsed from a short string such as
``"bitflip=1e-6,garbage=0.01,stall=0.5@2,disconnect=1@3,reset@4"``, and the
:class:`FaultInjector` applies it reproducibly from a seed, logging every frame it damaged so
tests can check that exactly those frames were lost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sonobridge.protocol import SYNC


@dataclass(frozen=True)
class LinkProfile:
    """A link's sustained throughput in bytes per second (``inf`` = unlimited)."""

    name: str
    bytes_per_s: float
    description: str


LINK_PROFILES: dict[str, LinkProfile] = {
    p.name: p
    for p in (
        LinkProfile("uart-250k", 25_000, "250 kbaud UART, like Arduino-based boards (~25 kB/s)"),
        LinkProfile("usb-fs", 1_000_000, "USB 2.0 full speed CDC (~1 MB/s)"),
        LinkProfile("usb-hs", 35_000_000, "USB 2.0 high speed CDC (~35 MB/s)"),
        LinkProfile("unlimited", math.inf, "no throughput limit"),
    )
}


def link_profile(name: str) -> LinkProfile:
    """Look up a link profile by name, with a clear error listing the choices."""
    try:
        return LINK_PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown link profile {name!r}; choose one of "
                         f"{', '.join(LINK_PROFILES)}") from None


class TokenBucket:
    """Throughput limiter: ``budget(now)`` bytes may be sent now; ``spend`` records a send."""

    def __init__(self, bytes_per_s: float, burst_s: float = 0.005) -> None:
        self.rate = bytes_per_s
        self.burst = max(4096.0, bytes_per_s * burst_s) if math.isfinite(bytes_per_s) else 0.0
        self._tokens = self.burst
        self._last: float | None = None

    def budget(self, now_s: float) -> float:
        """Bytes that may go out at ``now_s``."""
        if not math.isfinite(self.rate):
            return math.inf
        if self._last is not None:
            self._tokens = min(self.burst, self._tokens + (now_s - self._last) * self.rate)
        self._last = now_s
        return max(0.0, self._tokens)

    def spend(self, n_bytes: int) -> None:
        """Record ``n_bytes`` sent (the balance may go negative: the next budget waits)."""
        if math.isfinite(self.rate):
            self._tokens -= n_bytes


FAULT_HELP = """\
comma-separated faults, all seeded and reproducible; times are seconds after the first firing:
  bitflip=P        flip one bit in a byte with probability P per byte
  drop=P           drop a byte with probability P per byte
  garbage=P        insert a burst of 1-64 junk bytes (sync bytes included) before a frame,
                   with probability P per frame
  stall=D@T        send nothing for D seconds from T (the device keeps acquiring)
  disconnect=D@T   unplug mid-frame at T; the port comes back D seconds later (board reboots)
  reset@T          the device resets at T (sequence restarts at 0, configuration lost)
  overflow=P       the device drops a line with probability P and reports it in STATUS
  wrong-nak        the firmware answers with wrong NAK codes
  hv-fault         the high-voltage supply is faulty: START gets NAK HARDWARE_FAULT"""


@dataclass
class FaultPlan:
    """What goes wrong on the simulated link and device (see ``FAULT_HELP``)."""

    bitflip: float = 0.0
    drop: float = 0.0
    garbage: float = 0.0
    overflow: float = 0.0
    wrong_nak: bool = False
    hv_fault: bool = False
    stalls: list[tuple[float, float]] = field(default_factory=list)  # (at_s, duration_s)
    disconnects: list[tuple[float, float]] = field(default_factory=list)  # (at_s, down_s)
    resets: list[float] = field(default_factory=list)

    @classmethod
    def parse(cls, spec: str | None) -> FaultPlan:
        """Parse a fault string; errors name the offending item and show the syntax."""
        plan = cls()
        for raw in (spec or "").split(","):
            item = raw.strip()
            if not item:
                continue
            try:
                plan._add(item)
            except ValueError as exc:
                raise ValueError(f"bad fault {item!r}: {exc}\n{FAULT_HELP}") from None
        return plan

    def _add(self, item: str) -> None:
        name, _, value = item.partition("=")
        name = name.strip()
        if name == "wrong-nak" and not value:
            self.wrong_nak = True
            return
        if name == "hv-fault" and not value:
            self.hv_fault = True
            return
        if name.startswith("reset@"):
            self.resets.append(_positive(name[6:], "time"))
            return
        if name in ("bitflip", "drop", "garbage", "overflow"):
            p = float(value)
            if not 0.0 <= p < 1.0:
                raise ValueError("a probability in [0, 1) is expected")
            setattr(self, name, p)
            return
        if name in ("stall", "disconnect"):
            dur, at_sep, at = value.partition("@")
            if not at_sep:
                raise ValueError("expected DURATION@TIME, e.g. 0.5@2")
            event = (_positive(at, "time"), _positive(dur, "duration"))
            (self.stalls if name == "stall" else self.disconnects).append(event)
            return
        raise ValueError("unknown fault")

    @property
    def corrupts_bytes(self) -> bool:
        """True if the byte stream itself is damaged (not only timing or device behaviour)."""
        return bool(self.bitflip or self.drop or self.garbage)


def _positive(text: str, what: str) -> float:
    value = float(text)
    if not value >= 0 or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number >= 0")
    return value


@dataclass(frozen=True)
class FaultEvent:
    """One injected fault: what, to which frame (by sequence number), when."""

    kind: str
    seq: int | None
    at_s: float
    detail: str = ""


class FaultInjector:
    """Applies a plan's byte faults to outgoing frames, reproducibly, and logs each one."""

    def __init__(self, plan: FaultPlan, seed: int = 0) -> None:
        self.plan = plan
        self._rng = np.random.default_rng(seed)
        self.events: list[FaultEvent] = []

    def apply(self, frames: list[tuple[int, bytes]], now_s: float) -> bytes:
        """Join ``(seq, frame)`` pairs into wire bytes, damaged as the plan says."""
        plan = self.plan
        if not plan.corrupts_bytes:
            return b"".join(f for _, f in frames)
        rng = self._rng
        out = bytearray()
        for seq, frame in frames:
            if plan.garbage and rng.random() < plan.garbage:
                n = int(rng.integers(1, 65))
                junk = bytearray(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
                at = int(rng.integers(0, n))
                junk[at : at + 2] = SYNC  # junk that looks like a frame start
                out += junk
                self.events.append(FaultEvent("garbage", None, now_s, f"{len(junk)} bytes "
                                              f"before seq {seq}"))
            data = frame
            if plan.bitflip:
                flips = rng.binomial(len(data), plan.bitflip)
                if flips:
                    buf = bytearray(data)
                    for pos in rng.integers(0, len(buf), flips):
                        buf[pos] ^= 1 << int(rng.integers(0, 8))
                    data = bytes(buf)
                    self.events.append(FaultEvent("bitflip", seq, now_s, f"{flips} bit(s)"))
            if plan.drop:
                drops = rng.binomial(len(data), plan.drop)
                if drops:
                    keep = np.ones(len(data), dtype=bool)
                    keep[rng.integers(0, len(data), drops)] = False
                    data = np.frombuffer(data, np.uint8)[keep].tobytes()
                    self.events.append(FaultEvent("drop", seq, now_s, f"{drops} byte(s)"))
            out += data
        return bytes(out)

    def damaged_seqs(self) -> set[int]:
        """Sequence numbers of frames whose bytes were altered."""
        return {e.seq for e in self.events if e.seq is not None and e.kind in ("bitflip", "drop")}
