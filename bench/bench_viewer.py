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

``--profile`` also samples every thread of the viewer process with py-spy (250 Hz, without
pausing it) over the measured run and prints where the CPU goes per frame drawn, by stage:
read, decode, assemble, DSP, scan conversion, draw, side panels, status, and Qt's own event
loop (painting). Library and C time is charged to the innermost sonobridge frame that called
it. The process's CPU time by its own clock is printed beside it, to check the sampling.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict

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


#: stage of a sonobridge source file (path below host/), first match wins; in the window,
#: the status functions are the status bar's
STAGES: tuple[tuple[str, str], ...] = (
    ("device/link.py", "read"), ("device/acquisition.py", "read"),
    ("device/listeners.py", "read"), ("protocol/", "decode"),
    ("device/", "assemble"), ("dsp/scan_convert.py", "scan conversion"), ("dsp/", "DSP"),
    ("viewer/pipeline.py", "DSP"), ("viewer/side_panels.py", "side panels"),
    ("viewer/status_bar.py", "status"), ("viewer/", "draw"),
)
STAGE_ORDER = ("read", "decode", "assemble", "DSP", "scan conversion", "draw", "side panels",
               "status", "Qt event loop (paint)", "other")
#: one py-spy frame: ``function (path:line)``
_FRAME = re.compile(r"^(?P<func>.*) \((?P<path>.*):\d+\)$")


def frame_stage(frame: str) -> str | None:
    """The stage of one stack frame (None: not sonobridge's own code)."""
    m = _FRAME.match(frame.strip())
    if m is None:
        return None
    # py-spy names files relative to sys.path where it can (host/…, numpy/…, bench_viewer.py)
    path = "/" + m["path"].replace(os.sep, "/")
    if path.endswith("/bench_viewer.py"):
        # the benchmark's own loop: what it calls is Qt's event loop, painting the views
        return "Qt event loop (paint)"
    if "/host/" not in path or "site-packages" in path:
        return None
    tail = path.rsplit("/host/", 1)[1]
    if tail == "viewer/window.py" and "status" in m["func"]:
        return "status"
    return next((stage for prefix, stage in STAGES if tail.startswith(prefix)), "other")


#: a sampled line that blocks: py-spy sees a thread waiting in select() as running (its idle
#: test misses some system calls), so such samples are waiting, not work
_BLOCKING = re.compile(r"\b(select\.select|time\.sleep|\.wait|\.acquire)\(")


def _source_line(frame: str) -> str:
    """The source line a py-spy frame points at ('' if it cannot be found)."""
    import linecache

    m = re.match(r"^.* \((?P<path>.*):(?P<line>\d+)\)$", frame.strip())
    if m is None:
        return ""
    for root in ("", *sys.path):
        text = linecache.getline(os.path.join(root, m["path"]), int(m["line"]))
        if text:
            return text
    return ""


def stages_from_samples(raw: str) -> dict[str, int]:
    """py-spy's raw samples (``outer;…;inner count`` per line) → samples per stage: each stack
    is charged to its innermost sonobridge frame, so library and C time counts for the stage
    that called it."""
    counts: dict[str, int] = defaultdict(int)
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = stack.split(";")
        if _BLOCKING.search(_source_line(frames[-1])):
            counts["waiting"] += int(n)
            continue
        stage = next((s for f in reversed(frames) if (s := frame_stage(f))), "other")
        counts[stage] += int(n)
    return counts


class Sampler:
    """py-spy sampling this process's threads (only while they run: idle waits cost nothing)."""

    RATE_HZ = 250

    def __init__(self, seconds: float) -> None:
        import shutil
        import tempfile

        spy = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or \
            shutil.which("py-spy")
        if spy is None:
            raise SystemExit("--profile needs py-spy: pip install py-spy (or the bench extra)")
        self.out = os.path.join(tempfile.mkdtemp(prefix="bench-viewer-"), "samples.txt")
        self.proc = subprocess.Popen(
            [spy, "record", "--pid", str(os.getpid()), "--format", "raw", "--output", self.out,
             "--rate", str(self.RATE_HZ), "--duration", str(max(1, round(seconds))),
             "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def result(self) -> dict[str, float]:
        """Seconds of CPU per stage."""
        _, err = self.proc.communicate(timeout=60)
        if self.proc.returncode != 0:
            raise SystemExit(f"py-spy failed: {err.strip()[-300:]}")
        with open(self.out) as f:
            samples = stages_from_samples(f.read())
        return {stage: n / self.RATE_HZ for stage, n in samples.items()}


def print_profile(seconds: dict[str, float], frames: int, wall_s: float, cpu_s: float) -> None:
    """The per-stage table: ms per frame drawn and % of one core."""
    waiting = seconds.pop("waiting", 0.0)
    total = sum(seconds.values())
    print(f"\nper-stage profile (py-spy, {frames} frames drawn in {wall_s:.1f} s; the process "
          f"used {100 * cpu_s / wall_s:.0f}% of a core by its own clock)")
    print("| stage | ms per frame | % of a core | share |")
    print("|---|---:|---:|---:|")
    for stage in STAGE_ORDER:
        s = seconds.get(stage, 0.0)
        if s:
            print(f"| {stage} | {1000 * s / max(frames, 1):.2f} | {100 * s / wall_s:.1f} | "
                  f"{100 * s / total:.0f}% |")
    print(f"| all sampled work | {1000 * total / max(frames, 1):.2f} | "
          f"{100 * total / wall_s:.1f} | 100% |")
    print(f"(left out: {100 * waiting / wall_s:.0f}% of a core's samples were threads blocked "
          "in select/sleep/wait, which py-spy counted as running)")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="end-to-end run length")
    ap.add_argument("--minutes", type=float, default=0.0, help="also soak this long for RSS")
    ap.add_argument("--prf", type=int, default=4000, help="4000 Hz / 128 lines = 31.25 fps")
    ap.add_argument("--profile", action="store_true",
                    help="also profile every thread and print the per-stage table")
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
        cpu0 = time.process_time()
        sampler = Sampler(duration) if args.profile else None
        next_rss = t0 + 10
        while (now := time.monotonic()) - t0 < duration:
            app.processEvents()
            time.sleep(0.001)
            if now >= next_rss:
                rss_samples.append((now - t0, rss_mb()))
                next_rss = now + 10
        wall = time.monotonic() - t0
        cpu = time.process_time() - cpu0
        profile = sampler.result() if sampler is not None else None
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
    if profile is not None:
        print_profile(profile, drawn, wall, cpu)
    print(f"RSS: {rss0:.0f} MB at start, {base:.0f} MB after warm-up, {rss1:.0f} MB at the end "
          f"-> {growth:+.1f}%")
    ok = (drawn / wall >= 30 and pg_fps >= 60 and np.median(lat) <= 50
          and (args.minutes < 10 or growth <= 5))
    print(f"targets: {'MET' if ok else 'NOT MET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
