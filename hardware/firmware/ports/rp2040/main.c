/*
 * RP2040 reference firmware: the portable core on a pic0rick-class board, USB CDC via TinyUSB.
 *
 * One loop on core 0: TinyUSB's task, the send ring drained into the CDC endpoint, received
 * bytes into the core, and one firing whenever one is due. A firing blocks for at most the
 * acquisition window (shorter than the pulse period by CONFIGURE validation), so commands are
 * answered within a period while streaming, well inside the spec's 100 ms.
 */
#include <string.h>

#include "board_rp2040.h"
#include "hal_rp2040.h"
#include "hardware/clocks.h"
#include "pico/stdlib.h"
#include "pico/unique_id.h"
#include "sb_device.h"
#include "sb_ring.h"
#include "tusb.h"

#include SB_PINS_HEADER

static sb_board_t board; /* PORT_BOARD with this chip's serial number */
static sb_hal_t hal;
static sb_device_t dev;
static sb_ring_t ring;
static uint8_t ring_store[RP2040_SEND_BUFFER_BYTES];
/* the capture DMA writes whole 32-bit words, two samples each: word aligned, and one spare
   sample for an odd count */
static uint16_t samples[RP2040_MAX_SAMPLES + 1] __attribute__((aligned(4)));

static uint32_t board_serial(void)
{
    pico_unique_board_id_t id;
    uint32_t lo, hi;
    pico_get_unique_board_id(&id);
    memcpy(&lo, id.id, 4);
    memcpy(&hi, id.id + 4, 4);
    return lo ^ hi;
}

static void drain_usb(void)
{
    const uint8_t *chunk;
    uint32_t avail;
    if (!tud_cdc_connected()) {
        /* nobody listens: keep the ring (lines are dropped and counted once it is full) */
        return;
    }
    while ((avail = sb_ring_peek(&ring, &chunk)) > 0) {
        uint32_t room = tud_cdc_write_available();
        uint32_t n;
        if (room == 0)
            break;
        n = tud_cdc_write(chunk, avail < room ? avail : room);
        sb_ring_consume(&ring, n);
        if (n == 0)
            break;
    }
    tud_cdc_write_flush();
}

int main(void)
{
    uint8_t rx[64];
    set_sys_clock_khz(120000, true); /* clk_sys / 2 = the ADC's 60 MHz */
    board = PORT_BOARD;
    board.info.board_id = board_serial();
    sb_ring_init(&ring, ring_store, sizeof ring_store);
    hal_rp2040_init(&hal, &ring);
    tusb_init();
    sb_device_init(&dev, &board, &hal, samples, RP2040_MAX_SAMPLES);
    for (;;) {
        tud_task();
        drain_usb();
        if (tud_cdc_available()) {
            uint32_t n = tud_cdc_read(rx, sizeof rx);
            sb_device_rx(&dev, rx, n);
        }
        sb_device_poll(&dev);
    }
}
