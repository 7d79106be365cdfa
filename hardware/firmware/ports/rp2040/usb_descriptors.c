/* USB descriptors: a CDC-ACM device. VID/PID 1209:0001 is pid.codes' test pair: replace it
   with your own before you ship boards. */
#include <string.h>

#include "pico/unique_id.h"
#include "tusb.h"

#include SB_PINS_HEADER

#define USB_VID 0x1209
#define USB_PID 0x0001

enum { ITF_NUM_CDC = 0, ITF_NUM_CDC_DATA, ITF_NUM_TOTAL };

#define EPNUM_CDC_NOTIF 0x81
#define EPNUM_CDC_OUT 0x02
#define EPNUM_CDC_IN 0x82
#define CONFIG_TOTAL_LEN (TUD_CONFIG_DESC_LEN + TUD_CDC_DESC_LEN)

static const tusb_desc_device_t device_descriptor = {
    .bLength = sizeof(tusb_desc_device_t),
    .bDescriptorType = TUSB_DESC_DEVICE,
    .bcdUSB = 0x0200,
    .bDeviceClass = TUSB_CLASS_MISC,
    .bDeviceSubClass = MISC_SUBCLASS_COMMON,
    .bDeviceProtocol = MISC_PROTOCOL_IAD,
    .bMaxPacketSize0 = CFG_TUD_ENDPOINT0_SIZE,
    .idVendor = USB_VID,
    .idProduct = USB_PID,
    .bcdDevice = 0x0100,
    .iManufacturer = 1,
    .iProduct = 2,
    .iSerialNumber = 3,
    .bNumConfigurations = 1,
};

static const uint8_t config_descriptor[] = {
    TUD_CONFIG_DESCRIPTOR(1, ITF_NUM_TOTAL, 0, CONFIG_TOTAL_LEN, 0x00, 250),
    TUD_CDC_DESCRIPTOR(ITF_NUM_CDC, 4, EPNUM_CDC_NOTIF, 8, EPNUM_CDC_OUT, EPNUM_CDC_IN, 64),
};

static const char *const strings[] = {
    NULL, /* 0: language, handled below */
    "sonobridge",
    PORT_USB_PRODUCT,
    NULL, /* 3: serial number from the flash unique id */
    "sonobridge protocol v1",
};

const uint8_t *tud_descriptor_device_cb(void)
{
    return (const uint8_t *)&device_descriptor;
}

const uint8_t *tud_descriptor_configuration_cb(uint8_t index)
{
    (void)index;
    return config_descriptor;
}

const uint16_t *tud_descriptor_string_cb(uint8_t index, uint16_t langid)
{
    static uint16_t desc[1 + 32];
    /* the board's prefix, then the flash unique id in hex */
    char serial[sizeof PORT_USB_SERIAL_PREFIX + 2 * PICO_UNIQUE_BOARD_ID_SIZE_BYTES];
    const char *s;
    size_t n, i;
    (void)langid;
    if (index == 0) {
        desc[1] = 0x0409; /* English (US) */
        n = 1;
    } else {
        if (index >= sizeof strings / sizeof strings[0])
            return NULL;
        if (index == 3) {
            memcpy(serial, PORT_USB_SERIAL_PREFIX, sizeof PORT_USB_SERIAL_PREFIX - 1);
            pico_get_unique_board_id_string(serial + sizeof PORT_USB_SERIAL_PREFIX - 1,
                                             2 * PICO_UNIQUE_BOARD_ID_SIZE_BYTES + 1);
            s = serial;
        } else {
            s = strings[index];
        }
        n = strlen(s);
        if (n > 32)
            n = 32;
        for (i = 0; i < n; i++)
            desc[1 + i] = (uint8_t)s[i];
    }
    desc[0] = (uint16_t)((TUSB_DESC_STRING << 8) | (2 * n + 2));
    return desc;
}
