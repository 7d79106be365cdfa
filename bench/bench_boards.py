"""Decoding the boards' own formats: how much headroom the host has over each board's link.

    .venv/bin/python bench/bench_boards.py            # full run (~20 s)
    .venv/bin/python bench/bench_boards.py --quick    # smoke run

Measured side by side in one run, single-threaded, from memory, in 4 KiB chunks (what a USB
CDC read returns):
* pic0rick-shell: the dialect's decoder (``ShellDecoder``: the shell parser, every firing
  checked against its request) on the stock firmware's output, beside the plain reference of
  the board's public host code (split the dump on commas, ``int(x, 16)`` each value);
* open-echo: the dialect's decoder (``SweepGate`` over ``OpenEchoDecoder``) on Uno v2 frames,
  with the format detected (``auto``) and forced (``v2``).

Each figure is also given as a multiple of what the board's link can carry at most (USB full
speed's ~1 MB/s of CDC payload; 250 kbaud for the Open Echo): the headroom of a busy host.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time

import numpy as np

from sonobridge.device.open_echo_dialect import SweepGate
from sonobridge.device.pic0rick_dialect import ShellDecoder
from sonobridge.protocol.boards import pic0rick_shell as shell
from sonobridge.protocol.boards.open_echo import BAUDRATE, OpenEchoDecoder, encode_v2

CHUNK = 4096
#: a USB full-speed CDC link carries about this much payload at best
USB_FS_BYTES_S = 1.0e6


def shell_stream(n_firings: int, seed: int = 1) -> bytes:
    """``n_firings`` firings as the stock shell prints them (echo, capture lines, dump)."""
    rng = np.random.default_rng(seed)
    out = [shell.PROMPT]
    for _ in range(n_firings):
        values = rng.integers(400, 624, shell.N_SAMPLES)
        out += [b"start acq 100 100 1000\r\n", shell.format_acq(), shell.PROMPT, b"read\r\n",
                shell.format_dump(values)]
    return b"".join(out)


def echo_stream(n_pings: int, seed: int = 1) -> bytes:
    """``n_pings`` Uno v2 frames of 1800 samples."""
    rng = np.random.default_rng(seed)
    return b"".join(encode_v2(rng.integers(0, 256, 1800).astype(np.uint8), depth_index=k)
                    for k in range(n_pings))


def parts(stream: bytes) -> list[bytes]:
    """The stream in CHUNK-sized reads."""
    return [stream[i:i + CHUNK] for i in range(0, len(stream), CHUNK)]


def run_shell(chunks: list[bytes], n_firings: int) -> int:
    """The dialect's decoder; returns lines decoded."""
    decoder = ShellDecoder()
    for _ in range(n_firings):
        decoder.requested(0.0)
    return sum(len(decoder.feed(c)) for c in chunks) // 2


def run_naive(stream: bytes) -> int:
    """The public host code's way: find each dump, split on commas, int(x, 16)."""
    lines = 0
    pos = 0
    while (start := stream.find(shell.START_MARKER, pos)) >= 0:
        body = stream.index(b"\r\n", start) + 2
        end = stream.index(b"\r\n", body)
        values = [int(x, 16) for x in stream[body:end].split(b",") if x]
        lines += len(values) == shell.N_SAMPLES
        pos = end
    return lines


def run_echo(chunks: list[bytes], version: str) -> int:
    """The dialect's decoder, streaming; returns lines decoded."""
    gate = SweepGate(OpenEchoDecoder(version, None if version == "auto" else 1800))
    gate.begin(lines_per_frame=16)
    n = 0
    for c in chunks:
        n += sum(1 for m in gate.feed(c) if m.MSG_TYPE.name == "ECHO_LINE")
    return n


def best_of(fn, repeats: int) -> float:
    """Median seconds of ``repeats`` runs of ``fn()``."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    """Run the measurement and print a table for docs/benchmarks.md."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a short smoke run")
    args = ap.parse_args()
    n_firings, n_pings, repeats = (5, 50, 1) if args.quick else (60, 1500, 5)
    s_shell = shell_stream(n_firings)
    s_echo = echo_stream(n_pings)
    c_shell, c_echo = parts(s_shell), parts(s_echo)
    assert run_shell(c_shell, n_firings) == n_firings == run_naive(s_shell)
    assert run_echo(c_echo, "auto") == n_pings == run_echo(c_echo, "v2")
    rows = [
        ("pic0rick-shell: ShellDecoder", len(s_shell), n_firings,
         best_of(lambda: run_shell(c_shell, n_firings), repeats), USB_FS_BYTES_S),
        ("pic0rick: split + int(x, 16) (reference)", len(s_shell), n_firings,
         best_of(lambda: run_naive(s_shell), repeats), USB_FS_BYTES_S),
        ("open-echo: detected (auto)", len(s_echo), n_pings,
         best_of(lambda: run_echo(c_echo, "auto"), repeats), BAUDRATE / 10),
        ("open-echo: forced v2", len(s_echo), n_pings,
         best_of(lambda: run_echo(c_echo, "v2"), repeats), BAUDRATE / 10),
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"date {datetime.date.today()}, load average {load:.2f}, python "
          f"{sys.version.split()[0]}, {CHUNK} B chunks")
    print("| decoder | MB/s | lines/s | × the link's most |")
    print("|---|---:|---:|---:|")
    for name, n_bytes, n_lines, secs, link in rows:
        print(f"| {name} | {n_bytes / secs / 1e6:.1f} | {n_lines / secs:,.0f} | "
              f"{n_bytes / secs / link:.0f}× |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
