#ifndef HAL_RP2040_H
#define HAL_RP2040_H

#include "board_rp2040.h"
#include "sb_hal.h"
#include "sb_ring.h"

/* Set up clocks, PIO, DMA, SPI and the housekeeping ADC; fill in the HAL table. The ring is
   the USB send buffer main.c drains. */
void hal_rp2040_init(sb_hal_t *hal, sb_ring_t *ring);

#endif
