"""Simulator speed: can the simulated board outrun USB high speed?

    .venv/bin/python bench/bench_sim.py            # full run
    .venv/bin/python bench/bench_sim.py --quick    # smoke run

Measures, for 128 lines × 4096 i16 samples at 40 MS/s on the builtin cyst phantom (default
sector sweep, default TGC): the one-time ``EchoSynth.prepare`` (scatterers → noise-free RF +
noise pool), and the per-frame cost of ``frame`` + ``digitize`` as frames/s and MB/s of i16
samples (median over the runs). Reference: copying one frame's bytes (memcpy), the floor.
Target: ≥ 35 MB/s (USB 2.0 high speed), i.e. under ~30 ms per frame on one core.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from sonobridge.protocol import SampleFormat
from sonobridge.sim import Acquisition, EchoSynth, load_phantom, tgc_curve_db

N_LINES, N_SAMPLES, FS = 128, 4096, 40e6


def timed(fn, repeat: int) -> list[float]:
    """Wall-clock seconds of ``repeat`` calls of ``fn``."""
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    """Run the benchmark and print a small table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--phantom", default="cyst")
    args = ap.parse_args()
    n_frames = 20 if args.quick else 200
    n_prep = 1 if args.quick else 3

    phantom = load_phantom(args.phantom)
    acq = Acquisition(sample_rate_hz=FS, n_samples=N_SAMPLES,
                      positions=np.radians(np.linspace(-30, 30, N_LINES)),
                      sweep_kind="sector", pulse_freq_hz=5e6, pulse_cycles=2,
                      tgc_db=tgc_curve_db([0.0, 10.0, 20.0, 30.0], N_SAMPLES), prf_hz=5000.0)
    t = time.perf_counter()
    synth = EchoSynth(phantom, seed=1)
    t_init = time.perf_counter() - t
    n_scat = synth.scatterers[0].size

    def prepare() -> None:
        nonlocal synth
        synth = EchoSynth(phantom, seed=1)  # a fresh synth: the real precompute, no cache hit
        synth.prepare(acq)

    t_prep = statistics.median(timed(prepare, n_prep)) - t_init
    counter = iter(range(10**9))

    def one_frame() -> None:
        synth.digitize(synth.frame(next(counter) / 35.0), SampleFormat.I16)

    timed(one_frame, 3)  # warm-up
    t_frame = statistics.median(timed(one_frame, n_frames))
    t_only = statistics.median(timed(lambda: synth.frame(0.0), n_frames))

    src = np.zeros(N_LINES * N_SAMPLES, np.int16)
    dst = np.empty_like(src)
    t_copy = statistics.median(timed(lambda: np.copyto(dst, src), n_frames))
    frame_mb = src.nbytes / 1e6

    print(f"bench_sim  {datetime.datetime.now().isoformat(timespec='seconds')}  "
          f"python {platform.python_version()}  numpy {np.__version__}  "
          f"{platform.machine()}  (single thread)")
    print(f"phantom {phantom.name}: {n_scat} scatterers (drawn in {t_init * 1e3:.0f} ms); "
          f"frame {N_LINES} lines × {N_SAMPLES} i16 @ {FS / 1e6:.0f} MS/s = {frame_mb:.2f} MB")
    print(f"{'step':34s} {'ms':>9s} {'frames/s':>10s} {'MB/s':>10s}")
    print(f"{'prepare (one-time, median of ' + str(n_prep) + ')':34s} {t_prep * 1e3:9.1f}")
    for name, sec in (("frame + digitize (i16)", t_frame), ("frame only (float32 volts)", t_only),
                      ("memcpy of one frame (reference)", t_copy)):
        print(f"{name:34s} {sec * 1e3:9.3f} {1 / sec:10.0f} {frame_mb / sec:10.0f}")
    print(f"median over {n_frames} frames; USB-HS needs 35 MB/s = {35 / frame_mb:.0f} frames/s "
          f"-> headroom {frame_mb / t_frame / 35:.0f}x")


if __name__ == "__main__":
    main()
