"""Band-pass filter, analytic signal and decimation in one FFT: RF lines → baseband IQ.

rfft of each line → keep the bins around f0 (a flat top with raised-cosine tapers, see
_PASS) → move them to baseband → a *shorter* inverse FFT. The short inverse FFT is the
decimation: its length sets the output sample rate, and nothing outside the kept band exists
to alias.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.fft as sfft

# The output rate is at least this many times the kept band's width, so |IQ| (which is wider
# than IQ) is drawn smoothly and half-maximum crossings can be interpolated.
_AUTO_OVERSAMPLING = 1.5
# Filter shape in units of the echo's -6 dB half band f0*bw/2: flat out to 1.5 half bands, then
# a raised-cosine taper one half band wide. The filter is -6 dB at f0*(1 ± bw), where a Gaussian
# echo is already 24 dB down, so it lengthens the pulse by only ~5% (a filter flat over just the
# -6 dB band lengthens it by ~19%) while still rejecting out-of-band noise.
_PASS = 1.5
_TAPER = 1.0


@dataclass(frozen=True, eq=False)
class BandPlan:
    """Precomputed bins, mask and sizes for :func:`analytic_iq` on lines of ``n_samples``.

    Build with :meth:`BandPlan.create`. ``mask`` already holds the analytic-signal factor 2 and
    the inverse-FFT length ratio, so the output envelope equals the RF amplitude.
    """

    n_samples: int
    sample_rate_hz: float
    center_freq_hz: float
    fractional_bandwidth: float
    n_fft: int  # forward rfft length (n_samples plus a guard against circular wrap)
    n_ifft: int  # inverse FFT length = decimated record length
    n_out: int  # output samples that cover the input record
    bin_lo: int  # first kept rfft bin
    bin_hi: int  # one past the last kept rfft bin
    bin_center: int  # rfft bin moved to 0 Hz
    mask: np.ndarray  # float32 (bin_hi - bin_lo,) filter gains for the kept bins
    sample_rate_out_hz: float
    demod_freq_hz: float  # frequency shifted to 0 Hz (f0 rounded to the rfft bin grid)

    @property
    def decimation(self) -> float:
        """Input samples per output sample (n_fft / n_ifft; not always an integer)."""
        return self.n_fft / self.n_ifft

    @classmethod
    def create(
        cls,
        n_samples: int,
        sample_rate_hz: float,
        center_freq_hz: float,
        fractional_bandwidth: float = 0.6,
        decimation: int | Literal["auto"] = "auto",
    ) -> BandPlan:
        """Plan the band-pass + IQ + decimation for lines of ``n_samples`` at ``sample_rate_hz``.

        The pass band is flat over f0*(1 ± 0.75*bw), is -6 dB at f0*(1 ± bw) and zero beyond
        f0*(1 ± 1.25*bw), clipped to (0, Nyquist); ``bw`` is the echo's -6 dB fractional
        bandwidth. ``decimation='auto'``
        picks the largest integer D with sample_rate_hz/D >= 2 x the kept band's width.
        """
        if n_samples < 1:
            raise ValueError(f"n_samples={n_samples!r} must be >= 1")
        fs, f0, bw = float(sample_rate_hz), float(center_freq_hz), float(fractional_bandwidth)
        half_pass_hz = _PASS * f0 * bw / 2.0
        taper_hz = _TAPER * f0 * bw / 2.0
        # The taper's impulse response lasts about 1/taper_hz; pad that much so echoes at the
        # end of a line do not wrap around onto its start.
        guard = math.ceil(2.0 * fs / taper_hz)
        n_fft = sfft.next_fast_len(n_samples + guard, real=True)
        df = fs / n_fft
        nyquist_bin = n_fft // 2
        bin_center = round(f0 / df)
        bin_lo = max(1, math.ceil((f0 - half_pass_hz - taper_hz) / df))
        # Exclude the Nyquist bin: its analytic-signal weight would be 1, not 2.
        bin_hi = min(nyquist_bin, math.floor((f0 + half_pass_hz + taper_hz) / df) + 1)
        bin_center = min(max(bin_center, bin_lo), bin_hi - 1)
        span_bins = bin_hi - bin_lo
        if decimation == "auto":
            dec = max(1, math.floor(n_fft / (_AUTO_OVERSAMPLING * span_bins)))
        else:
            dec = int(decimation)
            if dec < 1:
                raise ValueError(f"decimation={decimation!r} must be 'auto' or an integer >= 1")
        n_ifft = sfft.next_fast_len(math.ceil(n_fft / dec))
        if n_ifft < span_bins:
            max_dec = n_fft // span_bins
            raise ValueError(
                f"decimation={decimation!r} leaves an output rate of {fs / dec:.6g} Hz, below "
                f"the kept band's width {span_bins * df:.6g} Hz; use decimation <= {max_dec} "
                f"or 'auto'"
            )
        n_out = min(n_ifft, math.ceil(n_samples * n_ifft / n_fft))
        freqs_hz = np.arange(bin_lo, bin_hi) * df
        dist_hz = np.abs(freqs_hz - f0)
        ramp = np.clip((dist_hz - half_pass_hz) / taper_hz, 0.0, 1.0)
        mask = 0.5 + 0.5 * np.cos(np.pi * ramp)
        # x2 for the analytic signal, n_ifft/n_fft for the shorter inverse FFT's 1/n scaling.
        mask *= 2.0 * n_ifft / n_fft
        return cls(
            n_samples=n_samples,
            sample_rate_hz=fs,
            center_freq_hz=f0,
            fractional_bandwidth=bw,
            n_fft=n_fft,
            n_ifft=n_ifft,
            n_out=n_out,
            bin_lo=bin_lo,
            bin_hi=bin_hi,
            bin_center=bin_center,
            mask=mask.astype(np.float32),
            sample_rate_out_hz=fs * n_ifft / n_fft,
            demod_freq_hz=bin_center * df,
        )

    def time_out_s(self) -> np.ndarray:
        """Times of the ``n_out`` output samples, in seconds from the start of the record."""
        return np.arange(self.n_out) / self.sample_rate_out_hz


def analytic_iq(
    x: np.ndarray,
    plan: BandPlan,
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Band-pass ``x`` and return its decimated baseband analytic signal (IQ), complex64.

    ``x``: real ``(..., n_samples)`` or zero-padded ``(..., plan.n_fft)`` (the latter avoids a
    copy), full-scale units, along the last axis. Returns a view ``(..., plan.n_out)`` of ``out``
    (complex64 ``(..., plan.n_ifft)``, allocated if None) sampled at ``plan.sample_rate_out_hz``
    and mixed down by ``plan.demod_freq_hz``: |IQ| is the echo amplitude.
    """
    x = np.asarray(x)
    n_last = x.shape[-1]
    if n_last not in (plan.n_samples, plan.n_fft):
        raise ValueError(
            f"x has {n_last} samples per line; this plan is for {plan.n_samples} "
            f"(or {plan.n_fft} zero-padded)"
        )
    if x.dtype != np.float32:
        x = x.astype(np.float32)
    want_shape = (*x.shape[:-1], plan.n_ifft)
    if out is None:
        out = np.empty(want_shape, dtype=np.complex64)
    elif out.shape != want_shape or out.dtype != np.complex64 or not out.flags.c_contiguous:
        raise ValueError(
            f"out must be C-contiguous complex64 of shape {want_shape}, got {out.dtype} "
            f"of shape {out.shape}"
        )
    spectrum = sfft.rfft(x, n=plan.n_fft, axis=-1, workers=1)
    n_pos = plan.bin_hi - plan.bin_center
    n_neg = plan.bin_center - plan.bin_lo
    split = n_neg  # mask index of the centre bin
    np.multiply(spectrum[..., plan.bin_center:plan.bin_hi], plan.mask[split:],
                out=out[..., :n_pos])
    out[..., n_pos:plan.n_ifft - n_neg] = 0
    if n_neg:
        np.multiply(spectrum[..., plan.bin_lo:plan.bin_center], plan.mask[:split],
                    out=out[..., plan.n_ifft - n_neg:])
    # overwrite_x lets pocketfft transform in place, so `out` is reused frame after frame.
    result = sfft.ifft(out, axis=-1, workers=1, overwrite_x=True)
    if not np.shares_memory(result, out):
        np.copyto(out, result)
    return out[..., :plan.n_out]
