"""Benchmark Doppler processing on one core: colour flow from IQ and from RF, PW, simulation.

Run: .venv/bin/python bench/bench_doppler.py   (about 20 s; --quick for a smoke run)

Target (issue 8): colour Doppler (wall filter + Kasai + power) for 64 lines × ensemble 8 ×
2048 samples <= 20 ms on one core. Measured both from IQ (the chain's output: 2048 RF samples at
40 MHz decimate to 683 IQ samples) and from RF (int16 codes through the chain into IQ, then
colour flow), plus the worst case of 2048 *IQ* samples per line. The frame is the simulated
vessel phantom (``sim://?phantom=vessel``) seen by a ±30° sector at PRF 4 kHz.
"""

from __future__ import annotations

import os

# One core, set before numpy/scipy load their thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sonobridge.dsp import (  # noqa: E402
    Chain,
    ChainConfig,
    PwSpectrum,
    color_flow,
    ensemble_iq,
    flow_rgba,
    nyquist_velocity_m_s,
)
from sonobridge.sim import Acquisition, EchoSynth, load_phantom  # noqa: E402

FS, F0, PRF = 40e6, 5e6, 4000.0
N_LINES, ENSEMBLE, N_SAMPLES = 64, 8, 2048
TARGET_MS = 20.0


def time_ms(fn: Callable[[], object], repeats: int, warmup: int = 3) -> np.ndarray:
    """Return per-call wall times in milliseconds."""
    for _ in range(warmup):
        fn()
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - start
    return times * 1e3


def row(name: str, times: np.ndarray, target: float | None = None) -> None:
    """Print one result line: median, p90 and the verdict against a target."""
    med, p90 = np.median(times), np.percentile(times, 90)
    verdict = "" if target is None else ("  met" if med <= target else "  NOT met")
    goal = "" if target is None else f"  (target <= {target:g} ms)"
    print(f"  {name:<58} median {med:7.2f} ms   p90 {p90:7.2f} ms{goal}{verdict}")


def main() -> int:
    """Simulate the frame, then time each stage."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats (smoke run)")
    args = parser.parse_args()
    repeats = 5 if args.quick else 50

    print(f"bench_doppler  {datetime.datetime.now().isoformat(timespec='seconds')}  "
          f"Python {platform.python_version()}  NumPy {np.__version__}  SciPy "
          f"{scipy.__version__}  one thread")
    print(f"frame: vessel phantom, {N_LINES} lines × ensemble {ENSEMBLE} × {N_SAMPLES} "
          f"samples int16, sector ±30°, PRF {PRF:g} Hz")

    synth = EchoSynth(load_phantom("vessel"), seed=1)
    acq = Acquisition(sample_rate_hz=FS, n_samples=N_SAMPLES, prf_hz=PRF,
                      positions=np.repeat(np.radians(np.linspace(-30, 30, N_LINES)), ENSEMBLE))
    synth.prepare(acq)
    t_frame = [0.0]

    def render() -> None:
        t_frame[0] += N_LINES * ENSEMBLE / PRF
        synth.frame(t_frame[0])

    print("simulator (host/sim, informational):")
    row(f"render one frame ({N_LINES * ENSEMBLE} firings, "
        f"{synth.flow.xi0.size if synth.flow else 0} blood scatterers)",
        time_ms(render, max(5, repeats // 5)))
    rf = synth.digitize(synth.frame(1.0), 1).reshape(N_LINES, ENSEMBLE, N_SAMPLES)

    chain = Chain(ChainConfig(sample_rate_hz=FS, center_freq_hz=F0))
    iq, res = ensemble_iq(chain, rf)
    demod, fs_out = res.demod_freq_hz, res.sample_rate_out_hz
    print(f"IQ: {iq.shape} complex64 ({fs_out / 1e6:.2f} MHz after the chain's decimation)")

    print("colour flow from IQ (wall filter order 1 + R0/R1 + velocity, power, variance):")
    row("Kasai", time_ms(lambda: color_flow(iq, PRF, F0), repeats), TARGET_MS)
    row("Kasai + spatial average (3 lines × 5 samples)",
        time_ms(lambda: color_flow(iq, PRF, F0, average=(3, 5)), repeats), TARGET_MS)
    row("Loupas (f0 per pixel) + average (1 × 5)",
        time_ms(lambda: color_flow(iq, PRF, demod_freq_hz=demod, sample_rate_out_hz=fs_out,
                                   average=(1, 5)), repeats), TARGET_MS)
    rng = np.random.default_rng(0)
    wide = (rng.standard_normal((N_LINES, ENSEMBLE, N_SAMPLES))
            + 1j * rng.standard_normal((N_LINES, ENSEMBLE, N_SAMPLES))).astype(np.complex64)
    row(f"Kasai on {N_SAMPLES} IQ samples per line (no decimation)",
        time_ms(lambda: color_flow(wide, PRF, F0), repeats), TARGET_MS)

    print("colour flow from RF (chain on every firing → IQ, then the above):")
    row("IQ formation only: ensemble_iq (512 × 2048 int16)",
        time_ms(lambda: ensemble_iq(chain, rf), repeats))

    def from_rf() -> None:
        x, _ = ensemble_iq(chain, rf)
        color_flow(x, PRF, F0)

    row("RF → Kasai", time_ms(from_rf, repeats), TARGET_MS)

    def from_rf_display() -> None:
        x, _ = ensemble_iq(chain, rf)
        est = color_flow(x, PRF, F0, average=(3, 5))
        flow_rgba(est.velocity_m_s, nyquist_velocity_m_s(PRF, F0), power=est.power_db(),
                  power_threshold=-25.0)

    row("RF → Kasai + average + RGBA overlay (pre scan conversion)",
        time_ms(from_rf_display, repeats), TARGET_MS)

    print("PW spectral Doppler (stream of one gate, 17 samples, window 64, hop 16):")
    gate = iq[N_LINES // 2, :, 300:317]

    def push() -> None:
        pw.push(gate)

    pw = PwSpectrum(PRF, F0, window_len=64, hop=16, n_fft=128, wall_cutoff_hz=100.0)
    row(f"push {ENSEMBLE} firings (a new spectrum every 2 pushes)", time_ms(push, repeats * 4))
    return 0


if __name__ == "__main__":
    sys.exit(main())
