"""Input conversion: ADC sample codes of any supported format → float32 at full scale ±1."""

from __future__ import annotations

import numpy as np

# format → (required dtype, container bits, offset binary?)
_FORMATS: dict[str, tuple[np.dtype, int, bool]] = {
    "u8": (np.dtype(np.uint8), 8, True),
    "i16": (np.dtype(np.int16), 16, False),
    "u16": (np.dtype(np.uint16), 16, True),
    "u12": (np.dtype(np.uint16), 12, True),
}
_AUTO: dict[np.dtype, str] = {
    np.dtype(np.uint8): "u8",
    np.dtype(np.int16): "i16",
    np.dtype(np.uint16): "u16",
}


def resolve_format(dtype: np.dtype, input_format: str = "auto") -> str:
    """Return the concrete format ('u8', 'i16', 'u16', 'u12' or 'float') for samples of ``dtype``.

    Raises TypeError for complex, bool, object and unsupported integer dtypes, or when an explicit
    ``input_format`` does not match ``dtype``.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        raise TypeError(
            f"rf has complex dtype {dtype}; the chain takes real RF samples. Pass the real "
            f"part (rf.real) or, for data that is already IQ, skip the chain's demodulation"
        )
    if dtype.kind == "b":
        raise TypeError(f"rf has dtype {dtype}; expected ADC codes (uint8, int16, uint16) or float")
    if dtype.kind not in "uif":
        raise TypeError(
            f"rf has dtype {dtype}; expected uint8, int16, uint16 or a float dtype "
            f"(convert with np.asarray(rf, dtype=...))"
        )
    if input_format == "auto":
        if dtype.kind == "f":
            return "float"
        if dtype in _AUTO:
            return _AUTO[dtype]
        raise TypeError(
            f"rf has dtype {dtype}; input_format='auto' understands uint8 (offset binary), "
            f"int16 (two's complement), uint16 (offset binary) and float. Convert the samples, "
            f"or pass one of those dtypes"
        )
    if input_format == "float":
        if dtype.kind != "f":
            raise TypeError(f"input_format='float' needs a float dtype, rf has {dtype}")
        return "float"
    if input_format not in _FORMATS:
        raise ValueError(
            f"input_format={input_format!r} must be one of 'auto', 'u8', 'i16', 'u16', 'u12', "
            f"'float'"
        )
    want = _FORMATS[input_format][0]
    if dtype != want:
        raise TypeError(
            f"input_format={input_format!r} needs dtype {want}, rf has {dtype}; "
            f"use input_format='auto' or convert the samples"
        )
    return input_format


def full_scale(fmt: str, adc_bits: int | None = None) -> tuple[float, float]:
    """Return (midscale, scale) so that ``(code - midscale) / scale`` spans ±1 for ``fmt``.

    ``adc_bits`` (None = the container width) describes a narrower ADC in a wider container,
    e.g. a 10-bit converter delivering uint16 codes 0..1023: midscale and scale are then
    2**(adc_bits-1). Float input is taken as already at full scale (0, 1).
    """
    if fmt == "float":
        return 0.0, 1.0
    _, container_bits, offset = _FORMATS[fmt]
    bits = container_bits if adc_bits is None else adc_bits
    if fmt == "u12" and adc_bits not in (None, 12):
        raise ValueError(f"adc_bits={adc_bits!r} conflicts with input_format='u12' (12 bits)")
    if bits > container_bits:
        raise ValueError(
            f"adc_bits={adc_bits!r} does not fit the {container_bits}-bit container of "
            f"format {fmt!r}; use adc_bits <= {container_bits}"
        )
    half = float(2 ** (bits - 1))
    return (half if offset else 0.0), half


def to_full_scale(
    rf: np.ndarray,
    input_format: str = "auto",
    adc_bits: int | None = None,
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Convert ADC codes ``rf`` (any shape) to float32 at full scale ±1, into ``out`` if given.

    Formats: 'u8' offset binary (midscale 128), 'i16' two's complement, 'u16' offset binary
    (midscale 2**(adc_bits-1)), 'u12' unpacked 12-bit in uint16 (0..4095, midscale 2048) and
    'float' (already at full scale; only cast). Codes outside the ADC range are not clipped.
    """
    rf = np.asarray(rf)
    fmt = resolve_format(rf.dtype, input_format)
    midscale, scale = full_scale(fmt, adc_bits)
    if out is None:
        out = np.empty(rf.shape, dtype=np.float32)
    elif out.shape != rf.shape or out.dtype != np.float32:
        raise ValueError(
            f"out must be float32 of shape {rf.shape}, got {out.dtype} of shape {out.shape}"
        )
    # dtype=float32 makes the ufunc cast before subtracting, so uint8 codes cannot wrap around.
    if midscale:
        np.subtract(rf, np.float32(midscale), out=out, dtype=np.float32)
    else:
        np.copyto(out, rf, casting="unsafe")
    if scale != 1.0:
        np.multiply(out, np.float32(1.0 / scale), out=out)
    return out
