"""Pulsed-wave spectral Doppler: the velocity spectrum of one range gate over slow time.

A gate's IQ over consecutive firings (slow time, at the PRF) is cut into overlapping windows;
each window's power spectrum, summed incoherently over the gate's depth samples, is one column
of the spectrogram. Frequency ``f`` maps to velocity ``v = c·f / (2·f0)``; the axis spans
``[(s − 1)·v_nyq, (s + 1)·v_nyq)`` (``s`` = baseline shift) with positive = toward the
transducer, like every velocity in sonobridge.

* :func:`pw_spectrogram` — a whole record at once.
* :class:`PwSpectrum` — a continuous stream pushed in chunks (e.g. a fixed beam's ensembles,
  frame after frame): a ring buffer of slow-time samples, wall-filter state carried across
  pushes, and a ring buffer of spectra (``(history, n_fft)``, like :class:`~sonobridge.dsp.MMode`).

Spectra are ``(n_times, n_fft)``: rows are time, columns velocity (ascending). Power is in dB
relative to full scale² per bin (``10·log10``), normalised so that the bins of a window sum to
the mean power of its samples; display with levels ``(peak − dynamic range, peak)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.signal

from .doppler import SOUND_SPEED_M_S, _check_freq, _check_shift, nyquist_velocity_m_s, wrap_velocity
from .wall_filter import _check_axis, _check_rate, iir_wall_filter

_FLOOR = 1e-30


def range_gate(iq: np.ndarray, depth_m: np.ndarray, center_m: float, length_m: float, *,
               axis: int = -1) -> np.ndarray:
    """The samples of ``iq`` whose depth lies within ``center_m ± length_m/2`` (at least one).

    ``depth_m`` ``(n_out,)`` gives the depth of each sample along ``axis``. Returns a view or
    copy with that axis cut to the gate.
    """
    x = np.asarray(iq)
    ax = _check_axis(x, axis)
    depth = np.asarray(depth_m, dtype=np.float64)
    if depth.shape != (x.shape[ax],):
        raise ValueError(
            f"depth_m has shape {depth.shape}; iq has {x.shape[ax]} samples along axis {axis}"
        )
    if not (math.isfinite(length_m) and length_m >= 0) or not math.isfinite(center_m):
        raise ValueError(f"gate center_m={center_m!r} and length_m={length_m!r} must be finite, "
                         f"length_m >= 0")
    if not depth[0] <= center_m <= depth[-1]:
        raise ValueError(
            f"gate at {center_m * 1e3:.2f} mm is outside the line "
            f"({depth[0] * 1e3:.2f}..{depth[-1] * 1e3:.2f} mm)"
        )
    sel = np.flatnonzero(np.abs(depth - center_m) <= length_m / 2)
    if sel.size == 0:
        sel = np.array([int(np.argmin(np.abs(depth - center_m)))])
    return np.take(x, np.arange(sel[0], sel[-1] + 1), axis=ax)


@dataclass(frozen=True)
class _Plan:
    """Everything fixed for a given window/FFT/velocity setup."""

    window: np.ndarray      # float32 (window_len,)
    norm: float             # 1 / (n_fft · Σ w²)
    n_fft: int
    order: np.ndarray       # FFT bin order that sorts the velocity axis
    velocity_m_s: np.ndarray
    nyquist_m_s: float


def _plan(prf_hz: float, center_freq_hz: float, window_len: int, n_fft: int | None,
          window: str | tuple | np.ndarray, sound_speed_m_s: float,
          baseline_shift: float) -> _Plan:
    f0 = _check_freq(center_freq_hz)
    if np.ndim(f0) != 0:
        raise ValueError("center_freq_hz must be a single frequency for a spectrogram")
    vn = float(nyquist_velocity_m_s(prf_hz, f0, sound_speed_m_s))
    _check_shift(baseline_shift)
    if isinstance(window_len, bool) or not isinstance(window_len, (int, np.integer)) \
            or window_len < 2:
        raise ValueError(f"window_len={window_len!r} must be an integer >= 2 (firings)")
    n_fft = int(window_len) if n_fft is None else n_fft
    if isinstance(n_fft, bool) or not isinstance(n_fft, (int, np.integer)) \
            or n_fft < window_len:
        raise ValueError(f"n_fft={n_fft!r} must be an integer >= window_len={window_len}")
    if isinstance(window, np.ndarray):
        w = np.asarray(window, dtype=np.float64)
        if w.shape != (window_len,):
            raise ValueError(f"window array has shape {w.shape}, expected ({window_len},)")
    else:
        w = scipy.signal.get_window(window, int(window_len), fftbins=True)
    energy = float(np.sum(w * w))
    if not energy > 0:
        raise ValueError("the window is all zeros")
    freqs = scipy.fft.fftfreq(int(n_fft), 1.0 / prf_hz)
    v = wrap_velocity(sound_speed_m_s * freqs / (2.0 * f0), vn, baseline_shift)
    order = np.argsort(v, kind="stable")
    return _Plan(w.astype(np.float32), 1.0 / (n_fft * energy), int(n_fft), order,
                 v[order], vn)


def _spectra(x: np.ndarray, plan: _Plan, starts: np.ndarray) -> np.ndarray:
    """Power per bin ``(len(starts), n_fft)`` for windows of ``x`` ``(n_slow, n_gate)``."""
    n_w = plan.window.size
    idx = starts[:, None] + np.arange(n_w)
    seg = x[idx] * plan.window[None, :, None]             # (n_win, window_len, n_gate)
    spec = scipy.fft.fft(seg, n=plan.n_fft, axis=1, workers=1)
    power = (spec.real**2 + spec.imag**2).mean(axis=2) * plan.norm
    return power[:, plan.order].astype(np.float32)


def _as_slow_by_gate(iq: np.ndarray, axis: int) -> np.ndarray:
    """Move slow time first and flatten the rest: ``(n_slow, n_gate)`` complex64."""
    if not isinstance(iq, np.ndarray):
        raise TypeError(f"gate IQ must be a numpy array, got {type(iq).__name__}")
    if not np.iscomplexobj(iq):
        raise TypeError(f"gate IQ must be complex baseband IQ, got {iq.dtype}")
    if iq.ndim == 0:
        raise ValueError("gate IQ must have a slow-time axis, got a scalar")
    ax = _check_axis(iq, axis)
    x = np.moveaxis(iq, ax, 0)
    n_gate = math.prod(x.shape[1:])
    if n_gate == 0:
        raise ValueError(f"gate IQ has no depth samples (shape {iq.shape})")
    return x.reshape(x.shape[0], n_gate).astype(np.complex64, copy=False)


def _to_db(power: np.ndarray) -> np.ndarray:
    return (10.0 * np.log10(np.maximum(power, _FLOOR))).astype(np.float32)


@dataclass(frozen=True, eq=False)
class Spectrogram:
    """A PW Doppler spectrogram.

    - ``power_db``: float32 ``(n_times, n_fft)``, dB re full scale² per bin; rows are windows
      in time order, columns velocity bins in ascending velocity.
    - ``velocity_m_s``: ``(n_fft,)`` bin centres, ascending, positive = toward the transducer.
    - ``time_s``: ``(n_times,)`` centre of each window, seconds after the first firing.
    - ``nyquist_m_s``: ``c·PRF/(4·f0)``; the bin width is ``2·nyquist_m_s / n_fft``.
    """

    power_db: np.ndarray
    velocity_m_s: np.ndarray
    time_s: np.ndarray
    nyquist_m_s: float

    @property
    def velocity_bin_m_s(self) -> float:
        """Width of one velocity bin, m/s."""
        return 2.0 * self.nyquist_m_s / self.velocity_m_s.size

    def peak_velocity_m_s(self) -> float:
        """Velocity of the strongest bin of the time-averaged spectrum."""
        mean = np.mean(10.0 ** (self.power_db.astype(np.float64) / 10.0), axis=0)
        return float(self.velocity_m_s[int(np.argmax(mean))])


def pw_spectrogram(gate_iq: np.ndarray, prf_hz: float, center_freq_hz: float, *,
                   axis: int = 0, window_len: int = 64, hop: int | None = None,
                   n_fft: int | None = None, window: str | tuple | np.ndarray = "hann",
                   wall_cutoff_hz: float | None = None, wall_order: int = 4,
                   sound_speed_m_s: float = SOUND_SPEED_M_S, baseline_shift: float = 0.0
                   ) -> Spectrogram:
    """Sliding-FFT spectrogram of a range gate's slow-time IQ.

    ``gate_iq``: complex, slow time (consecutive firings at ``prf_hz``) on ``axis``; any other
    axes (the gate's depth samples) are averaged incoherently. ``window_len`` firings per FFT
    (default 64), ``hop`` firings between windows (default ``window_len // 4``), ``n_fft`` >=
    ``window_len`` (default ``window_len``; more zero-pads), ``window`` any scipy window name
    or an array. ``wall_cutoff_hz`` applies :func:`~sonobridge.dsp.iir_wall_filter` first.
    """
    _check_rate("prf_hz", prf_hz)
    x = _as_slow_by_gate(gate_iq, axis)
    plan = _plan(prf_hz, center_freq_hz, window_len, n_fft, window, sound_speed_m_s,
                 baseline_shift)
    hop = max(1, window_len // 4) if hop is None else hop
    if isinstance(hop, bool) or not isinstance(hop, (int, np.integer)) or hop < 1:
        raise ValueError(f"hop={hop!r} must be an integer >= 1 (firings)")
    if x.shape[0] < window_len:
        raise ValueError(
            f"gate IQ has {x.shape[0]} firings along axis {axis}; a window needs "
            f"window_len={window_len}"
        )
    if wall_cutoff_hz is not None:
        x, _ = iir_wall_filter(x, wall_cutoff_hz, prf_hz, order=wall_order, axis=0)
    starts = np.arange(0, x.shape[0] - window_len + 1, hop)
    power = _spectra(x, plan, starts)
    time_s = (starts + (window_len - 1) / 2.0) / prf_hz
    return Spectrogram(_to_db(power), plan.velocity_m_s, time_s, plan.nyquist_m_s)


class PwSpectrum:
    """Streaming PW Doppler: push a gate's slow-time IQ as it arrives, read spectra as a strip.

    ``push(gate_iq)`` takes ``(k,)`` or ``(k, n_gate)`` consecutive firings (slow time first)
    and returns the spectra completed by them, float32 ``(m, n_fft)`` in dB; each is also written
    into ``buffer`` (``(history, n_fft)``, a ring with ``write_index`` the next row; rows not yet
    written hold ``floor_db``). ``ordered()`` returns the strip oldest → newest. A new column is
    produced every ``hop`` firings from the latest ``window_len``. With ``wall_cutoff_hz`` the
    IIR wall filter runs on the stream with its state carried between pushes (starting in the
    steady state of the first firing). Consecutive pushes must be contiguous in time at the PRF
    (e.g. a fixed beam's ensembles, frame after frame); call :meth:`reset` after a gap.
    """

    def __init__(self, prf_hz: float, center_freq_hz: float, *, window_len: int = 64,
                 hop: int = 16, n_fft: int | None = None,
                 window: str | tuple | np.ndarray = "hann", history: int = 512,
                 wall_cutoff_hz: float | None = None, wall_order: int = 4,
                 sound_speed_m_s: float = SOUND_SPEED_M_S, baseline_shift: float = 0.0,
                 floor_db: float = -200.0) -> None:
        _check_rate("prf_hz", prf_hz)
        self._plan = _plan(prf_hz, center_freq_hz, window_len, n_fft, window,
                           sound_speed_m_s, baseline_shift)
        if isinstance(hop, bool) or not isinstance(hop, (int, np.integer)) or hop < 1:
            raise ValueError(f"hop={hop!r} must be an integer >= 1 (firings)")
        if isinstance(history, bool) or not isinstance(history, (int, np.integer)) \
                or history < 1:
            raise ValueError(f"history={history!r} must be an integer >= 1 (spectra)")
        if wall_cutoff_hz is not None:
            iir_wall_filter(np.zeros(1, np.complex64), wall_cutoff_hz, prf_hz,
                            order=wall_order)  # validates the filter now, not on first push
        self.prf_hz = float(prf_hz)
        self.window_len = int(window_len)
        self.hop = int(hop)
        self.history = int(history)
        self.wall_cutoff_hz = wall_cutoff_hz
        self.wall_order = wall_order
        self.floor_db = float(floor_db)
        self.buffer = np.full((self.history, self._plan.n_fft), self.floor_db, np.float32)
        self.write_index = 0
        self.n_written = 0
        self.reset()

    @property
    def velocity_m_s(self) -> np.ndarray:
        """Velocity of each column of a spectrum ``(n_fft,)``, ascending."""
        return self._plan.velocity_m_s

    @property
    def nyquist_m_s(self) -> float:
        """``c·PRF/(4·f0)``."""
        return self._plan.nyquist_m_s

    @property
    def column_interval_s(self) -> float:
        """Time between successive spectra (``hop / PRF``)."""
        return self.hop / self.prf_hz

    def reset(self) -> None:
        """Forget the stream (slow-time history, wall-filter state); keep the drawn strip."""
        self._tail: np.ndarray | None = None   # last window_len - 1 (+ pending) samples
        self._zi: np.ndarray | None = None
        self._n_gate: int | None = None
        self._until_next = self.window_len     # samples still needed for the next spectrum

    def push(self, gate_iq: np.ndarray) -> np.ndarray:
        """Add consecutive firings of the gate; return the new spectra ``(m, n_fft)`` in dB."""
        x = _as_slow_by_gate(gate_iq, 0)
        if x.shape[0] == 0:
            return np.empty((0, self._plan.n_fft), np.float32)
        if self._n_gate is not None and x.shape[1] != self._n_gate:
            raise ValueError(
                f"gate has {x.shape[1]} samples per firing; this stream has {self._n_gate} "
                f"(call reset() to change the gate)"
            )
        self._n_gate = x.shape[1]
        if self.wall_cutoff_hz is not None:
            zi = "steady" if self._zi is None else self._zi
            x, self._zi = iir_wall_filter(x, self.wall_cutoff_hz, self.prf_hz,
                                          order=self.wall_order, axis=0, zi=zi)
        data = x if self._tail is None else np.concatenate((self._tail, x))
        # window ends: every hop samples, the first once window_len samples have arrived
        first_end = data.shape[0] - x.shape[0] + self._until_next
        ends = np.arange(first_end, data.shape[0] + 1, self.hop)
        if ends.size:
            columns = _to_db(_spectra(data, self._plan, ends - self.window_len))
            self._write(columns)
            self._until_next = ends[-1] + self.hop - data.shape[0]
        else:
            columns = np.empty((0, self._plan.n_fft), np.float32)
            self._until_next = first_end - data.shape[0]
        self._tail = data[-(self.window_len - 1):].copy() if self.window_len > 1 else None
        return columns

    def _write(self, columns: np.ndarray) -> None:
        n = columns.shape[0]
        keep = columns[-self.history:]
        first = (self.write_index + n - keep.shape[0]) % self.history
        self.buffer[(first + np.arange(keep.shape[0])) % self.history] = keep
        self.write_index = (self.write_index + n) % self.history
        self.n_written += n

    def ordered(self) -> np.ndarray:
        """The strip oldest → newest ``(history, n_fft)`` (one copy)."""
        return np.roll(self.buffer, -self.write_index, axis=0)

    def levels(self, dynamic_range_db: float = 50.0) -> tuple[float, float]:
        """Display levels ``(peak − dynamic_range_db, peak)`` of what has been written."""
        written = self.buffer if self.n_written >= self.history else \
            self.buffer[:self.write_index]
        peak = float(written.max()) if written.size else 0.0
        return peak - float(dynamic_range_db), peak
