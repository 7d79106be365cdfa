/*
 * The two checksums of protocol v1.
 *
 * header_crc: CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, MSB first, no final XOR).
 * crc32:      zlib CRC-32 (reflected poly 0xEDB88320, init and final XOR 0xFFFFFFFF).
 *
 * Both are table driven. Build with -DSB_CRC_SMALL=1 for 16-entry nibble tables (96 bytes of
 * flash instead of 1536, about half the speed): the choice for a Cortex-M0+ with tight flash.
 * The RP2040 port keeps the 256-entry tables; 2 MB of flash makes speed the scarcer resource.
 *
 * The CRC-32 is streamable: crc = sb_crc32_update(SB_CRC32_INIT, ...) repeatedly, then
 * sb_crc32_final(crc). A frame is encoded and checked without ever being held whole.
 */
#ifndef SB_CRC_H
#define SB_CRC_H

#include <stddef.h>
#include <stdint.h>

#ifndef SB_CRC_SMALL
#define SB_CRC_SMALL 0
#endif

#define SB_CRC16_INIT 0xFFFFu
#define SB_CRC32_INIT 0xFFFFFFFFu

uint16_t sb_crc16_update(uint16_t crc, const uint8_t *data, size_t len);
uint32_t sb_crc32_update(uint32_t crc, const uint8_t *data, size_t len);

static inline uint32_t sb_crc32_final(uint32_t crc)
{
    return crc ^ 0xFFFFFFFFu;
}

static inline uint16_t sb_crc16(const uint8_t *data, size_t len)
{
    return sb_crc16_update(SB_CRC16_INIT, data, len);
}

static inline uint32_t sb_crc32(const uint8_t *data, size_t len)
{
    return sb_crc32_final(sb_crc32_update(SB_CRC32_INIT, data, len));
}

#endif
