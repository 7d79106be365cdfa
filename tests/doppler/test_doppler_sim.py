"""The simulator's flow: vessel phantoms, blood that moves with its profile, stationary flow."""

from __future__ import annotations

import numpy as np
import pytest

from sonobridge.dsp import Chain, ChainConfig, ensemble_iq, lag_one_autocorrelation
from sonobridge.sim import Acquisition, EchoSynth, Phantom, PhantomError, load_phantom
from sonobridge.sim.phantom import Vessel

from .doppler_sim import F0, PRF, V_NYQ, C, chain, vessel_phantom

VESSEL = {"x_m": 0.0, "z_m": 0.02, "radius_m": 0.002, "length_m": 0.01, "angle_deg": 60.0,
          "peak_velocity_m_s": 0.3}


def with_vessel(**changes) -> dict:
    return {"name": "v", "region": {"x_m": [-0.02, 0.02], "z_m": [0.0, 0.04]},
            "vessel": [{**VESSEL, **changes}]}


def test_builtin_vessel_phantom_carries_its_ground_truth():
    ph = load_phantom("vessel")
    truth = ph.truth()["vessels"]
    assert [v["profile"] for v in truth] == ["parabolic", "plug"]
    artery, vein = ph.vessels
    assert (artery.peak_velocity_m_s, artery.angle_deg, artery.z_m) == (0.30, 60.0, 0.020)
    assert (vein.peak_velocity_m_s, vein.angle_deg, vein.z_m) == (0.15, -120.0, 0.035)
    # straight down, the artery's centre flows toward the probe and the vein's away
    assert artery.velocity_toward_transducer_m_s(0.0, 0.020) == pytest.approx(0.15)
    assert vein.velocity_toward_transducer_m_s(0.0, 0.035) == pytest.approx(-0.075)
    # on a sector line at ψ the Doppler velocity is speed·cos(θ + ψ)
    psi = np.radians(10.0)
    r = 0.020 / np.cos(psi)
    x, z = r * np.sin(psi), r * np.cos(psi)
    _, s = artery.local_coords(x, z)
    expected = artery.speed_m_s(s) * np.cos(np.radians(60.0) + psi)
    assert artery.velocity_toward_transducer_m_s(x, z, psi) == pytest.approx(expected)


def test_profiles_and_geometry():
    ves = Vessel(0.0, 0.02, 0.002, 0.01, 90.0, 0.4, "parabolic")
    assert ves.direction == pytest.approx((1.0, 0.0))     # 90° = along +x, across the beam
    assert ves.speed_m_s(0.0) == pytest.approx(0.4)
    assert ves.speed_m_s(0.001) == pytest.approx(0.3)     # 1 − (½)² of the peak
    assert ves.speed_m_s(0.0021) == 0.0                   # outside the lumen
    plug = Vessel(0.0, 0.02, 0.002, 0.01, 0.0, 0.4, "plug")
    assert plug.speed_m_s(0.0019) == pytest.approx(0.4)
    assert plug.velocity_toward_transducer_m_s(0.0, 0.02) == pytest.approx(0.4)  # 0° = toward
    assert plug.inside(0.0, 0.0249) and not plug.inside(0.0, 0.0251)
    assert ves.velocity_m_s(0.0, 0.02)[1] == pytest.approx(0.0)


@pytest.mark.parametrize(("changes", "match"), [
    ({"profile": "turbulent"}, "'profile' must be one of parabolic, plug"),
    ({"radius_m": -0.001}, "'radius_m' must be > 0"),
    ({"peak_velocity_m_s": -0.1}, "'peak_velocity_m_s' must be >= 0"),
    ({"z_m": 0.004}, "reaches above the transducer face"),
    ({"density_per_cell": 4, "density_per_mm2": 10}, "at most one of"),
    ({"speed": 1.0}, "unknown key 'speed'"),
    ({"angle_deg": "up"}, "'angle_deg' must be a finite number"),
])
def test_bad_vessels_are_refused_with_the_key(changes, match):
    with pytest.raises(PhantomError, match=r"\[\[vessel\]\] #1: .*" + match):
        Phantom.from_dict(with_vessel(**changes), source="bad.toml")
    missing = with_vessel()
    del missing["vessel"][0]["length_m"]
    with pytest.raises(PhantomError, match="missing key 'length_m'"):
        Phantom.from_dict(missing)


def test_blood_moves_with_the_profile_stays_in_the_lumen_and_flows_steadily():
    ph = Phantom.from_dict(with_vessel(density_per_mm2=40))
    ves = ph.vessels[0]
    synth = EchoSynth(ph, seed=2)
    dt = 1e-4
    for t in (0.0, 0.37, 12.5):
        x0, z0 = synth.blood_positions_m(t)
        x1, z1 = synth.blood_positions_m(t + dt)
        assert np.all(ves.inside(x0, z0))
        u0, s0 = ves.local_coords(x0, z0)
        u1, s1 = ves.local_coords(x1, z1)
        np.testing.assert_allclose(s1, s0, atol=1e-12)        # streamlines are kept
        moved = (u1 - u0) / dt
        wrapped = moved < 0                                    # re-entered upstream
        assert wrapped.mean() < 0.01
        np.testing.assert_allclose(moved[~wrapped], ves.speed_m_s(s0[~wrapped]), atol=1e-9)
        # the blood stays evenly spread along the vessel (stationary flow)
        counts, _ = np.histogram(u0, bins=5, range=(-0.005, 0.005))
        assert counts.min() > 0.8 * counts.mean()


def test_lumen_has_no_tissue_speckle_and_flow_is_rendered_per_firing():
    ph = Phantom.from_dict({**with_vessel(amplitude=0.05),
                            "speckle": [{"amplitude": 0.1, "density_per_cell": 10,
                                         "z_m": [0.01, 0.03], "x_m": [-0.01, 0.01]}]})
    synth = EchoSynth(ph, seed=1)
    acq = Acquisition(n_samples=1400, positions=np.zeros(4), sweep_kind="fixed", prf_hz=PRF)
    synth.prepare(acq)
    depth = synth.depth_m
    lumen = np.abs(depth - 0.02) < 0.0015       # the beam crosses the lumen around 20 mm
    tissue = (np.abs(depth - 0.013) < 0.0015)
    static = np.abs(synth.clean_rf[0])
    assert static[lumen].mean() < 0.2 * static[tissue].mean()
    frame = synth.frame(0.0)
    assert np.abs(frame[0, lumen]).mean() > 3 * static[lumen].mean()  # blood is added per frame
    assert not np.array_equal(frame[0, lumen], frame[1, lumen])        # and moves between them


def test_frames_are_reproducible_and_the_flow_never_repeats_a_pattern():
    ph = vessel_phantom(0.5 * V_NYQ)
    ves = ph.vessels[0]
    acq = Acquisition(n_samples=832, start_delay_s=2 * 0.022 / C, positions=np.zeros(8),
                      sweep_kind="fixed", prf_hz=PRF)
    a, b = EchoSynth(ph, seed=9), EchoSynth(ph, seed=9)
    a.prepare(acq)
    b.prepare(acq)
    times = 0.3 + np.arange(8) / PRF
    fa = a.frame(line_times_s=times, index=5).copy()
    a.frame(line_times_s=times + 1)
    np.testing.assert_array_equal(b.frame(line_times_s=times, index=5), fa)
    np.testing.assert_array_equal(a.frame(line_times_s=times, index=5), fa)
    # one trip along the plug-flow segment later every scatterer is back where it was, but
    # with a freshly drawn echo sign: a new speckle pattern, not a replay
    trip = ves.length_m / ves.peak_velocity_m_s
    x0, z0 = a.blood_positions_m(0.3)
    x1, z1 = a.blood_positions_m(0.3 + trip)
    np.testing.assert_allclose(np.hypot(x1 - x0, z1 - z0), 0.0, atol=1e-9)
    quiet = EchoSynth(ph, seed=9, line_jitter=0.0)
    quiet.prepare(acq)
    r0 = quiet.frame(line_times_s=times, index=1)[0].astype(float)
    r1 = quiet.frame(line_times_s=times + trip, index=1)[0].astype(float)
    assert abs(np.corrcoef(r0, r1)[0, 1]) < 0.5


def test_rows_without_repeated_positions_and_several_lines_render_the_same_flow():
    # a sweep without ensembles (every firing its own group) still sees the flow
    ph = vessel_phantom(0.4 * V_NYQ)
    synth = EchoSynth(ph, seed=1)
    acq = Acquisition(n_samples=832, start_delay_s=2 * 0.022 / C,
                      positions=np.tile([0.0, 1e-6], 32), sweep_kind="linear", prf_hz=PRF)
    synth.prepare(acq)
    rf = synth.frame(0.1)
    iq, res = ensemble_iq(chain(), rf.reshape(1, 64, -1))
    _, r1 = lag_one_autocorrelation(iq[:, ::2])  # every other firing: half the PRF
    g = np.abs(res.depth_m - 0.03) < 0.0015
    v = C * (PRF / 2) / (4 * F0) * np.angle(r1[0, g].sum()) / np.pi
    assert v == pytest.approx(0.4 * V_NYQ, rel=0.08)


@pytest.mark.parametrize("sample_rate_hz", [40e6, 20e6])
def test_flow_straddling_the_record_start_renders_at_any_sample_rate(sample_rate_hz):
    # the record starts inside the vessel (at 29 mm) and, at 20 MHz, the flow is gridded on a
    # finer internal grid: echoes reaching into the record from outside are still drawn
    ph = vessel_phantom(0.4 * V_NYQ)
    synth = EchoSynth(ph, seed=3)
    start = 2 * 0.029 / C
    n = int(0.006 * 2 / C * sample_rate_hz)
    acq = Acquisition(sample_rate_hz=sample_rate_hz, n_samples=n, start_delay_s=start,
                      positions=np.zeros(64), sweep_kind="fixed", prf_hz=PRF)
    synth.prepare(acq)
    rf = synth.frame(0.2)
    assert rf.shape == (64, n) and np.isfinite(rf).all()
    assert np.abs(rf[:, :8]).max() > 5 * synth.adc.noise_v_rms(0.0)  # blood from the start
    ch = Chain(ChainConfig(sample_rate_hz=sample_rate_hz, center_freq_hz=F0,
                           input_format="float", start_delay_s=start, blank_s=0.0))
    iq, res = ensemble_iq(ch, rf.reshape(4, 16, n))
    _, r1 = lag_one_autocorrelation(iq)
    g = (res.depth_m > 0.0295) & (res.depth_m < 0.032)
    v = C * PRF / (4 * F0) * np.angle(r1[:, g].sum()) / np.pi
    assert v == pytest.approx(0.4 * V_NYQ, rel=0.08)
