/*
 * Synthetic front end: a few point reflectors in water-like tissue, a Gaussian-windowed burst,
 * noise before and after the VGA, the TGC curve as the DAC steps it, and a 12-bit ADC.
 * Tables are built at init (libm allowed there); each sample is integer arithmetic.
 */
#ifndef SYNTH_H
#define SYNTH_H

#include <stdint.h>

#include "board_host.h"
#include "sb_device.h"

#define HOST_SCRATCH_MAX HOST_MAX_SAMPLES

typedef struct {
    const sb_board_t *board;
    uint32_t rng;
    uint16_t *codes;
    uint32_t n, delay;
    uint8_t dec;
    int32_t beam;
    uint32_t freq_hz;
    uint8_t cycles;
    uint32_t hv_mv;
    int32_t gain_q12[SB_TGC_TABLE_MAX];
    uint32_t tgc_n;
    int16_t env[65];   /* Gaussian window, Q12, over |x| in 0..64 of the half width */
    int16_t cosine[64]; /* Q12 */
} synth_t;

void synth_init(synth_t *s, const sb_board_t *board, uint32_t seed);
void synth_set_tgc(synth_t *s, const uint16_t *codes, uint32_t n);
/* Fill s->codes with one firing's samples. */
void synth_capture(synth_t *s);

#endif
