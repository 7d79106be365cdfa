#include "board_rp2040.h"

const sb_board_t rp2040_board = {
    {
        1,                   /* protocol_version */
        1, 0, 0,             /* firmware 1.0.0 */
        0,                   /* board_id: main.c fills in the flash unique id at boot */
        "rp2040-reference",
        10,                  /* ADC10065: 10 bits */
        0x0F,                /* U8, I16, U16_OB, PACKED12 */
        SB_SWEEP_FIXED,      /* single element, no mechanism: every line on the same axis */
        SB_CAP_RESET,        /* HV is a fixed rail, the front end is real */
        RP2040_PORT_ACQUISITION,
        -450, 4350,          /* AD8331 in LO gain mode: -4.5..43.5 dB */
        0, 0,                /* sweep range: FIXED */
        RP2040_PORT_TIMING,
        25000, 25000,        /* hv_mv: the board's fixed HV rail (set to yours) */
        0,                   /* transducer_freq_hz: whatever probe is plugged in */
        1000000              /* rated_throughput_bps: USB full-speed CDC ceiling, not measured */
    },
    {
        SB_FMT_PACKED12, 2, 1, 2, /* 30 MS/s, 1.5 bytes per sample */
        4096,                /* samples_per_line: 137 us, 10.5 cm */
        0,                   /* start_delay_samples */
        100,                 /* prf_hz: 6 KB lines at 100 Hz = 614 KB/s, within USB FS */
        32,                  /* lines_per_frame */
        4, 0,                /* tgc_count, reserved */
        0, 0,                /* sweep_start, sweep_end */
        3500000, 25000,      /* pulse_freq_hz, hv_mv */
        {0, 1000, 2000, 3000}
    },
    -450, 4350, /* MCP4812 code 0..1023 spans the AD8331's whole gain range */
    10,         /* tgc_dac_bits */
    64          /* tgc_table_len: one SPI DAC write per step */
};
