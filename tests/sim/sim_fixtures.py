"""Helpers for the sim tests: small phantoms from keyword arguments and envelope measurements."""

from __future__ import annotations

import numpy as np
from scipy.signal import hilbert

from sonobridge.sim import Acquisition, EchoSynth, Phantom, load_phantom

C = 1540.0


def phantom(attenuation: float = 0.0, **elements) -> Phantom:
    """A phantom from element lists, e.g. ``phantom(point=[{"x_m": 0, "z_m": 0.03}])``."""
    data = {"name": "test", "attenuation_db_cm_mhz": attenuation, "speed_of_sound_m_s": C,
            "region": {"x_m": [-0.03, 0.03], "z_m": [0.0, 0.08]}, **elements}
    return Phantom.from_dict(data, source="test.toml")


def fixed_acq(n_lines: int = 1, n_samples: int = 4096, **kw) -> Acquisition:
    """A fixed (unswept) beam on axis."""
    return Acquisition(n_samples=n_samples, positions=np.zeros(n_lines), sweep_kind="fixed",
                       **kw)


def envelope(rf: np.ndarray) -> np.ndarray:
    """|analytic signal| along samples."""
    return np.abs(hilbert(np.asarray(rf, dtype=np.float64), axis=-1))


def peak(env: np.ndarray, depth_m: np.ndarray, z_m: float, half_window_m: float = 2e-3
         ) -> tuple[float, float]:
    """(peak value, parabolically refined depth) of a 1-D envelope near ``z_m``."""
    idx = np.flatnonzero(np.abs(depth_m - z_m) < half_window_m)
    k = idx[np.argmax(env[idx])]
    a, b, c = env[k - 1], env[k], env[k + 1]
    off = 0.5 * (a - c) / (a - 2 * b + c)
    return float(b), float(depth_m[k] + off * (depth_m[1] - depth_m[0]))


def spectrum_band(segment: np.ndarray, fs: float) -> tuple[float, float, float]:
    """(f_low, f_high, f_peak) of the −6 dB band of a zero-padded segment's spectrum."""
    n = 1 << 16
    spec = np.abs(np.fft.rfft(segment, n))
    f = np.fft.rfftfreq(n, 1 / fs)
    k = int(np.argmax(spec))
    half = spec[k] / 2
    lo = k - np.argmax(spec[k::-1] < half)
    hi = k + np.argmax(spec[k:] < half)
    f_lo = np.interp(half, [spec[lo], spec[lo + 1]], [f[lo], f[lo + 1]])
    f_hi = np.interp(half, [spec[hi], spec[hi - 1]], [f[hi], f[hi - 1]])
    return float(f_lo), float(f_hi), float(f[k])


def default_cyst_synth() -> EchoSynth:
    """Builtin cyst phantom, seed 7, default sector acquisition prepared."""
    synth = EchoSynth(load_phantom("cyst"), seed=7)
    synth.prepare(Acquisition())
    return synth
