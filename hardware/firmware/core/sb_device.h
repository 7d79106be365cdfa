/*
 * The device side of protocol v1: command handling and acquisition sequencing.
 *
 * A port owns the main loop: it hands received bytes to sb_device_rx, calls sb_device_poll
 * often enough (at least every 1/prf_max, and by sb_device_next_due_us, which includes the
 * partial-frame timeout of an idle link), and drains what the core wrote through the HAL.
 * The core never blocks except inside one firing (adc_wait), which lasts less than a pulse
 * period, so commands are answered within a period even while streaming.
 */
#ifndef SB_DEVICE_H
#define SB_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "sb_frame.h"
#include "sb_hal.h"
#include "sb_msg.h"
#include "sb_parser.h"

#define SB_TGC_TABLE_MAX 256u

/* Bytes kept free in the link for replies when a line is queued: two maximum PONGs. */
#define SB_REPLY_HEADROOM (2u * SB_FRAME_LEN(SB_LEN_PONG_MIN + SB_MAX_PING_DATA))

typedef struct {
    sb_info_t info;
    sb_config_t defaults;       /* the power-up CONFIGURE; must pass sb_config_check */
    int16_t tgc_dac_gain_min_cdb; /* gain at DAC code 0 */
    int16_t tgc_dac_gain_max_cdb; /* gain at the largest code */
    uint8_t tgc_dac_bits;
    uint16_t tgc_table_len;     /* entries per line, <= SB_TGC_TABLE_MAX */
} sb_board_t;

typedef struct {
    const sb_board_t *board;
    const sb_hal_t *hal;
    sb_parser_t parser;

    uint32_t tx_seq;
    uint8_t tx_flags;
    sb_config_t cfg;
    uint16_t config_id;
    uint8_t state;
    uint8_t fault_flags; /* sticky: overflow, and ADC faults seen */
    uint32_t dropped_lines;
    uint32_t lines_sent;
    uint32_t tx_dropped; /* non-line frames the link had no room for */
    uint8_t reset_pending;

    /* the last handled command and its reply, for RETRY */
    uint8_t have_last;
    uint32_t last_seq;
    uint8_t last_type;
    uint32_t last_len;
    uint8_t last_reply[SB_LEN_PONG_MIN + SB_MAX_PING_DATA];
    /* replies that are not remembered: NAKs of rejected frames, LOG, unsolicited DEVICE_INFO */
    uint8_t aux[SB_LEN_DEVICE_INFO + 16];

    /* acquisition */
    uint16_t *samples;
    uint32_t samples_cap;
    uint16_t tgc_codes[SB_TGC_TABLE_MAX];
    uint32_t n_frames;
    uint32_t frames_done;
    uint32_t frame_index;
    uint16_t line;
    uint8_t ens;
    uint16_t frame_lines_sent;
    int32_t position;
    uint64_t anchor_us;  /* grid point k of this schedule is at anchor + ceil(k/prf) */
    uint64_t k;          /* grid point of the next firing */
    uint64_t next_due_us;
    uint8_t overflow_logged;
    uint8_t chunk[192]; /* packing buffer: a multiple of 2, 3 and 6 bytes */
} sb_device_t;

/*
 * samples: room for board->info.max_samples_per_line raw codes (the port's largest RAM user).
 * Sends nothing; call sb_device_announce to send an unsolicited DEVICE_INFO.
 */
void sb_device_init(sb_device_t *dev, const sb_board_t *board, const sb_hal_t *hal,
                    uint16_t *samples, uint32_t samples_cap);
void sb_device_rx(sb_device_t *dev, const uint8_t *data, size_t len);
void sb_device_poll(sb_device_t *dev);
void sb_device_announce(sb_device_t *dev);
void sb_device_log(sb_device_t *dev, uint8_t level, const char *text);
/* When sb_device_poll next has work (device clock): the next firing, or abandoning a partial
   command after its idle gap; UINT64_MAX when neither is pending. A port may sleep until then
   (or until bytes arrive). */
uint64_t sb_device_next_due_us(const sb_device_t *dev);

#endif
