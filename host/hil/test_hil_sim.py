"""HIL-SIM: checks that need the simulator's ground truth (the phantom the suite chose)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sonobridge.hil.board import HilOptions, HilSession, capture_frames, fail_on
from sonobridge.hil.checks import axial_resolution_m, depth_problems, full_scale
from sonobridge.hil.configs import imaging_config
from sonobridge.hil.report import HilReport
from sonobridge.protocol import SweepKind
from sonobridge.protocol.samples import zero_level
from sonobridge.sim.phantom import load_phantom

SEARCH_M = 1.5e-3  # look for each wire's echo this far around its true depth
MIN_PEAK_RATIO = 4.0  # the echo must stand this far above the line's median envelope


@pytest.mark.requirement("HIL-SIM-1")
def test_wire_at_true_depth(hil: HilSession, hil_options: HilOptions,
                            hil_report: HilReport) -> None:
    """Every wire in the sweep appears within half an axial resolution cell of its depth.

    Only where the suite started the simulator itself (``applicability.RULES``).
    """
    phantom = load_phantom(hil_options.sim.phantom)
    if not phantom.points:
        pytest.skip(f"phantom {hil_options.sim.phantom!r} has no point targets: use "
                    "--sonobridge-phantom wire")
    from sonobridge.dsp import Chain, ChainConfig, peak_position  # scipy: imported only when needed

    info = hil.info
    c = phantom.speed_of_sound_m_s
    deepest = max(math.hypot(pt.x_m, pt.z_m) for pt in phantom.points)
    cfg = imaging_config(info, deepest + 0.005)
    cap = capture_frames(hil, cfg, 1, "the wire-depth check")
    frame_samples = cap.samples[0]
    rf = (frame_samples.astype(np.float32) - zero_level(cap.sample_format, cap.adc_bits)) / \
        full_scale(cap.adc_bits)
    fs = info.adc_rate_hz / cfg.decimation
    start_delay_s = cfg.start_delay_samples / fs
    chain = Chain(ChainConfig(sample_rate_hz=fs, center_freq_hz=float(cfg.pulse_freq_hz),
                              sound_speed_m_s=c, start_delay_s=start_delay_s,
                              input_format="float"))
    res = chain.process(rf)
    env, depth = res.envelope, res.depth_m
    nominal = cfg.sweep_start + np.arange(cfg.lines_per_frame) * (
        (cfg.sweep_end - cfg.sweep_start) / max(1, cfg.lines_per_frame - 1))
    positions = nominal * 1e-6  # rad (sector) or m (linear)
    spacing = abs(positions[1] - positions[0]) if positions.size > 1 else 0.0
    found: list[tuple[float, float | None]] = []
    for pt in phantom.points:
        if info.sweep_kind == SweepKind.SECTOR:
            where, rng = math.atan2(pt.x_m, pt.z_m), math.hypot(pt.x_m, pt.z_m)
        elif info.sweep_kind == SweepKind.LINEAR:
            where, rng = pt.x_m, pt.z_m
        else:
            where, rng = 0.0, pt.z_m
            if abs(pt.x_m) > 1e-3:
                continue
        line = int(np.argmin(np.abs(positions - where)))
        if abs(positions[line] - where) > spacing / 2 + 1e-9 and positions.size > 1:
            continue  # outside the sweep
        if not depth[0] + 2 * SEARCH_M <= rng <= depth[-1] - SEARCH_M:
            continue  # outside the window
        near = np.flatnonzero(np.abs(depth - rng) <= SEARCH_M)
        profile = env[line]
        k = int(near[np.argmax(profile[near])])
        if profile[k] < MIN_PEAK_RATIO * float(np.median(profile)) or k in (0, depth.size - 1):
            found.append((rng, None))
            continue
        found.append((rng, float(peak_position(profile[k - 1:k + 2], depth[k - 1:k + 2]))))
    if not found:
        pytest.fail(f"none of the {len(phantom.points)} wires of phantom "
                    f"{hil_options.sim.phantom!r} lies inside the swept region")
    tolerance = axial_resolution_m(cfg.pulse_freq_hz, cfg.pulse_cycles, c) / 2
    errors = [abs(g - t) for t, g in found if g is not None]
    if errors:
        hil_report.record("wire_depth_error_max_mm", 1e3 * max(errors), "mm",
                          f"largest |measured − true| of {len(errors)} wires (allowed "
                          f"{1e3 * tolerance:.3f} mm)")
    fail_on(depth_problems(found, tolerance))
