"""Sample payloads: NumPy arrays to and from the bytes of each ``SampleFormat``.

Decoding uses ``numpy.frombuffer`` and is zero-copy when the data is immutable and aligned;
packed 12-bit is (un)packed vectorized, three bytes for every two samples.
"""

from __future__ import annotations

import numpy as np

from .constants import SampleFormat, sample_nbytes

#: NumPy dtype of decoded samples per format (packed 12-bit decodes to uint16 values 0..4095)
DTYPES: dict[int, np.dtype] = {
    SampleFormat.U8: np.dtype(np.uint8),
    SampleFormat.I16: np.dtype("<i2"),
    SampleFormat.U16_OB: np.dtype("<u2"),
    SampleFormat.PACKED12: np.dtype("<u2"),
}

DEFAULT_ADC_BITS: dict[int, int] = {
    SampleFormat.U8: 8,
    SampleFormat.I16: 16,
    SampleFormat.U16_OB: 16,
    SampleFormat.PACKED12: 12,
}

MAX_ADC_BITS: dict[int, int] = {
    SampleFormat.U8: 8,
    SampleFormat.I16: 16,
    SampleFormat.U16_OB: 16,
    SampleFormat.PACKED12: 12,
}


def zero_level(sample_format: int, adc_bits: int) -> int:
    """The code meaning zero signal: offset-binary midscale ``2**(adc_bits-1)``, or 0 for I16."""
    return 0 if sample_format == SampleFormat.I16 else 1 << (adc_bits - 1)


def format_for_dtype(dtype: np.dtype) -> SampleFormat:
    """The natural wire format of a sample array's dtype (uint16 means offset binary)."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return SampleFormat.U8
    if dtype == np.int16:
        return SampleFormat.I16
    if dtype == np.uint16:
        return SampleFormat.U16_OB
    raise TypeError(
        f"samples of dtype {dtype} have no wire format; use uint8, int16 or uint16 "
        "(uint16 with sample_format=PACKED12 for 12-bit)"
    )


def unpack12(raw: np.ndarray) -> np.ndarray:
    """Unpack packed 12-bit bytes (``uint8``, length a multiple of 3) into ``uint16`` samples."""
    triples = raw.reshape(-1, 3).astype(np.uint16)
    out = np.empty(2 * triples.shape[0], dtype=np.uint16)
    out[0::2] = triples[:, 0] | ((triples[:, 1] & 0x0F) << 8)
    out[1::2] = (triples[:, 1] >> 4) | (triples[:, 2] << 4)
    return out


def pack12(samples: np.ndarray) -> bytes:
    """Pack an even number of 12-bit samples (values 0..4095) into 3 bytes per 2 samples."""
    s = np.asarray(samples)
    if s.size & 1:
        raise ValueError(f"packed 12-bit needs an even number of samples, got {s.size}")
    if s.size and (s.min() < 0 or s.max() > 0xFFF):
        raise ValueError("packed 12-bit samples must lie in 0..4095")
    s = s.astype(np.uint16, copy=False)
    a, b = s[0::2], s[1::2]
    out = np.empty((s.size // 2, 3), dtype=np.uint8)
    out[:, 0] = a & 0xFF
    out[:, 1] = (a >> 8) | ((b & 0x0F) << 4)
    out[:, 2] = b >> 4
    return out.tobytes()


def samples_to_bytes(samples: np.ndarray, sample_format: int) -> bytes:
    """Serialise a 1-D sample array in ``sample_format`` (little-endian)."""
    if sample_format == SampleFormat.PACKED12:
        return pack12(samples)
    dtype = DTYPES.get(sample_format)
    if dtype is None:
        raise ValueError(f"unknown sample_format {sample_format}; valid: 0..3")
    arr = np.asarray(samples)
    if arr.dtype != dtype:
        if arr.size and not np.can_cast(arr.dtype, dtype, "same_kind"):
            raise TypeError(f"samples of dtype {arr.dtype} cannot be sent as {dtype}")
        info = np.iinfo(dtype)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise ValueError(f"samples exceed the {dtype} range {info.min}..{info.max}")
        arr = arr.astype(dtype)
    return arr.tobytes()


def samples_from_buffer(
    buf: bytes, offset: int, sample_format: int, n_samples: int
) -> np.ndarray:
    """Decode ``n_samples`` at ``buf[offset]``; a view of ``buf`` when aligned and immutable."""
    if sample_format == SampleFormat.PACKED12:
        nbytes = sample_nbytes(sample_format, n_samples) or 0
        return unpack12(np.frombuffer(buf, np.uint8, nbytes, offset))
    dtype = DTYPES[sample_format]
    arr = np.frombuffer(buf, dtype, n_samples, offset)
    if offset % dtype.itemsize or not isinstance(buf, bytes):
        # an unaligned view is slow to compute with, and a mutable buffer may change under us
        return arr.copy()
    return arr
