"""CONFIGURE validation and the TGC / sweep semantics of section 7 of the spec."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sonobridge.protocol import Capability, Configure, DeviceInfo, ErrorCode, SampleFormat
from sonobridge.protocol.rules import check_configure, nominal_positions, tgc_gain_db

INFO = DeviceInfo(
    sample_formats=(1 << SampleFormat.I16) | (1 << SampleFormat.PACKED12),
    capabilities=Capability.HV_CONTROL, adc_rate_hz=40_000_000, max_decimation=4,
    ensemble_max=8, pulse_cycles_max=4, min_samples_per_line=64, max_samples_per_line=32768,
    max_start_delay_samples=1000, max_lines_per_frame=128, gain_min_cdb=0, gain_max_cdb=4000,
    sweep_min=-500_000, sweep_max=500_000, prf_min_hz=10, prf_max_hz=5000,
    pulse_freq_min_hz=1_000_000, pulse_freq_max_hz=10_000_000, hv_min_mv=5000,
    hv_max_mv=50_000, tgc_points_max=8,
)
GOOD = Configure(sample_format=SampleFormat.I16, samples_per_line=1024, prf_hz=1000,
                 lines_per_frame=64, sweep_start=-500_000, sweep_end=500_000,
                 pulse_freq_hz=5_000_000, hv_mv=20_000, tgc_cdb=(0, 1000))


def with_(**kw) -> Configure:
    base = {k: getattr(GOOD, k) for k in (
        "sample_format", "decimation", "ensemble_size", "pulse_cycles", "samples_per_line",
        "start_delay_samples", "prf_hz", "lines_per_frame", "sweep_start", "sweep_end",
        "pulse_freq_hz", "hv_mv")}
    tgc = kw.pop("tgc_cdb", GOOD.tgc_cdb[: GOOD.tgc_count])
    base.update(kw)
    return Configure(**base, tgc_cdb=tgc)


def test_good_config_passes():
    assert check_configure(GOOD, INFO) is None


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"sample_format": SampleFormat.U8}, "sample_format", ErrorCode.OUT_OF_RANGE),
        ({"decimation": 0}, "decimation", ErrorCode.OUT_OF_RANGE),
        ({"decimation": 5}, "decimation", ErrorCode.OUT_OF_RANGE),
        ({"ensemble_size": 9}, "ensemble_size", ErrorCode.OUT_OF_RANGE),
        ({"pulse_cycles": 0}, "pulse_cycles", ErrorCode.OUT_OF_RANGE),
        ({"samples_per_line": 63}, "samples_per_line", ErrorCode.OUT_OF_RANGE),
        ({"samples_per_line": 32769}, "samples_per_line", ErrorCode.OUT_OF_RANGE),
        ({"start_delay_samples": 1001}, "start_delay_samples", ErrorCode.OUT_OF_RANGE),
        ({"prf_hz": 5001}, "prf_hz", ErrorCode.OUT_OF_RANGE),
        ({"lines_per_frame": 129}, "lines_per_frame", ErrorCode.OUT_OF_RANGE),
        ({"tgc_cdb": tuple(range(9))}, "tgc_count", ErrorCode.OUT_OF_RANGE),
        ({"tgc_cdb": ()}, "tgc_count", ErrorCode.OUT_OF_RANGE),
        ({"sweep_start": -500_001}, "sweep_start", ErrorCode.OUT_OF_RANGE),
        ({"sweep_end": 500_001}, "sweep_end", ErrorCode.OUT_OF_RANGE),
        ({"pulse_freq_hz": 999_999}, "pulse_freq_hz", ErrorCode.OUT_OF_RANGE),
        ({"hv_mv": 50_001}, "hv_mv", ErrorCode.OUT_OF_RANGE),
        ({"tgc_cdb": (0, 4001)}, "tgc_cdb", ErrorCode.OUT_OF_RANGE),
        ({"sample_format": SampleFormat.PACKED12, "samples_per_line": 1001},
         "samples_per_line", ErrorCode.INVALID_COMBINATION),
        ({"samples_per_line": 32768, "prf_hz": 2000}, "prf_hz", ErrorCode.INVALID_COMBINATION),
    ],
)
def test_each_rule_names_field_and_code(change, field, code):
    v = check_configure(with_(**change), INFO)
    assert v is not None
    assert (v.field, v.code) == (field, code)
    assert field in v.message and str(v.value) in v.message


def test_nonzero_tgc_past_count_is_out_of_range():
    cfg = with_()
    cfg.tgc_cdb = (0, 1000, 5) + (0,) * 29
    assert check_configure(cfg, INFO).field == "tgc_cdb"


def test_hv_is_fixed_without_hv_control():
    info = DeviceInfo(**{**{k: getattr(INFO, k) for k in (
        "sample_formats", "adc_rate_hz", "max_decimation", "ensemble_max", "pulse_cycles_max",
        "min_samples_per_line", "max_samples_per_line", "max_start_delay_samples",
        "max_lines_per_frame", "gain_min_cdb", "gain_max_cdb", "sweep_min", "sweep_max",
        "prf_min_hz", "prf_max_hz", "pulse_freq_min_hz", "pulse_freq_max_hz", "hv_min_mv",
        "hv_max_mv", "tgc_points_max")}, "capabilities": 0})
    assert check_configure(with_(hv_mv=5000), info) is None
    assert check_configure(with_(hv_mv=5001), info).field == "hv_mv"


@given(st.lists(st.floats(-20, 60), min_size=1, max_size=32), st.integers(1, 5000))
def test_tgc_curve_hits_its_points(points, n):
    gain = tgc_gain_db(np.array(points), n)
    assert gain.shape == (n,)
    assert gain[0] == pytest.approx(points[0])
    if n > 1:
        assert gain[-1] == pytest.approx(points[-1])
    assert gain.min() >= min(points) - 1e-9 and gain.max() <= max(points) + 1e-9


def test_nominal_positions_span_the_sweep():
    pos = nominal_positions(with_(lines_per_frame=5, sweep_start=-100, sweep_end=100))
    np.testing.assert_allclose(pos, [-100, -50, 0, 50, 100])
    assert nominal_positions(with_(lines_per_frame=1, sweep_start=7)).tolist() == [7.0]
