"""Bad configuration and bad frames get a clear error that says what is wrong and what to do."""

import numpy as np
import pytest

from sonobridge.dsp import Chain, ChainConfig

FS, F0 = 40e6, 5e6


@pytest.fixture
def chain() -> Chain:
    return Chain(ChainConfig(sample_rate_hz=FS, center_freq_hz=F0))


def test_dsp_defaults_need_only_the_two_rates() -> None:
    cfg = ChainConfig(sample_rate_hz=FS, center_freq_hz=F0)
    assert cfg.fractional_bandwidth == 0.6
    assert cfg.sound_speed_m_s == 1540.0
    assert cfg.reference == "tracking"
    assert cfg.persistence == 0.0
    assert cfg.band_edges_hz == pytest.approx((3.5e6, 6.5e6))


def test_dsp_sample_rate_below_twice_band_edge_says_what_to_do() -> None:
    # Upper edge 5 MHz * 1.3 = 6.5 MHz, so 13 MHz is the least acceptable rate.
    ChainConfig(sample_rate_hz=13e6, center_freq_hz=F0)
    with pytest.raises(ValueError, match=r"sample_rate_hz=12000000\.0") as info:
        ChainConfig(sample_rate_hz=12e6, center_freq_hz=F0)
    assert "raise sample_rate_hz to at least 1.3e+07" in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sample_rate_hz", -1.0),
        ("center_freq_hz", 0.0),
        ("fractional_bandwidth", 2.5),
        ("fractional_bandwidth", 0.0),
        ("sound_speed_m_s", 50.0),
        ("start_delay_s", -1e-6),
        ("blank_s", -1.0),
        ("tgc_db_per_cm", 100.0),
        ("dynamic_range_db", 0.0),
        ("gain_db", float("nan")),
        ("reference_percentile", 10.0),
        ("reference_rate", 0.0),
        ("reference_level", -1.0),
        ("persistence", 1.0),
        ("auto_tgc_rate", 2.0),
    ],
)
def test_dsp_out_of_range_field_names_field_value_and_range(field: str, value: float) -> None:
    kwargs = {"sample_rate_hz": FS, "center_freq_hz": F0, field: value}
    with pytest.raises(ValueError) as info:
        ChainConfig(**kwargs)
    message = str(info.value)
    assert f"{field}={value!r}" in message
    assert "range" in message


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("reference", "max", "'tracking' or 'fixed'"),
        ("persistence_on", "iq", "'envelope' or 'image'"),
        ("input_format", "s24", "must be one of"),
        ("decimation", 0, "'auto' or an integer >= 1"),
        ("decimation", 2.5, "'auto' or an integer >= 1"),
        ("adc_bits", 20, r"\[2, 16\]"),
        ("tgc_curve_db", ((0.02, 0.0), (0.01, 3.0)), "strictly increasing"),
        ("tgc_curve_db", ((0.01,),), r"\(depth_m, gain_db\) pairs"),
    ],
)
def test_dsp_invalid_choice_is_refused(field: str, value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ChainConfig(sample_rate_hz=FS, center_freq_hz=F0, **{field: value})


def test_dsp_decimation_that_would_alias_is_refused(chain: Chain) -> None:
    cfg = ChainConfig(sample_rate_hz=FS, center_freq_hz=F0, decimation=8)
    with pytest.raises(ValueError, match="use decimation <= "):
        Chain(cfg).process(np.zeros((2, 512), dtype=np.int16))


@pytest.mark.parametrize(
    ("rf", "error", "match"),
    [
        (np.zeros((4, 64), dtype=np.complex64), TypeError, "complex"),
        (np.zeros((4, 64), dtype=bool), TypeError, "bool"),
        (np.zeros((4, 64), dtype=object), TypeError, "object"),
        (np.zeros((4, 64), dtype=np.uint32), TypeError, "uint32"),
        ([[0.0] * 64] * 4, TypeError, "numpy array"),
        (np.zeros(64, dtype=np.int16), ValueError, r"rf\[np.newaxis, :\]"),
        (np.zeros((2, 4, 64), dtype=np.int16), ValueError, "2-D"),
        (np.zeros((0, 64), dtype=np.int16), ValueError, "empty"),
        (np.zeros((4, 0), dtype=np.int16), ValueError, "empty"),
        (np.zeros((4, 8), dtype=np.int16), ValueError, "at least 16"),
    ],
)
def test_dsp_bad_frames_are_refused(chain: Chain, rf: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        chain.process(rf)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_dsp_non_finite_samples_are_located(chain: Chain, bad: float) -> None:
    rf = np.zeros((4, 64))
    rf[2, 17] = bad
    with pytest.raises(ValueError, match="line 2, sample 17"):
        chain.process(rf)


def test_dsp_explicit_format_must_match_dtype() -> None:
    chain = Chain(ChainConfig(sample_rate_hz=FS, center_freq_hz=F0, input_format="u12"))
    with pytest.raises(TypeError, match="needs dtype uint16"):
        chain.process(np.zeros((4, 64), dtype=np.int16))
    chain.process(np.full((4, 64), 2048, dtype=np.uint16))


def test_dsp_chain_needs_a_config() -> None:
    with pytest.raises(TypeError, match="ChainConfig"):
        Chain({"sample_rate_hz": FS})  # type: ignore[arg-type]
