"""The chain against known truth: wire depth, axial resolution, cyst contrast, speckle SNR."""

from functools import lru_cache

import numpy as np
import pytest

from sonobridge.dsp import (
    Chain,
    ChainConfig,
    axial_fwhm,
    contrast_db,
    gcnr,
    peak_position,
    speckle_snr,
)

from . import rf_model

FS, F0, C = 40e6, 5e6, 1540.0


def _wire_frame(f0: float, bw: float, depth_m: float, start_delay_s: float = 0.0,
                input_format: str = "i16") -> np.ndarray:
    positions = np.linspace(-5e-3, 5e-3, 33)
    rf = rf_model.simulate_rf(
        rf_model.points([0.0], [depth_m]), positions, sample_rate_hz=FS, center_freq_hz=f0,
        bandwidth=bw, n_samples=2048, start_delay_s=start_delay_s,
    )
    return rf_model.to_codes(0.5 * rf, input_format)


@pytest.mark.parametrize(("f0", "bw"), [(5e6, 0.6), (3.5e6, 0.5), (2e6, 0.8), (7.5e6, 0.4)])
def test_dsp_axial_fwhm_matches_gaussian_pulse_theory(f0: float, bw: float) -> None:
    truth_m = 20e-3
    result = Chain(ChainConfig(sample_rate_hz=FS, center_freq_hz=f0,
                               fractional_bandwidth=bw)).process(_wire_frame(f0, bw, truth_m))
    theory_m = rf_model.axial_fwhm_theory_m(f0, bw, C)
    measured_m = axial_fwhm(result.envelope, result.depth_m)
    assert measured_m == pytest.approx(theory_m, rel=0.20)
    line = int(np.argmax(result.envelope.max(axis=1)))
    depth_m = peak_position(result.envelope[line], result.depth_m)
    assert abs(depth_m - truth_m) <= 0.5 * theory_m


@pytest.mark.parametrize("input_format", ["u8", "i16", "u12", "float"])
def test_dsp_wire_depth_includes_start_delay(input_format: str) -> None:
    truth_m, delay_s = 30e-3, 20e-6  # the record starts 15.4 mm deep
    rf = _wire_frame(F0, 0.6, truth_m, start_delay_s=delay_s, input_format=input_format)
    cfg = ChainConfig(sample_rate_hz=FS, center_freq_hz=F0, start_delay_s=delay_s)
    result = Chain(cfg).process(rf)
    assert result.depth_m[0] == pytest.approx(C * delay_s / 2)
    line = int(np.argmax(result.envelope.max(axis=1)))
    depth_m = peak_position(result.envelope[line], result.depth_m)
    assert abs(depth_m - truth_m) <= 0.5 * rf_model.axial_fwhm_theory_m(F0, 0.6, C)


@lru_cache(maxsize=1)
def _cyst_frame() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    phantom = rf_model.speckle(rng, (-9e-3, 9e-3), (15e-3, 35e-3), 100.0,
                               cysts=[(0.0, 25e-3, 2e-3)])
    positions = np.linspace(-7e-3, 7e-3, 96)
    rf = rf_model.simulate_rf(phantom, positions, n_samples=2048)
    rf *= 0.5 / np.abs(rf).max()
    rf += rng.standard_normal(rf.shape) * rf.std() * 10 ** (-40 / 20)  # thermal noise
    return rf_model.to_codes(rf, "i16"), positions


def test_dsp_anechoic_4mm_cyst_has_gcnr_above_0_9() -> None:
    rf, positions = _cyst_frame()
    result = Chain(ChainConfig(sample_rate_hz=FS, center_freq_hz=F0)).process(rf)
    x, z = np.meshgrid(positions, result.depth_m, indexing="ij")
    dist_m = np.hypot(x, z - 25e-3)
    inside = dist_m < 0.7 * 2e-3
    outside = (dist_m > 3e-3) & (dist_m < 5e-3)
    assert gcnr(result.image[inside], result.image[outside]) >= 0.9
    assert gcnr(result.envelope[inside], result.envelope[outside]) >= 0.9
    assert contrast_db(result.envelope[inside], result.envelope[outside]) < -20.0


def test_dsp_speckle_envelope_snr_is_rayleigh() -> None:
    rng = np.random.default_rng(11)
    # 400 scatterers/mm² ≈ 90 per resolution cell (0.23 mm x 1 mm): fully developed speckle.
    phantom = rf_model.speckle(rng, (-8e-3, 8e-3), (15e-3, 40e-3), 400.0)
    positions = np.linspace(-6e-3, 6e-3, 64)
    rf = rf_model.simulate_rf(phantom, positions, n_samples=2560)
    rf *= 0.5 / np.abs(rf).max()
    result = Chain(ChainConfig(sample_rate_hz=FS, center_freq_hz=F0)).process(
        rf_model.to_codes(rf, "i16"))
    region = (result.depth_m > 18e-3) & (result.depth_m < 37e-3)
    assert speckle_snr(result.envelope[:, region]) == pytest.approx(1.91, abs=0.2)
