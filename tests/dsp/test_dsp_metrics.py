"""Metrics against closed-form values."""

import numpy as np
import pytest
from scipy.stats import norm

from sonobridge.dsp import (
    axial_fwhm,
    cnr,
    contrast_db,
    fwhm,
    gcnr,
    lateral_fwhm,
    peak_position,
    speckle_snr,
)


def test_dsp_gcnr_limits_and_gaussian_overlap() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal(200_000)
    assert gcnr(a, a) == pytest.approx(0.0, abs=1e-12)
    assert gcnr(a, a + 100.0) == pytest.approx(1.0)
    separation = 1.5
    b = rng.standard_normal(200_000) + separation
    # Two unit Gaussians overlap by 2*Phi(-d/2), so gCNR = 1 - 2*Phi(-d/2).
    assert gcnr(a, b) == pytest.approx(1 - 2 * norm.cdf(-separation / 2), abs=0.02)


def test_dsp_contrast_and_cnr() -> None:
    assert contrast_db(np.full(10, 1.0), np.full(10, 10.0)) == pytest.approx(-20.0)
    inside = np.array([0.0, 2.0])  # mean 1, var 1
    outside = np.array([4.0, 6.0])  # mean 5, var 1
    assert cnr(inside, outside) == pytest.approx(4 / np.sqrt(2))
    with pytest.raises(ValueError, match="empty"):
        cnr(np.array([]), outside)


def test_dsp_speckle_snr_of_rayleigh_samples() -> None:
    samples = np.random.default_rng(1).rayleigh(2.0, 400_000)
    assert speckle_snr(samples) == pytest.approx(np.sqrt(np.pi / (4 - np.pi)), abs=0.01)


def test_dsp_fwhm_of_a_coarsely_sampled_gaussian() -> None:
    sigma = 1.7
    x = np.arange(-20, 21) * 0.5 + 0.13  # physical units, off-centre grid
    profile = np.exp(-0.5 * (x / sigma) ** 2)
    assert fwhm(profile, x) == pytest.approx(2 * np.sqrt(2 * np.log(2)) * sigma, rel=0.01)
    with pytest.raises(ValueError, match="half maximum"):
        fwhm(profile[20:], x[20:])


def test_dsp_axial_and_lateral_fwhm_on_a_2d_blob() -> None:
    positions = np.linspace(-5, 5, 101)[::-1]  # reversed order must not matter
    depth = np.linspace(0, 10, 201)
    blob = np.exp(-0.5 * ((positions[:, None] - 1.0) / 0.8) ** 2
                  - 0.5 * ((depth[None, :] - 6.0) / 0.3) ** 2)
    assert axial_fwhm(blob, depth) == pytest.approx(2.3548 * 0.3, rel=0.01)
    assert lateral_fwhm(blob, positions) == pytest.approx(2.3548 * 0.8, rel=0.01)


def test_dsp_peak_position_is_exact_for_a_parabola() -> None:
    x = np.linspace(0, 1, 11)
    assert peak_position(-((x - 0.537) ** 2), x) == pytest.approx(0.537)
