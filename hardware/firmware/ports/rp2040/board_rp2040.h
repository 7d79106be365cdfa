/* The boards the RP2040 port is built for, and the buffer sizes they share. Plain C with no SDK
   dependency, so the host can compile it and check it against
   hardware/boards/rp2040-reference.toml. */
#ifndef BOARD_RP2040_H
#define BOARD_RP2040_H

#include "sb_device.h"

#define RP2040_MAX_SAMPLES 16384u      /* 273 us at 60 MS/s: 21 cm of depth */
#define RP2040_SEND_BUFFER_BYTES 98304u

/* DEVICE_INFO fields the port itself sets, the same on every board it is built for (clk_sys
   120 MHz, the PIO programs, DMA, SRAM): adc_rate_hz through max_lines_per_frame ... */
#define RP2040_PORT_ACQUISITION                                                                \
    60000000u,          /* adc_rate_hz: clk_sys 120 MHz / 2 */                                 \
    8,                  /* max_decimation: 7.5 MS/s keeps the ADC above its min clock */       \
    32,                 /* tgc_points_max */                                                   \
    16,                 /* ensemble_max */                                                     \
    8,                  /* pulse_cycles_max */                                                 \
    64,                 /* min_samples_per_line */                                             \
    RP2040_MAX_SAMPLES, /* max_samples_per_line */                                             \
    65535,              /* max_start_delay_samples */                                          \
    256                 /* max_lines_per_frame */

/* ... and prf_hz and pulse_freq_hz, min and max */
#define RP2040_PORT_TIMING                                                                     \
    10, 5000,          /* prf_hz: a firing plus packing must fit in 200 us */                  \
    1000000, 15000000  /* pulse_freq_hz: half periods of 60..4 PIO cycles at 120 MHz */

extern const sb_board_t rp2040_board;   /* board_rp2040.c */
extern const sb_board_t pic0rick_board; /* board_pic0rick.c */

#endif
