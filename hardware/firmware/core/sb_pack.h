/*
 * Line packing: raw ADC codes (unsigned offset binary, adc_bits wide, as the converter
 * delivers them) into each ECHO_LINE sample format.
 *
 *   U8        code >> (adc_bits - 8) when the ADC is wider than 8 bits; the line says 8 bits
 *   I16       code - 2^(adc_bits-1), little endian two's complement
 *   U16_OB    code, little endian
 *   PACKED12  code >> (adc_bits - 12) when wider than 12 bits; two samples a, b in 3 bytes:
 *             a[7:0], a[11:8] | b[3:0] << 4, b[11:4]
 */
#ifndef SB_PACK_H
#define SB_PACK_H

#include <stddef.h>
#include <stdint.h>

/* The adc_bits an ECHO_LINE of this format carries for an ADC of adc_bits. */
uint8_t sb_line_adc_bits(uint8_t fmt, uint8_t adc_bits);

/*
 * Pack n codes (n even for PACKED12) into out; returns the bytes written. Bits above adc_bits
 * in a code are ignored, so a port may hand over raw bus words.
 */
size_t sb_pack(uint8_t *out, const uint16_t *codes, size_t n, uint8_t fmt, uint8_t adc_bits);

#endif
