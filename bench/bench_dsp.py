"""Benchmark the DSP chain on one core: speed against pymust, image quality, scan conversion.

Run: .venv/bin/python bench/bench_dsp.py   (pymust comes from the `bench` extra)

Targets (docs/benchmarks.md): the chain without scan conversion on a 128 x 4096 int16 frame
<= 10 ms median; >= 5x faster than pymust rf2iq + bmode on the same frame (issue 18: >= 20x);
gCNR on a cyst phantom not worse than pymust's; 512 x 512 sector scan conversion <= 3 ms
median. The chain's two FFTs alone are timed too: the floor under any cut that keeps its plan.
"""

from __future__ import annotations

import os

# One core, set before numpy/scipy load their thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import datetime  # noqa: E402
import importlib.metadata  # noqa: E402
import importlib.util  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sonobridge.dsp import Chain, ChainConfig, ScanConverter, axial_fwhm, gcnr  # noqa: E402

FS, F0, BW, C = 40e6, 5e6, 0.6, 1540.0
N_LINES, N_SAMPLES = 128, 4096
CYSTS = ((0.0, 25e-3, 2e-3), (-4e-3, 50e-3, 3e-3))  # (x_m, z_m, radius_m)


def _load_rf_model():  # type: ignore[no-untyped-def]
    """Import the test suite's point-scatterer model (it is not part of the package)."""
    path = ROOT / "tests" / "dsp" / "rf_model.py"
    spec = importlib.util.spec_from_file_location("rf_model", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["rf_model"] = module
    spec.loader.exec_module(module)
    return module


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


def cyst_masks(positions: np.ndarray, depth_m: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Inside (0.7 R) and background annulus (R+1 mm .. R+3 mm) masks for each cyst."""
    x, z = np.meshgrid(positions, depth_m, indexing="ij")
    masks = []
    for cx, cz, radius in CYSTS:
        dist = np.hypot(x - cx, z - cz)
        masks.append((dist < 0.7 * radius, (dist > radius + 1e-3) & (dist < radius + 3e-3)))
    return masks


def main() -> int:
    """Run every measurement and print the table."""
    try:
        import pymust
        from pymust.utils import Param
    except ImportError:
        print("pymust is missing: .venv/bin/pip install pymust  (the `bench` extra)")
        return 2

    rf_model = _load_rf_model()
    positions = np.linspace(-10e-3, 10e-3, N_LINES)

    def phantom_frame(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        phantom = rf_model.speckle(rng, (-12e-3, 12e-3), (5e-3, 78e-3), 100.0,
                                   cysts=list(CYSTS))
        rf = rf_model.simulate_rf(phantom, positions, sample_rate_hz=FS, center_freq_hz=F0,
                                  bandwidth=BW, n_samples=N_SAMPLES, sound_speed_m_s=C)
        rf *= 0.5 / np.abs(rf).max()
        rf += rng.standard_normal(rf.shape) * rf.std() * 10 ** (-35 / 20)  # thermal noise
        return rf_model.to_codes(rf, "i16")

    frame = phantom_frame(1)
    assert frame.shape == (N_LINES, N_SAMPLES) and frame.dtype == np.int16
    config = ChainConfig(sample_rate_hz=FS, center_freq_hz=F0, fractional_bandwidth=BW,
                         sound_speed_m_s=C, dynamic_range_db=50.0)

    # --- our chain (includes int16 conversion; excludes scan conversion) ---
    chain = Chain(config)
    ours_ms = time_ms(lambda: chain.process(frame), repeats=300, warmup=10)
    result = chain.process(frame).copy()

    # --- pymust rf2iq + bmode on the same frame (it takes (n_samples, n_lines) float) ---
    param = Param()
    param.fs = FS
    param.fc = F0
    param.bandwidth = 100 * BW  # percent
    param.c = C

    def run_pymust(rf_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rf_cols = rf_codes.T.astype(np.float64) / 32768.0
        iq = pymust.rf2iq(rf_cols, param)
        return iq, pymust.bmode(iq, 50)

    pymust_ms = time_ms(lambda: run_pymust(frame), repeats=20, warmup=2)

    # --- image quality: gCNR per cyst, averaged over three speckle realisations ---
    pymust_depth = C * np.arange(N_SAMPLES) / FS / 2
    scores = []
    for seed in (1, 2, 3):
        rf_codes = frame if seed == 1 else phantom_frame(seed)
        ours = Chain(config).process(rf_codes)
        _, pymust_image = run_pymust(rf_codes)
        pymust_image = pymust_image.T  # back to (n_lines, n_samples)
        scores.append([
            (gcnr(ours.image[inside], ours.image[outside]),
             gcnr(pymust_image[inside_p], pymust_image[outside_p]))
            for (inside, outside), (inside_p, outside_p) in zip(
                cyst_masks(positions, ours.depth_m), cyst_masks(positions, pymust_depth),
                strict=True)
        ])
    quality = [tuple(pair) for pair in np.mean(scores, axis=0)]

    # --- axial resolution on a wire, relative to the Gaussian-pulse theory ---
    wire = rf_model.simulate_rf(rf_model.points([0.0], [30e-3]), positions[60:68],
                                sample_rate_hz=FS, center_freq_hz=F0, bandwidth=BW,
                                n_samples=N_SAMPLES, sound_speed_m_s=C)
    wire_codes = rf_model.to_codes(0.5 * wire, "i16")
    theory_m = rf_model.axial_fwhm_theory_m(F0, BW, C)
    wire_result = Chain(config).process(wire_codes)
    fwhm_ours = axial_fwhm(wire_result.envelope, wire_result.depth_m) / theory_m
    fwhm_pymust = axial_fwhm(np.abs(run_pymust(wire_codes)[0]).T, pymust_depth) / theory_m

    # --- 512 x 512 sector scan conversion of this frame ---
    angles = np.deg2rad(np.linspace(-45, 45, N_LINES))
    converter = ScanConverter(angles, result.depth_m, "sector", out_shape=(512, 512))
    scan_u8_ms = time_ms(lambda: converter.convert(result.image), repeats=300, warmup=5)
    scan_f32_ms = time_ms(lambda: converter.convert(result.envelope), repeats=300, warmup=5)

    # --- the floor under the chain: its forward and inverse FFT alone, on this plan ---
    plan = chain.plan
    assert plan is not None
    padded = np.zeros((N_LINES, plan.n_fft), dtype=np.float32)
    padded[:, :N_SAMPLES] = frame
    spectrum = np.zeros((N_LINES, plan.n_ifft), dtype=np.complex64)
    fft_ms = time_ms(lambda: (scipy.fft.rfft(padded, axis=-1, workers=1),
                              scipy.fft.ifft(spectrum, axis=-1, workers=1)), repeats=300, warmup=10)

    def row(name: str, t: np.ndarray, target: str) -> str:
        return f"| {name:<44} | {np.median(t):9.2f} | {np.percentile(t, 90):9.2f} | {target:<9} |"

    speedup = np.median(pymust_ms) / np.median(ours_ms)
    print(f"date: {datetime.date.today().isoformat()}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
          f"pymust {importlib.metadata.version('pymust')}, {platform.machine()}, "
          f"os.cpu_count()={os.cpu_count()}, one thread")
    print(f"frame: {N_LINES} x {N_SAMPLES} int16 at {FS / 1e6:g} MHz, f0 {F0 / 1e6:g} MHz, "
          f"bw {BW}; our output {result.envelope.shape[1]} samples at "
          f"{result.sample_rate_out_hz / 1e6:.3f} MHz")
    print()
    print(f"| {'step':<44} | {'median ms':>9} | {'p90 ms':>9} | {'target':<9} |")
    print(f"|{'-' * 46}|{'-' * 10}:|{'-' * 10}:|{'-' * 11}|")
    print(row("chain: int16 -> IQ, envelope, uint8 image", ours_ms, "<= 10 ms"))
    print(row(f"  its two FFTs alone ({plan.n_fft} r2c + {plan.n_ifft} c2c)",
              fft_ms, "(floor)"))
    print(row("pymust rf2iq + bmode (same frame)", pymust_ms, "reference"))
    print(row("scan conversion 512x512 sector, uint8", scan_u8_ms, "<= 3 ms"))
    print(row("scan conversion 512x512 sector, float32", scan_f32_ms, "(info)"))
    print()
    print(f"speed ratio pymust / ours: {speedup:.1f}x (targets: >= 5x, issue 4; >= 20x, "
          f"issue 18); pymust / the two FFTs alone: "
          f"{np.median(pymust_ms) / np.median(fft_ms):.1f}x")
    for (_cx, cz, radius), (g_ours, g_pymust) in zip(CYSTS, quality, strict=True):
        print(f"gCNR cyst d={2 * radius * 1e3:.0f} mm at z={cz * 1e3:.0f} mm (mean of 3 "
              f"phantoms): ours {g_ours:.4f}, pymust {g_pymust:.4f} (target: ours >= pymust)")
    print(f"axial FWHM / theory 0.441c/(B f0) = {theory_m * 1e3:.3f} mm: ours {fwhm_ours:.2f}, "
          f"pymust {fwhm_pymust:.2f}")

    verdicts = {
        "chain <= 10 ms": np.median(ours_ms) <= 10.0,
        ">= 5x pymust": speedup >= 5.0,
        ">= 20x pymust (issue 18)": speedup >= 20.0,
        "gCNR >= pymust": all(o >= p for o, p in quality),
        "scan conversion <= 3 ms": np.median(scan_u8_ms) <= 3.0,
    }
    print()
    for name, ok in verdicts.items():
        print(f"{'MET ' if ok else 'MISSED'} {name}")
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
