/*
 * Prints what a board announces, for tests/firmware to compare with its TOML profile:
 *   line 1: the DEVICE_INFO frame (request_seq 0) in hex, as the device would send it
 *   line 2: the power-up CONFIGURE payload in hex
 *   line 3: tgc_dac_bits tgc_table_len tgc_dac_gain_min_cdb tgc_dac_gain_max_cdb
 *   line 4: the power-up CONFIGURE's verdict from the core's own check (0 = valid)
 *   line 5: the port's send buffer in bytes (its default, which the profile declares)
 * Built once per board with -DBOARD=<symbol> -DBOARD_SEND_BUFFER=<macro> -include <header>.
 */
#include <stdio.h>

#include "sb_config.h"
#include "sb_frame.h"
#include "sb_msg.h"

static void hex(const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf("\n");
}

int main(void)
{
    const sb_board_t *b = &BOARD;
    const sb_config_t *c = &b->defaults;
    uint8_t payload[SB_LEN_DEVICE_INFO], frame[256], cfg[SB_LEN_CONFIGURE];
    sb_verdict_t v;
    size_t n;
    unsigned i;

    n = sb_frame_encode(frame, sizeof frame, SB_MSG_DEVICE_INFO, 0,
                        (b->info.capabilities & SB_CAP_SIMULATED) ? SB_FLAG_SIMULATED : 0,
                        payload, (uint32_t)sb_enc_device_info(payload, 0, &b->info));
    hex(frame, n);
    cfg[0] = c->sample_format;
    cfg[1] = c->decimation;
    cfg[2] = c->ensemble_size;
    cfg[3] = c->pulse_cycles;
    sb_put_u32(cfg + 4, c->samples_per_line);
    sb_put_u32(cfg + 8, c->start_delay_samples);
    sb_put_u32(cfg + 12, c->prf_hz);
    sb_put_u16(cfg + 16, c->lines_per_frame);
    cfg[18] = c->tgc_count;
    cfg[19] = 0;
    sb_put_u32(cfg + 20, (uint32_t)c->sweep_start);
    sb_put_u32(cfg + 24, (uint32_t)c->sweep_end);
    sb_put_u32(cfg + 28, c->pulse_freq_hz);
    sb_put_u32(cfg + 32, c->hv_mv);
    for (i = 0; i < SB_TGC_MAX_POINTS; i++)
        sb_put_u16(cfg + 36 + 2 * i, (uint16_t)c->tgc_cdb[i]);
    hex(cfg, sizeof cfg);
    printf("%u %u %d %d\n", b->tgc_dac_bits, b->tgc_table_len, b->tgc_dac_gain_min_cdb,
           b->tgc_dac_gain_max_cdb);
    sb_config_check(c, &b->info, &v);
    printf("%u %u %s\n", v.code, v.field_id, v.text);
    printf("%lu\n", (unsigned long)BOARD_SEND_BUFFER);
    return 0;
}
