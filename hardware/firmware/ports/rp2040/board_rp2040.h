/* The boards the RP2040 port is built for, and the buffer sizes they share. Plain C with no SDK
   dependency, so the host can compile it and check it against
   hardware/boards/rp2040-reference.toml. */
#ifndef BOARD_RP2040_H
#define BOARD_RP2040_H

#include "sb_device.h"

#define RP2040_MAX_SAMPLES 16384u      /* 273 us at 60 MS/s: 21 cm of depth */
#define RP2040_SEND_BUFFER_BYTES 98304u

extern const sb_board_t rp2040_board;   /* board_rp2040.c */
extern const sb_board_t pic0rick_board; /* board_pic0rick.c */

#endif
