#include "sb_config.h"

#include <string.h>

#include "sb_wire.h"

/* -- a tiny formatter: no stdio on the device ------------------------------------------------ */

typedef struct {
    char *buf;
    size_t cap;
    size_t len;
} sb_str_t;

static void s_cat(sb_str_t *s, const char *t)
{
    while (*t && s->len + 1 < s->cap)
        s->buf[s->len++] = *t++;
    s->buf[s->len] = '\0';
}

static void s_int(sb_str_t *s, int64_t v)
{
    char tmp[24];
    int i = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[i++] = (char)('0' + (int)(u % 10u));
        u /= 10u;
    } while (u);
    if (v < 0)
        tmp[i++] = '-';
    while (i > 0 && s->len + 1 < s->cap)
        s->buf[s->len++] = tmp[--i];
    s->buf[s->len] = '\0';
}

static void set(sb_verdict_t *out, uint8_t code, uint8_t field)
{
    out->code = code;
    out->field_id = field;
}

static int range(sb_verdict_t *out, uint8_t field, const char *name, int64_t v, int64_t lo,
                 int64_t hi)
{
    sb_str_t s;
    if (v >= lo && v <= hi)
        return 0;
    set(out, SB_NAK_OUT_OF_RANGE, field);
    s.buf = out->text;
    s.cap = sizeof out->text;
    s.len = 0;
    s_cat(&s, name);
    s_cat(&s, " = ");
    s_int(&s, v);
    s_cat(&s, " is out of range; allowed: ");
    s_int(&s, lo);
    s_cat(&s, "..");
    s_int(&s, hi);
    return 1;
}

static void say(sb_verdict_t *out, uint8_t code, uint8_t field, const char *text)
{
    sb_str_t s;
    set(out, code, field);
    s.buf = out->text;
    s.cap = sizeof out->text;
    s.len = 0;
    s_cat(&s, text);
}

int64_t sb_sample_nbytes(uint8_t fmt, uint32_t n)
{
    switch (fmt) {
    case SB_FMT_U8:
        return n;
    case SB_FMT_I16:
    case SB_FMT_U16_OB:
        return 2 * (int64_t)n;
    case SB_FMT_PACKED12:
        return (n & 1u) ? -1 : 3 * (int64_t)(n >> 1);
    default:
        return -1;
    }
}

void sb_config_check(const sb_config_t *c, const sb_info_t *in, sb_verdict_t *out)
{
    uint32_t hv_hi = (in->capabilities & SB_CAP_HV_CONTROL) ? in->hv_max_mv : in->hv_min_mv;
    int64_t nbytes;
    unsigned i;
    uint64_t window;

    set(out, 0, 0);
    out->text[0] = '\0';
    /* step 1 (payload length) is the parser's: only a 100-byte payload decodes */
    if (c->sample_format > 7 || !(in->sample_formats & (1u << c->sample_format))) {
        say(out, SB_NAK_OUT_OF_RANGE, SB_FIELD_SAMPLE_FORMAT,
            "sample_format is not one of the device's sample_formats");
        return;
    }
    if (range(out, SB_FIELD_DECIMATION, "decimation", c->decimation, 1, in->max_decimation) ||
        range(out, SB_FIELD_ENSEMBLE_SIZE, "ensemble_size", c->ensemble_size, 1,
              in->ensemble_max) ||
        range(out, SB_FIELD_PULSE_CYCLES, "pulse_cycles", c->pulse_cycles, 1,
              in->pulse_cycles_max) ||
        range(out, SB_FIELD_SAMPLES_PER_LINE, "samples_per_line", c->samples_per_line,
              in->min_samples_per_line, in->max_samples_per_line) ||
        range(out, SB_FIELD_START_DELAY_SAMPLES, "start_delay_samples", c->start_delay_samples,
              0, in->max_start_delay_samples) ||
        range(out, SB_FIELD_PRF_HZ, "prf_hz", c->prf_hz, in->prf_min_hz, in->prf_max_hz) ||
        range(out, SB_FIELD_LINES_PER_FRAME, "lines_per_frame", c->lines_per_frame, 1,
              in->max_lines_per_frame) ||
        range(out, SB_FIELD_TGC_COUNT, "tgc_count", c->tgc_count, 1, in->tgc_points_max) ||
        /* field 10 (reserved) is never reported */
        range(out, SB_FIELD_SWEEP_START, "sweep_start", c->sweep_start, in->sweep_min,
              in->sweep_max) ||
        range(out, SB_FIELD_SWEEP_END, "sweep_end", c->sweep_end, in->sweep_min, in->sweep_max) ||
        range(out, SB_FIELD_PULSE_FREQ_HZ, "pulse_freq_hz", c->pulse_freq_hz,
              in->pulse_freq_min_hz, in->pulse_freq_max_hz) ||
        range(out, SB_FIELD_HV_MV, "hv_mv", c->hv_mv, in->hv_min_mv, hv_hi))
        return;
    for (i = 0; i < SB_TGC_MAX_POINTS; i++) {
        int bad = i < c->tgc_count
                      ? (c->tgc_cdb[i] < in->gain_min_cdb || c->tgc_cdb[i] > in->gain_max_cdb)
                      : c->tgc_cdb[i] != 0;
        if (bad) {
            sb_str_t s;
            say(out, SB_NAK_OUT_OF_RANGE, SB_FIELD_TGC_CDB, "tgc_cdb[");
            s.buf = out->text;
            s.cap = sizeof out->text;
            s.len = strlen(out->text);
            s_int(&s, i);
            s_cat(&s, "] = ");
            s_int(&s, c->tgc_cdb[i]);
            s_cat(&s, " is out of range; allowed: ");
            s_int(&s, in->gain_min_cdb);
            s_cat(&s, "..");
            s_int(&s, in->gain_max_cdb);
            s_cat(&s, ", 0 past tgc_count");
            return;
        }
    }
    nbytes = sb_sample_nbytes(c->sample_format, c->samples_per_line);
    if (nbytes < 0) {
        say(out, SB_NAK_INVALID_COMBINATION, SB_FIELD_SAMPLES_PER_LINE,
            "PACKED12 needs an even samples_per_line");
        return;
    }
    if (SB_LEN_ECHO_HEADER + nbytes > SB_MAX_PAYLOAD) {
        say(out, SB_NAK_INVALID_COMBINATION, SB_FIELD_SAMPLES_PER_LINE,
            "a line must fit in one frame (40 + sample bytes <= 131072)");
        return;
    }
    /* (delay + n) * decimation / adc_rate < 1 / prf, cross-multiplied: exact in 64 bits */
    window = ((uint64_t)c->start_delay_samples + c->samples_per_line) * c->decimation;
    if (window * c->prf_hz >= in->adc_rate_hz) {
        say(out, SB_NAK_INVALID_COMBINATION, SB_FIELD_PRF_HZ,
            "the acquisition window must fit in one pulse period: lower prf_hz");
        return;
    }
}

int64_t sb_div_round_even(int64_t num, int64_t den)
{
    int64_t q = num / den;
    int64_t r = num % den;
    /* C truncates toward zero; make it a floor division with 0 <= r < den */
    if (r < 0) {
        q -= 1;
        r += den;
    }
    if (2 * r > den || (2 * r == den && (q & 1)))
        q += 1;
    return q;
}

uint32_t sb_sample_rate_hz(const sb_info_t *info, const sb_config_t *cfg)
{
    uint8_t d = cfg->decimation ? cfg->decimation : 1;
    return (uint32_t)sb_div_round_even(info->adc_rate_hz, d);
}

int32_t sb_nominal_position(const sb_config_t *cfg, uint16_t line)
{
    int64_t span = (int64_t)cfg->sweep_end - cfg->sweep_start;
    int64_t den = (int64_t)cfg->lines_per_frame - 1;
    if (cfg->lines_per_frame <= 1)
        return cfg->sweep_start;
    /* round the position, not the step: ties must land where the host's round() puts them */
    return (int32_t)sb_div_round_even((int64_t)cfg->sweep_start * den + (int64_t)line * span,
                                      den);
}

/*
 * The curve at position j/e of the line (0 <= j <= e, e > 0), as a fraction num / e in 0.01 dB.
 * Point k sits at k/d of the line (d = tgc_count - 1), so the segment is k = floor(j*d/e) and
 * the weight of point k+1 is (j*d - k*e)/e: exact, and independent of the line length.
 */
static int64_t tgc_num(const sb_config_t *cfg, uint64_t j, uint64_t e)
{
    uint64_t d, k, w;
    int64_t g0, g1;
    if (cfg->tgc_count <= 1)
        return (int64_t)cfg->tgc_cdb[0] * (int64_t)e;
    d = (uint64_t)cfg->tgc_count - 1u;
    k = j * d / e;
    if (k >= d)
        k = d - 1u;
    w = j * d - k * e;
    g0 = cfg->tgc_cdb[k];
    g1 = cfg->tgc_cdb[k + 1];
    return g0 * (int64_t)e + (g1 - g0) * (int64_t)w;
}

int32_t sb_tgc_gain_cdb(const sb_config_t *cfg, uint32_t sample)
{
    uint64_t e = cfg->samples_per_line > 1 ? cfg->samples_per_line - 1u : 1u;
    if (sample > e)
        sample = (uint32_t)e;
    if (cfg->samples_per_line < 2)
        return cfg->tgc_cdb[0];
    return (int32_t)sb_div_round_even(tgc_num(cfg, sample, e), (int64_t)e);
}

void sb_tgc_table(const sb_config_t *cfg, int32_t dac_gain_min_cdb, int32_t dac_gain_max_cdb,
                  uint32_t dac_max, uint16_t *codes, uint32_t n)
{
    uint32_t j;
    int64_t span = (int64_t)dac_gain_max_cdb - dac_gain_min_cdb;
    uint64_t e = n > 1 ? n - 1u : 1u;
    if (span <= 0)
        span = 1;
    for (j = 0; j < n; j++) {
        int64_t g = n > 1 ? tgc_num(cfg, j, e) : (int64_t)cfg->tgc_cdb[0];
        int64_t ge = n > 1 ? (int64_t)e : 1;
        /* code = (g/ge - gmin) * dac_max / span, rounded once */
        int64_t code = sb_div_round_even((g - (int64_t)dac_gain_min_cdb * ge) * (int64_t)dac_max,
                                         ge * span);
        if (code < 0)
            code = 0;
        if (code > (int64_t)dac_max)
            code = dac_max;
        codes[j] = (uint16_t)code;
    }
}
