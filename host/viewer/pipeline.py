"""The viewer's processing thread: frames → DSP → display-ready images, off the GUI thread.

The device's reader thread assembles frames. This thread takes them from the device's small
queue, runs the DSP chain, scan conversion and the M-mode ring, and leaves the result in a
one-slot mailbox. The GUI takes the newest result whenever it can draw. If the GUI is slower
than the board, results it never took are overwritten and counted (``skipped``), and a
slow DSP shows up in the device's ``frames_dropped_queue``. Neither ever stalls acquisition or
recording, which see every line on the reader thread.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from host.device import Device, Frame, FrameTimeout
from host.device.errors import DeviceError
from host.dsp import Chain, ChainConfig, MMode, ScanConverter

log = logging.getLogger("sonobridge.viewer")

#: M-mode columns kept (at 30 frames/s, about 13 s)
MMODE_HISTORY = 400
#: M-mode rows sent to the display (depth is decimated to about this many)
MMODE_ROWS = 512


@dataclass
class DisplaySettings:
    """Host-side image settings the user changes live (nothing here touches the board)."""

    gain_db: float = 0.0
    dynamic_range_db: float = 50.0
    persistence: float = 0.0
    selected_line: int | None = None  # None = the middle line
    out_shape: tuple[int, int] = (512, 512)


@dataclass
class DisplayFrame:
    """Everything the GUI draws for one frame, computed off the GUI thread."""

    index: int
    image: np.ndarray            # (H, W) uint8 scan-converted B-mode
    extent_m: tuple[float, float, float, float]   # x_min, x_max, z_min, z_max
    selected_line: int
    n_lines: int
    rf: np.ndarray               # (n_samples,) float32, selected line, ±1 full scale
    rf_depth_m: np.ndarray       # (n_samples,)
    envelope: np.ndarray         # (n_out,) float32, selected line, same scale
    depth_m: np.ndarray          # (n_out,)
    mmode: np.ndarray            # (depth rows, history) uint8 ring, contiguous, not reordered
    mmode_write: int             # ring index of the next column to write
    mmode_depth_m: np.ndarray    # (depth rows,) depth of each M-mode row
    complete: bool
    missing_lines: list[int]
    frame_time_ns: int           # host time the frame's last byte arrived
    processed_ns: int            # host time the pipeline finished it


class FramePipeline:
    """Runs frames through the DSP chain on its own thread (see the module docstring)."""

    def __init__(self, device: Device, settings: DisplaySettings | None = None,
                 notify: Callable[[], None] | None = None,
                 center_freq_hz: float | None = None) -> None:
        self.device = device
        self.settings = settings or DisplaySettings()
        #: called on the pipeline thread after each frame (plain Python, never a Qt signal)
        self.notify = notify or (lambda: None)
        self.center_freq_hz = center_freq_hz
        self.skipped = 0
        self.processed = 0
        self.errors = 0
        self.last_error = ""
        self._latest: DisplayFrame | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._chain: Chain | None = None
        self._chain_key: tuple | None = None
        self._converter: ScanConverter | None = None
        self._converter_key: tuple | None = None
        self._mmode: MMode | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the processing thread."""
        self._thread = threading.Thread(target=self._run, name="sonobridge-dsp", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the processing thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)

    def take(self) -> DisplayFrame | None:
        """The newest processed frame not yet taken (None if there is none)."""
        with self._lock:
            latest, self._latest = self._latest, None
        return latest

    def update_settings(self, **changes: object) -> None:
        """Change display settings; they apply from the next frame on."""
        self.settings = dataclasses.replace(self.settings, **changes)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame = next(iter(self.device.frames(timeout=0.25)))
            except FrameTimeout:
                continue
            except DeviceError as exc:  # closed under us
                log.debug("frame source ended: %s", exc)
                return
            try:
                result = self.process(frame)
            except Exception as exc:  # a bad frame must not kill the display
                self.errors += 1
                self.last_error = f"frame {frame.index}: {exc}"
                log.exception("processing frame %d failed", frame.index)
                continue
            with self._lock:
                if self._latest is not None:
                    self.skipped += 1
                self._latest = result
            self.processed += 1
            self.notify()

    # -- processing ------------------------------------------------------------------------------

    def process(self, frame: Frame) -> DisplayFrame:
        """One frame → what the GUI draws."""
        s = self.settings
        geo = frame.geometry
        chain = self._chain_for(frame)
        result = chain.process(frame.samples)
        n_lines = frame.n_lines
        line = n_lines // 2 if s.selected_line is None else min(max(s.selected_line, 0),
                                                                 n_lines - 1)
        converter = self._converter_for(frame, result.depth_m)
        image = result.image
        if n_lines == 1:  # a fixed beam: draw it as a narrow strip
            image = np.repeat(image, 2, axis=0)
        bmode = converter.convert(image).copy()
        mmode = self._mmode_for(result.image.shape[1])
        mmode.push(result.image[line])
        # the GUI wants (depth, time) row-major and needs no more rows than it has pixels:
        # decimate in depth and transpose here, off the GUI thread
        step = max(1, -(-result.image.shape[1] // MMODE_ROWS))
        mmode_display = np.ascontiguousarray(mmode.buffer[:, ::step].T)
        full_scale = float(1 << (frame.adc_bits - 1))
        rf = (frame.samples[line].astype(np.float32) - frame.zero_level) / full_scale
        return DisplayFrame(
            index=frame.index, image=bmode, extent_m=converter.extent_m, selected_line=line,
            n_lines=n_lines, rf=rf, rf_depth_m=geo.depth_m(),
            envelope=result.envelope[line].copy(), depth_m=result.depth_m.copy(),
            mmode=mmode_display, mmode_write=mmode.write_index,
            mmode_depth_m=result.depth_m[::step].copy(),
            complete=frame.complete, missing_lines=frame.missing_lines,
            frame_time_ns=frame.host_time_ns, processed_ns=time.monotonic_ns(),
        )

    def _chain_for(self, frame: Frame) -> Chain:
        geo = frame.geometry
        s = self.settings
        f0 = self.center_freq_hz or 5e6
        key = (geo.sample_rate_hz, geo.start_delay_s, frame.adc_bits, frame.sample_format, f0)
        cfg = ChainConfig(
            sample_rate_hz=geo.sample_rate_hz, center_freq_hz=f0,
            start_delay_s=geo.start_delay_s, adc_bits=frame.adc_bits,
            gain_db=s.gain_db, dynamic_range_db=s.dynamic_range_db, persistence=s.persistence,
            # wires and specular interfaces fill well under 1% of the image: track the 99.9th
            # percentile so a sparse scene does not push the noise floor up to white
            reference_percentile=99.9,
        )
        if self._chain is None or self._chain_key != key:
            self._chain = Chain(cfg)
            self._chain_key = key
            self._mmode = None
        elif self._chain.config != cfg:
            self._chain.config = cfg
        return self._chain

    def _converter_for(self, frame: Frame, depth_m: np.ndarray) -> ScanConverter:
        geo = frame.geometry
        positions = _fill_missing(geo.positions)
        kind = "sector" if geo.is_sector else "linear"
        if frame.n_lines == 1:
            positions = np.array([-1e-3, 1e-3])
            kind = "linear"
        elif geo.sweep_kind == 0:  # fixed beams: spread them 1 mm apart
            positions = np.arange(frame.n_lines) * 1e-3
            kind = "linear"
        key = (kind, positions.size, float(depth_m[0]), float(depth_m[-1]), depth_m.size,
               self.settings.out_shape)
        conv = self._converter
        # a servo's angles wander a little from sweep to sweep; rebuild only when it matters
        if (conv is None or self._converter_key is None or self._converter_key[0] != key
                or np.max(np.abs(self._converter_key[1] - positions)) > 1e-4):
            conv = ScanConverter(positions, depth_m, kind=kind, out_shape=self.settings.out_shape)
            self._converter = conv
            self._converter_key = (key, positions)
        return conv

    def _mmode_for(self, n_out: int) -> MMode:
        if self._mmode is None or self._mmode.n_samples != n_out:
            self._mmode = MMode(n_out, MMODE_HISTORY)
        return self._mmode

    @property
    def converter(self) -> ScanConverter | None:
        """The current scan converter (for mapping clicks to lines)."""
        return self._converter


def _fill_missing(positions: np.ndarray) -> np.ndarray:
    """Positions of lines that never arrived, interpolated from their neighbours."""
    pos = np.asarray(positions, dtype=np.float64)
    bad = ~np.isfinite(pos)
    if not bad.any():
        return pos
    good = np.flatnonzero(~bad)
    if good.size == 0:
        return np.linspace(-0.5, 0.5, pos.size)
    if good.size == 1:
        return np.full(pos.size, pos[good[0]]) + (np.arange(pos.size) - good[0]) * 1e-3
    idx = np.arange(pos.size)
    out = pos.copy()
    out[bad] = np.interp(idx[bad], good, pos[good])
    outside = bad & ((idx < good[0]) | (idx > good[-1]))
    if outside.any():  # beyond the first/last line that arrived: continue the sweep's slope
        out[outside] = np.polyval(np.polyfit(good, pos[good], 1), idx[outside])
    return out
