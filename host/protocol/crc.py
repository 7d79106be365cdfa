"""The two checksums of protocol v1, both from the standard library (C speed).

* Header check: CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR);
  ``binascii.crc_hqx`` with init 0xFFFF is exactly that. Check value of b"123456789": 0x29B1.
* Frame check: zlib's CRC-32 (IEEE 802.3, reflected, init/xorout 0xFFFFFFFF).
  Check value of b"123456789": 0xCBF43926.
"""

from __future__ import annotations

import binascii
import zlib


def crc16_ccitt_false(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (pass a previous result as ``crc`` to continue)."""
    return binascii.crc_hqx(data, crc)


def crc32(data: bytes, crc: int = 0) -> int:
    """zlib CRC-32 of ``data`` (pass a previous result as ``crc`` to continue)."""
    return zlib.crc32(data, crc)
