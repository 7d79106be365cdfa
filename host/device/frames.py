"""Echo lines → complete sweeps (``Frame``), with geometry, per-line metadata and honest gaps.

A frame is handed on when every firing has arrived, when its ``FRAME_END`` arrives, or when a
line of another sweep (or another configuration) shows up. Missing lines are listed in
``Frame.missing_lines`` and ``Frame.present``; their rows hold the ADC's zero level so the
array stays usable, and ``Frame.complete`` is False: never a silent zero-fill.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sonobridge.protocol import EchoLine, FrameEnd, SweepKind
from sonobridge.protocol.samples import DTYPES, zero_level

SOUND_SPEED_M_S = 1540.0


@dataclass(frozen=True)
class Geometry:
    """Where each line looked and when each sample was taken."""

    sweep_kind: int
    #: per line: angle in radians (sector), lateral offset in metres (linear), or 0 (fixed);
    #: the *actual* positions the board reported, NaN for a line that never arrived
    positions: np.ndarray
    sample_rate_hz: float
    start_delay_s: float
    n_samples: int

    def depth_m(self, sound_speed_m_s: float = SOUND_SPEED_M_S) -> np.ndarray:
        """Depth of every sample ``(n_samples,)`` in metres, start delay included."""
        t = self.start_delay_s + np.arange(self.n_samples) / self.sample_rate_hz
        return sound_speed_m_s * t / 2

    @property
    def is_sector(self) -> bool:
        """True for an angular sweep."""
        return self.sweep_kind == SweepKind.SECTOR


#: per-line metadata, one record per firing
LINE_META = np.dtype([
    ("seq", np.int64),               # -1 for a missing firing
    ("beam_position", np.int32),     # µrad or µm, as on the wire
    ("timestamp_us", np.uint64),     # device clock at the pulse
    ("host_time_ns", np.int64),      # host monotonic clock when the line was decoded
])


@dataclass
class Frame:
    """One sweep. ``samples`` is ``(n_lines, n_samples)``: the first firing of every line."""

    index: int
    samples: np.ndarray
    #: every firing, ``(n_lines, ensemble_size, n_samples)``; ``samples`` is ``[:, 0, :]``
    ensembles: np.ndarray
    #: which firings arrived, ``(n_lines, ensemble_size)``
    present: np.ndarray
    #: per-firing metadata, ``(n_lines, ensemble_size)`` records of ``LINE_META``
    meta: np.ndarray
    geometry: Geometry
    config_id: int
    sample_format: int
    adc_bits: int
    end_received: bool = False
    #: ECHO_LINEs the device says it sent for this sweep (from FRAME_END), None without one
    device_sent: int | None = None
    #: missing firings attributed to the link (sequence gaps), to the device (its buffer
    #: overflowed) and to the host (its acquisition buffer overflowed: the host fell behind)
    lost_link: int = 0
    lost_device: int = 0
    lost_host: int = 0
    host_time_ns: int = 0

    @property
    def n_lines(self) -> int:
        """Lines in the sweep."""
        return int(self.samples.shape[0])

    @property
    def ensemble_size(self) -> int:
        """Firings per line."""
        return int(self.ensembles.shape[1])

    @property
    def complete(self) -> bool:
        """True if every firing of every line arrived."""
        return bool(self.present.all())

    @property
    def missing_lines(self) -> list[int]:
        """Indices of lines with at least one missing firing."""
        return np.flatnonzero(~self.present.all(axis=1)).tolist()

    @property
    def n_missing(self) -> int:
        """Missing firings."""
        return int(self.present.size - np.count_nonzero(self.present))

    @property
    def zero_level(self) -> int:
        """Sample value meaning zero signal (offset-binary midscale, 0 for i16)."""
        return zero_level(self.sample_format, self.adc_bits)


@dataclass
class _Building:
    key: tuple
    frame: Frame
    last_firing: int = -1
    link_gaps: int = 0
    host_gaps: int = 0
    got: int = 0
    firings: int = 0
    lines: list[int] = field(default_factory=list)


class FrameAssembler:
    """Collects ``EchoLine``s into ``Frame``s; ``emit`` is called with each finished frame.

    A sweep of which not one line arrived cannot become a Frame; its FRAME_END is reported to
    ``on_lost(frame_index, expected_firings, device_sent, n_sweeps)`` instead, so it is still
    counted (``device_sent`` is None for ``n_sweeps`` consecutive sweeps from ``frame_index``
    whose FRAME_ENDs were lost with them; ``expected_firings`` is per sweep).

    ``link_gap`` and ``host_gap`` are the messages missing just before a line or FRAME_END (its
    sequence gap), lost on the link or in the host's overflowing acquisition buffer.
    """

    def __init__(self, emit: Callable[[Frame], None],
                 on_lost: Callable[[int, int, int | None, int], None] | None = None) -> None:
        self.emit = emit
        self.on_lost = on_lost
        self._cur: _Building | None = None
        self._last_index: int | None = None
        self._last_key: tuple | None = None
        self._ensemble = 1
        self.duplicates = 0
        self.frames_emitted = 0

    def add_line(self, line: EchoLine, host_time_ns: int, link_gap: int = 0,
                 host_gap: int = 0) -> None:
        """Place a line, after ``link_gap``/``host_gap`` messages lost just before it."""
        key = (line.frame_index, line.config_id, line.n_samples, line.lines_per_frame,
               line.ensemble_size, line.sample_format, line.sample_rate_hz,
               line.start_delay_samples, line.sweep_kind)
        cur = self._cur
        if cur is not None and cur.key != key:
            # the gap sits between the old sweep's last line and this one: the old sweep's
            # missing tail takes it first, the rest belongs to the new sweep
            tail = cur.firings - 1 - cur.last_firing
            to_old = min(link_gap, tail)
            cur.link_gaps += to_old
            link_gap -= to_old
            to_old = min(host_gap, tail - to_old)
            cur.host_gaps += to_old
            host_gap -= to_old
            self._finish()
            cur = None
        firing = line.line_index * line.ensemble_size + line.ensemble_index
        if cur is None:
            link_gap, host_gap = self._whole_sweeps_lost(key, firing, link_gap, host_gap)
            cur = self._cur = self._start(key, line)
        cur.link_gaps += link_gap
        cur.host_gaps += host_gap
        li, ei = line.line_index, line.ensemble_index
        f = cur.frame
        if f.present[li, ei]:
            self.duplicates += 1
            return
        f.ensembles[li, ei] = line.samples
        f.present[li, ei] = True
        f.meta[li, ei] = (line.seq if line.seq is not None else -1, line.beam_position,
                          line.timestamp_us, host_time_ns)
        pos = line.beam_position * 1e-6 if line.sweep_kind != SweepKind.FIXED else 0.0
        f.geometry.positions[li] = pos
        cur.last_firing = max(cur.last_firing, firing)
        cur.got += 1
        f.host_time_ns = host_time_ns
        if cur.got == cur.firings:
            self._finish()

    def _whole_sweeps_lost(self, key: tuple, firing: int, link_gap: int, host_gap: int
                           ) -> tuple[int, int]:
        """Report sweeps that vanished whole (lines and FRAME_END) in a sequence gap.

        They show as a jump in ``frame_index`` between two sweeps of one configuration; the
        count is bounded by the gap itself, so nothing is inferred without a gap. Returns the
        gap left for the new sweep's own missing head.
        """
        last, prev = self._last_index, self._last_key
        gap = link_gap + host_gap
        if last is None or prev is None or prev[1:] != key[1:] or gap <= firing:
            return link_gap, host_gap
        firings = key[3] * key[4]  # lines_per_frame × ensemble_size
        n_whole = min((key[0] - last - 1) & 0xFFFFFFFF, (gap - firing) // max(1, firings))
        if n_whole <= 0 or n_whole > 0x7FFFFFFF:
            return link_gap, host_gap
        if self.on_lost is not None:  # one report for them all: a jump may span millions
            self.on_lost((last + 1) & 0xFFFFFFFF, firings, None, n_whole)
        used = n_whole * (firings + 1)  # their lines and their FRAME_ENDs
        from_host = min(host_gap, used)
        return max(0, link_gap - (used - from_host)), host_gap - from_host

    def add_frame_end(self, end: FrameEnd, host_time_ns: int, link_gap: int = 0,
                      host_gap: int = 0) -> None:
        """A FRAME_END: the sweep it names is finished, whatever arrived."""
        cur = self._cur
        if cur is not None and cur.key[0] == end.frame_index:
            cur.link_gaps += link_gap
            cur.host_gaps += host_gap
            cur.frame.end_received = True
            cur.frame.device_sent = end.lines_sent
            cur.frame.host_time_ns = host_time_ns
            self._finish()
            return
        if end.frame_index == self._last_index:
            return  # that sweep was already handed on when its last line arrived
        self.flush()
        self._last_index = end.frame_index
        if self.on_lost is not None:
            self.on_lost(end.frame_index, end.lines_per_frame * self._ensemble, end.lines_sent, 1)

    def flush(self) -> None:
        """Hand on the sweep in progress as it is (stop, disconnect, reset)."""
        if self._cur is not None:
            self._finish()

    def _start(self, key: tuple, line: EchoLine) -> _Building:
        n_lines, ens, n = line.lines_per_frame, line.ensemble_size, line.n_samples
        dtype = DTYPES[line.sample_format]
        ensembles = np.full((n_lines, ens, n), line.zero_level, dtype=dtype)
        geometry = Geometry(
            sweep_kind=line.sweep_kind, positions=np.full(n_lines, np.nan),
            sample_rate_hz=float(line.sample_rate_hz), start_delay_s=line.start_delay_s,
            n_samples=n,
        )
        meta = np.zeros((n_lines, ens), dtype=LINE_META)
        meta["seq"] = -1
        frame = Frame(
            index=line.frame_index, samples=ensembles[:, 0, :], ensembles=ensembles,
            present=np.zeros((n_lines, ens), dtype=bool), meta=meta, geometry=geometry,
            config_id=line.config_id, sample_format=line.sample_format,
            adc_bits=line.adc_bits or 16,
        )
        return _Building(key=key, frame=frame, firings=n_lines * ens)

    def _finish(self) -> None:
        cur = self._cur
        self._cur = None
        if cur is None:
            return
        f = cur.frame
        missing = f.n_missing
        if f.device_sent is not None:
            # FRAME_END says how many lines left the device: the rest it dropped itself
            f.lost_device = min(missing, max(0, cur.firings - f.device_sent))
            f.lost_host = min(missing - f.lost_device, cur.host_gaps)
            f.lost_link = missing - f.lost_device - f.lost_host
        else:
            f.lost_host = min(missing, cur.host_gaps)
            f.lost_link = min(missing - f.lost_host, cur.link_gaps)
            f.lost_device = missing - f.lost_host - f.lost_link
        self._last_index = f.index
        self._last_key = cur.key
        self._ensemble = f.ensemble_size
        self.frames_emitted += 1
        self.emit(f)
