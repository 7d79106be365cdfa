"""Chain: the steps composed, with preallocated buffers and the little state that is real."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .analytic import BandPlan, analytic_iq
from .blanking import blank, blanking_window
from .compress import envelope_percentile, log_compress_levels, quantize_levels, track_reference
from .config import ChainConfig
from .convert import full_scale, resolve_format
from .envelope import envelope
from .persistence import persist
from .tgc import auto_tgc_db, db_to_gain, tgc_gain_db

_MIN_SAMPLES = 16


@dataclass(frozen=True, eq=False)
class ChainResult:
    """One processed frame. Arrays are VIEWS into the Chain's reusable buffers.

    The next ``Chain.process`` call overwrites them; call :meth:`copy` to keep a frame.

    - ``iq``: complex64 ``(n_lines, n_out)`` baseband IQ after TGC, before persistence,
      mixed down by ``demod_freq_hz`` and sampled at ``sample_rate_out_hz``.
    - ``envelope``: float32 ``(n_lines, n_out)`` linear amplitude (full-scale units), after TGC
      and (if ``persistence_on='envelope'``) persistence.
    - ``image``: uint8 ``(n_lines, n_out)`` log-compressed.
    - ``depth_m``: float64 ``(n_out,)`` depth of each output sample, c*(start_delay_s + t)/2.
    - ``reference``: the envelope level shown as white (before ``gain_db``).
    """

    iq: np.ndarray
    envelope: np.ndarray
    image: np.ndarray
    depth_m: np.ndarray
    sample_rate_out_hz: float
    demod_freq_hz: float
    reference: float

    def copy(self) -> ChainResult:
        """Return a result whose arrays are independent copies (safe to keep across frames)."""
        return ChainResult(
            iq=self.iq.copy(),
            envelope=self.envelope.copy(),
            image=self.image.copy(),
            depth_m=self.depth_m.copy(),
            sample_rate_out_hz=self.sample_rate_out_hz,
            demod_freq_hz=self.demod_freq_hz,
            reference=self.reference,
        )


class Chain:
    """RF frames ``(n_lines, n_samples)`` → :class:`ChainResult`, reusing buffers across frames.

    Buffers and the filter plan are built on the first frame and rebuilt only when the frame
    shape or the config changes. State carried between frames: the tracking reference, the
    persistence average and the automatic TGC curve (reset by :meth:`reset`, or when the output
    shape changes).
    """

    def __init__(self, config: ChainConfig) -> None:
        if not isinstance(config, ChainConfig):
            raise TypeError(f"config must be a ChainConfig, got {type(config).__name__}")
        self._config = config
        self._shape: tuple[int, int] | None = None
        self.reset()

    @property
    def config(self) -> ChainConfig:
        """The current configuration; assigning a new one keeps compatible state."""
        return self._config

    @config.setter
    def config(self, config: ChainConfig) -> None:
        if not isinstance(config, ChainConfig):
            raise TypeError(f"config must be a ChainConfig, got {type(config).__name__}")
        old_n_out = self._plan.n_out if self._shape is not None else None
        if config.persistence_on != self._config.persistence_on:
            self._average = None
        self._config = config
        if self._shape is not None:
            n_lines, n_samples = self._shape
            self._shape = None
            self._build(n_lines, n_samples)
            if self._plan.n_out != old_n_out:
                self.reset()

    def reset(self) -> None:
        """Forget the state carried between frames (reference, persistence, automatic TGC)."""
        self._reference: float | None = None
        self._average: np.ndarray | None = None
        self._auto_db: np.ndarray | None = None

    def _build(self, n_lines: int, n_samples: int) -> None:
        """Plan the filter and allocate every buffer for frames of this shape."""
        cfg = self._config
        plan = BandPlan.create(n_samples, cfg.sample_rate_hz, cfg.center_freq_hz,
                               cfg.fractional_bandwidth, cfg.decimation)
        self._plan = plan
        self._scaled: tuple[float, BandPlan] | None = None
        # Zero padding past n_samples is written once and never touched again.
        self._rf = np.zeros((n_lines, plan.n_fft), dtype=np.float32)
        self._rf_view = self._rf[:, :n_samples]
        self._iq = np.empty((n_lines, plan.n_ifft), dtype=np.complex64)
        self._iq_view = self._iq[:, :plan.n_out]
        self._env = np.empty((n_lines, plan.n_out), dtype=np.float32)
        self._levels = np.empty((n_lines, plan.n_out), dtype=np.float32)
        self._image = np.empty((n_lines, plan.n_out), dtype=np.uint8)
        self._window = blanking_window(n_samples, cfg.sample_rate_hz, cfg.blank_s,
                                       cfg.blank_taper_s, cfg.start_delay_s)
        self._blank_end = len(self._window)
        self._depth_m = (cfg.sound_speed_m_s * (cfg.start_delay_s + plan.time_out_s()) / 2.0)
        self._depth_m.flags.writeable = False
        self._valid_from_out = int(np.searchsorted(
            plan.time_out_s() + cfg.start_delay_s, cfg.blank_s + cfg.blank_taper_s))
        static_db = tgc_gain_db(self._depth_m, db_per_cm=cfg.tgc_db_per_cm,
                                curve_db=cfg.tgc_curve_db)
        self._static_db = static_db
        self._static_gain = db_to_gain(static_db)
        self._gain: np.ndarray | None = (
            None if not np.any(static_db) and not cfg.auto_tgc else db_to_gain(static_db)
        )
        self._shape = (n_lines, n_samples)

    def _validate(self, rf: np.ndarray) -> str:
        """Check ``rf`` and return its concrete input format."""
        if not isinstance(rf, np.ndarray):
            raise TypeError(
                f"rf must be a numpy array of shape (n_lines, n_samples), got {type(rf).__name__}"
            )
        fmt = resolve_format(rf.dtype, self._config.input_format)
        full_scale(fmt, self._config.adc_bits)  # raises if adc_bits does not fit the format
        if rf.ndim != 2:
            hint = " (for one line use rf[np.newaxis, :])" if rf.ndim == 1 else ""
            raise ValueError(
                f"rf must be 2-D (n_lines, n_samples), got shape {rf.shape}{hint}"
            )
        if rf.shape[0] == 0 or rf.shape[1] == 0:
            raise ValueError(f"rf is empty (shape {rf.shape}); a frame needs lines and samples")
        if rf.shape[1] < _MIN_SAMPLES:
            raise ValueError(
                f"rf has {rf.shape[1]} samples per line; the chain needs at least {_MIN_SAMPLES}"
            )
        if fmt == "float" and not np.isfinite(rf).all():
            bad = np.argwhere(~np.isfinite(rf))[0]
            raise ValueError(
                f"rf contains NaN or Inf (first at line {bad[0]}, sample {bad[1]}); "
                f"replace them (e.g. np.nan_to_num) before processing"
            )
        return fmt

    def process(self, rf: np.ndarray) -> ChainResult:
        """Process one frame ``rf`` ``(n_lines, n_samples)`` (ADC codes or float full scale)."""
        fmt = self._validate(rf)
        cfg = self._config
        if self._shape != rf.shape:
            if self._shape is not None and self._shape[0] != rf.shape[0]:
                self.reset()
            old_n_out = self._plan.n_out if self._shape is not None else None
            self._build(*rf.shape)
            if old_n_out is not None and old_n_out != self._plan.n_out:
                self.reset()
        plan = self._plan
        x = self._rf_view
        midscale, scale = full_scale(fmt, cfg.adc_bits)
        # One pass from codes to zero-mean float32, still in code units: each line's own mean
        # past the ring-down is its zero (the ADC's midscale included), and the 1/scale to full
        # scale rides on the filter mask, as every step up to the FFT is linear.
        np.copyto(x, rf, casting="unsafe")
        if cfg.dc_removal:
            start = self._blank_end if self._blank_end < rf.shape[1] else 0
            np.subtract(x, x[:, start:].mean(axis=1, keepdims=True), out=x)
        elif midscale:
            np.subtract(x, np.float32(midscale), out=x)
        if self._blank_end:
            blank(x, self._window, out=x)
        iq = analytic_iq(self._rf, self._scaled_plan(scale), out=self._iq)
        env = envelope(iq, out=self._env)

        if self._gain is not None:
            if cfg.auto_tgc:
                self._update_auto_tgc(env)
            np.multiply(iq, self._gain, out=iq)
            np.multiply(env, self._gain, out=env)

        if cfg.persistence > 0.0 and cfg.persistence_on == "envelope":
            env = self._persist(env)

        if cfg.reference == "tracking":
            level = envelope_percentile(env, cfg.reference_percentile)
            self._reference = track_reference(self._reference, level, cfg.reference_rate)
            reference = self._reference
        else:
            reference = cfg.reference_level

        levels = log_compress_levels(env, reference, cfg.dynamic_range_db, cfg.gain_db,
                                     out=self._levels)
        if cfg.persistence > 0.0 and cfg.persistence_on == "image":
            levels = self._persist(levels)
        image = quantize_levels(levels, out=self._image)
        return ChainResult(
            iq=self._iq_view,
            envelope=env,
            image=image,
            depth_m=self._depth_m,
            sample_rate_out_hz=plan.sample_rate_out_hz,
            demod_freq_hz=plan.demod_freq_hz,
            reference=float(reference),
        )

    def _scaled_plan(self, scale: float) -> BandPlan:
        """The filter plan with 1/``scale`` folded into its mask (codes in, full scale out)."""
        if self._scaled is None or self._scaled[0] != scale:
            plan = self._plan
            mask = (plan.mask / np.float32(scale)).astype(np.float32)
            self._scaled = (scale, dataclasses.replace(plan, mask=mask))
        return self._scaled[1]

    def _persist(self, frame: np.ndarray) -> np.ndarray:
        """Fold ``frame`` into the persistence average and return the average buffer."""
        if self._average is None or self._average.shape != frame.shape:
            self._average = frame.copy()
        else:
            persist(self._average, frame, self._config.persistence, out=self._average)
        return self._average

    def _update_auto_tgc(self, env: np.ndarray) -> None:
        """Blend this frame's flattening correction into the slowly varying automatic TGC."""
        cfg = self._config
        # Measure the profile with the static TGC applied, so the automatic part only corrects
        # what the slope/curve left over.
        profile_env = np.multiply(env, self._static_gain, out=self._levels)
        correction = auto_tgc_db(profile_env, self._depth_m, smooth_m=cfg.auto_tgc_smooth_m,
                                 max_db=cfg.auto_tgc_max_db, valid_from=self._valid_from_out)
        if self._auto_db is None or self._auto_db.shape != correction.shape:
            self._auto_db = correction
        else:
            self._auto_db += cfg.auto_tgc_rate * (correction - self._auto_db)
        self._gain = db_to_gain(self._static_db + self._auto_db)

    @property
    def plan(self) -> BandPlan | None:
        """The filter plan for the current frame shape (None before the first frame)."""
        return self._plan if self._shape is not None else None

    @property
    def auto_tgc_db(self) -> np.ndarray | None:
        """The automatic TGC correction in dB over depth (None until it has run)."""
        return None if self._auto_db is None else self._auto_db.copy()
