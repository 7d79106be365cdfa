"""Acquisition settings in the units people think in, validated against the board's limits.

``AcquisitionConfig`` mirrors CONFIGURE one to one (so nothing is lost in translation) and adds
conveniences: a depth in metres instead of a sample count, a sector angle instead of sweep
positions, TGC points in dB. ``validate`` applies the protocol's rules
(``sonobridge.protocol.rules``) and raises :class:`ConfigError` naming the field, the value
and the allowed range, before anything is sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from sonobridge.protocol import Capability, Configure, DeviceInfo, SampleFormat, SweepKind
from sonobridge.protocol.rules import check_configure

from .errors import ConfigError
from .frames import SOUND_SPEED_M_S


@dataclass(frozen=True)
class AcquisitionConfig:
    """Everything CONFIGURE sets. Positions are µrad (sector) or µm (linear), as on the wire."""

    sample_format: int = SampleFormat.I16
    decimation: int = 1
    samples_per_line: int = 2048
    start_delay_samples: int = 0
    prf_hz: int = 1000
    lines_per_frame: int = 64
    sweep_start: int = -523_599
    sweep_end: int = 523_599
    ensemble_size: int = 1
    pulse_freq_hz: int = 5_000_000
    pulse_cycles: int = 2
    hv_mv: int = 24_000
    tgc_db: tuple[float, ...] = (0.0,)

    @classmethod
    def default_for(cls, info: DeviceInfo, depth_m: float = 0.06) -> AcquisitionConfig:
        """A sensible configuration for this board: full sweep, ~6 cm, fastest safe PRF."""
        fmt = next((f for f in (SampleFormat.I16, SampleFormat.U16_OB, SampleFormat.PACKED12,
                                SampleFormat.U8) if info.supports_format(f)), SampleFormat.I16)
        lines = max(1, min(info.max_lines_per_frame, 96))
        if info.sweep_kind == SweepKind.FIXED:
            start = end = 0
            lines = 1
        else:
            start, end = info.sweep_min, info.sweep_max
        pulse = info.transducer_freq_hz or (info.pulse_freq_min_hz + info.pulse_freq_max_hz) // 2
        pulse = min(max(pulse, info.pulse_freq_min_hz), info.pulse_freq_max_hz)
        if info.capabilities & Capability.HV_CONTROL:
            hv = min(info.hv_max_mv, max(info.hv_min_mv, 24_000))
        else:
            hv = info.hv_min_mv  # a fixed supply: CONFIGURE must state its voltage
        flat_db = min(max(0.0, info.gain_min_cdb / 100), info.gain_max_cdb / 100)
        cfg = cls(sample_format=fmt, decimation=1, lines_per_frame=lines, sweep_start=start,
                  sweep_end=end, pulse_freq_hz=pulse, pulse_cycles=min(2,
                                                                      info.pulse_cycles_max),
                  hv_mv=hv, tgc_db=(flat_db,), prf_hz=max(1, info.prf_min_hz))
        cfg = cfg.with_depth(depth_m, info)
        return cfg.with_prf(cfg.max_prf_hz(info), info)

    def sample_rate_hz(self, info: DeviceInfo) -> float:
        """Sample rate on this board."""
        return info.adc_rate_hz / self.decimation

    def depth_range_m(self, info: DeviceInfo, c: float = SOUND_SPEED_M_S) -> tuple[float, float]:
        """Depth of the first and last sample, in metres."""
        fs = self.sample_rate_hz(info)
        return (c * self.start_delay_samples / fs / 2,
                c * (self.start_delay_samples + self.samples_per_line - 1) / fs / 2)

    def with_depth(self, depth_m: float, info: DeviceInfo, c: float = SOUND_SPEED_M_S
                   ) -> AcquisitionConfig:
        """Set samples_per_line so the line reaches ``depth_m`` (clamped to the board's limits)."""
        if not depth_m > 0 or not math.isfinite(depth_m):
            raise ConfigError("depth_m", depth_m, "a positive depth in metres")
        fs = self.sample_rate_hz(info)
        # the last sample (index n - 1) must reach depth_m
        n = math.ceil(2 * depth_m / c * fs) + 1 - self.start_delay_samples
        n = max(info.min_samples_per_line, min(info.max_samples_per_line, n))
        n += n & 1  # even counts keep every sample format possible
        n = min(n, info.max_samples_per_line)
        return replace(self, samples_per_line=n)

    def with_sector(self, sector_deg: float) -> AcquisitionConfig:
        """A symmetric sector spanning ``sector_deg`` degrees in total."""
        half = round(math.radians(sector_deg) / 2 * 1e6)
        return replace(self, sweep_start=-half, sweep_end=half)

    def window_s(self, info: DeviceInfo) -> float:
        """Acquisition window per firing, in seconds."""
        return (self.start_delay_samples + self.samples_per_line) * self.decimation / \
            info.adc_rate_hz

    def max_prf_hz(self, info: DeviceInfo) -> int:
        """Fastest PRF the window, the board and its rated link allow."""
        limit = math.ceil(1 / self.window_s(info)) - 1
        if info.rated_throughput_bps:
            from sonobridge.protocol.rules import line_bytes

            line = line_bytes(self.sample_format, self.samples_per_line)
            limit = min(limit, int(0.9 * info.rated_throughput_bps / line))
        return max(info.prf_min_hz, min(info.prf_max_hz, limit))

    def with_prf(self, prf_hz: int, info: DeviceInfo) -> AcquisitionConfig:
        """Set the PRF (not validated here; :func:`validate` does that)."""
        return replace(self, prf_hz=int(prf_hz))

    def to_message(self) -> Configure:
        """The CONFIGURE this configuration sends."""
        return Configure(
            sample_format=self.sample_format, decimation=self.decimation,
            ensemble_size=self.ensemble_size, pulse_cycles=self.pulse_cycles,
            samples_per_line=self.samples_per_line, start_delay_samples=self.start_delay_samples,
            prf_hz=self.prf_hz, lines_per_frame=self.lines_per_frame,
            sweep_start=self.sweep_start, sweep_end=self.sweep_end,
            pulse_freq_hz=self.pulse_freq_hz, hv_mv=self.hv_mv,
            tgc_cdb=tuple(round(g * 100) for g in self.tgc_db),
        )

    @classmethod
    def from_message(cls, msg: Configure) -> AcquisitionConfig:
        """The configuration a CONFIGURE carries."""
        names = {f.name for f in fields(cls)} - {"tgc_db"}
        return cls(**{n: getattr(msg, n) for n in names}, tgc_db=msg.tgc_db)

    def changed(self, info: DeviceInfo, **changes: object) -> AcquisitionConfig:
        """A copy with ``changes``; accepts every field plus ``depth_m`` and ``sector_deg``."""
        depth = changes.pop("depth_m", None)
        sector = changes.pop("sector_deg", None)
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ConfigError(sorted(unknown)[0], changes[sorted(unknown)[0]],
                              f"one of {sorted(known | {'depth_m', 'sector_deg'})}",
                              f"unknown setting {sorted(unknown)[0]!r}; known settings: "
                              f"{', '.join(sorted(known | {'depth_m', 'sector_deg'}))}")
        if "tgc_db" in changes:
            changes["tgc_db"] = tuple(float(g) for g in changes["tgc_db"])  # type: ignore[union-attr]
        cfg = replace(self, **changes)
        if depth is not None:
            cfg = cfg.with_depth(float(depth), info)  # type: ignore[arg-type]
            cfg._check_depth_fits_prf(float(depth), info)  # type: ignore[arg-type]
        if sector is not None:
            cfg = cfg.with_sector(float(sector))  # type: ignore[arg-type]
        return cfg


    def _check_depth_fits_prf(self, depth_m: float, info: DeviceInfo,
                              c: float = SOUND_SPEED_M_S) -> None:
        """Blame the depth (not the PRF) when the asked depth makes the window too long."""
        ticks = (self.start_delay_samples + self.samples_per_line) * self.decimation
        if ticks * self.prf_hz < info.adc_rate_hz:
            return
        # the longest line the PRF allows: (delay + n) * decimation * prf < adc_rate
        n_max = math.ceil(info.adc_rate_hz / (self.decimation * self.prf_hz)) - 1 \
            - self.start_delay_samples
        deepest = replace(self, samples_per_line=max(1, n_max)).depth_range_m(info, c)[1]
        fastest = max(1, math.ceil(info.adc_rate_hz / ticks) - 1)
        reach = replace(self, samples_per_line=info.max_samples_per_line).depth_range_m(info, c)[1]
        beyond = (f"; this board reaches at most {reach * 100:.1f} cm"
                  if depth_m > reach else "")
        raise ConfigError(
            "depth_m", depth_m, f"at most {deepest * 100:.1f} cm at {self.prf_hz} Hz PRF",
            f"a depth of {depth_m * 100:g} cm is too deep for a PRF of {self.prf_hz} Hz "
            f"(each firing would listen {ticks / info.adc_rate_hz * 1e6:.0f} µs, longer than "
            f"the {1e6 / self.prf_hz:.0f} µs between firings): at {self.prf_hz} Hz the depth "
            f"can be at most {deepest * 100:.1f} cm, or lower the PRF to {fastest} Hz or less"
            f"{beyond}")


def validate(cfg: AcquisitionConfig, info: DeviceInfo) -> Configure:
    """Check ``cfg`` against the board's announced limits; return the CONFIGURE to send."""
    if not cfg.tgc_db:
        raise ConfigError("tgc_db", cfg.tgc_db, f"1..{info.tgc_points_max} gain points in dB")
    if len(cfg.tgc_db) > 32:
        raise ConfigError("tgc_db", f"{len(cfg.tgc_db)} points", "at most 32 points")
    msg = cfg.to_message()
    violation = check_configure(msg, info)
    if violation is None:
        return msg
    field = violation.field
    if field == "tgc_count":
        raise ConfigError("tgc_db", f"{len(cfg.tgc_db)} points",
                          f"1..{info.tgc_points_max} points")
    if field == "tgc_cdb":
        raise ConfigError("tgc_db", list(cfg.tgc_db),
                          f"{info.gain_min_cdb / 100:g}..{info.gain_max_cdb / 100:g} dB per point")
    raise ConfigError(field, violation.value, violation.allowed, violation.message)
