"""The chain's steps one by one: IQ, blanking, DC, TGC, compression, tracking, persistence."""

from dataclasses import replace
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sonobridge.dsp import (
    BandPlan,
    Chain,
    ChainConfig,
    analytic_iq,
    blank,
    blanking_window,
    log_compress,
    log_compress_levels,
    persist,
    remove_dc,
    tgc_gain_db,
    track_reference,
)

from . import rf_model

FS, F0 = 40e6, 5e6
BASE = ChainConfig(sample_rate_hz=FS, center_freq_hz=F0, blank_s=0.0, blank_taper_s=0.0)


def _tone(n_lines: int, n_samples: int, freq_hz: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(n_samples) / FS
    return np.tile(amplitude * np.cos(2 * np.pi * freq_hz * t + 0.3), (n_lines, 1))


@lru_cache(maxsize=2)
def _speckle_rf(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    phantom = rf_model.speckle(rng, (-6e-3, 6e-3), (2e-3, 50e-3), 60.0)
    rf = rf_model.simulate_rf(phantom, np.linspace(-4e-3, 4e-3, 32), n_samples=2600)
    return rf * (0.3 / np.abs(rf).max())


def test_dsp_iq_of_a_tone_is_a_phasor_at_the_offset_frequency() -> None:
    offset_hz = 0.4e6
    plan = BandPlan.create(2048, FS, F0, 0.6)
    iq = analytic_iq(_tone(3, 2048, F0 + offset_hz).astype(np.float32), plan)
    assert iq.dtype == np.complex64 and iq.shape == (3, plan.n_out)
    middle = iq[:, 100:-100]
    np.testing.assert_allclose(np.abs(middle), 0.5, rtol=0.01)
    step = np.angle(middle[:, 1:] * np.conj(middle[:, :-1]))
    expected = 2 * np.pi * (F0 + offset_hz - plan.demod_freq_hz) / plan.sample_rate_out_hz
    np.testing.assert_allclose(step, expected, atol=1e-3)


def test_dsp_out_of_band_tone_is_rejected() -> None:
    plan = BandPlan.create(2048, FS, F0, 0.6)
    iq = analytic_iq(_tone(2, 2048, 15e6).astype(np.float32), plan)
    assert np.abs(iq[:, 100:-100]).max() < 1e-3


def test_dsp_auto_decimation_and_explicit_decimation() -> None:
    auto = BandPlan.create(4096, FS, F0, 0.6)
    assert auto.sample_rate_out_hz >= 1.5 * (auto.bin_hi - auto.bin_lo) * FS / auto.n_fft
    assert auto.decimation > 2
    full = BandPlan.create(4096, FS, F0, 0.6, decimation=1)
    assert full.sample_rate_out_hz == pytest.approx(FS, rel=1e-9)
    assert full.n_out == 4096


def test_dsp_blanking_window_and_blank() -> None:
    window = blanking_window(400, FS, blank_s=2e-6, taper_s=1e-6)
    assert len(window) == 120  # 3 µs at 40 MHz
    assert (window[:80] == 0).all() and np.all(np.diff(window) >= 0) and window[-1] > 0.99
    x = np.ones((2, 400), dtype=np.float32)
    assert blank(x, window, out=x) is x
    assert (x[:, :80] == 0).all() and (x[:, 120:] == 1).all()
    # With a start delay past the ring-down there is nothing to blank.
    assert len(blanking_window(400, FS, blank_s=2e-6, taper_s=1e-6, start_delay_s=5e-6)) == 0


def test_dsp_ringdown_is_blanked_in_the_chain() -> None:
    rf = _tone(4, 2048, F0, amplitude=0.01)
    rf[:, :100] += 0.9 * np.cos(2 * np.pi * F0 * np.arange(100) / FS)  # 2.5 µs of ring-down
    cfg = replace(BASE, blank_s=2.5e-6, blank_taper_s=0.5e-6)
    result = Chain(cfg).process(rf)
    ringing = result.depth_m < 1540 * 2.2e-6 / 2
    assert result.envelope[:, ringing].max() < 0.05
    unblanked = Chain(BASE).process(rf)
    assert unblanked.envelope[:, ringing].max() > 0.5


def test_dsp_remove_dc_skips_the_ringdown_when_averaging() -> None:
    x = np.full((3, 100), 0.25, dtype=np.float32)
    x[:, :10] = 5.0
    out = remove_dc(x, start=10)
    np.testing.assert_allclose(out[:, 10:], 0.0, atol=1e-7)
    assert remove_dc(x, out=x) is x


def test_dsp_tgc_slope_raises_deep_samples_by_the_right_db() -> None:
    rf = _tone(4, 2048, F0)
    fixed = replace(BASE, reference="fixed", reference_level=10.0)  # -26 dB: room to brighten
    flat = Chain(fixed).process(rf).copy()
    sloped = Chain(replace(fixed, tgc_db_per_cm=4.0)).process(rf)
    mid = slice(200, flat.envelope.shape[1] - 200)
    gain_db = 20 * np.log10(sloped.envelope[:, mid] / flat.envelope[:, mid])
    expected_db = 4.0 * flat.depth_m[mid] * 100
    np.testing.assert_allclose(gain_db, np.broadcast_to(expected_db, gain_db.shape), atol=0.01)
    level_step = sloped.image[:, mid].astype(int) - flat.image[:, mid].astype(int)
    np.testing.assert_allclose(level_step, np.broadcast_to(expected_db * 255 / 50,
                                                           level_step.shape), atol=1.01)


def test_dsp_tgc_curve_is_interpolated_and_held_flat() -> None:
    curve = ((0.01, 0.0), (0.03, 12.0))
    gain = tgc_gain_db(np.array([0.0, 0.01, 0.02, 0.03, 0.05]), curve_db=curve)
    np.testing.assert_allclose(gain, [0.0, 0.0, 6.0, 12.0, 12.0])
    gain = tgc_gain_db(np.array([0.02]), db_per_cm=1.0, curve_db=curve)
    np.testing.assert_allclose(gain, [8.0])


def test_dsp_auto_tgc_flattens_an_attenuated_profile() -> None:
    rf = _speckle_rf(1)
    depth_m = 1540 * np.arange(rf.shape[1]) / FS / 2
    attenuated = rf * 10 ** (-6.0 * depth_m * 100 / 20)  # 6 dB/cm two-way, ~29 dB overall
    cfg = replace(BASE, auto_tgc=True, auto_tgc_rate=0.5)
    chain = Chain(cfg)
    for _ in range(8):
        result = chain.process(attenuated)
    region = (result.depth_m > 8e-3) & (result.depth_m < 45e-3)

    def spread_db(env: np.ndarray) -> float:
        profile = 20 * np.log10(np.median(env[:, region], axis=0))
        smooth = np.convolve(profile, np.ones(25) / 25, mode="valid")
        return float(smooth.max() - smooth.min())

    assert spread_db(result.envelope) < 5.0
    assert spread_db(Chain(BASE).process(attenuated).envelope) > 15.0
    assert chain.auto_tgc_db is not None


def test_dsp_log_compression_maps_reference_and_dynamic_range() -> None:
    env = np.array([[1.0, 10 ** (-25 / 20), 10 ** (-50 / 20), 1e-6, 0.0, 2.0]], np.float32)
    image = log_compress(env, reference=1.0, dynamic_range_db=50.0)
    assert image.dtype == np.uint8
    assert image.tolist() == [[255, 128, 0, 0, 0, 255]]
    brighter = log_compress(env, reference=1.0, dynamic_range_db=50.0, gain_db=5.0)
    assert brighter[0, 1] == 255 * 30 // 50
    levels = log_compress_levels(env, 1.0, 50.0)
    assert np.isfinite(levels).all()


def test_dsp_tracking_reference_moves_by_the_rate_in_db() -> None:
    assert track_reference(None, 0.2) == 0.2
    moved = track_reference(0.1, 1.0, rate=0.05)
    assert 20 * np.log10(moved / 0.1) == pytest.approx(1.0)  # 5% of 20 dB
    assert track_reference(0.1, 0.0) == 0.1  # a blank frame does not drag it down


def test_dsp_single_bright_outlier_does_not_flicker() -> None:
    rf = _speckle_rf(1)
    chain = Chain(replace(BASE, reference_rate=0.05))
    for _ in range(3):
        settled = chain.process(rf).copy()
    spiked = rf.copy()
    spiked[10, 1500] = 1.0  # one sample at full scale, ~10x the brightest speckle
    result = chain.process(spiked)
    change_db = abs(20 * np.log10(result.reference / settled.reference))
    assert change_db <= 0.05 * 20  # bounded by the tracking rate, in practice far below
    assert change_db < 0.1
    far = np.abs(np.arange(result.image.shape[1]) - 1500 * result.image.shape[1] / 2600) > 40
    diff = np.abs(result.image[:, far].astype(int) - settled.image[:, far].astype(int))
    assert diff.max() <= 1


def test_dsp_tracking_follows_a_real_change_slowly() -> None:
    rf = _speckle_rf(1)
    chain = Chain(replace(BASE, reference_rate=0.1))
    first = chain.process(rf).reference
    second = chain.process(10 * rf).reference
    assert 20 * np.log10(second / first) == pytest.approx(2.0, abs=0.05)  # 10% of 20 dB


def test_dsp_persistence_on_envelope_is_an_iir_average() -> None:
    a, b = _speckle_rf(1), _speckle_rf(2)
    env_a = Chain(BASE).process(a).envelope.copy()
    env_b = Chain(BASE).process(b).envelope.copy()
    chain = Chain(replace(BASE, persistence=0.6))
    np.testing.assert_allclose(chain.process(a).envelope, env_a, rtol=1e-6)
    np.testing.assert_allclose(chain.process(b).envelope, 0.6 * env_a + 0.4 * env_b,
                               rtol=1e-5, atol=1e-7)


def test_dsp_persistence_on_image_averages_grey_levels() -> None:
    a, b = _speckle_rf(1), _speckle_rf(2)
    fixed = replace(BASE, reference="fixed", reference_level=0.3)
    img_a = Chain(fixed).process(a)
    levels_a = log_compress_levels(img_a.envelope, 0.3, 50.0)
    levels_b = log_compress_levels(Chain(fixed).process(b).envelope, 0.3, 50.0)
    chain = Chain(replace(fixed, persistence=0.5, persistence_on="image"))
    chain.process(a)
    image = chain.process(b).image
    expected = np.floor(0.5 * levels_a + 0.5 * levels_b + 0.5)
    assert np.abs(image - expected).max() <= 1


def test_dsp_persist_function() -> None:
    avg = np.array([1.0, 2.0], dtype=np.float32)
    new = np.array([3.0, 4.0], dtype=np.float32)
    np.testing.assert_allclose(persist(avg, new, 0.0), new)
    np.testing.assert_allclose(persist(avg, new, 0.75), [1.5, 2.5])
    assert persist(avg, new, 0.5, out=avg) is avg
    np.testing.assert_allclose(avg, [2.0, 3.0])
    with pytest.raises(ValueError, match=r"weight=1\.0"):
        persist(avg, new, 1.0)


def test_dsp_buffers_are_reused_across_frames_of_the_same_shape() -> None:
    chain = Chain(BASE)
    a, b = _speckle_rf(1), _speckle_rf(2)
    first = chain.process(a)
    kept = first.copy()
    second = chain.process(b)
    assert second.envelope is first.envelope
    assert second.image is first.image
    assert second.iq is first.iq
    assert not np.shares_memory(kept.envelope, second.envelope)
    assert not np.array_equal(kept.envelope, second.envelope)
    np.testing.assert_array_equal(kept.envelope, Chain(BASE).process(a).envelope)
    third = chain.process(b[:, :2000])  # a new shape gets new buffers
    assert third.envelope is not second.envelope
    assert third.envelope.shape[1] < second.envelope.shape[1]


def test_dsp_result_arrays_are_consistent() -> None:
    result = Chain(replace(BASE, tgc_db_per_cm=2.0)).process(_speckle_rf(1))
    n_lines, n_out = result.envelope.shape
    assert result.iq.dtype == np.complex64 and result.iq.shape == (n_lines, n_out)
    assert result.envelope.dtype == np.float32 and result.image.dtype == np.uint8
    assert result.image.shape == (n_lines, n_out) and result.depth_m.shape == (n_out,)
    np.testing.assert_allclose(np.abs(result.iq), result.envelope, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(np.diff(result.depth_m), 1540 / 2 / result.sample_rate_out_hz)


@settings(max_examples=25, deadline=None)
@given(
    n_lines=st.integers(1, 6),
    n_samples=st.integers(16, 700),
    seed=st.integers(0, 2**32 - 1),
    persistence=st.sampled_from([0.0, 0.5]),
)
def test_dsp_any_frame_gives_finite_consistent_output(n_lines: int, n_samples: int, seed: int,
                                                      persistence: float) -> None:
    rf = np.random.default_rng(seed).integers(-32768, 32767, (n_lines, n_samples), np.int16)
    chain = Chain(replace(BASE, persistence=persistence, tgc_db_per_cm=1.0))
    for _ in range(2):
        result = chain.process(rf)
    n_out = result.depth_m.size
    assert 1 <= n_out <= n_samples
    assert result.envelope.shape == result.image.shape == result.iq.shape == (n_lines, n_out)
    assert np.isfinite(result.envelope).all() and np.isfinite(result.iq).all()
    assert result.reference > 0
