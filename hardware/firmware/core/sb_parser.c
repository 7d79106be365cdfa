#include "sb_parser.h"

#include <string.h>

#include "sb_crc.h"

void sb_parser_init(sb_parser_t *p, sb_frame_cb cb, void *ctx)
{
    memset(p, 0, sizeof *p);
    p->cb = cb;
    p->ctx = ctx;
}

void sb_parser_reset(sb_parser_t *p)
{
    p->stats.bytes_discarded += p->len;
    p->len = 0;
    p->need = 0;
    p->skipping = 0;
    p->parked = 0;
}

static void drop(sb_parser_t *p, uint32_t n)
{
    if (n >= p->len) {
        p->len = 0;
    } else {
        memmove(p->buf, p->buf + n, p->len - n);
        p->len -= n;
    }
    p->need = 0;
}

static int header_ok(const uint8_t *h)
{
    return sb_get_u32(h + 4) <= SB_MAX_PAYLOAD && sb_crc16(h, 14) == sb_get_u16(h + 14);
}

static void header_fields(const uint8_t *h, sb_frame_t *f)
{
    f->version = h[2];
    f->msg_type = h[3];
    f->payload_len = sb_get_u32(h + 4);
    f->seq = sb_get_u32(h + 8);
    f->flags = h[12];
}

static void deliver(sb_parser_t *p)
{
    sb_frame_t f;
    header_fields(p->buf, &f);
    f.payload = p->buf + SB_HEADER_SIZE;
    p->stats.frames_ok++;
    p->cb(p->ctx, &f);
}

static void skip_byte(sb_parser_t *p, uint8_t b);
static void scan(sb_parser_t *p);

/* An oversized header sits at buf[0]: start streaming past it. */
/* The skipped candidate was no frame: count its sync byte, hand on a frame found hidden in
 * it, and hunt on through the bytes kept for that. */
static void step_past_false_sync(sb_parser_t *p)
{
    p->stats.bytes_discarded++;
    if (p->parked) {
        uint32_t n = p->need;
        p->parked = 0;
        deliver(p);
        drop(p, n);
    }
    scan(p);
}

static void begin_skip(sb_parser_t *p)
{
    uint32_t k, len;
    memcpy(p->skip_hdr, p->buf, SB_HEADER_SIZE);
    p->skip_crc = sb_crc32_update(SB_CRC32_INIT, p->buf, SB_HEADER_SIZE);
    p->skip_left = p->need - SB_HEADER_SIZE;
    p->skipping = 1;
    len = p->len;
    /* bytes already held past the header are part of the oversized span; since the span is
       longer than the buffer, they cannot complete it */
    for (k = SB_HEADER_SIZE; k < len; k++)
        skip_byte(p, p->buf[k]);
    /* the hunt restarts one byte past the sync, over everything held */
    drop(p, 1);
    scan(p);
}

static void end_skip(sb_parser_t *p)
{
    uint32_t crc = sb_crc32_final(p->skip_crc);
    p->skipping = 0;
    if (crc == sb_get_u32(p->skip_trailer)) {
        sb_frame_t f;
        p->stats.frames_oversized++;
        /* what the hunt saw was this frame's payload */
        p->len = 0;
        p->need = 0;
        p->parked = 0;
        header_fields(p->skip_hdr, &f);
        f.payload = NULL;
        p->cb(p->ctx, &f);
        return;
    }
    p->stats.crc_errors++;
    step_past_false_sync(p);
}

static void skip_byte(sb_parser_t *p, uint8_t b)
{
    if (p->skip_left > SB_TRAILER_SIZE)
        p->skip_crc = sb_crc32_update(p->skip_crc, &b, 1);
    else
        p->skip_trailer[SB_TRAILER_SIZE - p->skip_left] = b;
    p->skip_left--;
}

static void scan(sb_parser_t *p)
{
    for (;;) {
        uint32_t i;
        if (p->parked)
            return;
        if (p->need) {
            if (p->len < p->need)
                return;
        } else {
            for (i = 0; i < p->len; i++) {
                if (p->buf[i] == SB_SYNC0 && (i + 1 == p->len || p->buf[i + 1] == SB_SYNC1))
                    break;
            }
            if (i) {
                p->stats.bytes_discarded += i;
                drop(p, i);
            }
            if (p->len < SB_HEADER_SIZE)
                return;
            if (!header_ok(p->buf)) {
                p->stats.header_errors++;
                p->stats.bytes_discarded++;
                drop(p, 1);
                continue;
            }
            p->need = SB_FRAME_LEN(sb_get_u32(p->buf + 4));
            if (p->need > SB_RX_CAP) {
                if (p->skipping) {
                    /* no nesting: step over it (see the header comment) */
                    p->stats.header_errors++;
                    p->stats.bytes_discarded++;
                    drop(p, 1);
                    continue;
                }
                begin_skip(p);
                return;
            }
            if (p->len < p->need)
                return;
        }
        if (sb_crc32(p->buf, p->need - SB_TRAILER_SIZE) !=
            sb_get_u32(p->buf + p->need - SB_TRAILER_SIZE)) {
            p->stats.crc_errors++;
            p->stats.bytes_discarded++;
            drop(p, 1);
            continue;
        }
        if (p->skipping) {
            p->parked = 1;
            return;
        }
        {
            uint32_t n = p->need;
            deliver(p);
            drop(p, n);
        }
    }
}

void sb_parser_feed(sb_parser_t *p, const uint8_t *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        uint8_t b = data[i];
        /* a skip that starts during this byte's scan accounts for the byte itself */
        uint8_t was_skipping = p->skipping;
        p->stats.bytes_in++;
        if (!p->parked) {
            /* scan never leaves the buffer full: a waiting candidate is shorter than SB_RX_CAP */
            p->buf[p->len++] = b;
            scan(p);
        }
        if (was_skipping) {
            skip_byte(p, b);
            if (p->skip_left == 0)
                end_skip(p);
        }
    }
}

uint64_t sb_parser_deadline_us(const sb_parser_t *p)
{
    if (p->len == 0 && !p->skipping)
        return UINT64_MAX;
    return p->last_rx_us + SB_PARTIAL_FRAME_TIMEOUT_US;
}

/* An oversized frame stopped arriving: it was no frame, as if its CRC-32 had failed. */
static void abandon_skip(sb_parser_t *p)
{
    p->skipping = 0;
    step_past_false_sync(p);
}

void sb_parser_expire(sb_parser_t *p, uint64_t now_us)
{
    if (now_us < sb_parser_deadline_us(p))
        return;
    p->stats.timeouts++;
    /* every byte held is as old as the stale candidate, so whatever is still incomplete after a
       rescan will not complete either: step past candidates until nothing is held */
    for (;;) {
        if (p->skipping) {
            abandon_skip(p);
            continue;
        }
        if (p->len == 0)
            return;
        p->stats.bytes_discarded++;
        drop(p, 1);
        scan(p);
    }
}

void sb_parser_feed_at(sb_parser_t *p, const uint8_t *data, size_t len, uint64_t now_us)
{
    sb_parser_expire(p, now_us);
    if (len == 0)
        return;
    sb_parser_feed(p, data, len);
    p->last_rx_us = now_us;
}
