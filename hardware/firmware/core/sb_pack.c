#include "sb_pack.h"

#include "sb_wire.h"

uint8_t sb_line_adc_bits(uint8_t fmt, uint8_t adc_bits)
{
    if (fmt == SB_FMT_U8 && adc_bits > 8)
        return 8;
    if (fmt == SB_FMT_PACKED12 && adc_bits > 12)
        return 12;
    return adc_bits;
}

size_t sb_pack(uint8_t *out, const uint16_t *codes, size_t n, uint8_t fmt, uint8_t adc_bits)
{
    size_t i;
    uint8_t bits = adc_bits == 0 || adc_bits > 16 ? 16 : adc_bits;
    uint16_t mask = (uint16_t)(bits >= 16 ? 0xFFFFu : (1u << bits) - 1u);
    uint8_t shift = (uint8_t)(bits - sb_line_adc_bits(fmt, bits));

    switch (fmt) {
    case SB_FMT_U8:
        for (i = 0; i < n; i++)
            out[i] = (uint8_t)((codes[i] & mask) >> shift);
        return n;
    case SB_FMT_I16: {
        uint16_t zero = (uint16_t)(1u << (bits - 1));
        for (i = 0; i < n; i++) {
            /* offset binary to two's complement is a subtraction modulo 2^16 */
            uint16_t v = (uint16_t)((codes[i] & mask) - zero);
            out[2 * i] = (uint8_t)v;
            out[2 * i + 1] = (uint8_t)(v >> 8);
        }
        return 2 * n;
    }
    case SB_FMT_U16_OB:
        for (i = 0; i < n; i++) {
            uint16_t v = (uint16_t)(codes[i] & mask);
            out[2 * i] = (uint8_t)v;
            out[2 * i + 1] = (uint8_t)(v >> 8);
        }
        return 2 * n;
    case SB_FMT_PACKED12: {
        uint8_t *o = out;
        for (i = 0; i + 1 < n; i += 2) {
            uint16_t a = (uint16_t)((codes[i] & mask) >> shift);
            uint16_t b = (uint16_t)((codes[i + 1] & mask) >> shift);
            o[0] = (uint8_t)a;
            o[1] = (uint8_t)(((a >> 8) & 0x0Fu) | ((b & 0x0Fu) << 4));
            o[2] = (uint8_t)(b >> 4);
            o += 3;
        }
        return (size_t)(o - out);
    }
    default:
        return 0;
    }
}
