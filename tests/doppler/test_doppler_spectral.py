"""PW spectral Doppler: the spectrogram's peak sits on the true velocity; streaming = batch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sonobridge.dsp import PwSpectrum, pw_spectrogram, range_gate

from .doppler_sim import DEPTH, F0, PRF, V_NYQ, fire, vessel_phantom


@pytest.mark.parametrize(("fraction", "angle_deg"), [(0.5, 45.0), (-0.3, 45.0), (0.65, 20.0),
                                                     (-0.7, 0.0)])
def test_spectrogram_peak_is_within_one_velocity_bin_of_the_truth(fraction, angle_deg):
    truth = fraction * V_NYQ
    # PW Doppler fires longer bursts (8 cycles) for a narrow Doppler spectrum
    e = fire(vessel_phantom(truth, angle_deg=angle_deg), n_lines=1, ensemble=1024,
             pulse_cycles=8)
    gate_iq = range_gate(e.iq[0], e.depth_m, DEPTH, 0.002)   # (1024 firings, gate samples)
    sp = pw_spectrogram(gate_iq, PRF, F0, window_len=64, hop=16)
    assert sp.power_db.shape == (61, 64)
    assert sp.velocity_bin_m_s == pytest.approx(2 * V_NYQ / 64)
    assert abs(sp.peak_velocity_m_s() - truth) <= sp.velocity_bin_m_s
    # every window sees it, not just the average
    per_window = sp.velocity_m_s[np.argmax(sp.power_db, axis=1)]
    assert np.median(np.abs(per_window - truth)) <= 2 * sp.velocity_bin_m_s
    # and the time axis is the window centres at the PRF
    np.testing.assert_allclose(np.diff(sp.time_s), 16 / PRF)
    assert sp.time_s[0] == pytest.approx(31.5 / PRF)


def test_velocity_axis_sign_and_baseline_shift():
    k = np.arange(512)
    tone = np.exp(1j * np.pi * 0.5 * k).astype(np.complex64)  # +0.5·v_nyq: toward
    sp = pw_spectrogram(tone, PRF, F0, window_len=32, hop=32)
    assert np.all(np.diff(sp.velocity_m_s) > 0)
    assert sp.velocity_m_s[0] == pytest.approx(-V_NYQ)
    assert sp.velocity_m_s[-1] < V_NYQ
    assert sp.peak_velocity_m_s() == pytest.approx(0.5 * V_NYQ)
    away = pw_spectrogram(np.conj(tone), PRF, F0, window_len=32, hop=32)
    assert away.peak_velocity_m_s() == pytest.approx(-0.5 * V_NYQ)
    fast = np.exp(1j * np.pi * 1.25 * k).astype(np.complex64)  # aliases to −0.75 v_nyq ...
    assert pw_spectrogram(fast, PRF, F0, window_len=32).peak_velocity_m_s() == pytest.approx(
        -0.75 * V_NYQ)
    shifted = pw_spectrogram(fast, PRF, F0, window_len=32, baseline_shift=0.5)  # ... or not
    assert shifted.peak_velocity_m_s() == pytest.approx(1.25 * V_NYQ)
    assert shifted.velocity_m_s[0] == pytest.approx(-0.5 * V_NYQ)
    zero_padded = pw_spectrogram(tone, PRF, F0, window_len=32, n_fft=128)
    assert zero_padded.power_db.shape[1] == 128
    assert zero_padded.velocity_bin_m_s == pytest.approx(2 * V_NYQ / 128)


def test_power_is_normalised_so_the_bins_sum_to_the_mean_power():
    rng = np.random.default_rng(1)
    noise = (rng.standard_normal((4096, 4)) + 1j * rng.standard_normal((4096, 4))) / np.sqrt(2)
    sp = pw_spectrogram(noise.astype(np.complex64), PRF, F0, window_len=64, hop=64)
    total = np.sum(10 ** (sp.power_db / 10), axis=1)
    assert np.mean(total) == pytest.approx(1.0, rel=0.05)


def test_wall_cutoff_removes_clutter_from_the_spectrum():
    k = np.arange(2048)
    x = (300.0 + np.exp(1j * np.pi * 0.4 * k)).astype(np.complex64)
    raw = pw_spectrogram(x, PRF, F0)
    filtered = pw_spectrogram(x, PRF, F0, wall_cutoff_hz=200.0)
    assert abs(raw.peak_velocity_m_s()) < raw.velocity_bin_m_s
    assert filtered.peak_velocity_m_s() == pytest.approx(0.4 * V_NYQ, abs=raw.velocity_bin_m_s)


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(0, 700), max_size=8), hop=st.integers(1, 40),
       window_len=st.integers(2, 48), wall=st.booleans())
def test_streaming_pushes_equal_the_batch_spectrogram(cuts, hop, window_len, wall):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((700, 3)) + 1j * rng.standard_normal((700, 3)) + 5).astype(
        np.complex64)
    cutoff = 300.0 if wall else None
    batch = pw_spectrogram(x, PRF, F0, window_len=window_len, hop=hop, wall_cutoff_hz=cutoff)
    pw = PwSpectrum(PRF, F0, window_len=window_len, hop=hop, history=1000,
                    wall_cutoff_hz=cutoff)
    pieces = [pw.push(chunk) for chunk in np.split(x, sorted(cuts))]
    streamed = np.concatenate(pieces)
    assert streamed.shape == batch.power_db.shape
    np.testing.assert_allclose(streamed, batch.power_db, atol=0.05)
    assert pw.n_written == batch.power_db.shape[0]
    np.testing.assert_allclose(pw.velocity_m_s, batch.velocity_m_s)


def test_ring_buffer_keeps_the_latest_history_in_order():
    k = np.arange(64 * 20)
    pw = PwSpectrum(PRF, F0, window_len=64, hop=64, history=8)
    assert pw.buffer.shape == (8, 64) and pw.write_index == 0
    # the tone sweeps upward: each spectrum's peak is one bin higher than the last
    freqs = np.repeat(np.arange(20), 64) / 64.0
    tone = np.exp(2j * np.pi * np.cumsum(freqs)).astype(np.complex64)
    new = pw.push(tone[:64 * 5])
    assert new.shape == (5, 64) and pw.write_index == 5
    pw.push(tone[64 * 5:])
    assert pw.n_written == 20 and pw.write_index == 20 % 8
    peaks = np.argmax(pw.ordered(), axis=1)
    assert np.all(np.diff(peaks) == 1)          # oldest → newest
    lo, hi = pw.levels(40.0)
    assert hi == pytest.approx(pw.buffer.max()) and hi - lo == 40.0
    assert pw.column_interval_s == pytest.approx(64 / PRF)
    pw.reset()  # forgets the stream, keeps the strip
    assert pw.n_written == 20 and pw.push(tone[:63]).shape == (0, 64)
    with pytest.raises(ValueError, match="gate has 2 samples"):
        pw.push(np.ones((70, 2), np.complex64))
    assert k.size  # (k only sizes the record)
