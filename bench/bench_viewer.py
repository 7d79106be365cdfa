"""The live viewer's throughput, latency, drawing speed and memory, against the simulated board.

    .venv/bin/python bench/bench_viewer.py                  # 30 s end to end + drawing
    .venv/bin/python bench/bench_viewer.py --minutes 10     # plus the 10-minute RSS soak

The simulator runs in its own process (`sonobridge sim --pty --link unlimited`) at 128 lines x
4096 i16 samples and PRF 4000 Hz (31.25 frames/s, 33 MB/s). The viewer runs offscreen
(QT_QPA_PLATFORM=offscreen, software rendering, the worst case), exactly as `sonobridge view`
does. Reported:

* frames drawn per second end to end, and frames skipped for display;
* latency from a frame's last byte (host receive time) to the paint of its B-mode image;
* drawing a 512 x 512 uint8 image into the B-mode plot (setImage + repaint), next to the
  floor of a bare QPainter.drawImage of the same pixels, in the same run;
* RSS at the start and the end of the run (growth in %).

Targets (issue 4): >= 30 frames/s end to end; >= 60 fps drawing 512 x 512; median latency
<= 50 ms; RSS growth <= 5% over 10 minutes.
"""

from __future__ import annotations

import argparse
import datetime
import os
import signal
import subprocess
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np


def rss_mb() -> float:
    """Resident set size of this process, MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def drawing_fps(app, n: int = 300) -> tuple[float, float]:
    """(pyqtgraph ImageItem fps, bare QPainter fps) for a 512 x 512 uint8 image."""
    import pyqtgraph as pg
    from PySide6 import QtGui

    from sonobridge.viewer.colormaps import colormap_lut

    pg.setConfigOptions(imageAxisOrder="row-major")
    w = pg.PlotWidget()
    w.resize(700, 700)
    w.show()
    item = pg.ImageItem()
    item.setLookupTable(colormap_lut("grey"))
    w.addItem(item)
    rng = np.random.default_rng(0)
    frames = [(rng.random((512, 512)) * 255).astype(np.uint8) for _ in range(8)]
    app.processEvents()
    painted = []
    original = item.paint

    def counting_paint(*a: object) -> None:
        painted.append(1)
        original(*a)

    item.paint = counting_paint
    t0 = time.perf_counter()
    for k in range(n):
        item.setImage(frames[k % 8], autoLevels=False, levels=(0, 255))
        w.viewport().repaint()  # synchronous: the image is really rendered each time
    pg_fps = n / (time.perf_counter() - t0)
    assert len(painted) >= n, f"only {len(painted)} of {n} updates were painted"
    target = QtGui.QImage(700, 700, QtGui.QImage.Format.Format_RGB32)
    t0 = time.perf_counter()
    for k in range(n):
        f = frames[k % 8]
        img = QtGui.QImage(f.data, 512, 512, 512, QtGui.QImage.Format.Format_Grayscale8)
        p = QtGui.QPainter(target)
        p.drawImage(target.rect(), img)
        p.end()
    qt_fps = n / (time.perf_counter() - t0)
    w.close()
    return pg_fps, qt_fps


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="end-to-end run length")
    ap.add_argument("--minutes", type=float, default=0.0, help="also soak this long for RSS")
    ap.add_argument("--prf", type=int, default=4000, help="4000 Hz / 128 lines = 31.25 fps")
    ap.add_argument("--link", default="unlimited",
                    help="simulator link profile (usb-hs caps at 35 MB/s, 94%% busy here)")
    args = ap.parse_args(argv)
    duration = max(args.seconds, args.minutes * 60)

    from PySide6 import QtWidgets

    from sonobridge.device import open_device
    from sonobridge.viewer.window import ViewerWindow

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["bench"])
    print(f"# viewer benchmark {datetime.date.today()}  python {sys.version.split()[0]}  "
          f"Qt platform {os.environ['QT_QPA_PLATFORM']}  {duration:.0f} s")
    pg_fps, qt_fps = drawing_fps(app)
    print(f"drawing 512x512: pyqtgraph {pg_fps:.0f} fps, bare QPainter {qt_fps:.0f} fps "
          f"(target >= 60)")

    sim = subprocess.Popen([sys.executable, "-m", "sonobridge", "sim", "--pty", "--phantom",
                            "cyst", "--link", args.link], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    path = sim.stdout.readline().strip()
    try:
        dev = open_device(path, queue_frames=2)
        dev.configure(samples_per_line=4096, lines_per_frame=128, prf_hz=args.prf)
        win = ViewerWindow(dev)
        win.show()
        win.start_streaming()
        while win.frames_drawn < 5:  # warm-up: the simulator prepares, caches fill
            app.processEvents()
            time.sleep(0.002)
        win.latencies_ms.clear()
        f0, skipped0 = win.frames_drawn, win.display_skipped()
        rss0 = rss_mb()
        rss_samples = [(0.0, rss0)]
        t0 = time.monotonic()
        next_rss = t0 + 10
        while (now := time.monotonic()) - t0 < duration:
            app.processEvents()
            time.sleep(0.001)
            if now >= next_rss:
                rss_samples.append((now - t0, rss_mb()))
                next_rss = now + 10
        wall = time.monotonic() - t0
        drawn = win.frames_drawn - f0
        skipped = win.display_skipped() - skipped0
        lat = np.array(win.latencies_ms)
        stats = dev.stats
        win.close()
        dev.close()
    finally:
        sim.send_signal(signal.SIGINT)
        sim.wait(timeout=10)
    rss1 = rss_samples[-1][1]
    # growth after the first minute: caches and pools fill in the first seconds
    base = next((r for t, r in rss_samples if t >= 60), rss0) if duration > 120 else rss0
    growth = 100 * (rss1 - base) / base
    print(f"end to end: {drawn / wall:.1f} frames/s drawn over {wall:.0f} s, {skipped} frames "
          f"skipped for display, {stats.mb_per_s:.1f} MB/s from the board, lost lines "
          f"{stats.lines_missing}")
    print(f"latency last byte -> painted: median {np.median(lat):.1f} ms, p95 "
          f"{np.percentile(lat, 95):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms "
          f"({lat.size} frames)")
    print(f"RSS: {rss0:.0f} MB at start, {base:.0f} MB after warm-up, {rss1:.0f} MB at the end "
          f"-> {growth:+.1f}%")
    ok = (drawn / wall >= 30 and pg_fps >= 60 and np.median(lat) <= 50
          and (args.minutes < 10 or growth <= 5))
    print(f"targets: {'MET' if ok else 'NOT MET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
