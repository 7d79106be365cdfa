"""Bad input to the Doppler functions fails at once with a message that says what to fix."""

from __future__ import annotations

import numpy as np
import pytest

from sonobridge.dsp import (
    Chain,
    ChainConfig,
    PwSpectrum,
    angle_correct,
    color_flow,
    ensemble_iq,
    iir_wall_filter,
    kasai,
    loupas,
    mean_frequency_hz,
    nyquist_velocity_m_s,
    pw_spectrogram,
    range_gate,
    regression_wall_filter,
    wrap_velocity,
)

IQ = np.ones((4, 8, 32), np.complex64)


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: kasai(IQ.real, 5000.0, 5e6), TypeError, "complex baseband IQ"),
    (lambda: kasai([[1j]], 5000.0, 5e6), TypeError, "numpy array"),
    (lambda: kasai(IQ[:, :1], 5000.0, 5e6), ValueError, "ensemble of at least 2"),
    (lambda: kasai(IQ, 0.0, 5e6), ValueError, "prf_hz=0.0 must be a finite number > 0"),
    (lambda: kasai(IQ, -100.0, 5e6), ValueError, "prf_hz"),
    (lambda: kasai(IQ, float("nan"), 5e6), ValueError, "prf_hz"),
    (lambda: kasai(IQ, 5000.0, 0.0), ValueError, "center_freq_hz must be finite and > 0"),
    (lambda: kasai(IQ, 5000.0, 5e6, axis=3), ValueError, "axis=3 is out of range"),
    (lambda: kasai(IQ, 5000.0, 5e6, baseline_shift=1.0), ValueError, r"baseline_shift.*\(-1, 1\)"),
    (lambda: kasai(IQ, 5000.0, 5e6, average=(3,)), ValueError, "one boxcar length per output"),
    (lambda: kasai(IQ, 5000.0, 5e6, average=0), ValueError, "must be >= 1"),
    (lambda: kasai(IQ, 5000.0, 5e6, sound_speed_m_s=0), ValueError, "sound_speed_m_s"),
    (lambda: kasai(np.complex64(1), 5000.0, 5e6), TypeError, "numpy array"),
    (lambda: color_flow(IQ, 5000.0), ValueError, "give center_freq_hz"),
    (lambda: color_flow(IQ, 5000.0, 5e6, demod_freq_hz=5e6, sample_rate_out_hz=1e7),
     ValueError, "not both"),
    (lambda: color_flow(IQ, 5000.0, demod_freq_hz=5e6), ValueError, "give center_freq_hz"),
    (lambda: color_flow(IQ, 5000.0, 5e6, wall_filter_order=7), ValueError,
     r"order=7 must be in 0..6"),
    (lambda: loupas(IQ, 5000.0, 5e6, 1e7, axis=2), ValueError, "cannot be the depth axis"),
    (lambda: loupas(IQ, 5000.0, -5e6, 1e7), ValueError, "demod_freq_hz"),
    (lambda: regression_wall_filter(IQ, 1.5), TypeError, "must be an integer"),
    (lambda: regression_wall_filter(IQ, -1), ValueError, "order=-1"),
    (lambda: regression_wall_filter(IQ[:, :1], 0), ValueError, "at least 2 firings"),
    (lambda: iir_wall_filter(IQ, 2500.0, 5000.0), ValueError,
     r"cutoff_hz=2500.0 must be in \(0, prf_hz/2\)"),
    (lambda: iir_wall_filter(IQ, 100.0, 5000.0, order=0), ValueError, "order=0"),
    (lambda: iir_wall_filter(IQ, 100.0, 5000.0, zi=np.zeros(3)), ValueError, "zi has shape"),
    (lambda: iir_wall_filter(IQ, 100.0, 5000.0, zi="warm"), ValueError, "'steady' or None"),
    (lambda: mean_frequency_hz(IQ.real, 1e7, 5e6), TypeError, "complex"),
    (lambda: mean_frequency_hz(IQ[..., :1], 1e7, 5e6), ValueError, "at least 2 depth samples"),
    (lambda: mean_frequency_hz(IQ, 1e7, 5e6, smooth_samples=0), ValueError, "smooth_samples"),
    (lambda: angle_correct(0.1, 0.1, max_angle_rad=2.0), ValueError, "max_angle_rad"),
    (lambda: angle_correct(0.1, float("inf")), ValueError, "finite"),
    (lambda: nyquist_velocity_m_s(5000.0, np.array([5e6, -1.0])), ValueError, "center_freq"),
    (lambda: wrap_velocity(1.0, 0.0), ValueError, "nyquist_m_s must be finite and > 0"),
    (lambda: pw_spectrogram(IQ[0, :, 0], 5000.0, 5e6, window_len=16), ValueError,
     "8 firings along axis 0; a window needs window_len=16"),
    (lambda: pw_spectrogram(IQ[0, :, 0], 5000.0, 5e6, window_len=1), ValueError, "window_len=1"),
    (lambda: pw_spectrogram(IQ[0, :, 0], 5000.0, 5e6, window_len=4, n_fft=2), ValueError,
     "n_fft=2 must be an integer >= window_len=4"),
    (lambda: pw_spectrogram(IQ[0, :, 0], 5000.0, 5e6, window_len=4, hop=0), ValueError, "hop=0"),
    (lambda: pw_spectrogram(IQ[0, :, 0], 5000.0, np.array([5e6, 4e6]), window_len=4),
     ValueError, "single frequency"),
    (lambda: pw_spectrogram(IQ[0, :, 0].real, 5000.0, 5e6, window_len=4), TypeError, "complex"),
    (lambda: pw_spectrogram(IQ[0, :, 0], 5000.0, 5e6, window_len=4, window=np.ones(3)),
     ValueError, r"window array has shape \(3,\), expected \(4,\)"),
    (lambda: pw_spectrogram(IQ[0, :, 0], 0.0, 5e6, window_len=4), ValueError, "prf_hz"),
    (lambda: PwSpectrum(5000.0, 5e6, hop=0), ValueError, "hop=0"),
    (lambda: PwSpectrum(5000.0, 5e6, history=0), ValueError, "history=0"),
    (lambda: PwSpectrum(5000.0, 5e6, wall_cutoff_hz=3000.0), ValueError, "cutoff_hz"),
    (lambda: range_gate(IQ[0], np.linspace(0, 0.01, 32), 0.02, 0.001), ValueError,
     "outside the line"),
    (lambda: range_gate(IQ[0], np.linspace(0, 0.01, 31), 0.005, 0.001), ValueError,
     "depth_m has shape"),
])
def test_bad_input_raises_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_ensemble_iq_checks_the_frame_shape():
    chain = Chain(ChainConfig(sample_rate_hz=40e6, center_freq_hz=5e6))
    with pytest.raises(ValueError, match=r"3-D \(n_lines, ensemble, n_samples\)"):
        ensemble_iq(chain, np.zeros((4, 256), np.int16))
    with pytest.raises(ValueError, match="ensemble_size >= 2"):
        ensemble_iq(chain, np.zeros((4, 1, 256), np.int16))
    with pytest.raises(TypeError, match="numpy array"):
        ensemble_iq(chain, [[[0]]])
    iq, res = ensemble_iq(chain, np.zeros((4, 3, 256), np.int16))
    assert iq.shape == (4, 3, res.depth_m.size) and iq.dtype == np.complex64
    assert not np.shares_memory(iq, res.iq)  # a copy: safe to keep across frames


def test_range_gate_picks_the_nearest_sample_for_a_zero_length_gate():
    depth = np.linspace(0.0, 0.01, 32)
    x = np.arange(32)[None, :] * np.ones((5, 1)) * (1 + 0j)
    g = range_gate(x, depth, 0.005, 0.0)
    assert g.shape == (5, 1) and g[0, 0] == np.argmin(np.abs(depth - 0.005))
    g2 = range_gate(x, depth, 0.005, 0.002)
    assert g2.shape[1] == np.count_nonzero(np.abs(depth - 0.005) <= 0.001)
