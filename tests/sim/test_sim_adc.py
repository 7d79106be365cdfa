"""ADC: sample formats, offset binary, clipping, quantization noise, TGC curve, noise pool."""

from __future__ import annotations

import numpy as np
import pytest

from sonobridge.protocol import SampleFormat
from sonobridge.protocol.samples import samples_from_buffer, samples_to_bytes
from sonobridge.sim import Adc, NoisePool, tgc_curve_db

FORMATS = [
    (SampleFormat.U8, np.uint8, 8, 128),
    (SampleFormat.I16, np.int16, 10, 0),
    (SampleFormat.U16_OB, np.uint16, 10, 512),
    (SampleFormat.PACKED12, np.uint16, 10, 512),
]


@pytest.mark.parametrize(("fmt", "dtype", "bits", "zero"), FORMATS)
def test_formats_dtypes_and_offset_binary_zero(fmt, dtype, bits, zero):
    adc = Adc()
    assert adc.effective_bits(fmt) == bits
    out = adc.digitize(np.zeros((3, 8), np.float32), fmt)
    assert out.dtype == dtype and out.shape == (3, 8)
    assert np.all(out == zero)


@pytest.mark.parametrize(("fmt", "dtype", "bits", "zero"), FORMATS)
def test_clipping_at_full_scale(fmt, dtype, bits, zero):
    adc = Adc()
    v = np.array([-5.0, -1.0, -0.999, 0.999, 1.0, 5.0], np.float32)
    out = adc.digitize(v, fmt).astype(np.int64) - zero
    half = 2 ** (bits - 1)
    assert out.min() == -half and out.max() == half - 1
    assert out[0] == out[1] == -half and out[-1] == out[-2] == half - 1


@pytest.mark.parametrize(("fmt", "dtype", "bits", "zero"), FORMATS)
def test_digitized_samples_travel_through_the_wire_format(fmt, dtype, bits, zero):
    adc = Adc()
    v = np.random.default_rng(0).uniform(-1.2, 1.2, 64).astype(np.float32)
    out = adc.digitize(v, fmt)
    back = samples_from_buffer(samples_to_bytes(out, fmt), 0, fmt, out.size)
    assert np.array_equal(back, out)
    assert np.max(np.abs(adc.to_volts(out, fmt) - np.clip(v, -1, 1))) <= 2.0 ** (1 - bits)


def test_quantization_noise_is_one_lsb_over_sqrt_12():
    adc = Adc(bits=10)
    v = np.random.default_rng(1).uniform(-0.9, 0.9, 200_000).astype(np.float32)
    err = adc.to_volts(adc.digitize(v, SampleFormat.I16)) - v
    assert err.std() == pytest.approx(adc.lsb_v / np.sqrt(12), rel=0.02)
    assert abs(err.mean()) < 0.01 * adc.lsb_v
    # a format narrower than the ADC keeps the top bits: 4x coarser steps in u8
    err8 = adc.to_volts(adc.digitize(v, SampleFormat.U8), SampleFormat.U8) - v
    assert err8.std() == pytest.approx(4 * adc.lsb_v / np.sqrt(12), rel=0.02)


def test_wider_adc_and_bad_format():
    adc = Adc(bits=12)
    assert adc.digitize(np.array([0.0]), SampleFormat.PACKED12)[0] == 2048
    assert adc.digitize(np.array([1.0]), SampleFormat.PACKED12)[0] == 4095
    assert adc.effective_bits(SampleFormat.U8) == 8
    with pytest.raises(ValueError):
        adc.digitize(np.zeros(2), 7)
    with pytest.raises(ValueError, match="bits"):
        Adc(bits=20)


def test_noise_model_adds_thermal_times_gain_and_adc_noise_in_quadrature():
    adc = Adc(thermal_noise_v_rms=1e-3, noise_lsb_rms=1.0)
    assert float(adc.noise_v_rms(0.0)) == pytest.approx(np.hypot(1e-3, adc.lsb_v))
    assert float(adc.noise_v_rms(20.0)) == pytest.approx(np.hypot(1e-2, adc.lsb_v))


def test_tgc_curve_follows_protocol_semantics():
    assert np.array_equal(tgc_curve_db([0.0, 10.0, 40.0], 5), [0.0, 5.0, 10.0, 25.0, 40.0])
    assert np.array_equal(tgc_curve_db([7.5], 100), np.full(100, 7.5))
    pts = np.random.default_rng(2).uniform(0, 40, 32)
    # 311 samples, 32 points: point k sits exactly on sample 10·k
    curve = tgc_curve_db(pts, 311)
    assert np.allclose(curve[::10], pts)
    assert np.allclose(curve[3::10], 0.7 * pts[:-1] + 0.3 * pts[1:])
    full = tgc_curve_db(pts, 4096)
    n = np.arange(4096)
    pos = n * 31 / 4095
    k = np.minimum(pos.astype(int), 30)
    assert np.allclose(full, pts[k] + (pts[k + 1] - pts[k]) * (pos - k))
    assert full[0] == pts[0] and full[-1] == pts[-1]
    with pytest.raises(ValueError):
        tgc_curve_db([], 10)


def test_noise_pool_draws_distinct_scaled_rows():
    std = np.linspace(1.0, 3.0, 1000)
    pool = NoisePool(std, 256, np.random.default_rng(3))
    rng = np.random.default_rng(4)
    a = pool.draw(128, rng)
    assert a.shape == (128, 1000) and a.dtype == np.float32
    assert len({row.tobytes() for row in a}) == 128
    assert a[:, :100].std() == pytest.approx(std[:100].mean(), rel=0.05)
    assert a[:, -100:].std() == pytest.approx(std[-100:].mean(), rel=0.05)
    assert not np.array_equal(a, pool.draw(128, rng))
