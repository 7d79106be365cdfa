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
from dataclasses import dataclass

import numpy as np

from sonobridge.device import Device, Frame, FrameTimeout
from sonobridge.device.errors import DeviceError
from sonobridge.dsp import (
    Chain,
    ChainConfig,
    MMode,
    PwSpectrum,
    ScanConverter,
    color_flow,
    ensemble_iq,
    flow_rgba,
    nyquist_velocity_m_s,
    range_gate,
)
from sonobridge.dsp.echogram import envelope_to_grey, peak_decimate

from .presets import ViewPreset, preset_for

log = logging.getLogger("sonobridge.viewer")

#: M-mode (and echogram) columns kept (at 30 frames/s, about 13 s; at an Open Echo's
#: 9.6 pings/s, about 42 s)
MMODE_HISTORY = 400
#: M-mode rows sent to the display (depth is decimated to about this many)
MMODE_ROWS = 512
#: rows of an M-mode that is the main picture (a single element's): fewer than its plot has
#: pixels, and decimated by their peaks, so neither the decimation nor the painting drops a
#: wire one sample thick
FIRINGS_MMODE_ROWS = 256


@dataclass
class DisplaySettings:
    """Host-side image settings the user changes live (nothing here touches the board)."""

    gain_db: float = 0.0
    dynamic_range_db: float = 50.0
    persistence: float = 0.0
    selected_line: int | None = None  # None = the middle line
    out_shape: tuple[int, int] = (512, 512)
    #: colour flow over the B-mode when the board fires ensembles (ensemble_size >= 2)
    color_flow: bool = True
    flow_threshold_db: float = -24.0  # power below this (dB re full scale²) stays transparent
    wall_filter_order: int = 1
    #: PW Doppler range gate on the selected line: centre depth (None = middle) and length
    gate_depth_m: float | None = None
    gate_length_m: float = 2e-3


@dataclass
class DisplayFrame:
    """Everything the GUI draws for one frame, computed off the GUI thread."""

    index: int
    image: np.ndarray | None     # (H, W) uint8 scan-converted B-mode (None: no B-mode preset)
    extent_m: tuple[float, float, float, float]   # x_min, x_max, z_min, z_max
    selected_line: int           # the A-mode's line (the latest firing for a fixed element)
    n_lines: int
    rf: np.ndarray | None        # (n_samples,) float32, ±1 full scale (None: envelope board)
    rf_depth_m: np.ndarray       # (n_samples,)
    envelope: np.ndarray         # (n_out,) float32, selected line, same scale (0..1 of the
                                 # ADC's range for a board that sends its envelope)
    depth_m: np.ndarray          # (n_out,)
    mmode: np.ndarray            # (depth rows, history) uint8 ring, contiguous, not reordered
                                 # (an echogram: oldest → newest, left to right)
    mmode_write: int             # ring index of the next column to write
    mmode_depth_m: np.ndarray    # (depth rows,) depth of each M-mode row
    complete: bool
    missing_lines: list[int]
    frame_time_ns: int           # host time the frame's last byte arrived
    processed_ns: int            # host time the pipeline finished it
    #: ``mmode`` is an echogram in time order (the newest ping in its last column)
    echogram: bool = False
    #: colour flow (only with ensembles): RGBA (H, W, 4) on the B-mode grid, and its scale
    flow: np.ndarray | None = None
    nyquist_m_s: float = 0.0
    #: PW spectrogram strip (history, n_fft) dB ring, its write index, velocity axis, levels
    pw: np.ndarray | None = None
    pw_write: int = 0
    pw_velocity_m_s: np.ndarray | None = None
    pw_levels: tuple[float, float] = (0.0, 1.0)
    gate_depth_m: float = 0.0


class FramePipeline:
    """Runs frames through the DSP chain on its own thread (see the module docstring)."""

    def __init__(self, device: Device, settings: DisplaySettings | None = None,
                 center_freq_hz: float | None = None, preset: ViewPreset | None = None
                 ) -> None:
        self.device = device
        self.settings = settings or DisplaySettings()
        self.preset = preset or preset_for(device.info, device.dialect.name)
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
        self._mmode_columns: tuple[MMode, int, np.ndarray] | None = None
        self._flow_chain: Chain | None = None
        self._flow_key: tuple | None = None
        self._pw: PwSpectrum | None = None
        self._pw_key: tuple | None = None
        self._pw_last_us: int | None = None
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

    # -- processing ------------------------------------------------------------------------------

    def process(self, frame: Frame) -> DisplayFrame:
        """One frame → what the GUI draws."""
        if self.preset.envelope_samples:
            return self._process_envelope(frame)
        s = self.settings
        geo = frame.geometry
        chain = self._chain_for(frame)
        result = chain.process(frame.samples)
        n_lines = frame.n_lines
        present = frame.present[:, 0]
        if self.preset.lines_are_firings:
            line = _latest(present)
        else:
            line = n_lines // 2 if s.selected_line is None else min(max(s.selected_line, 0),
                                                                     n_lines - 1)
        depth_m = result.depth_m
        bmode: np.ndarray | None = None
        extent = (0.0, 0.0, float(depth_m[0]), float(depth_m[-1]))
        converter = None
        if self.preset.bmode:
            converter = self._converter_for(frame, depth_m)
            image = result.image
            if n_lines == 1:  # a fixed beam: draw it as a narrow strip
                image = np.repeat(image, 2, axis=0)
            bmode = converter.convert(image).copy()
            extent = converter.extent_m
        mmode = self._mmode_for(result.image.shape[1])
        if self.preset.lines_are_firings:
            # each line is a later firing of the one element: all of them, in order; a lost
            # firing is a black column, so time on the M-mode stays true
            mmode.push(np.where(present[:, None], result.image, 0).astype(np.uint8))
        else:
            mmode.push(result.image[line])
        # the GUI wants (depth, time) row-major and needs no more rows than it has pixels:
        # decimate in depth and transpose here, off the GUI thread
        if self.preset.lines_are_firings:
            step = max(1, -(-result.image.shape[1] // FIRINGS_MMODE_ROWS))
            mmode_display = np.ascontiguousarray(peak_decimate(mmode.buffer, step, axis=1).T)
        else:
            step = max(1, -(-result.image.shape[1] // MMODE_ROWS))
            # the display copy is kept in (depth, time) order as lines arrive, one column per
            # push: transposing the whole ring every frame cost more than the rest of the
            # M-mode together
            columns = self._mmode_columns_for(mmode, step)
            columns[:, (mmode.write_index - 1) % mmode.history] = result.image[line, ::step]
            mmode_display = columns.copy()
        full_scale = float(1 << (frame.adc_bits - 1))
        rf = (frame.samples[line].astype(np.float32) - frame.zero_level) / full_scale
        doppler = self._doppler(frame, converter, line, depth_m) \
            if frame.ensemble_size >= 2 and converter is not None else {}
        return DisplayFrame(
            index=frame.index, image=bmode, extent_m=extent, selected_line=line,
            n_lines=n_lines, rf=rf, rf_depth_m=geo.depth_m(self.preset.sound_speed_m_s),
            envelope=result.envelope[line].copy(), depth_m=result.depth_m.copy(),
            mmode=mmode_display, mmode_write=mmode.write_index,
            mmode_depth_m=result.depth_m[::step].copy(),
            complete=frame.complete, missing_lines=frame.missing_lines,
            frame_time_ns=frame.host_time_ns, processed_ns=time.monotonic_ns(), **doppler,
        )

    def _process_envelope(self, frame: Frame) -> DisplayFrame:
        """A board's own envelope (a sonar's pings) → echogram columns and the latest A-mode.

        The codes are mapped to grey as they are (times the host gain): they already are a
        log amplifier's output, so no envelope detection and no log compression.
        """
        depth_m = frame.geometry.depth_m(self.preset.sound_speed_m_s)
        present = frame.present[:, 0]
        grey = envelope_to_grey(frame.samples, frame.adc_bits, self.settings.gain_db)
        grey[~present] = 0  # a lost ping is a black column, never the ADC's mid-scale
        step = max(1, -(-depth_m.size // MMODE_ROWS))
        columns = peak_decimate(grey, step, axis=-1)
        echogram = self._mmode_for(columns.shape[1])
        echogram.push(columns)
        latest = _latest(present)
        envelope = frame.samples[latest].astype(np.float32) / float((1 << frame.adc_bits) - 1)
        if not present[latest]:
            envelope[:] = 0.0
        return DisplayFrame(
            index=frame.index, image=None,
            extent_m=(0.0, 0.0, float(depth_m[0]), float(depth_m[-1])),
            selected_line=latest, n_lines=frame.n_lines, rf=None, rf_depth_m=depth_m,
            envelope=envelope, depth_m=depth_m,
            # oldest → newest, left to right: a fish finder scrolls, it does not sweep
            mmode=np.ascontiguousarray(echogram.ordered().T), mmode_write=echogram.history,
            mmode_depth_m=depth_m[::step].copy(), complete=frame.complete,
            missing_lines=frame.missing_lines, frame_time_ns=frame.host_time_ns,
            processed_ns=time.monotonic_ns(), echogram=True,
        )

    def _prf_hz(self, frame: Frame) -> float:
        """The PRF: from the configuration sent, else from the firing timestamps."""
        cfg = self.device.config
        if cfg is not None and cfg.ensemble_size == frame.ensemble_size:
            return float(cfg.prf_hz)
        ts = frame.meta["timestamp_us"][frame.present].astype(np.float64)
        dt = np.diff(np.sort(ts))
        return 1e6 / float(np.median(dt[dt > 0])) if (dt > 0).any() else 1000.0

    def _doppler(self, frame: Frame, converter: ScanConverter, line: int,
                 depth_m: np.ndarray) -> dict:
        """Colour flow over the sweep and the PW spectrum at the gate, from the ensembles."""
        s = self.settings
        geo = frame.geometry
        prf = self._prf_hz(frame)
        f0 = self.center_freq_hz or 5e6
        key = (geo.sample_rate_hz, geo.start_delay_s, frame.adc_bits, f0)
        if self._flow_chain is None or self._flow_key != key:
            self._flow_chain = Chain(ChainConfig(
                sample_rate_hz=geo.sample_rate_hz, center_freq_hz=f0,
                start_delay_s=geo.start_delay_s, adc_bits=frame.adc_bits))
            self._flow_key = key
        iq, res = ensemble_iq(self._flow_chain, frame.ensembles)
        out: dict = {"nyquist_m_s": nyquist_velocity_m_s(prf, f0)}
        if s.color_flow and frame.n_lines >= 2:
            est = color_flow(iq, prf, demod_freq_hz=res.demod_freq_hz,
                             sample_rate_out_hz=res.sample_rate_out_hz,
                             wall_filter_order=min(s.wall_filter_order, frame.ensemble_size - 1),
                             average=(1, 9))
            # convert() reuses one output buffer per dtype: keep a copy of the first result
            velocity = converter.convert(est.velocity_m_s.astype(np.float32)).copy()
            power = converter.convert(est.power_db().astype(np.float32)).copy()
            power[~converter.fov_mask] = -np.inf  # outside the sector: never coloured
            out["flow"] = flow_rgba(velocity, out["nyquist_m_s"], power=power,
                                    power_threshold=s.flow_threshold_db)
        gate = s.gate_depth_m if s.gate_depth_m is not None else float(np.median(depth_m))
        gate = min(max(gate, float(depth_m[0])), float(depth_m[-1]))
        out["gate_depth_m"] = gate
        gate_iq = range_gate(iq[line], res.depth_m, gate, s.gate_length_m, axis=-1)
        ens = frame.ensemble_size
        continuous = frame.n_lines == 1
        pw_key = (line, round(gate, 4), prf, ens, continuous)
        if self._pw is None or self._pw_key != pw_key:
            # a fixed beam fires one line continuously: a real sliding window over slow time;
            # a sweep revisits each line once per frame: one spectrum per ensemble
            window, hop = (min(64, 4 * ens), ens) if continuous else (ens, ens)
            self._pw = PwSpectrum(prf, f0, window_len=window, hop=hop, history=300,
                                  n_fft=max(64, window))
            self._pw_key = pw_key
            self._pw_last_us = None
        first_us = int(frame.meta["timestamp_us"][line, 0])
        if continuous and self._pw_last_us is not None \
                and abs(first_us - self._pw_last_us - 1e6 / prf) > 0.5e6 / prf:
            self._pw.reset()  # a gap in slow time (lines dropped, restart): start over
        self._pw_last_us = int(frame.meta["timestamp_us"][line, -1])
        self._pw.push(gate_iq)
        out.update(pw=self._pw.buffer.copy(), pw_write=self._pw.write_index,
                   pw_velocity_m_s=self._pw.velocity_m_s, pw_levels=self._pw.levels(40.0))
        return out

    def _chain_for(self, frame: Frame) -> Chain:
        geo = frame.geometry
        s = self.settings
        f0 = self.center_freq_hz or 5e6
        key = (geo.sample_rate_hz, geo.start_delay_s, frame.adc_bits, frame.sample_format, f0)
        cfg = ChainConfig(
            sample_rate_hz=geo.sample_rate_hz, center_freq_hz=f0,
            start_delay_s=geo.start_delay_s, adc_bits=frame.adc_bits,
            gain_db=s.gain_db, dynamic_range_db=s.dynamic_range_db, persistence=s.persistence,
            sound_speed_m_s=self.preset.sound_speed_m_s,
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

    def _mmode_columns_for(self, mmode: MMode, step: int) -> np.ndarray:
        """``mmode``'s ring decimated by ``step`` in depth, as (depth, time), kept up to date."""
        if self._mmode_columns is None or self._mmode_columns[0] is not mmode \
                or self._mmode_columns[1] != step:
            columns = np.ascontiguousarray(mmode.buffer[:, ::step].T)
            self._mmode_columns = (mmode, step, columns)
        return self._mmode_columns[2]

    @property
    def converter(self) -> ScanConverter | None:
        """The current scan converter (for mapping clicks to lines)."""
        return self._converter


def _latest(present: np.ndarray) -> int:
    """The last line that arrived (the last line if none did)."""
    arrived = np.flatnonzero(present)
    return int(arrived[-1]) if arrived.size else int(present.size - 1)


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
