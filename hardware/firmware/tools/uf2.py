#!/usr/bin/env python3
"""Wrap a flash image (.bin) in UF2, the container an RP2040 in BOOTSEL mode accepts as a file.

Stdlib only, so a board owner needs neither picotool nor the Python host to make one. UF2
(Microsoft's USB Flashing Format) is 512-byte blocks, each carrying up to 476 payload bytes
for one target address; the RP2040 boot ROM accepts 256 payload bytes per block, at
page-aligned flash addresses from 0x10000000, with the family id 0xE48BFF56 set.

usage: uf2.py IMAGE.bin OUT.uf2
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

MAGIC_START0 = 0x0A324655  # "UF2\n"
MAGIC_START1 = 0x9E5D5157
MAGIC_END = 0x0AB16F30
FLAG_FAMILY_ID_PRESENT = 0x00002000
RP2040_FAMILY_ID = 0xE48BFF56
RP2040_FLASH_BASE = 0x10000000
#: the RP2040 boot ROM takes 256 bytes per block (one flash page)
PAYLOAD_BYTES = 256
BLOCK_BYTES = 512
#: magic0, magic1, flags, target address, payload size, block number, blocks, family id
_HEADER = struct.Struct("<8I")
_DATA_BYTES = 476
#: 16 MiB, the most flash an RP2040 addresses
MAX_IMAGE_BYTES = 16 * 1024 * 1024


def bin_to_uf2(image: bytes, base: int = RP2040_FLASH_BASE,
               family_id: int = RP2040_FAMILY_ID) -> bytes:
    """The UF2 file that writes ``image`` to flash at ``base``, one 256-byte page per block."""
    if not image:
        raise ValueError("the image is empty: nothing to flash")
    if len(image) > MAX_IMAGE_BYTES:
        raise ValueError(f"the image is {len(image)} bytes; an RP2040 addresses at most "
                         f"{MAX_IMAGE_BYTES} bytes of flash")
    if base % PAYLOAD_BYTES:
        raise ValueError(f"base address 0x{base:08X} is not aligned to a {PAYLOAD_BYTES}-byte page")
    n_blocks = -(-len(image) // PAYLOAD_BYTES)
    out = bytearray()
    for k in range(n_blocks):
        payload = image[k * PAYLOAD_BYTES:(k + 1) * PAYLOAD_BYTES].ljust(PAYLOAD_BYTES, b"\0")
        out += _HEADER.pack(MAGIC_START0, MAGIC_START1, FLAG_FAMILY_ID_PRESENT,
                            base + k * PAYLOAD_BYTES, PAYLOAD_BYTES, k, n_blocks, family_id)
        out += payload.ljust(_DATA_BYTES, b"\0")
        out += struct.pack("<I", MAGIC_END)
    return bytes(out)


def uf2_to_bin(uf2: bytes, base: int = RP2040_FLASH_BASE,
               family_id: int = RP2040_FAMILY_ID) -> bytes:
    """The flash image a UF2 file writes from ``base`` on (gaps filled with 0xFF, erased flash).

    Raises ValueError naming the first block that is not a well-formed block for this family.
    """
    if not uf2 or len(uf2) % BLOCK_BYTES:
        raise ValueError(f"a UF2 file is whole {BLOCK_BYTES}-byte blocks; this one is "
                         f"{len(uf2)} bytes")
    pages: dict[int, bytes] = {}
    total = len(uf2) // BLOCK_BYTES
    for k in range(total):
        block = uf2[k * BLOCK_BYTES:(k + 1) * BLOCK_BYTES]
        m0, m1, flags, addr, size, number, blocks, family = _HEADER.unpack_from(block)
        (m_end,) = struct.unpack_from("<I", block, BLOCK_BYTES - 4)
        if (m0, m1, m_end) != (MAGIC_START0, MAGIC_START1, MAGIC_END):
            raise ValueError(f"block {k}: bad magic numbers")
        if not flags & FLAG_FAMILY_ID_PRESENT or family != family_id:
            raise ValueError(f"block {k}: family 0x{family:08X}, expected 0x{family_id:08X}")
        if size > _DATA_BYTES or addr < base or addr + size > base + MAX_IMAGE_BYTES:
            raise ValueError(f"block {k}: {size} bytes at 0x{addr:08X} lie outside the flash")
        if number != k or blocks != total:
            raise ValueError(f"block {k}: numbered {number} of {blocks}, expected {k} of {total}")
        pages[addr - base] = block[32:32 + size]
    end = max(offset + len(data) for offset, data in pages.items())
    image = bytearray(b"\xff" * end)
    for offset, data in pages.items():
        image[offset:offset + len(data)] = data
    return bytes(image)


def main(argv: list[str]) -> int:
    """Convert IMAGE.bin to OUT.uf2."""
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    image = Path(argv[1]).read_bytes()
    uf2 = bin_to_uf2(image)
    Path(argv[2]).write_bytes(uf2)
    print(f"{argv[2]}: {len(image)} bytes of flash in {len(uf2) // BLOCK_BYTES} UF2 blocks")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
