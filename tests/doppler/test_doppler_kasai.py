"""Kasai / Loupas colour-flow estimates on simulated flow with known velocity."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sonobridge.dsp import (
    angle_correct,
    color_flow,
    ensemble_iq,
    kasai,
    kasai_velocity,
    lag_one_autocorrelation,
    loupas,
    nyquist_velocity_m_s,
    wrap_velocity,
)
from sonobridge.sim import Acquisition, EchoSynth

from .doppler_sim import DEPTH, F0, PRF, V_NYQ, C, chain, fire, gate, vessel_phantom


def pooled_velocity(axial_m_s: float, *, frames: int = 4, attenuation: float = 0.0,
                    seed: int = 5) -> float:
    """Kasai velocity from R1 pooled over a ±1.5 mm gate, 8 lines × 16 firings per frame and
    ``frames`` frames a quarter second apart (independent speckle), with f0 nominal."""
    synth = EchoSynth(vessel_phantom(axial_m_s, attenuation=attenuation), seed=seed)
    synth.prepare(Acquisition(sample_rate_hz=40e6, n_samples=832, start_delay_s=2 * 0.022 / C,
                              positions=np.zeros(128), sweep_kind="fixed", prf_hz=PRF))
    ch = chain()
    total = 0j
    for k in range(frames):
        iq, res = ensemble_iq(ch, synth.frame(0.25 * k).reshape(8, 16, -1))
        _, r1 = lag_one_autocorrelation(iq)
        total += r1[:, gate(res.depth_m, half_m=0.0015)].sum()
    return float(kasai_velocity(np.complex64(total), PRF, F0))


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.75, -0.1, -0.3, -0.5, -0.75])
def test_kasai_mean_velocity_is_within_5_percent_below_0_8_nyquist(fraction):
    truth = fraction * V_NYQ
    v = pooled_velocity(truth)
    assert v == pytest.approx(truth, rel=0.05)
    assert np.sign(v) == np.sign(truth)  # toward the transducer is positive


def test_velocity_beyond_nyquist_aliases_as_theory_says():
    # 1.2·v_nyq reads 1.2·v_nyq − 2·v_nyq = −0.8·v_nyq: flow toward the probe looks like flow away
    v = pooled_velocity(1.2 * V_NYQ)
    assert v == pytest.approx(-0.8 * V_NYQ, rel=0.05)
    assert float(wrap_velocity(1.2 * V_NYQ, V_NYQ)) == pytest.approx(-0.8 * V_NYQ)
    # a baseline shift of +0.5 moves the range to [−0.5, 1.5)·v_nyq: the same flow reads true
    e = fire(vessel_phantom(1.2 * V_NYQ))
    shifted = kasai(e.iq, PRF, F0, baseline_shift=0.5, average=(1, 9))
    g = gate(e.depth_m)
    assert np.median(shifted.velocity_m_s[:, g]) == pytest.approx(1.2 * V_NYQ, rel=0.05)
    assert shifted.velocity_m_s.min() >= -0.5 * V_NYQ - 1e-6
    assert shifted.velocity_m_s.max() < 1.5 * V_NYQ


@pytest.mark.parametrize("fraction", [0.5, -0.3])
def test_loupas_removes_the_attenuation_bias_of_nominal_f0(fraction):
    # 0.5 dB/cm/MHz lowers the echo's centre frequency at 30 mm by ~11 %: Kasai with the nominal
    # f0 reads that much slow; Loupas measures the frequency and reads true
    truth = fraction * V_NYQ
    e = fire(vessel_phantom(truth, attenuation=0.5))
    g = gate(e.depth_m, half_m=0.0015)
    nominal = kasai(e.iq, PRF, F0, average=(1, 9)).velocity_m_s[:, g].mean()
    est = loupas(e.iq, PRF, e.demod_freq_hz, e.sample_rate_out_hz, average=(1, 9))
    assert est.velocity_m_s[:, g].mean() == pytest.approx(truth, rel=0.05)
    assert nominal / truth < 0.92
    f_local = float(e.synth.local_freq_hz(DEPTH))
    assert np.median(est.center_freq_hz[:, g]) == pytest.approx(f_local, rel=0.06)
    assert np.median(est.nyquist_m_s[:, g]) > V_NYQ  # lower f0 → higher Nyquist velocity


def test_parabolic_profile_is_recovered_across_the_vessel():
    # a vessel along the beam would hide the profile in depth; at 60° the beam crosses it, so
    # depth maps to the cross coordinate s and the velocity traces the parabola
    peak = 0.3
    e = fire(vessel_phantom(peak * np.cos(np.radians(60)), angle_deg=60.0, profile="parabolic",
                            radius_m=0.003), n_lines=16)
    est = loupas(e.iq, PRF, e.demod_freq_hz, e.sample_rate_out_hz, average=(16, 5))
    vessel = e.synth.phantom.vessels[0]
    truth = vessel.velocity_toward_transducer_m_s(0.0, e.depth_m)
    _, s = vessel.local_coords(0.0, e.depth_m)
    core = np.abs(s) < 0.6 * vessel.radius_m
    np.testing.assert_allclose(est.velocity_m_s[0, core], truth[core], atol=0.08 * truth.max())
    centre = np.abs(s) < 0.1 * vessel.radius_m
    assert est.velocity_m_s[0, centre].mean() == pytest.approx(truth.max(), rel=0.05)
    edge = (np.abs(s) > 0.5 * vessel.radius_m) & (np.abs(s) < 0.7 * vessel.radius_m)
    assert est.velocity_m_s[0, edge].mean() < 0.8 * truth.max()


def test_power_and_variance_separate_flow_from_empty_depths():
    e = fire(vessel_phantom(0.4 * V_NYQ))
    est = color_flow(e.iq, PRF, F0, wall_filter_order=1, average=(1, 5))
    inside, outside = gate(e.depth_m), np.abs(e.depth_m - DEPTH) > 0.006
    assert 10 * np.log10(est.power[:, inside].mean() / est.power[:, outside].mean()) > 20
    assert np.median(est.variance[:, inside]) < 0.3
    assert np.median(est.variance[:, outside]) > 0.6  # noise: R1 ≈ 0
    assert est.power.dtype == est.velocity_m_s.dtype == est.variance.dtype == np.float32
    assert est.power.shape == est.velocity_m_s.shape == (8, e.iq.shape[2])
    db = est.power_db()
    assert db.max() == 0.0 and db.dtype == np.float32


def test_spatial_averaging_reduces_the_spread():
    e = fire(vessel_phantom(0.4 * V_NYQ), ensemble=8, n_lines=16)
    g = gate(e.depth_m)
    raw = kasai(e.iq, PRF, F0).velocity_m_s[:, g]
    avg = kasai(e.iq, PRF, F0, average=(3, 9)).velocity_m_s[:, g]
    assert avg.std() < 0.6 * raw.std()
    assert np.median(avg) == pytest.approx(0.4 * V_NYQ, rel=0.08)


def test_angle_correction_recovers_the_flow_speed():
    speed = 0.25
    e = fire(vessel_phantom(speed * np.cos(np.radians(50)), angle_deg=50.0))
    g = gate(e.depth_m, half_m=0.0015)
    axial = loupas(e.iq, PRF, e.demod_freq_hz, e.sample_rate_out_hz, average=(1, 9))
    corrected = angle_correct(axial.velocity_m_s[:, g].mean(), np.radians(50))
    assert float(corrected) == pytest.approx(speed, rel=0.05)
    arr = angle_correct(np.ones(3), np.radians([0.0, 60.0, 85.0]))
    np.testing.assert_allclose(arr[:2], [1.0, 2.0])
    assert np.isnan(arr[2])  # beyond the 70° guard
    with pytest.raises(ValueError, match="perpendicular"):
        angle_correct(0.1, np.radians(80))


@settings(max_examples=60, deadline=None)
@given(f_norm=st.floats(-2.0, 2.0), shift=st.floats(-0.9, 0.9), n_ens=st.integers(2, 32))
def test_kasai_on_a_pure_doppler_tone_wraps_exactly(f_norm, shift, n_ens):
    # a scatterer moving at v advances the IQ phase by 4π·v·f0/(c·PRF) per firing
    v = f_norm * V_NYQ
    k = np.arange(n_ens)
    iq = np.exp(1j * np.pi * v / V_NYQ * k).astype(np.complex64)[None, :, None]
    est = kasai(np.repeat(iq, 3, axis=2), PRF, F0, baseline_shift=shift)
    expected = float(wrap_velocity(v, V_NYQ, shift))
    lo, hi = (shift - 1) * V_NYQ, (shift + 1) * V_NYQ
    got = est.velocity_m_s[0]
    assert np.all((got >= lo - 1e-5) & (got < hi + 1e-5))
    # at the wrap point both ends are the same phase
    err = np.abs(got - expected)
    assert np.all((err < 2e-4 * V_NYQ) | (np.abs(err - 2 * V_NYQ) < 2e-4 * V_NYQ))


@given(v=st.floats(-50.0, 50.0), shift=st.floats(-0.99, 0.99), vn=st.floats(0.01, 5.0))
def test_wrap_velocity_lands_in_range_and_differs_by_whole_periods(v, shift, vn):
    w = float(wrap_velocity(v, vn, shift))
    assert (shift - 1) * vn - 1e-9 <= w < (shift + 1) * vn + 1e-9
    periods = (v - w) / (2 * vn)
    assert abs(periods - round(periods)) < 1e-6


def test_nyquist_velocity_formula():
    assert nyquist_velocity_m_s(5000.0, 5e6) == pytest.approx(1540 * 5000 / (4 * 5e6))
    assert nyquist_velocity_m_s(4000.0, 5e6, 1480.0) == pytest.approx(0.296)
    per_depth = nyquist_velocity_m_s(5000.0, np.array([5e6, 4e6]))
    np.testing.assert_allclose(per_depth, [0.385, 0.48125])
