"""Decoder throughput, measured side by side with its two references in one run.

    .venv/bin/python bench/bench_decoder.py            # full run (~30 s)
    .venv/bin/python bench/bench_decoder.py --quick    # smoke run

References:
* memcpy: copying the same stream chunk by chunk (the physical limit);
* minimal: a hand-written struct + zlib.crc32 + numpy.frombuffer decoder of the same frames
  with no resync, no validation and no message objects (the pure-Python limit).

Targets (issue 2): >= 500 MB/s and within 3x of minimal for 2048-sample i16 lines in 64 KiB
chunks; >= 100,000 frames/s for 64-byte payloads.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import struct
import sys
import time
import zlib

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from sonobridge.protocol import Decoder, EchoLine, encode

CHUNK = 64 * 1024


def make_stream(n_frames: int, n_samples: int, seed: int = 1) -> bytes:
    """A stream of ECHO_LINE frames of ``n_samples`` i16 samples each."""
    rng = np.random.default_rng(seed)
    lines = []
    for k in range(n_frames):
        samples = rng.integers(-512, 512, n_samples, dtype=np.int16)
        line = EchoLine(samples, 40_000_000, frame_index=k // 128, line_index=k % 128,
                        lines_per_frame=128, adc_bits=10, timestamp_us=k * 100)
        lines.append(encode(line, k))
    return b"".join(lines)


def chunks(stream: bytes) -> list[bytes]:
    """The stream cut into 64 KiB bytes objects, as a serial reader would deliver it."""
    return [stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)]


def run_memcpy(parts: list[bytes]) -> int:
    """Copy every chunk into a preallocated buffer (the physical limit)."""
    dst = bytearray(CHUNK)
    for p in parts:
        dst[: len(p)] = p
    return len(parts)


_HDR = struct.Struct("<2sBBIIBBH")
_META = struct.Struct("<BBBBIIIHHiQHBBI")


def run_minimal(parts: list[bytes]) -> int:
    """Hand-written reference: header unpack, CRC-32, frombuffer; no checks beyond the CRC."""
    buf = bytearray()
    count = 0
    for p in parts:
        buf += p
        pos = 0
        n = len(buf)
        data = bytes(buf)
        while n - pos >= 16:
            plen = _HDR.unpack_from(data, pos)[3]
            end = pos + 16 + ((plen + 3) & ~3)
            if end + 4 > n:
                break
            if zlib.crc32(memoryview(data)[pos:end]) == int.from_bytes(data[end : end + 4],
                                                                        "little"):
                meta = _META.unpack_from(data, pos + 16)
                np.frombuffer(data, "<i2", meta[-1], pos + 56)
                count += 1
            pos = end + 4
        del buf[:pos]
    return count


def run_decoder(parts: list[bytes]) -> int:
    """sonobridge's Decoder."""
    dec = Decoder()
    count = 0
    for p in parts:
        count += len(dec.feed(p))
    assert dec.stats.frames_bad == 0 and dec.stats.seq_gaps == 0
    return count


def best_of(fn, parts: list[bytes], repeats: int) -> tuple[float, int]:
    """Median wall time of ``repeats`` runs, and the result of the last one."""
    times = []
    result = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn(parts)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    args = ap.parse_args(argv)
    repeats = 3 if args.quick else 9
    n_big = 2000 if args.quick else 20000
    n_small = 20000 if args.quick else 200000

    print(f"# decoder benchmark {datetime.date.today()}  python {sys.version.split()[0]}  "
          f"numpy {np.__version__}")
    ok = True
    for label, n_frames, n_samples in (("2048-sample i16 lines", n_big, 2048),
                                       ("64-byte payloads", n_small, 12)):
        stream = make_stream(n_frames, n_samples)
        parts = chunks(stream)
        mb = len(stream) / 1e6
        t_mem, _ = best_of(run_memcpy, parts, repeats)
        t_min, c_min = best_of(run_minimal, parts, repeats)
        t_dec, c_dec = best_of(run_decoder, parts, repeats)
        assert c_min == c_dec == n_frames, (c_min, c_dec, n_frames)
        frame_bytes = len(stream) // n_frames
        print(f"\n## {label}: {n_frames} frames x {frame_bytes} B = {mb:.1f} MB, "
              f"64 KiB chunks, median of {repeats}")
        print(f"{'':10s} {'MB/s':>10s} {'frames/s':>12s} {'vs decoder':>11s}")
        for name, t in (("memcpy", t_mem), ("minimal", t_min), ("Decoder", t_dec)):
            print(f"{name:10s} {mb / t:10.0f} {n_frames / t:12.0f} {t_dec / t:10.2f}x")
        ratio = t_dec / t_min
        if n_samples == 2048:
            verdict = mb / t_dec >= 500 and ratio <= 3
            print(f"target >= 500 MB/s and <= 3x minimal: {mb / t_dec:.0f} MB/s, "
                  f"{ratio:.2f}x -> {'MET' if verdict else 'NOT MET'}")
        else:
            verdict = n_frames / t_dec >= 100_000
            print(f"target >= 100000 frames/s: {n_frames / t_dec:.0f} -> "
                  f"{'MET' if verdict else 'NOT MET'}")
        ok &= verdict
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
