/*
 * Frame encoder: the v1 envelope (header + header CRC, payload, zero pad, CRC-32).
 *
 * Frames are written through a sink in pieces, with the CRC-32 computed as they pass, so an
 * ECHO_LINE never needs a second buffer the size of the frame: samples are packed into a small
 * chunk buffer and streamed out.
 */
#ifndef SB_FRAME_H
#define SB_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "sb_wire.h"

typedef struct {
    void (*write)(void *ctx, const uint8_t *data, size_t len);
    void *ctx;
} sb_sink_t;

typedef struct {
    sb_sink_t sink;
    uint32_t crc;      /* running CRC-32 register (not finalised) */
    uint32_t left;     /* payload bytes still to come */
    uint32_t plen;
} sb_tx_t;

/* The 16-byte header (with its CRC) of a frame. */
void sb_frame_header(uint8_t out[SB_HEADER_SIZE], uint8_t version, uint8_t msg_type,
                     uint32_t payload_len, uint32_t seq, uint8_t flags);

/* Streaming: begin, then exactly payload_len bytes of put, then end (pad + CRC-32). */
void sb_tx_begin(sb_tx_t *tx, sb_sink_t sink, uint8_t msg_type, uint32_t payload_len,
                 uint32_t seq, uint8_t flags);
void sb_tx_put(sb_tx_t *tx, const uint8_t *data, size_t len);
void sb_tx_end(sb_tx_t *tx);

/* A whole frame into out[cap]; returns its length, or 0 if it does not fit or is too long. */
size_t sb_frame_encode(uint8_t *out, size_t cap, uint8_t msg_type, uint32_t seq, uint8_t flags,
                       const uint8_t *payload, uint32_t payload_len);

/* A sink that appends to a memory buffer (tests, and ports that assemble frames). */
typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t len;
    size_t overflow; /* bytes that did not fit */
} sb_membuf_t;

void sb_membuf_write(void *ctx, const uint8_t *data, size_t len);

#endif
