#include "board_host.h"

const sb_board_t host_board = {
    {
        1,                  /* protocol_version */
        1, 0, 0,            /* firmware 1.0.0 */
        0x46574831u,        /* board_id "FWH1" */
        "sonobridge-fw-host",
        12,                 /* adc_bits: a 12-bit converter, so PACKED12 carries it whole */
        0x0F,               /* U8, I16, U16_OB, PACKED12 */
        SB_SWEEP_SECTOR,
        SB_CAP_RESET | SB_CAP_HV_CONTROL | SB_CAP_SIMULATED,
        40000000u,          /* adc_rate_hz */
        8,                  /* max_decimation */
        32,                 /* tgc_points_max */
        16,                 /* ensemble_max */
        8,                  /* pulse_cycles_max */
        16,                 /* min_samples_per_line */
        HOST_MAX_SAMPLES,   /* max_samples_per_line */
        65535,              /* max_start_delay_samples */
        256,                /* max_lines_per_frame */
        -450, 4350,         /* gain range: an AD8331's -4.5..43.5 dB */
        -523599, 523599,    /* +-30 degrees in microradians */
        10, 20000,          /* prf_hz */
        1000000, 15000000,  /* pulse_freq_hz */
        5000, 100000,       /* hv_mv */
        5000000,            /* transducer_freq_hz */
        20000000            /* rated_throughput_bps */
    },
    {
        SB_FMT_I16, 2, 1, 2, /* 20 MS/s */
        2048,               /* samples_per_line: 102 us, 79 mm */
        0,                  /* start_delay_samples */
        1000,               /* prf_hz */
        64,                 /* lines_per_frame */
        4, 0,               /* tgc_count, reserved */
        -523599, 523599,
        5000000, 48000,
        {0, 1000, 2000, 3000}
    },
    -450, 4350, /* the DAC spans the VGA's whole range */
    12,         /* tgc_dac_bits */
    128         /* tgc_table_len */
};
