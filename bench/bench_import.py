"""Importing a pic0lib file: the whole `sonobridge import` command, as a person runs it.

    .venv/bin/python bench/bench_import.py            # 28 acquisitions, 5 runs
    .venv/bin/python bench/bench_import.py --quick    # smoke run

Builds a pic0lib HDF5 file like ``example_data/calibration_block_5steps_1018steel.h5`` of
kelu124/pic0rick (28 groups of float32[8000], gzip, ~330 KB; the settings change as in that
file) and times ``sonobridge import FILE -o out.h5`` in a fresh interpreter (start-up and
imports included, the way a person meets it), then the in-process import alone. Target:
under 2 s for the command.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from sonobridge.record.importers import import_file

TARGET_S = 2.0


def make_pic0lib(path: Path, n_acq: int, seed: int = 1) -> None:
    """A pic0lib file of ``n_acq`` acquisitions (echo-like codes, gzip as pic0lib writes)."""
    rng = np.random.default_rng(seed)
    t = np.arange(8000)
    with h5py.File(path, "w") as f:
        for i in range(n_acq):
            echo = 300 * np.exp(-((t - 1200 - 40 * i) / 60.0) ** 2) * np.sin(t / 2.0)
            codes = np.clip(np.rint(512 + echo + rng.normal(0, 6, t.size)), 0, 1023)
            g = f.create_group(f"acq_{i:04d}")
            g.create_dataset("signal", data=((codes - 512) / 512).astype(np.float32),
                             compression="gzip")
            g.attrs.update({"Fech": 6e7, "pon": 70 + 10 * (i // 7), "poff": 70, "damp": 6000,
                            "gain": 100 * (i % 6), "target": "steel block, ~10 mm",
                            "piezo_id": "Pink 5MHz",
                            "timestamp": f"2026-05-16T15:{35 + i // 60:02d}:{i % 60:02d}"})


def main() -> int:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one run of each")
    ap.add_argument("--acquisitions", type=int, default=28)
    args = ap.parse_args()
    runs = 1 if args.quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "calibration.h5"
        make_pic0lib(src, args.acquisitions)
        cli, lib = [], []
        for i in range(runs):
            out = Path(tmp) / f"cli{i}.h5"
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "sonobridge", "import", str(src), "-o",
                            str(out)], check=True, capture_output=True)
            cli.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            import_file(src, Path(tmp) / f"lib{i}.h5")
            lib.append(time.perf_counter() - t0)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        cmd = statistics.median(cli)
        print(f"{datetime.date.today()}  Python {sys.version.split()[0]}, NumPy "
              f"{np.__version__}, h5py {h5py.__version__}, load average {load:.2f}")
        print(f"pic0lib file: {args.acquisitions} acquisitions, {src.stat().st_size / 1e3:.0f} KB")
        print(f"sonobridge import (fresh interpreter): median {cmd:.2f} s of {runs} "
              f"(min {min(cli):.2f}, max {max(cli):.2f}); target < {TARGET_S:g} s: "
              f"{'met' if cmd < TARGET_S else 'MISSED'}")
        print(f"import_file in process: median {statistics.median(lib) * 1e3:.0f} ms")
    return 0 if cmd < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
