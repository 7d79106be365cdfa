#!/usr/bin/env python3
"""Print the CRC lookup tables of core/sb_crc.c (run it to regenerate them; stdlib only)."""


def crc16_entry(i: int, bits: int) -> int:
    # CRC-16/CCITT-FALSE is MSB first: the index enters at the top of the register.
    c = i << (16 - bits)
    for _ in range(bits):
        c = ((c << 1) ^ 0x1021) & 0xFFFF if c & 0x8000 else (c << 1) & 0xFFFF
    return c


def crc32_entry(i: int, bits: int) -> int:
    # zlib's CRC-32 is reflected: the index enters at the bottom.
    c = i
    for _ in range(bits):
        c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
    return c


def table(name: str, ctype: str, values: list[int], width: int, per_line: int) -> str:
    rows = []
    for i in range(0, len(values), per_line):
        rows.append("    " + ", ".join(f"0x{v:0{width}X}u" for v in values[i:i + per_line]))
    return f"static const {ctype} {name}[{len(values)}] = {{\n" + ",\n".join(rows) + "\n};"


if __name__ == "__main__":
    print("#if SB_CRC_SMALL")
    print(table("crc16_tab", "uint16_t", [crc16_entry(i, 4) for i in range(16)], 4, 8))
    print(table("crc32_tab", "uint32_t", [crc32_entry(i, 4) for i in range(16)], 8, 4))
    print("#else")
    print(table("crc16_tab", "uint16_t", [crc16_entry(i, 8) for i in range(256)], 4, 8))
    print(table("crc32_tab", "uint32_t", [crc32_entry(i, 8) for i in range(256)], 8, 6))
    print("#endif")
