"""Sustained recording from `sonobridge sim --pty` into HDF5 (and optionally a raw capture).

    .venv/bin/python bench/bench_record.py                  # 60 s, usb-hs link (issue target)
    .venv/bin/python bench/bench_record.py --seconds 10     # quicker look
    .venv/bin/python bench/bench_record.py --raw            # also write the raw capture

The simulator runs in its own process on a real pseudo-terminal, as in bench/bench_stream.py.
The recorder attaches to the device client before the handshake, the client configures
128 lines x 4096 i16 samples at PRF 3800 Hz (31.4 MB/s, 90% of the usb-hs cap) and streams;
nobody consumes ``dev.frames()`` (a recorder must not depend on a display). Like
``sonobridge record``, it sets Python's thread switch interval to 1 ms. Reported: the
rate of sample data written to the HDF5 file, the link rate, lost lines (link, device, and
lines the recorder could not keep), file sizes, and the CPU share of both processes.

Target (issue 5): >= 30 MB/s written with zero lost lines for 60 s.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sonobridge.device import Device
from sonobridge.protocol.constants import frame_len
from sonobridge.protocol.structs import ECHO_LINE_HEADER_SIZE
from sonobridge.record import Recorder
from sonobridge.record.commands import RECORD_SWITCH_INTERVAL_S


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--link", default="usb-hs")
    ap.add_argument("--prf", type=int, default=3800,
                    help="3800 Hz x 8260 B = 31.4 MB/s, 90%% of the usb-hs cap")
    ap.add_argument("--raw", action="store_true", help="also write the raw capture")
    ap.add_argument("--dir", help="where to write (default: a temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep the files")
    args = ap.parse_args(argv)

    sys.setswitchinterval(RECORD_SWITCH_INTERVAL_S)  # as `sonobridge record` does
    out_dir = Path(args.dir or tempfile.mkdtemp(prefix="bench-record-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    h5 = out_dir / "bench.h5"
    raw = out_dir / "bench.sbcap" if args.raw else None
    extra = " (+ raw capture)" if raw else ""
    print(f"# recording benchmark {datetime.date.today()}  python {sys.version.split()[0]}  "
          f"link {args.link}  {args.seconds:.0f} s  -> {out_dir}{extra}")
    sim = subprocess.Popen([sys.executable, "-m", "sonobridge", "sim", "--pty", "--phantom", "cyst",
                            "--link", args.link], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    path = sim.stdout.readline().strip()
    try:
        dev = Device(path)
        rec = Recorder(h5, raw, overwrite=True).attach(dev)
        gaps = {"last": 0, "max": 0, "on": False}

        def pause_meter(chunk: bytes, host_ns: int) -> None:
            # the longest pause of the reader thread: a stalled recorder would show here
            if gaps["on"] and gaps["last"]:
                gaps["max"] = max(gaps["max"], host_ns - gaps["last"])
            gaps["last"] = host_ns

        dev.add_raw_listener(pause_meter)
        dev.open()
        try:
            cfg = dev.configure(samples_per_line=4096, lines_per_frame=128, prf_hz=args.prf,
                                sample_format=1)
            line_bytes = frame_len(ECHO_LINE_HEADER_SIZE + 2 * cfg.samples_per_line)
            print(f"config: 128 lines x 4096 i16, PRF {cfg.prf_hz} Hz -> offered "
                  f"{cfg.prf_hz * line_bytes / 1e6:.1f} MB/s")
            dev.start()
            next(iter(dev.frames(timeout=10.0)))  # wait out the simulator's warm-up
            gaps["on"] = True
            p0, s0 = rec.progress(), dev.stats
            t0 = time.monotonic()
            cpu0, sim0 = time.process_time(), cpu_seconds(sim.pid)
            next_report = t0 + 10
            while (now := time.monotonic()) - t0 < args.seconds:
                time.sleep(0.2)
                if now >= next_report:
                    p = rec.progress()
                    rate = (p.sample_bytes - p0.sample_bytes) / (now - t0) / 1e6
                    print(f"  {now - t0:5.0f} s  {rate:6.1f} MB/s  lost {dev.stats.lines_missing}"
                          f"  not kept {p.lines_not_kept}", flush=True)
                    next_report += 10
                if rec.error:
                    print(f"recorder error: {rec.error}")
                    break
            wall = time.monotonic() - t0
            gaps["on"] = False
            p1, s1 = rec.progress(), dev.stats
            cpu_host = time.process_time() - cpu0
            cpu_sim = cpu_seconds(sim.pid) - sim0
            dev.stop()
            quiet_since, last = time.monotonic(), dev.link.counters.bytes_in
            while time.monotonic() - quiet_since < 0.3:  # lines queued before STOP
                time.sleep(0.02)
                if dev.link.counters.bytes_in != last:
                    quiet_since, last = time.monotonic(), dev.link.counters.bytes_in
            dev.flush()
            device_dropped = dev.status().dropped_lines
            t_close = time.monotonic()
            summary = rec.close(stopped=True)
            close_s = time.monotonic() - t_close
        finally:
            dev.close()
    finally:
        sim.send_signal(signal.SIGINT)
        sim.wait(timeout=10)
    written = (p1.sample_bytes - p0.sample_bytes) / wall / 1e6
    link = (s1.bytes_in - s0.bytes_in) / wall / 1e6
    raw_rate = (p1.raw_bytes - p0.raw_bytes) / wall / 1e6
    acc = summary.accounting
    lost = acc.get("lines_missing", 0)
    not_kept = acc.get("lines_not_recorded", 0) + summary.progress.raw_bytes_dropped
    lines = p1.lines - p0.lines
    print(f"written {written:.1f} MB/s of samples to HDF5 ({lines / wall:.0f} lines/s) over "
          f"{wall:.1f} s; link {link:.1f} MB/s"
          + (f"; raw capture {raw_rate:.1f} MB/s" if raw else ""))
    print(f"lost lines {lost} (link {acc.get('lines_lost_link')}, device "
          f"{acc.get('lines_lost_device')}, host {acc.get('lines_lost_host')}); "
          f"cut short by STOP {acc.get('lines_cut_by_stop')} (not "
          f"lost); not kept by the recorder {not_kept}; CRC errors "
          f"{acc.get('crc_errors')}; device dropped {device_dropped}")
    sizes = ", ".join(f"{Path(p).name} {n / 1e9:.2f} GB" for p, n in summary.file_bytes.items())
    print(f"files: {sizes}; closing took {close_s:.2f} s")
    print(f"longest pause between reads of the port: {gaps['max'] / 1e6:.0f} ms (the "
          f"simulator's 4 MiB send buffer covers ~120 ms)")
    print(f"CPU share: recorder process {100 * cpu_host / wall:.0f}% of one core (client "
          f"+ writer threads), simulator process {100 * cpu_sim / wall:.0f}%")
    ok = written >= 30 and lost == 0 and not_kept == 0 and not rec.error
    print(f"target >= 30 MB/s written with zero lost lines: {'MET' if ok else 'NOT MET'}")
    if not args.keep:
        shutil.rmtree(out_dir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
