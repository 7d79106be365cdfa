/* The Linux host build's board: what it announces must match hardware/boards/firmware-host.toml
   (tests/firmware checks this against the DEVICE_INFO the build sends). */
#ifndef BOARD_HOST_H
#define BOARD_HOST_H

#include "sb_device.h"

#define HOST_SEND_BUFFER_BYTES 262144u
#define HOST_TEMPERATURE_CDEG 3150
#define HOST_MAX_SAMPLES 32768u

extern const sb_board_t host_board;

#endif
