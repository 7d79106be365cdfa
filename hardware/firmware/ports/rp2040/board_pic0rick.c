#include "board_rp2040.h"

/* The pic0rick (kelu124/pic0rick) running the sonobridge firmware: what it announces. Plain C
   with no SDK dependency, so the host can compile it and check it against
   hardware/boards/pic0rick.toml. The converter, gain and pulser facts are the board's own
   (../shared/boards/README.md); the RP2040 side is this port's. */
const sb_board_t pic0rick_board = {
    {
        1,                   /* protocol_version */
        1, 0, 0,             /* firmware 1.0.0 */
        0,                   /* board_id: main.c fills in the flash unique id at boot */
        "pic0rick",
        10,                  /* a 10-bit parallel ADC */
        0x0F,                /* U8, I16, U16_OB, PACKED12 */
        SB_SWEEP_FIXED,      /* one element, no mechanism */
        SB_CAP_RESET,        /* no HV control or sense: the pulser's rail is fixed on the board */
        RP2040_PORT_ACQUISITION,
        750, 5550,           /* the AD8331 as the board's README gives it: 7.5..55.5 dB */
        0, 0,                /* sweep range: FIXED */
        RP2040_PORT_TIMING,
        0, 0,                /* hv_mv: the board does not report its HV rail */
        0,                   /* transducer_freq_hz: whatever probe is plugged in */
        1000000              /* rated_throughput_bps: USB full-speed CDC ceiling, not measured */
    },
    {
        SB_FMT_PACKED12, 2, 1, 2, /* 30 MS/s, 1.5 bytes per sample */
        4096,                /* samples_per_line: 137 us, 10.5 cm */
        0,                   /* start_delay_samples */
        100,                 /* prf_hz: 6 KB lines at 100 Hz = 614 KB/s, within USB FS */
        1,                   /* lines_per_frame: one element, one line per frame */
        4, 0,                /* tgc_count, reserved */
        0, 0,                /* sweep_start, sweep_end */
        3500000, 0,          /* pulse_freq_hz, hv_mv */
        {1000, 2000, 3000, 4000} /* within the 7.5..55.5 dB range */
    },
    750, 5550, /* MCP4812 codes 0..1023 taken to span the gain range: nominal, calibrate */
    10,        /* tgc_dac_bits */
    64         /* tgc_table_len: one SPI DAC write per step */
};
