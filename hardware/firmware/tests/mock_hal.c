#include "mock_hal.h"

#include <string.h>

#include "sb_crc.h"

/* The sim board of tests/vectors (08_device_info), so expectations can be read off the spec. */
const sb_board_t mock_board = {
    {1, 1, 2, 3, 0xC0FFEEu, "sonobridge-test", 10, 0x0F, 1, 0x07, 40000000u, 8, 32, 16, 8, 64,
     32768, 65535, 256, -1000, 4000, -523599, 523599, 10, 20000, 1000000, 15000000, 5000,
     100000, 5000000, 35000000},
    {1, 1, 1, 2, 128, 0, 1000, 4, 2, 0, -1000, 1000, 5000000, 48000, {0, 1000}},
    -450, 4350, 12, 16};

static uint64_t m_now(void *ctx)
{
    mock_t *m = (mock_t *)ctx;
    m->now += m->tick;
    return m->now;
}

static void m_write(void *ctx, const uint8_t *data, size_t len)
{
    mock_t *m = (mock_t *)ctx;
    if (!m->capture_out) {
        m->out_len += len;
        return;
    }
    if (m->out_len + len > MOCK_OUT_CAP) {
        m->overflowed = 1; /* a test that produces this much output is broken */
        return;
    }
    memcpy(m->out + m->out_len, data, len);
    m->out_len += len;
}

static size_t m_space(void *ctx)
{
    return ((mock_t *)ctx)->space;
}

static void m_tgc(void *ctx, const uint16_t *codes, size_t n)
{
    mock_t *m = (mock_t *)ctx;
    memcpy(m->tgc, codes, n * sizeof codes[0]);
    m->tgc_n = n;
    m->tgc_writes++;
}

static int32_t m_move(void *ctx, int32_t nominal)
{
    mock_t *m = (mock_t *)ctx;
    if (m->n_moves < 512)
        m->moves[m->n_moves] = nominal;
    m->n_moves++;
    return nominal + 1; /* a mechanism that overshoots by one: the line reports the actual */
}

static void m_arm(void *ctx, uint16_t *codes, uint32_t n, uint32_t delay, uint8_t dec)
{
    mock_t *m = (mock_t *)ctx;
    m->codes = codes;
    m->n_codes = n;
    m->armed_n = n;
    m->armed_delay = delay;
    m->armed_dec = dec;
}

static void m_fire(void *ctx, uint32_t freq, uint8_t cycles)
{
    mock_t *m = (mock_t *)ctx;
    if (m->pulses < 64)
        m->fire_times[m->pulses] = m->now;
    m->pulses++;
    m->last_freq = freq;
    m->last_cycles = cycles;
}

static int m_wait(void *ctx)
{
    mock_t *m = (mock_t *)ctx;
    uint32_t i;
    for (i = 0; i < m->n_codes; i++)
        m->codes[i] = (uint16_t)((m->pulses * 7u + i) & 0x3FFu);
    return m->adc_fault;
}

static uint8_t m_faults(void *ctx)
{
    return ((mock_t *)ctx)->faults;
}

static void m_reset(void *ctx)
{
    ((mock_t *)ctx)->resets++;
}

void mock_init(mock_t *m, uint8_t *out_storage)
{
    memset(m, 0, sizeof *m);
    m->out = out_storage;
    m->tick = 1;
    m->space = 1u << 30;
    m->capture_out = 1;
}

void mock_hal(mock_t *m, sb_hal_t *hal)
{
    memset(hal, 0, sizeof *hal);
    hal->ctx = m;
    hal->now_us = m_now;
    hal->link_write = m_write;
    hal->link_space = m_space;
    hal->tgc_write = m_tgc;
    hal->sweep_move = m_move;
    hal->adc_arm = m_arm;
    hal->pulse_fire = m_fire;
    hal->adc_wait = m_wait;
    hal->faults = m_faults;
    hal->front_end_reset = m_reset;
}

int mock_frames(const mock_t *m, size_t *pos, out_frame_t *frames, int max)
{
    int n = 0;
    size_t at = *pos;
    if (m->overflowed)
        return -1;
    while (at < m->out_len && n < max) {
        const uint8_t *f = m->out + at;
        uint32_t plen, flen;
        if (m->out_len - at < 20 || f[0] != SB_SYNC0 || f[1] != SB_SYNC1 || f[2] != 1 ||
            sb_crc16(f, 14) != sb_get_u16(f + 14))
            return -1;
        plen = sb_get_u32(f + 4);
        flen = SB_FRAME_LEN(plen);
        if (m->out_len - at < flen || sb_crc32(f, flen - 4) != sb_get_u32(f + flen - 4))
            return -1;
        frames[n].type = f[3];
        frames[n].flags = f[12];
        frames[n].seq = sb_get_u32(f + 8);
        frames[n].plen = plen;
        frames[n].payload = f + 16;
        n++;
        at += flen;
    }
    *pos = at;
    return n;
}
