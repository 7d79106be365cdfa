"""Input conversion: every format maps to float32 at full scale ±1, exactly."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sonobridge.dsp import full_scale, resolve_format, to_full_scale

from . import rf_model

_SHAPES = hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=16)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.uint8, _SHAPES))
def test_dsp_u8_offset_binary_midscale_128(codes: np.ndarray) -> None:
    out = to_full_scale(codes)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, (codes.astype(np.float64) - 128) / 128)
    assert out.min() >= -1.0 and out.max() < 1.0
    np.testing.assert_array_equal(rf_model.to_codes(out.astype(np.float64), "u8"), codes)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.int16, _SHAPES))
def test_dsp_i16_twos_complement(codes: np.ndarray) -> None:
    out = to_full_scale(codes, "i16")
    np.testing.assert_array_equal(out, codes.astype(np.float64) / 32768)
    np.testing.assert_array_equal(rf_model.to_codes(out.astype(np.float64), "i16"), codes)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 16).flatmap(
    lambda bits: st.tuples(
        st.just(bits),
        hnp.arrays(np.uint16, _SHAPES, elements=st.integers(0, 2**bits - 1)),
    )
))
def test_dsp_u16_offset_binary_midscale_from_adc_bits(case: tuple[int, np.ndarray]) -> None:
    bits, codes = case
    out = to_full_scale(codes, "u16", adc_bits=bits)
    half = 2 ** (bits - 1)
    np.testing.assert_array_equal(out, (codes.astype(np.float64) - half) / half)
    assert out.min() >= -1.0 and out.max() < 1.0


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.uint16, _SHAPES, elements=st.integers(0, 4095)))
def test_dsp_unpacked_12_bit_midscale_2048(codes: np.ndarray) -> None:
    out = to_full_scale(codes, "u12")
    np.testing.assert_array_equal(out, (codes.astype(np.float64) - 2048) / 2048)
    np.testing.assert_array_equal(rf_model.to_codes(out.astype(np.float64), "u12"), codes)


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float64, _SHAPES, elements=st.floats(-1, 1)))
def test_dsp_float_input_is_only_cast(values: np.ndarray) -> None:
    out = to_full_scale(values)
    np.testing.assert_array_equal(out, values.astype(np.float32))


def test_dsp_auto_detects_each_integer_container() -> None:
    assert resolve_format(np.dtype(np.uint8)) == "u8"
    assert resolve_format(np.dtype(np.int16)) == "i16"
    assert resolve_format(np.dtype(np.uint16)) == "u16"
    assert resolve_format(np.dtype(np.float32)) == "float"
    assert full_scale("u16") == (32768.0, 32768.0)
    assert full_scale("u12") == (2048.0, 2048.0)
    assert full_scale("i16", adc_bits=12) == (0.0, 2048.0)


def test_dsp_narrow_adc_in_int16_container() -> None:
    codes = np.array([[-2048, 0, 2047]], dtype=np.int16)
    np.testing.assert_array_equal(to_full_scale(codes, adc_bits=12), [[-1.0, 0.0, 2047 / 2048]])


def test_dsp_out_buffer_is_filled_in_place() -> None:
    codes = np.arange(12, dtype=np.uint8).reshape(3, 4)
    buf = np.empty((3, 4), dtype=np.float32)
    assert to_full_scale(codes, out=buf) is buf
    with pytest.raises(ValueError, match="out must be float32"):
        to_full_scale(codes, out=np.empty((3, 4), dtype=np.float64))


@pytest.mark.parametrize(
    ("dtype", "fmt", "match"),
    [
        (np.complex64, "auto", "complex"),
        (np.bool_, "auto", "bool"),
        (np.int32, "auto", "int32"),
        (np.uint8, "i16", "needs dtype int16"),
        (np.int16, "float", "needs a float dtype"),
    ],
)
def test_dsp_unsupported_dtypes_are_refused(dtype: type, fmt: str, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        to_full_scale(np.zeros((2, 4), dtype=dtype), fmt)


def test_dsp_adc_bits_wider_than_container_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        to_full_scale(np.zeros((2, 4), dtype=np.uint8), adc_bits=12)
