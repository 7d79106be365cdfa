"""Simulated flow with known truth for the Doppler tests: phantoms, ensembles, IQ, gates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sonobridge.dsp import Chain, ChainConfig, ensemble_iq
from sonobridge.sim import Acquisition, EchoSynth, Phantom

C = 1540.0
F0 = 5e6
FS = 40e6
PRF = 5000.0
V_NYQ = C * PRF / (4 * F0)  # 0.385 m/s
DEPTH = 0.030                # vessel centre
START = 2 * 0.022 / C        # record 22 .. 38 mm
N_SAMPLES = 832


def vessel_phantom(axial_m_s: float, *, angle_deg: float = 45.0, profile: str = "plug",
                   attenuation: float = 0.0, amplitude: float = 0.1, radius_m: float = 0.003,
                   length_m: float = 0.016, points: tuple = ()) -> Phantom:
    """One vessel centred at 30 mm whose flow on a straight-down beam is ``axial_m_s``.

    Positive = toward the transducer: the angle is mirrored (180° − angle) for flow away.
    """
    angle = angle_deg if axial_m_s >= 0 else 180.0 - angle_deg
    speed = abs(axial_m_s) / np.cos(np.radians(angle_deg))
    data = {
        "name": "flow", "attenuation_db_cm_mhz": attenuation, "speed_of_sound_m_s": C,
        "region": {"x_m": [-0.02, 0.02], "z_m": [0.0, 0.05]},
        "vessel": [{"x_m": 0.0, "z_m": DEPTH, "radius_m": radius_m, "length_m": length_m,
                    "angle_deg": angle, "peak_velocity_m_s": speed, "profile": profile,
                    "amplitude": amplitude, "density_per_cell": 6}],
    }
    if points:
        data["point"] = [{"x_m": x, "z_m": z, "amplitude": a} for x, z, a in points]
    return Phantom.from_dict(data, source="flow.toml")


@dataclass
class Ensembles:
    """Analog frames of a fixed beam fired ``n_lines × ensemble`` times, and their IQ."""

    rf: np.ndarray          # (n_lines, ensemble, n_samples) volts
    iq: np.ndarray          # (n_lines, ensemble, n_out) complex64
    depth_m: np.ndarray     # (n_out,)
    demod_freq_hz: float
    sample_rate_out_hz: float
    synth: EchoSynth


def chain(pulse_cycles: float = 2) -> Chain:
    """The DSP chain for the simulated records (float volts in, no TGC)."""
    bw = 0.6 if pulse_cycles <= 2 else 0.35
    return Chain(ChainConfig(sample_rate_hz=FS, center_freq_hz=F0, input_format="float",
                             start_delay_s=START, blank_s=0.0, fractional_bandwidth=bw))


def fire(phantom: Phantom, *, n_lines: int = 8, ensemble: int = 16, prf_hz: float = PRF,
         t0_s: float = 0.05, seed: int = 3, pulse_cycles: float = 2, line_jitter: float = 0.003,
         positions: np.ndarray | None = None, sweep_kind: str = "fixed") -> Ensembles:
    """Fire ``n_lines`` ensembles back to back at the PRF (firing k at t0 + k/PRF)."""
    synth = EchoSynth(phantom, seed=seed, line_jitter=line_jitter)
    pos = np.zeros(n_lines) if positions is None else np.asarray(positions, dtype=float)
    acq = Acquisition(sample_rate_hz=FS, n_samples=N_SAMPLES, start_delay_s=START,
                      positions=np.repeat(pos, ensemble), sweep_kind=sweep_kind,
                      prf_hz=prf_hz, pulse_cycles=pulse_cycles)
    synth.prepare(acq)
    rf = synth.frame(t0_s).reshape(n_lines, ensemble, N_SAMPLES).copy()
    iq, result = ensemble_iq(chain(pulse_cycles), rf)
    return Ensembles(rf, iq, result.depth_m.copy(), result.demod_freq_hz,
                     result.sample_rate_out_hz, synth)


def gate(depth_m: np.ndarray, center_m: float = DEPTH, half_m: float = 0.0008) -> np.ndarray:
    """Boolean mask of the depth samples within ``center ± half``."""
    return np.abs(depth_m - center_m) <= half_m


def gate_mean_velocity(r1: np.ndarray, depth_m: np.ndarray, prf_hz: float = PRF,
                       f0: float = F0) -> float:
    """Velocity from R1 summed over all lines and the gate (the estimator's mean)."""
    total = r1[..., gate(depth_m)].sum()
    return float(C * prf_hz / (4 * f0) * np.angle(total) / np.pi)
