"""HIL-DATA: the samples themselves: DC offset, noise floor, stuck bits, saturation, formats."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from sonobridge.hil.board import Capture, HilSession, capture_frames, fail_on
from sonobridge.hil.checks import (
    dc_offset,
    dc_problems,
    noise_floor,
    noise_problems,
    range_problems,
    saturation_fraction,
    saturation_problems,
    stuck_bit_problems,
    stuck_bits,
)
from sonobridge.hil.configs import quick_config, sanity_config
from sonobridge.hil.report import HilReport
from sonobridge.protocol import SampleFormat
from sonobridge.protocol.samples import DTYPES, MAX_ADC_BITS

N_FRAMES = 3


@pytest.fixture(scope="module")
def noise_capture(hil: HilSession) -> Capture:
    """Frames with the pulser at its lowest voltage (the board's default otherwise)."""
    return capture_frames(hil, sanity_config(hil.info, hil.default), N_FRAMES,
                          "data sanity (pulser at minimum HV)")


@pytest.mark.requirement("HIL-DATA-1")
def test_dc_offset(noise_capture: Capture, hil_report: HilReport) -> None:
    """The mean sample sits within ±5 % of full scale of the zero level."""
    c = noise_capture
    hil_report.record("dc_offset_percent_fs", 100 * dc_offset(c.samples, c.sample_format,
                                                               c.adc_bits), "% FS",
                      "mean sample minus the zero level")
    fail_on(dc_problems(c.samples, c.sample_format, c.adc_bits))


@pytest.mark.requirement("HIL-DATA-2")
def test_noise_floor(noise_capture: Capture, hil_report: HilReport) -> None:
    """RMS noise of the deepest quarter of each line below −20 dBFS, and not zero."""
    c = noise_capture
    nf = noise_floor(c.samples, c.adc_bits)
    hil_report.record("noise_floor_dbfs", 20 * math.log10(nf) if nf > 0 else -math.inf,
                      "dBFS", "RMS of the deepest quarter of each line")
    fail_on(noise_problems(c.samples, c.adc_bits))


@pytest.mark.requirement("HIL-DATA-3")
def test_no_stuck_bits(noise_capture: Capture, hil_report: HilReport) -> None:
    """Every ADC bit the signal's span exercises takes both values."""
    c = noise_capture
    _, unexercised = stuck_bits(c.samples, c.sample_format, c.adc_bits)
    if unexercised:
        hil_report.note(f"HIL-DATA-3: ADC bits {unexercised} were not exercised (the signal "
                        "spans too few codes to judge them)")
    hil_report.record("adc_bits_exercised", c.adc_bits - len(unexercised),
                      f"of {c.adc_bits}", "ADC bits the captured signal can prove")
    fail_on(stuck_bit_problems(c.samples, c.sample_format, c.adc_bits))


@pytest.mark.requirement("HIL-DATA-4")
def test_saturation(noise_capture: Capture, hil_report: HilReport) -> None:
    """Fewer than 1 % of samples sit at the lowest or highest code."""
    c = noise_capture
    hil_report.record("saturation_percent", 100 * saturation_fraction(
        c.samples, c.sample_format, c.adc_bits), "%", "samples at the lowest or highest code")
    fail_on(saturation_problems(c.samples, c.sample_format, c.adc_bits))


@pytest.mark.requirement("HIL-DATA-5")
def test_sample_formats(hil: HilSession, hil_report: HilReport) -> None:
    """Each announced format streams a frame of its dtype and ADC width, within range."""
    p: list[str] = []
    tested = []
    for fmt in SampleFormat:
        if not hil.info.supports_format(fmt):
            continue
        cfg = replace(quick_config(hil.info, hil.default), sample_format=int(fmt))
        c = capture_frames(hil, cfg, 1, f"sample format {fmt.name}")
        tested.append(fmt.name)
        if c.sample_format != fmt:
            p.append(f"{fmt.name}: lines arrived in format {c.sample_format}")
            continue
        if c.samples.dtype != DTYPES[fmt]:
            p.append(f"{fmt.name}: samples decoded as {c.samples.dtype}, expected "
                     f"{np.dtype(DTYPES[fmt])}")
        limit = min(hil.info.adc_bits, MAX_ADC_BITS[fmt])
        if not 1 <= c.adc_bits <= limit:
            p.append(f"{fmt.name}: ECHO_LINE.adc_bits = {c.adc_bits}; expected 1..{limit} "
                     f"(DEVICE_INFO.adc_bits {hil.info.adc_bits}, format maximum "
                     f"{MAX_ADC_BITS[fmt]})")
            continue
        p += [f"{fmt.name}: {x}" for x in range_problems(c.samples, fmt, c.adc_bits)]
    hil_report.record("sample_formats_streamed", tested)
    fail_on(p)
