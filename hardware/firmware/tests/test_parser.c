/* The receive algorithm of docs/protocol.md section 3, byte at a time. */
#include <string.h>

#include "sb_crc.h"
#include "sb_frame.h"
#include "sb_parser.h"
#include "sb_test.h"

typedef struct {
    unsigned n;
    unsigned oversized;
    uint32_t seqs[16];
    uint8_t types[16];
} seen_t;

static void seen(void *ctx, const sb_frame_t *f)
{
    seen_t *s = (seen_t *)ctx;
    if (f->payload == NULL)
        s->oversized++;
    if (s->n < 16) {
        s->seqs[s->n] = f->seq;
        s->types[s->n] = f->msg_type;
    }
    s->n++;
}

static size_t frame(uint8_t *out, uint8_t type, uint32_t seq, uint32_t plen)
{
    uint8_t payload[64];
    memset(payload, 0x5A, sizeof payload); /* half a sync everywhere */
    return sb_frame_encode(out, 2048, type, seq, 0, payload, plen);
}

static sb_parser_t p;

TEST(test_parser_garbage_and_chunking)
{
    uint8_t stream[512];
    size_t n = 0, i, chunk;
    seen_t s;
    memset(stream, 0xA5, 37); /* first sync bytes with no partner */
    n = 37;
    n += frame(stream + n, 0x01, 10, 0);
    stream[n++] = 0x00;
    stream[n++] = 0x5A;
    n += frame(stream + n, 0x06, 11, 14);
    n += frame(stream + n, 0x02, 12, 3); /* unpadded length: pad bytes follow */
    for (chunk = 1; chunk <= n; chunk += 13) {
        memset(&s, 0, sizeof s);
        sb_parser_init(&p, seen, &s);
        for (i = 0; i < n; i += chunk)
            sb_parser_feed(&p, stream + i, n - i < chunk ? n - i : chunk);
        CHECK_EQ(s.n, 3);
        CHECK_EQ(s.seqs[0], 10);
        CHECK_EQ(s.seqs[1], 11);
        CHECK_EQ(s.seqs[2], 12);
        CHECK_EQ(p.stats.frames_ok, 3);
        CHECK_EQ(p.stats.bytes_in, n);
        CHECK_EQ(p.stats.bytes_discarded, 39);
        CHECK_EQ(p.len, 0);
    }
}

TEST(test_parser_false_sync_and_bad_header)
{
    uint8_t stream[256];
    size_t n = 0, good;
    seen_t s = {0};
    uint8_t h[16];
    /* a header whose CRC-16 is right but whose length is above the maximum */
    sb_frame_header(h, 1, 0x01, SB_MAX_PAYLOAD + 1, 1, 0);
    memcpy(stream, h, 16);
    n = 16;
    /* a false sync: A5 5A then 14 bytes of noise; the good frame starts inside it */
    stream[n++] = 0xA5;
    stream[n++] = 0x5A;
    stream[n++] = 0x01;
    good = frame(stream + n, 0x05, 77, 0);
    n += good;
    sb_parser_init(&p, seen, &s);
    sb_parser_feed(&p, stream, n);
    CHECK_EQ(s.n, 1);
    CHECK_EQ(s.seqs[0], 77);
    CHECK_EQ(p.stats.header_errors, 2);
    CHECK_EQ(p.stats.crc_errors, 0);
}

TEST(test_parser_truncated_frame_does_not_swallow_next)
{
    uint8_t stream[512];
    size_t n, n2;
    seen_t s = {0};
    /* a PING cut short after 20 bytes, then a good GET_STATUS, then a good STOP */
    n = frame(stream, 0x06, 1, 60);
    n = 20;
    n2 = frame(stream + n, 0x05, 2, 0);
    n += n2;
    n += frame(stream + n, 0x04, 3, 0);
    /* pad so the truncated frame's announced length is reached and its CRC-32 fails */
    memset(stream + n, 0, 80);
    n += 80;
    sb_parser_init(&p, seen, &s);
    sb_parser_feed(&p, stream, n);
    CHECK_EQ(s.n, 2);
    CHECK_EQ(s.seqs[0], 2);
    CHECK_EQ(s.seqs[1], 3);
    CHECK_EQ(p.stats.crc_errors, 1);
}

/* An oversized frame (payload longer than the parser's buffer), streamed. */
static size_t big_frame(uint8_t *out, uint32_t plen, uint32_t seq, int corrupt_crc)
{
    size_t n;
    uint32_t i;
    uint8_t hdr[16];
    uint32_t crc;
    sb_frame_header(hdr, 1, 0x06, plen, seq, 0);
    memcpy(out, hdr, 16);
    for (i = 0; i < SB_PAD4(plen); i++)
        out[16 + i] = i < plen ? (uint8_t)(i * 7u) : 0;
    n = 16 + SB_PAD4(plen);
    crc = sb_crc32(out, n);
    sb_put_u32(out + n, corrupt_crc ? crc ^ 1u : crc);
    return n + 4;
}

static uint8_t big[8192];

TEST(test_parser_oversized_valid_frame)
{
    size_t n, i;
    seen_t s = {0};
    n = big_frame(big, 5000, 40, 0);
    /* a good frame hidden in the payload must NOT be delivered: it is payload */
    frame(big + 100, 0x01, 41, 0);
    {
        uint32_t crc = sb_crc32(big, 16 + SB_PAD4(5000));
        sb_put_u32(big + n - 4, crc);
    }
    n += frame(big + n, 0x05, 42, 0);
    sb_parser_init(&p, seen, &s);
    for (i = 0; i < n; i += 97)
        sb_parser_feed(&p, big + i, n - i < 97 ? n - i : 97);
    CHECK_EQ(s.n, 2);
    CHECK_EQ(s.oversized, 1);
    CHECK_EQ(s.seqs[0], 40);
    CHECK_EQ(s.types[0], 0x06);
    CHECK_EQ(s.seqs[1], 42);
    CHECK_EQ(p.stats.frames_oversized, 1);
    CHECK(p.len < SB_RX_CAP);
}

TEST(test_parser_oversized_false_header_recovers_hidden_frame)
{
    size_t n;
    seen_t s = {0};
    /* an oversized header whose frame then fails its CRC-32: the spec rescans from one byte
       past its sync, so the good frame inside it must come out, and the one after it too */
    n = big_frame(big, 3000, 50, 1);
    frame(big + 200, 0x01, 51, 0);
    n += frame(big + n, 0x05, 52, 0);
    sb_parser_init(&p, seen, &s);
    sb_parser_feed(&p, big, n);
    CHECK_EQ(s.oversized, 0);
    CHECK_EQ(s.n, 2);
    CHECK_EQ(s.seqs[0], 51);
    CHECK_EQ(s.seqs[1], 52);
    CHECK_EQ(p.stats.crc_errors, 1);
    /* the same when the hidden frame straddles the end of the false frame's span */
    memset(&s, 0, sizeof s);
    n = big_frame(big, 3000, 60, 1);
    n = frame(big + n - 10, 0x01, 61, 0) + n - 10;
    sb_parser_init(&p, seen, &s);
    sb_parser_feed(&p, big, n);
    CHECK_EQ(s.n, 1);
    CHECK_EQ(s.seqs[0], 61);
}

/* A CONFIGURE cut after 60 of its 120 bytes, then at once a whole PING: the PING lies inside
   the span the CONFIGURE's header announced, so only the idle gap can release it. */
static size_t truncated_configure_then_ping(uint8_t *out)
{
    uint8_t payload[100];
    size_t n;
    memset(payload, 0x5A, sizeof payload);
    n = sb_frame_encode(out, 2048, 0x02, 1, 0, payload, sizeof payload);
    n = n == 120 ? 60 : 0; /* the caller checks the length it gets back */
    return n + frame(out + n, 0x06, 2, 14);
}

TEST(test_parser_partial_frame_times_out)
{
    uint8_t stream[256];
    size_t n = truncated_configure_then_ping(stream);
    uint64_t t0 = 5000000u;
    seen_t s = {0};
    CHECK_EQ(n, 60 + 36);
    sb_parser_init(&p, seen, &s);
    CHECK(sb_parser_deadline_us(&p) == UINT64_MAX);
    sb_parser_feed_at(&p, stream, n, t0);
    CHECK_EQ(s.n, 0);
    CHECK(sb_parser_deadline_us(&p) == t0 + SB_PARTIAL_FRAME_TIMEOUT_US);
    sb_parser_expire(&p, t0 + SB_PARTIAL_FRAME_TIMEOUT_US - 1);
    CHECK_EQ(s.n, 0);
    CHECK_EQ(p.len, n);
    /* the idle gap: the CONFIGURE is abandoned, the PING inside the held bytes delivered */
    sb_parser_expire(&p, t0 + SB_PARTIAL_FRAME_TIMEOUT_US);
    CHECK_EQ(s.n, 1);
    CHECK_EQ(s.types[0], 0x06);
    CHECK_EQ(s.seqs[0], 2);
    CHECK_EQ(p.len, 0);
    CHECK_EQ(p.stats.timeouts, 1);
    CHECK_EQ(p.stats.bytes_discarded, 60); /* every byte of the truncated frame, no more */
    CHECK_EQ(p.stats.crc_errors, 0);
    CHECK(sb_parser_deadline_us(&p) == UINT64_MAX);
    sb_parser_expire(&p, t0 + 10u * SB_PARTIAL_FRAME_TIMEOUT_US); /* nothing held: no-op */
    CHECK_EQ(p.stats.timeouts, 1);
    /* and the parser goes on as before */
    n = frame(stream, 0x05, 3, 0);
    sb_parser_feed_at(&p, stream, n, t0 + 20u * SB_PARTIAL_FRAME_TIMEOUT_US);
    CHECK_EQ(s.n, 2);
    CHECK_EQ(s.seqs[1], 3);
}

TEST(test_parser_idle_gap_counts_from_the_last_byte)
{
    uint8_t stream[256];
    size_t n, cut = 60;
    const uint64_t t0 = 1000u, gap = SB_PARTIAL_FRAME_TIMEOUT_US;
    seen_t s = {0};
    uint8_t payload[100];
    memset(payload, 0x5A, sizeof payload);
    n = sb_frame_encode(stream, sizeof stream, 0x02, 1, 0, payload, sizeof payload);
    /* the rest of the frame one microsecond inside the gap: still one frame */
    sb_parser_init(&p, seen, &s);
    sb_parser_feed_at(&p, stream, cut, t0);
    sb_parser_feed_at(&p, stream + cut, n - cut, t0 + gap - 1);
    CHECK_EQ(s.n, 1);
    CHECK_EQ(s.types[0], 0x02);
    /* a byte that keeps coming restarts the gap: 60 bytes one every 40 ms (a 250 kbaud UART
       is 40 us per byte; this is a link a thousand times slower) still make the frame */
    memset(&s, 0, sizeof s);
    sb_parser_init(&p, seen, &s);
    {
        size_t i;
        for (i = 0; i < n; i++) {
            sb_parser_expire(&p, t0 + i * 40000u);
            sb_parser_feed_at(&p, stream + i, 1, t0 + i * 40000u);
        }
    }
    CHECK_EQ(s.n, 1);
    CHECK_EQ(p.stats.timeouts, 0);
    /* the rest arriving after the gap is not the rest: the candidate was abandoned first,
       and a whole frame right behind the late bytes is still found */
    memset(&s, 0, sizeof s);
    sb_parser_init(&p, seen, &s);
    sb_parser_feed_at(&p, stream, cut, t0);
    n = n - cut;
    memmove(stream, stream + cut, n);
    n += frame(stream + n, 0x05, 9, 0);
    sb_parser_feed_at(&p, stream, n, t0 + gap);
    CHECK_EQ(s.n, 1);
    CHECK_EQ(s.seqs[0], 9);
    CHECK_EQ(p.stats.timeouts, 1);
    CHECK_EQ(p.len, 0);
    /* sb_parser_feed has no clock and never expires anything by itself */
    memset(&s, 0, sizeof s);
    sb_parser_init(&p, seen, &s);
    sb_frame_encode(stream, sizeof stream, 0x02, 10, 0, payload, sizeof payload);
    sb_parser_feed(&p, stream, 10);
    sb_parser_feed(&p, stream + 10, 10);
    CHECK_EQ(p.stats.timeouts, 0);
    CHECK_EQ(p.len, 20);
}

TEST(test_parser_stalled_oversized_frame_times_out)
{
    size_t n;
    seen_t s = {0};
    /* an oversized header whose body stops arriving after 600 bytes, with a good frame
       inside what did arrive: after the gap it was no frame, and the hidden one comes out */
    big_frame(big, 3000, 70, 0);
    frame(big + 200, 0x01, 71, 0);
    sb_parser_init(&p, seen, &s);
    sb_parser_feed_at(&p, big, 600, 42u);
    CHECK(p.skipping && p.parked); /* what the hunt finds waits for the skip's verdict */
    CHECK_EQ(s.n, 0);
    sb_parser_expire(&p, 42u + SB_PARTIAL_FRAME_TIMEOUT_US);
    CHECK_EQ(s.n, 1);
    CHECK_EQ(s.seqs[0], 71);
    CHECK(!p.skipping && !p.parked);
    CHECK_EQ(p.len, 0);
    /* the sync byte and the 199 bytes before the hidden frame; the bytes after it were not
       hunted (the parser's one-parked-frame simplification, as when a CRC-32 fails) */
    CHECK_EQ(p.stats.bytes_discarded, 200);
    memset(&s, 0, sizeof s);
    sb_parser_init(&p, seen, &s);
    sb_parser_feed_at(&p, big, 210, 42u); /* the hidden frame (20 bytes at 200) incomplete */
    CHECK(p.skipping);
    CHECK_EQ(s.n, 0);
    sb_parser_expire(&p, 42u + SB_PARTIAL_FRAME_TIMEOUT_US);
    CHECK(!p.skipping);
    CHECK_EQ(p.len, 0);
    CHECK_EQ(s.n, 0); /* an incomplete frame stays incomplete */
    CHECK_EQ(p.stats.timeouts, 1);
    CHECK_EQ(p.stats.bytes_discarded, 210);
    n = frame(big, 0x05, 72, 0);
    sb_parser_feed_at(&p, big, n, 43u + SB_PARTIAL_FRAME_TIMEOUT_US);
    CHECK_EQ(s.n, 1);
    CHECK_EQ(s.seqs[0], 72);
}
