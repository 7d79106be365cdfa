"""Colour flow colours: toward the probe is red, away is blue, weak power is transparent."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sonobridge.dsp import Chain, ChainConfig, color_flow, ensemble_iq, flow_colormap, flow_rgba
from sonobridge.sim import Acquisition, EchoSynth, load_phantom


def test_colormap_runs_from_blue_through_dark_to_red():
    lut = flow_colormap(256)
    assert lut.shape == (256, 4) and lut.dtype == np.uint8
    away, toward = lut[:128], lut[128:]
    assert np.all(away[:, 0] == 0) and np.all(away[:, 2] > 0)     # blue side has no red
    assert np.all(toward[:, 2] == 0) and np.all(toward[:, 0] > 0)  # red side has no blue
    assert lut[127, 2] < lut[0, 2] and lut[128, 0] < lut[255, 0]   # brighter when faster
    assert lut[255, 1] > 150 and lut[0, 1] > 150                   # yellow / cyan at the limit
    assert np.all(lut[:, 3] == 255)
    with pytest.raises(ValueError, match=r"2\.\.65536"):
        flow_colormap(1)


@given(v=hnp.arrays(np.float64, st.integers(1, 50),
                    elements=st.floats(-3.0, 3.0).filter(lambda x: abs(x) > 1e-9)))
def test_sign_decides_the_colour_for_any_velocity(v):
    rgba = flow_rgba(v, 1.0)
    red = rgba[..., 0] > 0
    blue = rgba[..., 2] > 0
    assert np.array_equal(red, v > 0) and np.array_equal(blue, v < 0)
    assert np.all(rgba[..., 3] == 255)


def test_thresholds_make_pixels_transparent():
    v = np.array([[0.2, -0.2, 0.01, np.nan]])
    power = np.array([[1.0, 0.001, 1.0, 1.0]])
    rgba = flow_rgba(v, 0.4, power=power, power_threshold=0.01, min_velocity_m_s=0.02)
    np.testing.assert_array_equal(rgba[0, :, 3], [255, 0, 0, 0])
    out = np.empty((1, 4, 4), np.uint8)
    assert flow_rgba(v, 0.4, out=out) is out
    with pytest.raises(ValueError, match="both power and power_threshold"):
        flow_rgba(v, 0.4, power=power)
    with pytest.raises(ValueError, match="power has shape"):
        flow_rgba(v, 0.4, power=power[:, :2], power_threshold=0.1)
    with pytest.raises(ValueError, match="v_max_m_s"):
        flow_rgba(v, 0.0)


def test_simulated_artery_is_red_and_vein_is_blue():
    # builtin vessel phantom: artery (0, 20 mm) flows toward the probe, vein (0, 35 mm) away
    ph = load_phantom("vessel")
    artery, vein = ph.vessels
    synth = EchoSynth(ph, seed=4)
    angles = np.radians(np.linspace(-10, 10, 24))
    ens, prf = 8, 3000.0
    acq = Acquisition(n_samples=2400, positions=np.repeat(angles, ens), prf_hz=prf)
    synth.prepare(acq)
    rf = synth.digitize(synth.frame(0.2), 1).reshape(24, ens, -1)
    iq, res = ensemble_iq(Chain(ChainConfig(sample_rate_hz=40e6, center_freq_hz=5e6)), rf)
    est = color_flow(iq, prf, demod_freq_hz=res.demod_freq_hz,
                     sample_rate_out_hz=res.sample_rate_out_hz, wall_filter_order=0,
                     average=(1, 7))
    power_db = est.power_db()
    v_nyq = 1540 * prf / (4 * 5e6)
    rgba = flow_rgba(est.velocity_m_s, v_nyq, power=power_db, power_threshold=-24.0)
    r = res.depth_m[None, :]
    x, z = r * np.sin(angles)[:, None], r * np.cos(angles)[:, None]
    for vessel, colour in ((artery, 0), (vein, 2)):
        _, s = vessel.local_coords(x, z)
        core = vessel.inside(x, z) & (np.abs(s) < 0.5 * vessel.radius_m)
        shown = rgba[core][rgba[core][:, 3] > 0]
        assert shown.shape[0] > 0.8 * core.sum()                 # flow is drawn
        assert np.mean(shown[:, colour] > shown[:, 2 - colour]) > 0.95
    # still tissue well away from both vessels is mostly transparent
    far = (np.abs(z - 0.0275) < 0.002) | (z > 0.045)
    assert np.mean(rgba[far][:, 3] == 0) > 0.9
