"""Minimal PNG writer (zlib + struct): 8-bit greyscale or RGB, no dependencies beyond stdlib."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(image: np.ndarray, *, level: int = 6) -> bytes:
    """PNG bytes of a uint8 image ``(height, width)`` (grey) or ``(height, width, 3)`` (RGB)."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise TypeError(f"PNG export needs uint8 pixels, got {img.dtype}")
    if img.ndim == 2:
        color_type, channels = 0, 1
    elif img.ndim == 3 and img.shape[2] == 3:
        color_type, channels = 2, 3
    else:
        raise ValueError(f"image must be (H, W) or (H, W, 3), got {img.shape}")
    height, width = img.shape[:2]
    if height < 1 or width < 1:
        raise ValueError(f"image must not be empty, got {img.shape}")
    rows = np.ascontiguousarray(img).reshape(height, width * channels)
    # filter type 0 (None) on every row: a zero byte before each scanline
    raw = np.concatenate((np.zeros((height, 1), np.uint8), rows), axis=1).tobytes()
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, level))
            + _chunk(b"IEND", b""))


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write ``image`` (see :func:`encode_png`) to ``path``."""
    with open(path, "wb") as f:
        f.write(encode_png(image))
