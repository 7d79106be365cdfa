"""Wall (clutter) filters along slow time: remove echoes of still or slowly moving tissue.

Two kinds, both vectorized over every other axis (lines, depth):

* :func:`regression_wall_filter` — polynomial regression for short colour-flow ensembles:
  the projection of each slow-time vector onto the orthogonal complement of the polynomials of
  degree <= ``order``. Exact for any ensemble length, no start-up transient; order 0 removes the
  mean, order 1 also a linear drift, order 2 a quadratic.
* :func:`iir_wall_filter` — a Butterworth high-pass with a cutoff in Hz, for long continuous
  slow-time streams (pulsed-wave spectral Doppler). Its state carries across calls, so a stream
  can be filtered in chunks; ``zi="steady"`` starts as if the first sample had always been
  there, so a still reflector causes no start-up transient.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal

import numpy as np
import scipy.signal


def _check_axis(x: np.ndarray, axis: int, name: str = "iq") -> int:
    """Normalize ``axis`` for ``x`` or raise a ValueError naming the shape."""
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis={axis} is out of range for {name} of shape {x.shape}")
    return axis % x.ndim


@lru_cache(maxsize=32)
def _projection(n_ensemble: int, order: int) -> np.ndarray:
    """I − Q·Qᴴ with Q an orthonormal basis of the polynomials of degree <= order."""
    k = np.linspace(-1.0, 1.0, n_ensemble)
    vander = np.polynomial.legendre.legvander(k, order)  # well conditioned on [-1, 1]
    q, _ = np.linalg.qr(vander)
    proj = np.eye(n_ensemble) - q @ q.T
    proj.flags.writeable = False
    return proj


def regression_matrix(n_ensemble: int, order: int) -> np.ndarray:
    """The ``(n_ensemble, n_ensemble)`` projection a polynomial regression wall filter applies."""
    _check_order(n_ensemble, order)
    return _projection(int(n_ensemble), int(order))


def _check_order(n_ensemble: int, order: int) -> None:
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)):
        raise TypeError(f"wall filter order must be an integer, got {order!r}")
    if n_ensemble < 2:
        raise ValueError(f"an ensemble needs at least 2 firings, got {n_ensemble}")
    if not 0 <= order <= n_ensemble - 2:
        raise ValueError(
            f"wall filter order={order} must be in 0..{n_ensemble - 2} for an ensemble of "
            f"{n_ensemble} (it removes order + 1 of the {n_ensemble} degrees of freedom and "
            f"at least one must remain)"
        )


def regression_wall_filter(iq: np.ndarray, order: int = 1, *, axis: int = 1) -> np.ndarray:
    """Remove a polynomial of degree <= ``order`` along slow time (``axis``) from IQ data.

    ``iq``: complex (or real) array, slow time on ``axis`` (default 1, for
    ``(n_lines, ensemble, n_out)``), at least 2 firings. Returns a new complex64 array (float32
    for real input) of the same shape.
    """
    x = np.asarray(iq)
    if x.ndim == 0:
        raise ValueError("iq must be an array with a slow-time axis, got a scalar")
    ax = _check_axis(x, axis)
    n = x.shape[ax]
    _check_order(n, order)
    dtype = np.complex64 if np.iscomplexobj(x) else np.float32
    proj = _projection(n, int(order)).astype(dtype)
    moved = np.moveaxis(x.astype(dtype, copy=False), ax, -2) if x.ndim > 1 else x[:, None]
    out = np.matmul(proj, moved)
    return np.moveaxis(out, -2, ax) if x.ndim > 1 else out[:, 0]


def regression_response(n_ensemble: int, order: int, normalized_freq: np.ndarray | float
                        ) -> np.ndarray:
    """Power gain of the regression filter for a tone at ``normalized_freq`` (cycles per firing).

    ``|P·e|² / |e|²`` for ``e_k = exp(2πj·f·k)``: 0 at DC, → 1 well above the cutoff. The filter
    is not time-invariant, so this is the gain for a tone, not a transfer function.
    """
    proj = regression_matrix(n_ensemble, order)
    f = np.atleast_1d(np.asarray(normalized_freq, dtype=np.float64))
    e = np.exp(2j * np.pi * np.outer(np.arange(n_ensemble), f.ravel()))
    gain = np.sum(np.abs(proj @ e) ** 2, axis=0) / n_ensemble
    return gain.reshape(np.shape(normalized_freq))


def iir_wall_design(cutoff_hz: float, prf_hz: float, order: int = 4) -> np.ndarray:
    """Second-order sections of a Butterworth high-pass at ``cutoff_hz`` for a PRF."""
    _check_rate("prf_hz", prf_hz)
    if not (math.isfinite(cutoff_hz) and 0 < cutoff_hz < prf_hz / 2):
        raise ValueError(
            f"cutoff_hz={cutoff_hz!r} must be in (0, prf_hz/2) = (0, {prf_hz / 2:g}) Hz"
        )
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or not 1 <= order <= 10:
        raise ValueError(f"IIR wall filter order={order!r} must be an integer in 1..10")
    return scipy.signal.butter(int(order), cutoff_hz, btype="highpass", fs=prf_hz, output="sos")


def iir_wall_filter(x: np.ndarray, cutoff_hz: float, prf_hz: float, *, order: int = 4,
                    axis: int = 0, zi: np.ndarray | Literal["steady"] | None = "steady"
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Butterworth high-pass along slow time (``axis``); returns ``(y, zf)``.

    ``zi``: the state from a previous call (``zf``) to continue a stream, ``"steady"`` (default)
    to start as if the first sample had been constant forever (a still reflector gives no
    transient), or None to start from rest. ``zf`` has shape ``(n_sections, ..., 2, ...)`` with
    the 2 on ``axis``, as :func:`scipy.signal.sosfilt` uses it.
    """
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError("x must be an array with a slow-time axis, got a scalar")
    ax = _check_axis(x, axis, "x")
    if x.shape[ax] < 1:
        raise ValueError(f"x has no samples along axis {axis} (shape {x.shape})")
    sos = iir_wall_design(cutoff_hz, prf_hz, order)
    dtype = np.complex64 if np.iscomplexobj(x) else np.float32
    if isinstance(zi, str):
        if zi != "steady":
            raise ValueError(f"zi must be an array, 'steady' or None, got {zi!r}")
        first = np.take(x, [0], axis=ax)  # keeps the axis, length 1
        base = scipy.signal.sosfilt_zi(sos)  # (n_sections, 2)
        shape = [1] * (x.ndim + 1)
        shape[0], shape[ax + 1] = base.shape[0], 2
        zi_arr = base.reshape(shape) * first[np.newaxis]
    elif zi is None:
        shape = list(x.shape)
        shape[ax] = 2
        zi_arr = np.zeros((sos.shape[0], *shape), dtype=dtype)
    else:
        zi_arr = np.asarray(zi)
        want = (sos.shape[0], *x.shape[:ax], 2, *x.shape[ax + 1:])
        if zi_arr.shape != want:
            raise ValueError(f"zi has shape {zi_arr.shape}; this filter and x need {want}")
    y, zf = scipy.signal.sosfilt(sos, x, axis=ax, zi=zi_arr)
    return y.astype(dtype, copy=False), zf


def _check_rate(name: str, value: float) -> None:
    try:
        ok = math.isfinite(value) and value > 0
    except TypeError:
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not ok:
        raise ValueError(f"{name}={value!r} must be a finite number > 0")
