/* The pic0rick's wiring (../shared/boards/README.md, "Pins (current board)"; the board's own
   firmware drives the same pins). One of the pins_*.h headers is chosen by CMake's SB_BOARD. */
#ifndef PINS_PIC0RICK_H
#define PINS_PIC0RICK_H

#define PORT_BOARD pic0rick_board        /* board_pic0rick.c: what it announces */
#define PORT_USB_PRODUCT "sonobridge pic0rick"
#define PORT_USB_SERIAL_PREFIX "pic0rick-"

#define PIN_ADC_CLK 0 /* PWM slice 0 A: clk_sys / 2 (GPIO0 has no GPOUT) */
#define PORT_ADC_CLOCK_PWM 1
#define PIN_ADC_D0 1  /* D0..D9 on GPIO1..10 */
#define PIN_PULSE_P 11 /* P+; P- is GPIO12, the next pin, as side-set needs */
#define PIN_DAC_CS 13  /* MCP4812 on SPI1's own pins: CSn 13, SCK 14, TX 15 */
#define PIN_DAC_SCK 14
#define PIN_DAC_SDI 15
#define PORT_DAC_SPI spi1
#define PIN_PDAMP 16
#define PIN_PULSER_OE 17
/* damping after the burst: the 2000 ns the board's own host code uses */
#define PORT_DAMP_NS 2000u

#endif
