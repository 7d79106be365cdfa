"""Colour-flow Doppler: velocity, power and variance from repeated firings (Kasai estimator).

Shapes: ensemble IQ is ``(n_lines, ensemble, n_out)`` (slow time on ``axis=1``), as
:func:`ensemble_iq` builds it from a frame's ``(n_lines, ensemble, n_samples)`` firings; every
function takes the slow-time ``axis`` explicitly and returns arrays with that axis removed
(``(n_lines, n_out)``).

**Sign convention** (the same everywhere in sonobridge): a positive velocity means the blood
moves *toward* the transducer. Such motion shortens the round trip, so the IQ phase at a fixed
depth grows from firing to firing and the lag-one autocorrelation ``R1 = mean x[k+1]·x̄[k]`` has
a positive angle. Colour maps draw positive = red, negative = blue.

Kasai: ``v = v_nyq · angle(R1) / π`` with the Nyquist velocity ``v_nyq = c·PRF / (4·f0)``.
Velocities beyond ±v_nyq alias: they wrap into ``[−v_nyq, v_nyq)`` (shifted by
``baseline_shift · v_nyq``), exactly as the phase of R1 wraps. ``f0`` is the *RF* centre
frequency of the echoes (not the demodulation frequency); attenuation lowers it with depth,
which :func:`mean_frequency_hz` measures from the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d

from .chain import Chain, ChainResult
from .wall_filter import _check_axis, _check_rate, regression_wall_filter

SOUND_SPEED_M_S = 1540.0


def nyquist_velocity_m_s(prf_hz: float, center_freq_hz: float | np.ndarray,
                         sound_speed_m_s: float = SOUND_SPEED_M_S) -> float | np.ndarray:
    """The largest unambiguous velocity ``c·PRF / (4·f0)`` in m/s (array if f0 is)."""
    _check_rate("prf_hz", prf_hz)
    _check_rate("sound_speed_m_s", sound_speed_m_s)
    f0 = _check_freq(center_freq_hz)
    v = sound_speed_m_s * prf_hz / (4.0 * f0)
    return float(v) if np.ndim(v) == 0 else v


def _check_freq(center_freq_hz: float | np.ndarray) -> float | np.ndarray:
    f0 = np.asarray(center_freq_hz, dtype=np.float64)
    if f0.size == 0 or not np.all(np.isfinite(f0)) or not np.all(f0 > 0):
        raise ValueError(f"center_freq_hz must be finite and > 0 (Hz), got {center_freq_hz!r}")
    return float(f0) if f0.ndim == 0 else f0


def _check_shift(baseline_shift: float) -> float:
    try:
        ok = math.isfinite(baseline_shift) and -1.0 < baseline_shift < 1.0
    except TypeError:
        raise TypeError(f"baseline_shift must be a number, got {baseline_shift!r}") from None
    if not ok:
        raise ValueError(
            f"baseline_shift={baseline_shift!r} must be in (-1, 1) (a fraction of v_nyq)"
        )
    return float(baseline_shift)


def wrap_phase(phase_rad: np.ndarray, baseline_shift: float = 0.0) -> np.ndarray:
    """Wrap phases into ``[(s − 1)·π, (s + 1)·π)`` with ``s = baseline_shift``."""
    s = _check_shift(baseline_shift)
    p = np.asarray(phase_rad)
    centre = s * np.pi
    return np.mod(p - centre + np.pi, 2.0 * np.pi) - np.pi + centre


def wrap_velocity(velocity_m_s: np.ndarray | float, nyquist_m_s: np.ndarray | float,
                  baseline_shift: float = 0.0) -> np.ndarray:
    """Alias velocities into ``[(s − 1)·v_nyq, (s + 1)·v_nyq)``, as a pulsed system sees them."""
    vn = np.asarray(nyquist_m_s, dtype=np.float64)
    if not np.all(np.isfinite(vn)) or not np.all(vn > 0):
        raise ValueError(f"nyquist_m_s must be finite and > 0, got {nyquist_m_s!r}")
    v = np.asarray(velocity_m_s, dtype=np.float64)
    return wrap_phase(v / vn * np.pi, baseline_shift) / np.pi * vn


def _slow_time(iq: np.ndarray, axis: int) -> tuple[np.ndarray, int]:
    """Validate ensemble IQ and return it with its normalized slow-time axis."""
    if not isinstance(iq, np.ndarray):
        raise TypeError(f"iq must be a numpy array, got {type(iq).__name__}")
    if not np.iscomplexobj(iq):
        raise TypeError(
            f"iq must be complex baseband IQ (e.g. Chain.process(...).iq), got {iq.dtype}"
        )
    if iq.ndim == 0:
        raise ValueError("iq must have a slow-time axis, got a scalar")
    ax = _check_axis(iq, axis)
    if iq.shape[ax] < 2:
        raise ValueError(
            f"iq has {iq.shape[ax]} firing(s) along the slow-time axis {axis} (shape "
            f"{iq.shape}); Doppler needs an ensemble of at least 2"
        )
    if any(n == 0 for n in iq.shape):
        raise ValueError(f"iq is empty (shape {iq.shape})")
    return iq, ax


def _box_sizes(average: int | tuple[int, ...], ndim_out: int) -> tuple[int, ...]:
    """Boxcar length for each output axis: an int applies to the last (depth) axis only."""
    if isinstance(average, (int, np.integer)) and not isinstance(average, bool):
        sizes: tuple[int, ...] = (1,) * (ndim_out - 1) + (int(average),) if ndim_out else ()
    else:
        sizes = tuple(int(a) for a in average)
        if len(sizes) != ndim_out:
            raise ValueError(
                f"average={average!r} needs one boxcar length per output axis ({ndim_out}); "
                f"or pass an int for the depth axis only"
            )
    if any(a < 1 for a in sizes):
        raise ValueError(f"average={average!r}: boxcar lengths must be >= 1")
    return sizes


def _boxcar(x: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    for ax, size in enumerate(sizes):
        if size > 1:
            if np.iscomplexobj(x):
                x = (uniform_filter1d(x.real, size, axis=ax, mode="nearest")
                     + 1j * uniform_filter1d(x.imag, size, axis=ax, mode="nearest")
                     ).astype(x.dtype)
            else:
                x = uniform_filter1d(x, size, axis=ax, mode="nearest")
    return x


def lag_one_autocorrelation(iq: np.ndarray, *, axis: int = 1,
                            average: int | tuple[int, ...] = 1
                            ) -> tuple[np.ndarray, np.ndarray]:
    """``(R0, R1)`` along slow time: ``R0 = mean |x|²`` (float32), ``R1 = mean x[k+1]·x̄[k]``.

    Both have the slow-time ``axis`` removed. ``average`` boxcar-averages R0 and R1 over the
    remaining axes before any angle is taken: an int for the last (depth) axis, or one length
    per remaining axis, e.g. ``(3, 5)`` = 3 lines × 5 depth samples.
    """
    x, ax = _slow_time(iq, axis)
    xs = np.moveaxis(x, ax, 0)
    if xs.dtype != np.complex64:
        xs = xs.astype(np.complex64)
    n = xs.shape[0]
    r0 = np.zeros(xs.shape[1:], np.float32)
    r1 = np.zeros(xs.shape[1:], np.complex64)
    for k in range(n):  # the ensemble is short; each step is vectorized over lines × depth
        xk = xs[k]
        r0 += xk.real * xk.real + xk.imag * xk.imag
        if k:
            r1 += xk * np.conj(xs[k - 1])
    r0 /= n
    r1 /= n - 1
    sizes = _box_sizes(average, r0.ndim)
    return _boxcar(r0, sizes), _boxcar(r1, sizes)


def kasai_velocity(r1: np.ndarray, prf_hz: float, center_freq_hz: float | np.ndarray, *,
                   sound_speed_m_s: float = SOUND_SPEED_M_S, baseline_shift: float = 0.0
                   ) -> np.ndarray:
    """Velocity (m/s, float32, positive = toward the transducer) from the lag-one R1."""
    vn = nyquist_velocity_m_s(prf_hz, center_freq_hz, sound_speed_m_s)
    phase = wrap_phase(np.angle(np.asarray(r1)), baseline_shift)
    return (phase * (np.asarray(vn) / np.pi)).astype(np.float32)


@dataclass(frozen=True, eq=False)
class FlowEstimate:
    """Colour-flow estimates, each ``(n_lines, n_out)`` (the ensemble axis removed).

    - ``velocity_m_s``: float32 mean axial velocity, positive = toward the transducer, within
      ``[(s − 1)·v_nyq, (s + 1)·v_nyq)`` (``s`` the baseline shift).
    - ``power``: float32 ``R0`` = mean ``|IQ|²`` after the wall filter (full-scale² units).
    - ``variance``: float32 ``1 − |R1|/R0`` in [0, 1]: 0 for one clean velocity, → 1 for noise.
    - ``nyquist_m_s``: ``c·PRF/(4·f0)``, a float (an array if ``f0`` varies with depth or,
      for :func:`loupas`, per pixel).
    """

    velocity_m_s: np.ndarray
    power: np.ndarray
    variance: np.ndarray
    nyquist_m_s: float | np.ndarray
    baseline_shift: float = 0.0
    #: the RF centre frequency used for the velocity scale: the given f0 (Kasai) or the
    #: per-pixel estimate ``(n_lines, n_out)`` (Loupas)
    center_freq_hz: float | np.ndarray = 0.0

    def power_db(self, reference: float | None = None) -> np.ndarray:
        """``10·log10(power / reference)`` (reference: the maximum power if None), float32."""
        ref = float(np.max(self.power)) if reference is None else float(reference)
        ref = ref if ref > 0 else 1.0
        return (10.0 * np.log10(np.maximum(self.power, ref * 1e-30) / ref)).astype(np.float32)


def kasai(iq: np.ndarray, prf_hz: float, center_freq_hz: float | np.ndarray, *,
          axis: int = 1, sound_speed_m_s: float = SOUND_SPEED_M_S,
          average: int | tuple[int, ...] = 1, baseline_shift: float = 0.0) -> FlowEstimate:
    """Kasai lag-one autocorrelation estimates (no wall filter) from ensemble IQ."""
    vn = nyquist_velocity_m_s(prf_hz, center_freq_hz, sound_speed_m_s)
    _check_shift(baseline_shift)
    r0, r1 = lag_one_autocorrelation(iq, axis=axis, average=average)
    velocity = kasai_velocity(r1, prf_hz, center_freq_hz, sound_speed_m_s=sound_speed_m_s,
                              baseline_shift=baseline_shift)
    return FlowEstimate(velocity, r0, _variance(r0, r1), vn, float(baseline_shift),
                        center_freq_hz)


def _variance(r0: np.ndarray, r1: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = np.where(r0 > 0, 1.0 - np.abs(r1) / r0, 1.0)
    return np.clip(variance, 0.0, 1.0).astype(np.float32)


def loupas(iq: np.ndarray, prf_hz: float, demod_freq_hz: float, sample_rate_out_hz: float, *,
           axis: int = 1, sound_speed_m_s: float = SOUND_SPEED_M_S,
           average: int | tuple[int, ...] = 5, baseline_shift: float = 0.0) -> FlowEstimate:
    """Kasai with the RF centre frequency measured per pixel (Loupas' 2-D autocorrelator).

    ``v = c·PRF·angle(R1) / (4π·f)`` with ``f = demod_freq_hz + sample_rate_out_hz ·
    angle(R_axial)/2π`` from the lag-one autocorrelation along depth (the *last* axis of
    ``iq``), boxcar-averaged like R1 (``average``, default 5 depth samples). This follows the
    echo's real frequency, lowered by attenuation and varying from speckle to speckle, so the
    velocity has neither the attenuation bias nor that part of the variance of plain Kasai.
    The Nyquist velocity then varies per pixel (``FlowEstimate.nyquist_m_s``).
    """
    x, ax = _slow_time(iq, axis)
    if ax == x.ndim - 1:
        raise ValueError(
            f"the slow-time axis ({axis}) cannot be the depth axis (the last) for Loupas; iq "
            f"shape {x.shape} must be (..., ensemble, ..., n_out)"
        )
    if x.shape[-1] < 2:
        raise ValueError(f"iq needs at least 2 depth samples (shape {x.shape})")
    _check_rate("prf_hz", prf_hz)
    _check_rate("demod_freq_hz", demod_freq_hz)
    _check_rate("sample_rate_out_hz", sample_rate_out_hz)
    _check_rate("sound_speed_m_s", sound_speed_m_s)
    shift = _check_shift(baseline_shift)
    r0, r1 = lag_one_autocorrelation(x, axis=ax, average=average)
    xs = np.moveaxis(x, ax, 0)
    lag = np.zeros(xs.shape[1:], np.complex64)  # between depth samples n and n+1, at n
    for k in range(xs.shape[0]):
        lag[..., :-1] += xs[k, ..., 1:] * np.conj(xs[k, ..., :-1])
    lag[..., -1] = lag[..., -2]
    lag[..., 1:] = 0.5 * (lag[..., 1:] + lag[..., :-1])  # centre on the samples
    lag = _boxcar(lag, _box_sizes(average, lag.ndim))
    f_est = demod_freq_hz + sample_rate_out_hz * np.angle(lag) / (2.0 * np.pi)
    f_est = np.maximum(f_est, 0.25 * demod_freq_hz)  # noise-only pixels: keep it sane
    phase = wrap_phase(np.angle(r1), shift)
    velocity = (sound_speed_m_s * prf_hz * phase / (4.0 * np.pi * f_est)).astype(np.float32)
    vn = (sound_speed_m_s * prf_hz / (4.0 * f_est)).astype(np.float32)
    return FlowEstimate(velocity, r0, _variance(r0, r1), vn, shift, f_est.astype(np.float32))


def color_flow(iq: np.ndarray, prf_hz: float, center_freq_hz: float | np.ndarray | None = None,
               *, demod_freq_hz: float | None = None, sample_rate_out_hz: float | None = None,
               axis: int = 1, wall_filter_order: int | None = 1,
               sound_speed_m_s: float = SOUND_SPEED_M_S,
               average: int | tuple[int, ...] = 1, baseline_shift: float = 0.0
               ) -> FlowEstimate:
    """Colour flow from ensemble IQ: regression wall filter, then :func:`kasai` or :func:`loupas`.

    ``iq``: complex ``(n_lines, ensemble, n_out)`` (slow time on ``axis``).
    ``wall_filter_order``: polynomial degree removed along slow time (None = no filter).
    Give ``center_freq_hz`` for Kasai with that f0, or instead ``demod_freq_hz`` and
    ``sample_rate_out_hz`` (from the ChainResult) for Loupas (f0 measured per pixel).
    """
    loupas_args = (demod_freq_hz, sample_rate_out_hz)
    if (center_freq_hz is None) == all(a is None for a in loupas_args) or (
            center_freq_hz is None and any(a is None for a in loupas_args)):
        raise ValueError(
            "give center_freq_hz (Kasai, fixed f0) or both demod_freq_hz and "
            "sample_rate_out_hz (Loupas, f0 measured per pixel), not both and not neither"
        )
    x, ax = _slow_time(iq, axis)
    if wall_filter_order is not None:
        x = regression_wall_filter(x, wall_filter_order, axis=ax)
    if center_freq_hz is not None:
        return kasai(x, prf_hz, center_freq_hz, axis=ax, sound_speed_m_s=sound_speed_m_s,
                     average=average, baseline_shift=baseline_shift)
    assert demod_freq_hz is not None and sample_rate_out_hz is not None
    return loupas(x, prf_hz, demod_freq_hz, sample_rate_out_hz, axis=ax,
                  sound_speed_m_s=sound_speed_m_s, average=average,
                  baseline_shift=baseline_shift)


def angle_correct(velocity_m_s: np.ndarray | float, angle_rad: np.ndarray | float, *,
                  max_angle_rad: float = math.radians(70.0)) -> np.ndarray:
    """Divide axial velocity by ``cos(angle)`` (beam-to-flow angle) to get the flow speed.

    Near 90° the correction explodes, so ``|angle| > max_angle_rad`` (default 70°) is refused:
    a scalar angle raises ValueError, and where an angle array exceeds it the result is NaN.
    """
    if not 0 <= max_angle_rad < math.pi / 2:
        raise ValueError(f"max_angle_rad={max_angle_rad!r} must be in [0, π/2)")
    theta = np.asarray(angle_rad, dtype=np.float64)
    if not np.all(np.isfinite(theta)):
        raise ValueError(f"angle_rad must be finite, got {angle_rad!r}")
    # fold into [−π/2, π/2]: 180° means the same line, the sign flips through cos
    folded = np.abs(np.mod(theta + np.pi / 2, np.pi) - np.pi / 2)
    too_wide = folded > max_angle_rad
    if theta.ndim == 0 and too_wide:
        raise ValueError(
            f"angle {math.degrees(float(theta)):.1f}° is within "
            f"{90 - math.degrees(max_angle_rad):.0f}° of perpendicular to the beam; "
            f"cos(angle) is too small to correct (max_angle_rad={max_angle_rad:.3f})"
        )
    v = np.asarray(velocity_m_s, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(too_wide, np.nan, v / np.cos(theta))
    return out


def mean_frequency_hz(iq: np.ndarray, sample_rate_out_hz: float, demod_freq_hz: float, *,
                      axis: int = -1, smooth_samples: int = 31) -> np.ndarray:
    """Mean RF frequency of the echoes at each depth, ``(n_out,)`` Hz (Loupas' axial lag).

    ``f = demod_freq_hz + sample_rate_out_hz · angle(Σ x[n+1]·x̄[n]) / 2π``, summed over every
    axis but the depth ``axis`` (lines and firings) and over ``smooth_samples`` depth samples.
    Attenuation lowers this with depth; pass the result as ``center_freq_hz`` to the estimators
    to remove that velocity bias.
    """
    x = np.asarray(iq)
    if not np.iscomplexobj(x):
        raise TypeError(f"iq must be complex baseband IQ, got {x.dtype}")
    if x.ndim == 0:
        raise ValueError("iq must have a depth axis, got a scalar")
    ax = _check_axis(x, axis)
    if x.shape[ax] < 2:
        raise ValueError(f"iq needs at least 2 depth samples along axis {axis}, shape {x.shape}")
    _check_rate("sample_rate_out_hz", sample_rate_out_hz)
    if not math.isfinite(demod_freq_hz):
        raise ValueError(f"demod_freq_hz must be finite, got {demod_freq_hz!r}")
    if isinstance(smooth_samples, bool) or int(smooth_samples) < 1:
        raise ValueError(f"smooth_samples={smooth_samples!r} must be an integer >= 1")
    xd = np.moveaxis(x, ax, -1).reshape(-1, x.shape[ax])
    lag = np.sum(xd[:, 1:] * np.conj(xd[:, :-1]), axis=0)  # (n_out - 1,) between samples
    lag = np.concatenate((lag[:1], 0.5 * (lag[:-1] + lag[1:]), lag[-1:]))  # centred on samples
    lag = _boxcar(lag.astype(np.complex128), (int(smooth_samples),))
    return demod_freq_hz + sample_rate_out_hz * np.angle(lag) / (2.0 * np.pi)


def ensemble_iq(chain: Chain, ensembles: np.ndarray) -> tuple[np.ndarray, ChainResult]:
    """Run ``chain`` on every firing of a frame and return IQ ``(n_lines, ensemble, n_out)``.

    ``ensembles``: ``(n_lines, ensemble, n_samples)`` ADC codes or floats (``Frame.ensembles``),
    firings of a line consecutive. The IQ is a complex64 copy (safe to keep); the
    :class:`ChainResult` (whose arrays are ``(n_lines·ensemble, n_out)`` views reused by the
    next call) carries ``depth_m``, ``demod_freq_hz`` and ``sample_rate_out_hz``. Use a Chain
    of its own for Doppler: it rebuilds its buffers when the row count changes.
    """
    if not isinstance(ensembles, np.ndarray):
        raise TypeError(f"ensembles must be a numpy array, got {type(ensembles).__name__}")
    if ensembles.ndim != 3:
        raise ValueError(
            f"ensembles must be 3-D (n_lines, ensemble, n_samples), got shape {ensembles.shape}"
        )
    n_lines, n_ens, n_samples = ensembles.shape
    if n_ens < 2:
        raise ValueError(
            f"ensembles has {n_ens} firing per line (shape {ensembles.shape}); Doppler needs "
            f"an ensemble of at least 2 (configure ensemble_size >= 2)"
        )
    result = chain.process(ensembles.reshape(n_lines * n_ens, n_samples))
    iq = result.iq.reshape(n_lines, n_ens, -1).copy()
    return iq, result
