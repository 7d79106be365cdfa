/*
 * Protocol v1 wire constants and little-endian field access (docs/protocol.md).
 *
 * Fields are read and written byte by byte, never through casted pointers: the core must not
 * depend on the host's endianness or on unaligned access (Cortex-M0+ faults on it).
 */
#ifndef SB_WIRE_H
#define SB_WIRE_H

#include <stdint.h>
#include <stddef.h>

#define SB_SYNC0 0xA5u
#define SB_SYNC1 0x5Au
#define SB_PROTOCOL_VERSION 1u
#define SB_HEADER_SIZE 16u
#define SB_TRAILER_SIZE 4u
#define SB_MAX_PAYLOAD 131072u
#define SB_UNSOLICITED 0xFFFFFFFFu
/* A device abandons a partial frame after this idle gap (docs/protocol.md, "Partial frames time
   out on the device"): far above any pause inside one host write at 250 kbaud or over USB, and
   short enough to keep the 100 ms reply promise. */
#define SB_PARTIAL_FRAME_TIMEOUT_US 50000u

#define SB_PAD4(n) (((n) + 3u) & ~(uint32_t)3u)
#define SB_FRAME_LEN(plen) (SB_HEADER_SIZE + SB_PAD4(plen) + SB_TRAILER_SIZE)

/* message types */
enum {
    SB_MSG_GET_INFO = 0x01,
    SB_MSG_CONFIGURE = 0x02,
    SB_MSG_START = 0x03,
    SB_MSG_STOP = 0x04,
    SB_MSG_GET_STATUS = 0x05,
    SB_MSG_PING = 0x06,
    SB_MSG_RESET = 0x07,
    SB_MSG_DEVICE_INFO = 0x81,
    SB_MSG_ACK = 0x82,
    SB_MSG_NAK = 0x83,
    SB_MSG_STATUS = 0x84,
    SB_MSG_PONG = 0x85,
    SB_MSG_LOG = 0x86,
    SB_MSG_ECHO_LINE = 0x90,
    SB_MSG_FRAME_END = 0x91
};

/* header flags */
#define SB_FLAG_SIMULATED 0x01u
#define SB_FLAG_RETRY 0x02u
#define SB_FLAGS_MUST_UNDERSTAND 0xF0u
/* v1 defines no must-understand bit, so every one of them is unsupported */
#define SB_FLAGS_KNOWN_MUST_UNDERSTAND 0x00u

/* NAK codes */
enum {
    SB_NAK_UNKNOWN_TYPE = 0x01,
    SB_NAK_BAD_LENGTH = 0x02,
    SB_NAK_UNSUPPORTED_FLAG = 0x03,
    SB_NAK_UNSUPPORTED_VERSION = 0x04,
    SB_NAK_OUT_OF_RANGE = 0x05,
    SB_NAK_INVALID_COMBINATION = 0x06,
    SB_NAK_BUSY = 0x07,
    SB_NAK_UNSUPPORTED = 0x08,
    SB_NAK_HARDWARE_FAULT = 0x09
};

enum { SB_FMT_U8 = 0, SB_FMT_I16 = 1, SB_FMT_U16_OB = 2, SB_FMT_PACKED12 = 3 };
enum { SB_SWEEP_FIXED = 0, SB_SWEEP_SECTOR = 1, SB_SWEEP_LINEAR = 2 };
enum { SB_CAP_RESET = 0x01, SB_CAP_HV_CONTROL = 0x02, SB_CAP_SIMULATED = 0x04 };
enum { SB_STATE_IDLE = 0, SB_STATE_STREAMING = 1, SB_STATE_FAULT = 2 };
enum { SB_FAULT_HV = 0x01, SB_FAULT_ADC = 0x02, SB_FAULT_OVERTEMP = 0x04,
       SB_FAULT_OVERFLOW = 0x08 };
enum { SB_LOG_DEBUG = 10, SB_LOG_INFO = 20, SB_LOG_WARNING = 30, SB_LOG_ERROR = 40 };

/* payload sizes (fixed parts) */
#define SB_LEN_CONFIGURE 100u
#define SB_LEN_START 4u
#define SB_LEN_PING_MIN 4u
#define SB_MAX_PING_DATA 1020u
#define SB_LEN_DEVICE_INFO 116u
#define SB_LEN_ACK 8u
#define SB_LEN_NAK_MIN 8u
#define SB_MAX_NAK_TEXT 256u
#define SB_LEN_STATUS 32u
#define SB_LEN_PONG_MIN 16u
#define SB_LEN_LOG_MIN 4u
#define SB_MAX_LOG_TEXT 1024u
#define SB_LEN_ECHO_HEADER 40u
#define SB_LEN_FRAME_END 16u
#define SB_TGC_MAX_POINTS 32u

/* The largest command payload v1 defines (PING with 1020 data bytes): the parser's buffer. */
#define SB_CMD_MAX_PAYLOAD (SB_LEN_PING_MIN + SB_MAX_PING_DATA)

static inline void sb_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void sb_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void sb_put_u64(uint8_t *p, uint64_t v)
{
    sb_put_u32(p, (uint32_t)v);
    sb_put_u32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t sb_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t sb_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline uint64_t sb_get_u64(const uint8_t *p)
{
    return (uint64_t)sb_get_u32(p) | ((uint64_t)sb_get_u32(p + 4) << 32);
}

/* Two's complement reinterpretation without implementation-defined conversions. */
static inline int32_t sb_u32_to_i32(uint32_t v)
{
    return v <= 0x7FFFFFFFu ? (int32_t)v : (int32_t)(v - 0x80000000u) - (int32_t)0x40000000 -
                                               (int32_t)0x40000000;
}

static inline int16_t sb_u16_to_i16(uint16_t v)
{
    return v <= 0x7FFFu ? (int16_t)v : (int16_t)((int32_t)v - 65536);
}

#endif
