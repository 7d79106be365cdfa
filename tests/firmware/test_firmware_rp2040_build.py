"""The RP2040 port built on the Pico SDK for each board, and the UF2 converter that wraps it.

``make -C hardware/firmware rp2040`` (and ``pic0rick``) is the real build: arm-none-eabi-gcc,
cmake and the SDK that ``.ci/run`` installs and ``../shared/pico-sdk`` holds. The image it
writes must be one the RP2040's boot ROM accepts.
"""

from __future__ import annotations

import importlib.util
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "hardware" / "firmware"


def _load_uf2():  # type: ignore[no-untyped-def]
    """hardware/firmware/tools/uf2.py (a stdlib tool of the firmware, not of the package)."""
    spec = importlib.util.spec_from_file_location("uf2", FIRMWARE / "tools" / "uf2.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["uf2"] = module
    spec.loader.exec_module(module)
    return module


uf2 = _load_uf2()


@given(st.binary(min_size=1, max_size=3000))
def test_uf2_round_trip_and_block_layout(image: bytes) -> None:
    data = uf2.bin_to_uf2(image)
    n = -(-len(image) // 256)
    assert len(data) == 512 * n
    for k in range(n):
        block = data[512 * k: 512 * (k + 1)]
        m0, m1, flags, addr, size, number, total, family = struct.unpack_from("<8I", block)
        assert (m0, m1) == (0x0A324655, 0x9E5D5157)
        assert struct.unpack_from("<I", block, 508)[0] == 0x0AB16F30
        assert flags & 0x2000 and family == 0xE48BFF56  # the RP2040 family id
        assert (addr, size, number, total) == (0x10000000 + 256 * k, 256, k, n)
    # the last page is padded with zeros; the rest comes back byte for byte
    assert uf2.uf2_to_bin(data) == image.ljust(256 * n, b"\0")


@pytest.mark.parametrize(("offset", "value", "message"), [
    (0, 0, "bad magic"),                     # first magic of block 0
    (512 + 28, 0xE48BFF57, "family"),        # block 1 for another chip
    (512 + 20, 7, "numbered 7 of"),          # block 1 out of order
    (512 + 12, 0x30000000, "outside"),       # block 1 beyond the flash
])
def test_uf2_reader_names_the_first_bad_block(offset: int, value: int, message: str) -> None:
    data = bytearray(uf2.bin_to_uf2(bytes(600)))
    struct.pack_into("<I", data, offset, value)
    with pytest.raises(ValueError, match=message):
        uf2.uf2_to_bin(bytes(data))


def test_uf2_writer_refuses_what_cannot_be_flashed() -> None:
    with pytest.raises(ValueError, match="empty"):
        uf2.bin_to_uf2(b"")
    with pytest.raises(ValueError, match="aligned"):
        uf2.bin_to_uf2(b"x", base=0x10000010)
    with pytest.raises(ValueError, match="whole 512-byte blocks"):
        uf2.uf2_to_bin(bytes(100))


def _boot2_crc(data: bytes) -> int:
    """CRC-32 as the RP2040 boot ROM checks boot2: poly 0x04C11DB7, MSB first, init ~0."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


#: make target → (build folder, image name)
IMAGES = {"rp2040": ("build-rp2040", "sonobridge-rp2040"),
          "pic0rick": ("build-pic0rick", "sonobridge-pic0rick")}


@pytest.mark.parametrize("target", sorted(IMAGES))
def test_rp2040_image_builds_and_boots_by_the_rom_rules(target: str) -> None:
    done = subprocess.run(["make", "-C", str(FIRMWARE), target], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    folder, name = IMAGES[target]
    out = FIRMWARE / folder
    m = re.search(rf"{name}: flash (\d+) bytes of 2 MiB, RAM \(data\+bss\) (\d+) "
                  r"bytes of 264 KiB", done.stdout)
    assert m, done.stdout
    flash, ram = int(m[1]), int(m[2])
    image = (out / f"{name}.bin").read_bytes()
    assert flash == len(image) and 0 < flash < 2 * 1024 * 1024
    assert 0 < ram < 264 * 1024
    # the UF2 carries exactly the image
    uf2_image = uf2.uf2_to_bin((out / f"{name}.uf2").read_bytes())
    assert uf2_image == image.ljust(len(uf2_image), b"\0")
    # the boot ROM runs boot2 (the first 256 bytes) only if its CRC-32 matches
    assert struct.unpack_from("<I", image, 252)[0] == _boot2_crc(image[:252])
    # and boot2 then jumps to the vector table right after it: a stack pointer in RAM and a
    # reset handler in flash (Thumb bit set)
    sp, reset = struct.unpack_from("<2I", image, 256)
    assert 0x20000000 < sp <= 0x20042000
    assert 0x10000100 < reset < 0x10000000 + len(image) and reset & 1
