"""The phantom physics as the board's frame renderer: protocol configuration → samples.

Maps a CONFIGURE (µrad/µm positions, decimation, TGC points in 0.01 dB, sample format) onto an
``Acquisition`` for :class:`~sonobridge.sim.acoustics.EchoSynth`, renders one sweep per call, and
digitizes it in the configured wire format.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from sonobridge.protocol import Configure, DeviceInfo, SweepKind
from sonobridge.protocol.rules import nominal_positions

from .acoustics import Acquisition, EchoSynth, Transducer
from .adc import Adc, tgc_curve_db
from .board import RenderRequest
from .phantom import Phantom, load_phantom


class PhantomRenderer:
    """Renders sweeps of a phantom with the board's transducer and ADC."""

    def __init__(self, phantom: str | Path | Phantom = "wire", *, seed: int = 0) -> None:
        self.phantom = phantom if isinstance(phantom, Phantom) else load_phantom(phantom)
        self.seed = seed
        self._synth: EchoSynth | None = None
        self._synth_key: tuple | None = None
        self._lock = threading.Lock()

    def _synth_for(self, info: DeviceInfo) -> EchoSynth:
        key = (info.adc_bits, info.transducer_freq_hz)
        if self._synth is None or self._synth_key != key:
            transducer = Transducer(center_freq_hz=float(info.transducer_freq_hz or 5e6))
            self._synth = EchoSynth(self.phantom, transducer,
                                    Adc(bits=info.adc_bits, sample_rate_hz=info.adc_rate_hz),
                                    seed=self.seed)
            self._synth_key = key
        return self._synth

    @staticmethod
    def acquisition(config: Configure, info: DeviceInfo) -> Acquisition:
        """The physics view of a configuration (one position per firing)."""
        fs = info.adc_rate_hz / config.decimation
        per_line = nominal_positions(config) * 1e-6  # µrad → rad, µm → m
        kind = {SweepKind.SECTOR: "sector", SweepKind.LINEAR: "linear"}.get(
            SweepKind(info.sweep_kind), "fixed")
        if kind == "fixed":
            per_line = np.zeros_like(per_line)
        return Acquisition(
            sample_rate_hz=fs, n_samples=config.samples_per_line,
            positions=np.repeat(np.round(per_line, 6), config.ensemble_size), sweep_kind=kind,
            start_delay_s=config.start_delay_samples / fs,
            pulse_freq_hz=float(config.pulse_freq_hz), pulse_cycles=float(config.pulse_cycles),
            tgc_db=tgc_curve_db(config.tgc_db, config.samples_per_line),
            prf_hz=float(config.prf_hz),
        )

    def prepare(self, config: Configure, info: DeviceInfo) -> None:
        """Precompute the noise-free RF for a configuration (slow, once per configuration)."""
        with self._lock:
            self._synth_for(info).prepare(self.acquisition(config, info))

    def render(self, request: RenderRequest) -> np.ndarray:
        """One sweep's samples, ``(lines * ensemble, samples_per_line)``, in the wire dtype."""
        with self._lock:
            synth = self._synth_for(request.info)
            synth.prepare(self.acquisition(request.config, request.info))  # cached: cheap
            analog = synth.frame(line_times_s=request.firing_times_s,
                                 index=request.frame_index)
            return synth.adc.digitize(analog, request.config.sample_format)
