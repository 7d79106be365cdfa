#include "synth.h"

#include <math.h>
#include <string.h>

typedef struct {
    int64_t range_um;
    int32_t angle_urad;
    int32_t amplitude; /* ADC LSB before the VGA, at 48 V */
} reflector_t;

/* A phantom: a wire at 1 cm straight ahead, two off axis, a deep weak one and a pair at 6 cm
   that only a narrow beam separates. Deeper targets are weaker, as attenuation makes them. */
static const reflector_t phantom[] = {
    {10000, 0, 120},  {25000, -200000, 90}, {40000, 150000, 75},
    {55000, 0, 36},   {60000, -50000, 24},  {60000, 50000, 24},
};

#define SOUND_UM_PER_S 1540000000LL
#define BEAM_WIDTH_URAD 60000

static int32_t scratch[HOST_SCRATCH_MAX];

static uint32_t xorshift(uint32_t *st)
{
    uint32_t x = *st;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *st = x;
    return x;
}

void synth_init(synth_t *s, const sb_board_t *board, uint32_t seed)
{
    int i;
    memset(s, 0, sizeof *s);
    s->board = board;
    s->rng = seed ? seed : 1u;
    s->hv_mv = board->defaults.hv_mv;
    for (i = 0; i <= 64; i++) {
        double x = i / 64.0 * 2.5; /* the window ends at 2.5 sigma */
        s->env[i] = (int16_t)lround(4096.0 * exp(-0.5 * x * x));
    }
    for (i = 0; i < 64; i++)
        s->cosine[i] = (int16_t)lround(4096.0 * cos(2.0 * 3.14159265358979 * i / 64.0));
    s->gain_q12[0] = 4096;
    s->tgc_n = 1;
}

void synth_set_tgc(synth_t *s, const uint16_t *codes, uint32_t n)
{
    const sb_board_t *b = s->board;
    double dac_max = (double)((1u << b->tgc_dac_bits) - 1u);
    uint32_t j;
    if (n > SB_TGC_TABLE_MAX)
        n = SB_TGC_TABLE_MAX;
    for (j = 0; j < n; j++) {
        double cdb = b->tgc_dac_gain_min_cdb +
                     codes[j] * (double)(b->tgc_dac_gain_max_cdb - b->tgc_dac_gain_min_cdb) /
                         dac_max;
        s->gain_q12[j] = (int32_t)lround(4096.0 * pow(10.0, cdb / 2000.0));
    }
    s->tgc_n = n ? n : 1;
}

static int32_t noise(uint32_t *rng, int shift)
{
    /* the sum of four uniform bytes is near enough to Gaussian (sd 148) */
    uint32_t r = xorshift(rng);
    int32_t sum = (int32_t)(r & 0xFF) + (int32_t)((r >> 8) & 0xFF) + (int32_t)((r >> 16) & 0xFF) +
                  (int32_t)(r >> 24) - 510;
    return sum / (1 << shift);
}

void synth_capture(synth_t *s)
{
    const sb_info_t *in = &s->board->info;
    uint32_t k, r;
    int32_t zero = 1 << (in->adc_bits - 1);
    int32_t top = (1 << in->adc_bits) - 1;
    uint32_t n = s->n < HOST_SCRATCH_MAX ? s->n : HOST_SCRATCH_MAX;
    uint32_t f0 = s->freq_hz ? s->freq_hz : 1;
    /* half width of the burst window in ADC ticks: the burst plus a cycle of ring-down */
    int64_t half = ((int64_t)(s->cycles + 1) * in->adc_rate_hz) / f0;
    if (half < 2)
        half = 2;

    for (k = 0; k < n; k++)
        scratch[k] = noise(&s->rng, 7); /* input-referred noise: sd about 1.2 LSB */

    for (r = 0; r < sizeof phantom / sizeof phantom[0]; r++) {
        const reflector_t *p = &phantom[r];
        int64_t t_echo = 2 * p->range_um * in->adc_rate_hz / SOUND_UM_PER_S;
        int64_t off_beam = p->angle_urad - s->beam;
        int64_t lat, first, last, kk;
        int32_t amp;
        if (off_beam < 0)
            off_beam = -off_beam;
        lat = off_beam * 64 / BEAM_WIDTH_URAD;
        if (lat > 64)
            continue;
        amp = (int32_t)((int64_t)p->amplitude * s->env[lat] / 4096 * s->hv_mv / 48000);
        /* samples whose time (delay + k) * dec lies within the window */
        first = (t_echo - half) / s->dec - s->delay;
        last = (t_echo + half) / s->dec - s->delay;
        if (first < 0)
            first = 0;
        if (last >= (int64_t)n)
            last = (int64_t)n - 1;
        for (kk = first; kk <= last; kk++) {
            int64_t t = ((int64_t)s->delay + kk) * s->dec - t_echo;
            int64_t a = (t < 0 ? -t : t) * 64 / half;
            uint32_t phase = (uint32_t)(((uint64_t)(t * (int64_t)f0 * 64 / in->adc_rate_hz)) & 63u);
            if (a > 64)
                continue;
            scratch[kk] += (int32_t)((int64_t)amp * s->env[a] / 4096 * s->cosine[phase] / 4096);
        }
    }

    for (k = 0; k < n; k++) {
        /* the stepped DAC: entry nearest below this sample's place on the line */
        uint32_t j = n > 1 ? (uint32_t)((uint64_t)k * (s->tgc_n - 1) / (n - 1)) : 0;
        int64_t v = ((int64_t)scratch[k] * s->gain_q12[j]) / 4096 + zero + noise(&s->rng, 7);
        if (v < 0)
            v = 0;
        if (v > top)
            v = top;
        s->codes[k] = (uint16_t)v;
    }
    for (; k < s->n; k++)
        s->codes[k] = (uint16_t)zero;
}
