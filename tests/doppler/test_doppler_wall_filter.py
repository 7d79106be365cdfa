"""Wall filters: clutter 40 dB above the flow is removed and the flow velocity survives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sonobridge.dsp import (
    color_flow,
    iir_wall_filter,
    kasai,
    regression_matrix,
    regression_response,
    regression_wall_filter,
)

from .doppler_sim import DEPTH, F0, PRF, V_NYQ, fire, gate, vessel_phantom


def test_wall_filter_removes_a_stationary_reflector_40_db_above_the_flow():
    truth = 0.5 * V_NYQ
    # weak blood (amplitude 0.005) and a still reflector (amplitude 4) inside the gate
    ph = vessel_phantom(truth, amplitude=0.005, points=((0.0, DEPTH, 4.0),))
    e = fire(ph, n_lines=16, ensemble=16)
    g = gate(e.depth_m, half_m=0.0005)
    x = e.iq[:, :, g]
    clutter = np.mean(np.abs(x.mean(axis=1)) ** 2)
    filtered = regression_wall_filter(e.iq, order=2)
    flow = np.mean(np.abs(filtered[:, :, g]) ** 2)
    assert 10 * np.log10(clutter / flow) >= 40.0
    # without the filter the reflector dominates: the estimate collapses toward zero
    unfiltered = kasai(e.iq, PRF, F0, average=(1, 9)).velocity_m_s[:, g]
    assert abs(np.median(unfiltered)) < 0.1 * truth
    est = color_flow(e.iq, PRF, F0, wall_filter_order=2, average=(1, 9))
    assert np.median(est.velocity_m_s[:, g]) == pytest.approx(truth, rel=0.05)
    # what is left after the filter is the flow (plus noise), not the reflector
    assert 10 * np.log10(np.mean(est.power[:, g]) / clutter) < -35.0


def test_regression_response_is_zero_at_dc_and_passes_fast_flow():
    for n, order in ((8, 0), (8, 1), (16, 2)):
        gain = regression_response(n, order, [0.0, 0.3, 0.5])
        assert gain[0] < 1e-12
        assert np.all(gain[1:] > 0.8)
    # a higher order widens the stop band
    slow = 0.08
    assert regression_response(8, 2, slow) < regression_response(8, 1, slow) < \
        regression_response(8, 0, slow)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(2, 24), data=st.data())
def test_regression_filter_is_an_orthogonal_projection_that_kills_polynomials(n, data):
    order = data.draw(st.integers(0, n - 2))
    p = regression_matrix(n, order)
    np.testing.assert_allclose(p @ p, p, atol=1e-10)        # idempotent
    np.testing.assert_allclose(p, p.T, atol=1e-12)          # symmetric
    assert np.trace(p) == pytest.approx(n - order - 1)     # removes order + 1 dimensions
    coeffs = data.draw(hnp.arrays(np.float64, order + 1, elements=st.floats(-5, 5)))
    k = np.arange(n, dtype=float)
    poly = np.polyval(coeffs, k / n) * (1 + 0.5j)
    lines = np.stack([poly, 2 * poly])[:, :, None] * np.ones(3)  # (2, n, 3)
    out = regression_wall_filter(lines.astype(np.complex64), order, axis=1)
    assert out.shape == lines.shape and out.dtype == np.complex64
    assert np.abs(out).max() <= 1e-4 * max(1.0, np.abs(lines).max())


def test_regression_filter_works_along_any_axis():
    rng = np.random.default_rng(0)
    iq = (rng.standard_normal((4, 10, 6)) + 1j * rng.standard_normal((4, 10, 6))).astype(
        np.complex64)
    a = regression_wall_filter(iq, 1, axis=1)
    b = regression_wall_filter(np.moveaxis(iq, 1, -1), 1, axis=-1)
    np.testing.assert_allclose(np.moveaxis(b, -1, 1), a, atol=1e-5)
    one_line = regression_wall_filter(iq[0, :, 0], 1, axis=0)
    np.testing.assert_allclose(one_line, a[0, :, 0], atol=1e-5)


def test_iir_wall_filter_starts_steady_and_streams_in_chunks():
    prf = 5000.0
    k = np.arange(2000)
    flow = np.exp(2j * np.pi * 0.2 * k)
    x = (1000.0 + flow).astype(np.complex64)   # clutter 60 dB above the flow
    y, _ = iir_wall_filter(x, 250.0, prf)
    # steady start: no clutter transient (only the flow's own start-up), and the flow passes
    assert np.abs(y[:50]).max() < 1.5
    assert np.abs(y[100:]).mean() == pytest.approx(1.0, rel=0.02)
    from_rest, _ = iir_wall_filter(x, 250.0, prf, zi=None)
    assert np.abs(from_rest[:5]).max() > 100  # the transient the steady start avoids
    # chunked with carried state == one shot
    parts, zi = [], "steady"
    for chunk in np.array_split(x, [7, 100, 101, 1500]):
        out, zi = iir_wall_filter(chunk, 250.0, prf, zi=zi)
        parts.append(out)
    np.testing.assert_allclose(np.concatenate(parts), y, rtol=1e-4, atol=1e-3)
    # along an axis with several gate samples
    many, zf = iir_wall_filter(np.repeat(x[:, None], 3, axis=1), 250.0, prf, axis=0)
    assert many.shape == (2000, 3) and zf.shape == (2, 2, 3)
    np.testing.assert_allclose(many[:, 2], y, rtol=1e-4, atol=1e-3)
