/* The RP2040 reference board's wiring (hardware/boards/rp2040-reference.toml [pins]). One of
   the pins_*.h headers is chosen by CMake's SB_BOARD; hal_rp2040.c, main.c and
   usb_descriptors.c read only these names. */
#ifndef PINS_RP2040_REFERENCE_H
#define PINS_RP2040_REFERENCE_H

#define PORT_BOARD rp2040_board          /* board_rp2040.c: what it announces */
#define PORT_USB_PRODUCT "sonobridge rp2040-reference"
#define PORT_USB_SERIAL_PREFIX ""        /* the serial string is the flash unique id */

#define PIN_ADC_D0 0
#define PIN_PULSE_P 10 /* PULSE_N is the next pin: side-set needs them consecutive */
#define PIN_PULSER_OE 12
#define PIN_HV_EN 13
#define PIN_DAC_CS 17
#define PIN_DAC_SCK 18
#define PIN_DAC_SDI 19
#define PORT_DAC_SPI spi0
#define PIN_VGA_HILO 20
#define PIN_ADC_CLK 21 /* GPOUT0: clk_sys / 2 */
#define PORT_ADC_CLOCK_GPOUT 1
#define PIN_HV_SENSE 26
#define HV_SENSE_INPUT 0
#define HV_DIVIDER 11u
#define PORT_DAMP_NS 0u /* no damping switch: the MOSFETs clamp to ground after the burst */

#endif
