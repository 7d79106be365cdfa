/*
 * The hardware the device core drives, as a table of function pointers a port fills in.
 * Pointers rather than link-time symbols so the unit tests can run the core against scripted
 * hardware in one binary, and so one firmware image could carry two front ends. The cost is
 * one indirect call per firing, not per sample.
 *
 * A firing is: adc_arm (prepare capture into the buffer), pulse_fire (transmit; capture is
 * triggered by it), adc_wait (block until the capture completes, at most one pulse period).
 * All functions are called from the core's thread of control, never from interrupts.
 */
#ifndef SB_HAL_H
#define SB_HAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    void *ctx;

    /* microsecond clock since boot; monotonic */
    uint64_t (*now_us)(void *ctx);

    /* link (USB CDC, UART, pty). The core asks link_space before every frame and writes a
       frame only if it fits whole, in one or more link_write calls; link_write must then take
       all of it (a bounded send buffer that the port drains into the link). */
    void (*link_write)(void *ctx, const uint8_t *data, size_t len);
    size_t (*link_space)(void *ctx);
    uint16_t (*link_fill_permille)(void *ctx); /* optional: STATUS.buffer_fill_permille */

    /* front end */
    void (*tgc_write)(void *ctx, const uint16_t *codes, size_t n); /* DAC curve for a line */
    int32_t (*sweep_move)(void *ctx, int32_t nominal);             /* returns actual position */
    void (*adc_arm)(void *ctx, uint16_t *codes, uint32_t n, uint32_t start_delay_samples,
                    uint8_t decimation);
    void (*pulse_fire)(void *ctx, uint32_t freq_hz, uint8_t cycles);
    int (*adc_wait)(void *ctx); /* 0 when the capture is complete, else an ADC fault */

    /* optional health and power */
    void (*hv_set)(void *ctx, uint32_t hv_mv);     /* HV_CONTROL boards */
    uint32_t (*hv_read_mv)(void *ctx);
    int16_t (*temperature_cdeg)(void *ctx);
    uint8_t (*faults)(void *ctx); /* SB_FAULT_HV | SB_FAULT_ADC | SB_FAULT_OVERTEMP now */
    void (*front_end_reset)(void *ctx);

    /* nonzero when the front end is emulated on a general-purpose OS (the host build): every
       PRF grid point is a firing stamped with its grid time, as on a DMA-paced board whose
       capture goes on while the CPU is busy. A poll that finds grid points passed (a
       descheduled process) computes each of them in turn, so only the sending is late; after
       a stall longer than SB_EMULATED_BACKLOG_US the points in it stay empty instead.
       Real boards leave it 0: firings are stamped when pulse_fire is called, and one that is
       late restarts the schedule from itself, so a stall never becomes a burst of pulses whose
       echoes overlap. */
    int emulated_timing;
} sb_hal_t;

/* The longest stall an emulated board catches up on: its capture buffers, in time. A
   descheduled process on a loaded machine is away for a few milliseconds; a stall of this
   length is something else (a stopped process), and its points are left empty. */
#define SB_EMULATED_BACKLOG_US 100000u

#endif
