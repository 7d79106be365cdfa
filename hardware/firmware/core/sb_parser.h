/*
 * Byte-at-a-time command parser: the receive algorithm of docs/protocol.md section 3.
 *
 *  1. hunt for A5 5A, discarding (and counting) what comes before;
 *  2. with 16 bytes, check the header CRC-16 and payload_len <= 131072; on failure step one
 *     byte past the sync and rescan the bytes already held;
 *  3. with the whole frame, check the CRC-32; on failure likewise step one byte and rescan;
 *  4. deliver the intact frame; its version, flags, type and length are the caller's to judge.
 *
 * Memory is one buffer for the largest command v1 defines (PING, 1044 bytes on the wire).
 * A frame whose header is valid but whose length exceeds that buffer ("oversized": a command
 * of a later version, or a corrupted length that happens to pass the CRC-16) is not buffered.
 * It streams past while its CRC-32 is computed on the fly, and meanwhile the same hunt runs
 * over its bytes (from one byte past its sync) in the now idle buffer:
 *   - CRC-32 good: the oversized frame was real. Whatever the hunt found inside it was payload
 *     and is forgotten; the caller gets the frame with payload == NULL (a device NAKs it).
 *   - CRC-32 bad: it was no frame, so exactly what the spec's rescan would have found is
 *     resumed: a frame the hunt completed meanwhile is delivered now and hunting continues.
 * Two bounded simplifications, both only after an oversized header that then fails its CRC-32
 * (a 1-in-65536 false sync): the hunt holds at most one completed frame, so bytes after it up to
 * the end of the oversized span are not searched; and an oversized header found by the hunt
 * itself is stepped over instead of followed.
 *
 * Partial frames time out (sb_parser_feed_at, sb_parser_expire): when bytes are held and none
 * arrived for SB_PARTIAL_FRAME_TIMEOUT_US, the candidate they start with will never complete.
 * It is abandoned like a candidate whose CRC-32 fails (one byte past its sync, counted as
 * discarded) and the held bytes are rescanned, so a command that followed a truncated one is
 * delivered without waiting for more input. Every byte held is as stale as the candidate, so
 * this repeats until nothing is held; an oversized frame streaming past is abandoned the same
 * way. sb_parser_feed takes no clock: it neither checks nor restarts the idle gap.
 *
 * Cost: a false sync costs one 14-byte CRC-16; a failed CRC-32 costs a memmove of at most the
 * buffer. No input can make the parser hold more than SB_RX_CAP bytes or loop without
 * consuming input.
 */
#ifndef SB_PARSER_H
#define SB_PARSER_H

#include <stddef.h>
#include <stdint.h>

#include "sb_wire.h"

#define SB_RX_CAP SB_FRAME_LEN(SB_CMD_MAX_PAYLOAD)

typedef struct {
    uint8_t version;
    uint8_t msg_type;
    uint8_t flags;
    uint32_t payload_len;
    uint32_t seq;
    /* the payload (valid during the callback), or NULL for an oversized frame */
    const uint8_t *payload;
} sb_frame_t;

typedef void (*sb_frame_cb)(void *ctx, const sb_frame_t *frame);

typedef struct {
    uint32_t bytes_in;
    uint32_t frames_ok;        /* intact frames delivered with their payload */
    uint32_t frames_oversized; /* intact frames too long to buffer, delivered without */
    uint32_t header_errors;    /* candidate headers with a bad CRC-16 or length */
    uint32_t crc_errors;       /* candidate frames with a bad CRC-32 */
    uint32_t bytes_discarded;
    uint32_t timeouts;         /* idle gaps that abandoned held bytes (sb_parser_expire) */
} sb_parser_stats_t;

typedef struct {
    uint8_t buf[SB_RX_CAP];
    uint32_t len;
    uint32_t need;       /* length of the candidate at buf[0] once its header checked; 0 before */
    uint8_t skipping;    /* an oversized frame is streaming past */
    uint8_t parked;      /* skipping, and the hunt holds a complete frame in buf[0..need) */
    uint8_t skip_hdr[SB_HEADER_SIZE];
    uint32_t skip_left;  /* bytes of the oversized frame still to come, trailer included */
    uint32_t skip_crc;
    uint8_t skip_trailer[SB_TRAILER_SIZE];
    uint64_t last_rx_us; /* clock of the last byte given to sb_parser_feed_at */
    sb_frame_cb cb;
    void *ctx;
    sb_parser_stats_t stats;
} sb_parser_t;

void sb_parser_init(sb_parser_t *p, sb_frame_cb cb, void *ctx);
/* Forget buffered bytes (stats are kept). */
void sb_parser_reset(sb_parser_t *p);
/* Bytes with no clock: a parser fed only this way never times out anything. */
void sb_parser_feed(sb_parser_t *p, const uint8_t *data, size_t len);
/* Bytes that arrived at now_us (any monotonic microsecond clock): what was held across an idle
   gap of SB_PARTIAL_FRAME_TIMEOUT_US is abandoned first (sb_parser_expire). */
void sb_parser_feed_at(sb_parser_t *p, const uint8_t *data, size_t len, uint64_t now_us);
/* From the main loop, with no new bytes: abandon what is held if no byte came for the idle gap
   (see the header comment). Frames found in the held bytes are delivered from here. */
void sb_parser_expire(sb_parser_t *p, uint64_t now_us);
/* When sb_parser_expire next has work: UINT64_MAX while nothing is held. */
uint64_t sb_parser_deadline_us(const sb_parser_t *p);

#endif
