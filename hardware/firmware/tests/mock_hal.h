/* Scripted hardware for the device tests and the fuzz driver: a fake clock and a memory link. */
#ifndef MOCK_HAL_H
#define MOCK_HAL_H

#include <stddef.h>
#include <stdint.h>

#include "sb_device.h"

#define MOCK_OUT_CAP (1u << 20)

typedef struct {
    uint64_t now;
    uint64_t tick;        /* clock advance per now_us call */
    uint8_t *out;         /* MOCK_OUT_CAP bytes */
    size_t out_len;
    size_t space;         /* what link_space reports */
    int capture_out;      /* 0: count bytes only (fuzzing) */
    int overflowed;
    uint32_t pulses;
    uint32_t armed_n, armed_delay;
    uint8_t armed_dec;
    uint32_t last_freq;
    uint8_t last_cycles;
    int32_t moves[512];
    uint32_t n_moves;
    uint16_t tgc[SB_TGC_TABLE_MAX];
    size_t tgc_n;
    uint32_t tgc_writes;
    uint8_t faults;
    int adc_fault;
    uint32_t resets;
    uint64_t fire_times[64];
    uint16_t *codes;
    uint32_t n_codes;
} mock_t;

void mock_init(mock_t *m, uint8_t *out_storage);
void mock_hal(mock_t *m, sb_hal_t *hal);
extern const sb_board_t mock_board;

/* A frame the device sent, split out of the mock's output (CRCs checked). */
typedef struct {
    uint8_t type, flags;
    uint32_t seq, plen;
    const uint8_t *payload;
} out_frame_t;

/* Splits m->out from offset *pos; returns the number of frames, -1 on a malformed stream. */
int mock_frames(const mock_t *m, size_t *pos, out_frame_t *frames, int max);

#endif
