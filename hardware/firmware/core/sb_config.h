/*
 * The semantics beyond byte layouts (docs/protocol.md section 7): CONFIGURE validation in the
 * spec's order, nominal beam positions, the TGC curve, and the integer rounding they share.
 * Integer arithmetic only; every product is formed in 64 bits so nothing overflows for any
 * value the wire can carry.
 */
#ifndef SB_CONFIG_H
#define SB_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "sb_msg.h"

/* CONFIGURE field ids (the NAK's field_id) */
enum {
    SB_FIELD_SAMPLE_FORMAT = 1,
    SB_FIELD_DECIMATION,
    SB_FIELD_ENSEMBLE_SIZE,
    SB_FIELD_PULSE_CYCLES,
    SB_FIELD_SAMPLES_PER_LINE,
    SB_FIELD_START_DELAY_SAMPLES,
    SB_FIELD_PRF_HZ,
    SB_FIELD_LINES_PER_FRAME,
    SB_FIELD_TGC_COUNT,
    SB_FIELD_RESERVED,
    SB_FIELD_SWEEP_START,
    SB_FIELD_SWEEP_END,
    SB_FIELD_PULSE_FREQ_HZ,
    SB_FIELD_HV_MV,
    SB_FIELD_TGC_CDB
};

typedef struct {
    uint8_t code;     /* 0 = valid, else SB_NAK_OUT_OF_RANGE / SB_NAK_INVALID_COMBINATION */
    uint8_t field_id;
    char text[96];    /* NUL terminated, for the NAK */
} sb_verdict_t;

/* The first rule cfg breaks on a device announcing info (spec order), or code 0. */
void sb_config_check(const sb_config_t *cfg, const sb_info_t *info, sb_verdict_t *out);

/* Bytes n samples take in fmt; -1 if impossible (odd count in PACKED12, unknown format). */
int64_t sb_sample_nbytes(uint8_t fmt, uint32_t n);

/* num / den rounded to nearest, ties to even (what the Python host's round() does); den > 0 */
int64_t sb_div_round_even(int64_t num, int64_t den);

/* adc_rate_hz / decimation, rounded */
uint32_t sb_sample_rate_hz(const sb_info_t *info, const sb_config_t *cfg);

/* Nominal position of line i: sweep_start + i * (end - start) / (n - 1), rounded. */
int32_t sb_nominal_position(const sb_config_t *cfg, uint16_t line);

/* TGC gain (0.01 dB, rounded) at sample s of a line: points spread evenly, linear between. */
int32_t sb_tgc_gain_cdb(const sb_config_t *cfg, uint32_t sample);

/*
 * The TGC curve as n DAC codes for entries spread evenly from the first to the last sample.
 * Code 0 gives dac_gain_min_cdb and code dac_max gives dac_gain_max_cdb (a VGA whose gain is
 * linear in dB in its control voltage, like the AD8331). The curve is evaluated exactly and
 * rounded once, at the DAC's resolution; codes are clamped to 0..dac_max.
 */
void sb_tgc_table(const sb_config_t *cfg, int32_t dac_gain_min_cdb, int32_t dac_gain_max_cdb,
                  uint32_t dac_max, uint16_t *codes, uint32_t n);

#endif
