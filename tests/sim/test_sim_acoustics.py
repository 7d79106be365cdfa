"""Echo physics: timing, beam, bandwidth, attenuation, TGC, speckle, cysts, motion, noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sonobridge.sim import Acquisition, Adc, EchoSynth, Transducer, load_phantom
from sonobridge.sim.acoustics import FWHM_PER_SIGMA

from .sim_fixtures import C, envelope, fixed_acq, peak, phantom, spectrum_band

LAMBDA = C / 5e6


@pytest.fixture(scope="module")
def wire_synth():
    synth = EchoSynth(load_phantom("wire"), seed=3)
    synth.prepare(Acquisition())
    return synth


def test_wire_echoes_arrive_at_two_r_over_c_on_the_right_line(wire_synth):
    synth = wire_synth
    acq = synth.acquisition
    env = envelope(synth.clean_rf)
    depth = synth.depth_m
    for x, z in synth.phantom.point_positions_m:
        r = math.hypot(x, z)
        window = np.abs(depth - r) < 0.5e-3
        expected = np.abs(acq.positions - math.atan2(x, z))
        near = np.flatnonzero(expected < math.radians(3))  # not a neighbouring wire
        line = int(near[np.argmax(env[near][:, window].max(axis=1))])
        # the wire lies between two lines; the brighter one is one of the two nearest
        assert line in np.argsort(expected)[:2], (x, z, line)
        _, r_meas = peak(env[line], depth, r)
        d = r * math.sin(acq.positions[line] - math.atan2(x, z))
        assert abs(r_meas - math.sqrt(r * r - d * d)) < LAMBDA / 4, (x, z, r_meas)


def test_default_pulse_has_60_percent_bandwidth_at_5_mhz():
    synth = EchoSynth(phantom(point=[{"x_m": 0.0, "z_m": 0.03}]), seed=1)
    synth.prepare(fixed_acq())
    rf = synth.clean_rf[0]
    f_lo, f_hi, _ = spectrum_band(rf, 40e6)
    fbw = (f_hi - f_lo) / ((f_hi + f_lo) / 2)
    assert fbw == pytest.approx(0.60, abs=0.03)
    assert (f_hi + f_lo) / 2 == pytest.approx(5e6, abs=0.1e6)
    assert synth.pulse.fractional_bandwidth == pytest.approx(0.6)


def test_burst_cycles_and_frequency_shape_the_pulse():
    tr = Transducer()
    assert tr.pulse(5e6, 4).fractional_bandwidth == pytest.approx(0.30, abs=0.02)
    assert tr.pulse(5e6, 1).fractional_bandwidth > 1.0
    assert tr.pulse(4e6, 2).center_freq_hz < 5e6
    synth = EchoSynth(phantom(point=[{"x_m": 0.0, "z_m": 0.03}]), seed=1)
    synth.prepare(fixed_acq(pulse_cycles=4))
    f_lo, f_hi, _ = spectrum_band(synth.clean_rf[0], 40e6)
    assert (f_hi - f_lo) / ((f_hi + f_lo) / 2) == pytest.approx(
        synth.pulse.fractional_bandwidth, abs=0.03)


def test_attenuation_weakens_deeper_target_by_alpha_f_two_dz():
    # depths symmetric about the 30 mm focus: same beam width and focal gain, only loss differs
    z1, z2 = 0.025, 0.035
    synth = EchoSynth(phantom(0.5, point=[{"x_m": 0.0, "z_m": z1}, {"x_m": 0.0, "z_m": z2}]))
    synth.prepare(fixed_acq())
    env, depth = envelope(synth.clean_rf[0]), synth.depth_m
    drop_db = 20 * math.log10(peak(env, depth, z2)[0] / peak(env, depth, z1)[0])
    naive_db = -0.5 * 5.0 * 2 * (z2 - z1) * 100
    assert drop_db == pytest.approx(naive_db, abs=0.7)
    # exact for a Gaussian spectrum: ln A = −βf0 + β²σ²/2 with β = 2αz (the downshift softens it)
    alpha = 0.5 / 20 * math.log(10) * 100 / 1e6
    sigma = synth.pulse.sigma_hz

    def ln_a(z):
        beta = 2 * alpha * z
        return -beta * 5e6 + beta**2 * sigma**2 / 2

    assert drop_db == pytest.approx(20 / math.log(10) * (ln_a(z2) - ln_a(z1)), abs=0.15)


def test_attenuation_downshifts_the_echo_spectrum():
    z = 0.06
    synth = EchoSynth(phantom(0.5, point=[{"x_m": 0.0, "z_m": z}]))
    synth.prepare(fixed_acq())
    k = int(np.argmin(np.abs(synth.depth_m - z)))
    f_lo, f_hi, _ = spectrum_band(synth.clean_rf[0, k - 200: k + 200], 40e6)
    expected = 5e6 - 2 * (0.5 / 20 * math.log(10) * 100 / 1e6) * z * synth.pulse.sigma_hz**2
    assert (f_lo + f_hi) / 2 == pytest.approx(expected, abs=0.1e6)
    assert float(synth.local_freq_hz(z)) == pytest.approx(expected)
    assert expected < 4.4e6


def test_lateral_beam_profile_is_gaussian_with_documented_width():
    tr = Transducer()
    z = tr.focus_m
    xs = np.linspace(-1.5e-3, 1.5e-3, 61)
    synth = EchoSynth(phantom(point=[{"x_m": 0.0, "z_m": z}]), tr)
    synth.prepare(Acquisition(positions=xs, sweep_kind="linear"))
    profile = envelope(synth.clean_rf).max(axis=1)
    profile /= profile.max()
    above = xs[profile >= 0.5]
    width = above[-1] - above[0]
    assert width == pytest.approx(float(tr.beam_width_m(z)), abs=2 * (xs[1] - xs[0]))
    assert float(tr.beam_width_m(z)) == pytest.approx(LAMBDA * tr.f_number)


def test_constant_tgc_of_12_db_raises_the_echo_by_12_db():
    ph = phantom(0.5, point=[{"x_m": 0.0, "z_m": 0.04}])
    peaks = []
    for gain in (0.0, 12.0):
        synth = EchoSynth(ph, seed=5)
        synth.prepare(fixed_acq(16, tgc_db=gain))
        frame = synth.frame()
        assert np.abs(frame).max() < synth.adc.full_scale_v  # below saturation
        env = envelope(frame)
        peaks.append(np.median([peak(e, synth.depth_m, 0.04)[0] for e in env]))
    assert 20 * math.log10(peaks[1] / peaks[0]) == pytest.approx(12.0, abs=0.2)


def test_tgc_curve_is_applied_per_sample():
    tgc = np.linspace(0.0, 30.0, 4096)
    synth = EchoSynth(phantom(), Transducer(), Adc(thermal_noise_v_rms=1e-3, noise_lsb_rms=0.0))
    synth.prepare(fixed_acq(64, tgc_db=tgc))
    frame = synth.frame()
    std = frame.std(axis=0)
    expected = synth.adc.noise_v_rms(tgc)
    for sl in (slice(0, 512), slice(1800, 2300), slice(3584, 4096)):
        assert std[sl].mean() == pytest.approx(expected[sl].mean(), rel=0.05)


def test_noise_floor_matches_thermal_and_adc_noise():
    adc = Adc()
    for gain in (0.0, 30.0):
        synth = EchoSynth(phantom(), adc=adc, seed=2)
        synth.prepare(fixed_acq(64, tgc_db=gain))
        assert synth.frame().std() == pytest.approx(float(adc.noise_v_rms(gain)), rel=0.03)


def _speckle_env(synth):
    acq = Acquisition(positions=np.linspace(-8e-3, 8e-3, 129), sweep_kind="linear",
                      n_samples=2048, start_delay_s=2 * 0.022 / C)
    synth.prepare(acq)
    env = envelope(synth.clean_rf)
    return env[:, (synth.depth_m > 0.025) & (synth.depth_m < 0.035)]


def test_fully_developed_speckle_has_rayleigh_snr():
    ph = phantom(speckle=[{"x_m": [-0.015, 0.015], "z_m": [0.02, 0.04],
                           "density_per_cell": 12, "amplitude": 0.1}])
    snrs = [float(e.mean() / e.std()) for e in (_speckle_env(EchoSynth(ph, seed=s))
                                                for s in (1, 2))]
    assert np.mean(snrs) == pytest.approx(1.91, abs=0.2)


def test_speckle_amplitude_is_rms_relative_to_a_unit_point():
    ph = phantom(speckle=[{"x_m": [-0.015, 0.015], "z_m": [0.02, 0.04],
                           "density_per_mm2": 60, "amplitude": 0.1}])
    synth = EchoSynth(ph, seed=4)
    env = _speckle_env(synth)
    rms_rf = math.sqrt(np.mean(env**2) / 2)
    assert 20 * math.log10(rms_rf / 0.1) == pytest.approx(0.0, abs=1.5)


def test_documented_resolution_cell_and_cyst_density():
    tr = Transducer()
    axial, lateral = tr.resolution_cell_m()
    assert axial == pytest.approx(C / 2 * FWHM_PER_SIGMA / (2 * math.pi * 0.6 * 5e6
                                                          / FWHM_PER_SIGMA), rel=1e-9)
    assert axial == pytest.approx(0.226e-3, abs=0.002e-3)
    assert lateral == pytest.approx(0.924e-3, abs=0.002e-3)
    cyst = load_phantom("cyst")
    spk = cyst.speckle[0]
    assert spk.density_per_cell >= 10
    synth = EchoSynth(cyst, tr)
    x, z, _ = synth.scatterers
    box = (np.abs(x) < 0.01) & (z > 0.05) & (z < 0.07)
    per_cell = box.sum() / (0.02 * 0.02) * axial * lateral
    assert per_cell == pytest.approx(spk.density_per_cell, rel=0.05)


def test_cyst_is_much_darker_than_surrounding_speckle(cyst_synth):
    synth = cyst_synth
    acq = synth.acquisition
    cyst = synth.phantom.cysts[0]
    assert (cyst.radius_m, cyst.z_m) == (0.003, 0.025)
    env = envelope(synth.frame(index=0))
    th = acq.positions[:, None]
    r = synth.depth_m[None, :]
    dist = np.hypot(r * np.sin(th) - cyst.x_m, r * np.cos(th) - cyst.z_m)
    inside = env[dist < 0.6 * cyst.radius_m]
    ring = env[(dist > cyst.radius_m + 1.5e-3) & (dist < cyst.radius_m + 4e-3)]
    assert 20 * math.log10(ring.mean() / inside.mean()) > 20.0
    # the noise floor, not leakage, limits the cyst: in the noise-free RF it is far darker
    clean = envelope(synth.clean_rf)
    assert 20 * math.log10(clean[(dist > cyst.radius_m + 1.5e-3) & (dist < cyst.radius_m + 4e-3)]
                           .mean() / clean[dist < 0.6 * cyst.radius_m].mean()) > 40.0


def test_default_wire_phantom_is_inside_full_scale_and_speckle_above_noise(wire_synth,
                                                                           cyst_synth):
    frame = wire_synth.frame(index=1)
    codes = wire_synth.adc.codes(frame)
    assert np.abs(frame).max() < 0.5 * wire_synth.adc.full_scale_v
    assert codes.max() < 511 and codes.min() > -512
    depth = cyst_synth.depth_m
    band = (depth > 0.015) & (depth < 0.02)
    speckle_rms = cyst_synth.clean_rf[:, band].std()
    assert speckle_rms > 10 * float(cyst_synth.adc.noise_v_rms(0.0))


def test_moving_reflector_follows_its_motion_line_by_line():
    mv = {"x_m": 0.0, "z_m": 0.03, "amplitude": 1.0, "motion_amplitude_m": 0.002,
          "motion_freq_hz": 2.0, "motion_phase_rad": 0.3}
    synth = EchoSynth(phantom(moving=[mv]), seed=1)
    acq = fixed_acq(64, prf_hz=100.0)
    synth.prepare(acq)
    assert np.abs(synth.clean_rf).max() == 0  # movers are rendered per frame, not cached
    for t0 in (0.0, 0.37):
        env = envelope(synth.frame(t0))
        times = acq.line_times_s(t0)
        truth = 0.03 + 0.002 * np.sin(2 * np.pi * 2.0 * times + 0.3)
        found = np.array([peak(e, synth.depth_m, z, 1e-3)[1]
                          for e, z in zip(env, truth, strict=True)])
        assert np.max(np.abs(found - truth)) < LAMBDA / 8
        assert np.ptp(found) > 0.003  # it really moves within the frame
    # explicit firing times (e.g. ensembles) are honoured too
    times = np.full(64, 0.125)
    env = envelope(synth.frame(line_times_s=times))
    z = 0.03 + 0.002 * np.sin(2 * np.pi * 2.0 * 0.125 + 0.3)
    assert peak(env[10], synth.depth_m, z, 1e-3)[1] == pytest.approx(z, abs=LAMBDA / 8)


def test_same_seed_is_bit_identical_and_different_seeds_differ(cyst_synth):
    acq = Acquisition(positions=np.radians(np.linspace(-30, 30, 32)), n_samples=1024)
    frames = []
    for seed in (11, 11, 12):
        synth = EchoSynth(load_phantom("valve"), seed=seed)
        synth.prepare(acq)
        frames.append([synth.digitize(synth.frame(0.1 * k), 1) for k in range(2)])
    assert all(np.array_equal(a, b) for a, b in zip(frames[0], frames[1], strict=True))
    assert not np.array_equal(frames[0][0], frames[2][0])
    assert not np.array_equal(frames[0][0], frames[0][1])  # fresh noise every frame
    # with an index a frame is reproducible in any order
    a = cyst_synth.frame(index=42).copy()
    cyst_synth.frame()
    assert np.array_equal(cyst_synth.frame(index=42), a)


def test_prepare_is_cached_per_acquisition():
    synth = EchoSynth(phantom(point=[{"x_m": 0.0, "z_m": 0.02}]))
    a1, a2 = fixed_acq(2), fixed_acq(2, tgc_db=6.0)
    synth.prepare(a1)
    rf1 = synth.clean_rf
    synth.prepare(a2)
    synth.prepare(fixed_acq(2))  # equal acquisition, new object: served from the cache
    assert synth.clean_rf is rf1
    assert synth.acquisition is a1


def test_frame_before_prepare_is_a_clear_error():
    with pytest.raises(RuntimeError, match="prepare"):
        EchoSynth(phantom()).frame()


def test_decimated_sample_rate_keeps_echo_timing():
    synth = EchoSynth(phantom(point=[{"x_m": 0.0, "z_m": 0.03}]))
    # 20 MS/s leaves 2.5 samples per envelope sigma: rendered on a 2× finer grid internally
    synth.prepare(fixed_acq(1, n_samples=1024, sample_rate_hz=20e6))
    env = envelope(synth.clean_rf[0])
    assert peak(env, synth.depth_m, 0.03)[1] == pytest.approx(0.03, abs=LAMBDA / 4)
    assert env.max() == pytest.approx(
        float(synth.transducer.sensitivity_v), rel=0.1)
