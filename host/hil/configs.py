"""The acquisition configurations the suite streams, all derived from DEVICE_INFO."""

from __future__ import annotations

from dataclasses import replace

from sonobridge.device import AcquisitionConfig
from sonobridge.hil.checks import UNRATED_THROUGHPUT_BPS, clamp_gain_cdb, rated_prf
from sonobridge.protocol import Capability, DeviceInfo
from sonobridge.protocol.rules import line_bytes


def _safe(cfg: AcquisitionConfig, info: DeviceInfo) -> AcquisitionConfig:
    """Pull the client's default into the board's gain and HV rules."""
    hv = cfg.hv_mv if info.capabilities & Capability.HV_CONTROL else info.hv_min_mv
    hv = max(info.hv_min_mv, min(info.hv_max_mv, hv))
    return replace(cfg, hv_mv=hv, tgc_db=(clamp_gain_cdb(0, info) / 100,))


#: a quick frame lasts at most this long, so a board firing a few times a second (an Open
#: Echo pings ~10 times a second) still completes frames in a fraction of a second
QUICK_FRAME_S = 0.25


def quick_config(info: DeviceInfo, default: AcquisitionConfig, lines: int = 16
                 ) -> AcquisitionConfig:
    """The board's default configuration (``Device.default_config()``) with few lines per
    frame (fast frames)."""
    cfg = _safe(default, info)
    lines = min(lines, cfg.lines_per_frame, int(cfg.prf_hz * QUICK_FRAME_S))
    return replace(cfg, lines_per_frame=max(1, lines))


def target_throughput(info: DeviceInfo, override_bps: float | None,
                      default: AcquisitionConfig | None = None) -> tuple[float, str]:
    """Bytes per second to stream, and where the number came from.

    ``default`` (given when the board announces nothing itself: its DEVICE_INFO is a
    dialect's nominal one): an unrated board is streamed at its own fastest rate,
    ``prf_max_hz`` lines of this default configuration per second, not at the conservative
    default.
    """
    if override_bps:
        return float(override_bps), "--throughput"
    if info.rated_throughput_bps:
        return float(info.rated_throughput_bps), "DEVICE_INFO.rated_throughput_bps"
    if default is not None:
        cfg = default
        return (float(line_bytes(cfg.sample_format, cfg.samples_per_line) * info.prf_max_hz),
                f"the board's own rate (DEVICE_INFO.prf_max_hz = {info.prf_max_hz} Hz, nominal)")
    return float(UNRATED_THROUGHPUT_BPS), ("the board announces no rating "
                                           "(rated_throughput_bps = 0): conservative default")


def rated_config(info: DeviceInfo, default: AcquisitionConfig, target_bps: float
                 ) -> AcquisitionConfig:
    """The board's default configuration at the PRF that streams ``target_bps``."""
    cfg = _safe(default, info)
    return replace(cfg, prf_hz=rated_prf(info, cfg.sample_format, cfg.samples_per_line,
                                         target_bps))


def sanity_config(info: DeviceInfo, default: AcquisitionConfig) -> AcquisitionConfig:
    """The default configuration with the pulser at its lowest voltage."""
    cfg = quick_config(info, default, lines=32)
    return replace(cfg, hv_mv=info.hv_min_mv)


def imaging_config(info: DeviceInfo, depth_m: float) -> AcquisitionConfig:
    """The default full sweep reaching ``depth_m``."""
    return _safe(AcquisitionConfig.default_for(info, depth_m=depth_m), info)
