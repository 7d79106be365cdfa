/*
 * Stub HAL for the CI cross build: proves the core compiles and links for a Cortex-M0+ with no
 * OS, and gives honest flash/RAM numbers for the core itself. The hardware functions do
 * nothing; the buffer sizes match the RP2040 reference board (16384 samples per line).
 */
#include <stdint.h>

#include "sb_device.h"
#include "sb_wire.h"

#define STUB_MAX_SAMPLES 16384u

static volatile uint32_t fake_timer;
static uint16_t samples[STUB_MAX_SAMPLES];
static volatile uint8_t link_sink;

static uint64_t now_us(void *ctx)
{
    (void)ctx;
    return fake_timer++;
}

static void link_write(void *ctx, const uint8_t *data, size_t len)
{
    size_t i;
    (void)ctx;
    for (i = 0; i < len; i++)
        link_sink = data[i];
}

static size_t link_space(void *ctx)
{
    (void)ctx;
    return 1u << 20;
}

static void tgc_write(void *ctx, const uint16_t *codes, size_t n)
{
    (void)ctx;
    (void)codes;
    (void)n;
}

static void adc_arm(void *ctx, uint16_t *codes, uint32_t n, uint32_t delay, uint8_t dec)
{
    (void)ctx;
    (void)delay;
    (void)dec;
    while (n--)
        codes[n] = (uint16_t)n;
}

static void pulse_fire(void *ctx, uint32_t freq_hz, uint8_t cycles)
{
    (void)ctx;
    (void)freq_hz;
    (void)cycles;
}

static int adc_wait(void *ctx)
{
    (void)ctx;
    return 0;
}

static const sb_hal_t hal = {
    NULL, now_us, link_write, link_space, NULL, tgc_write, NULL, adc_arm, pulse_fire, adc_wait,
    NULL, NULL, NULL, NULL, NULL, 0 /* real timing */};

static const sb_board_t board = {
    {1, 1, 0, 0, 0, "stub", 10, 0x0F, 0, 0x01, 60000000u, 8, 32, 16, 8, 64, STUB_MAX_SAMPLES,
     65535, 256, -450, 4350, 0, 0, 10, 5000, 1000000, 15000000, 25000, 25000, 3500000, 900000},
    {2, 1, 1, 2, 2048, 0, 1000, 1, 2, 0, 0, 0, 3500000, 25000, {0, 2000}},
    -450, 4350, 10, 64};

static sb_device_t dev;

int main(void)
{
    static const uint8_t rx[20] = {0xA5, 0x5A, 1, 1};
    sb_device_init(&dev, &board, &hal, samples, STUB_MAX_SAMPLES);
    sb_device_announce(&dev);
    for (;;) {
        sb_device_rx(&dev, rx, sizeof rx);
        sb_device_poll(&dev);
    }
}
