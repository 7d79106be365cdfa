/*
 * Fuzz/property driver: a seeded stream of random bytes, sync-heavy noise, oversized headers
 * and mutated valid commands is fed, in random chunks, to a device (parser + state machine)
 * built with the sanitizers, with now and then an idle gap that times out whatever is held.
 * Properties: nothing crashes or trips ASan/UBSan, the parser never holds more than its buffer
 * and holds nothing after an idle gap, every byte is accounted for, and afterwards a host that
 * keeps retrying GET_INFO (as the real one does) gets DEVICE_INFO back, and from then on every
 * GET_INFO is answered.
 *
 * usage: fuzz_parser [total_bytes [seed]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock_hal.h"
#include "sb_crc.h"
#include "sb_frame.h"

static uint64_t rng_state;

static uint32_t rnd(void)
{
    /* xorshift64*: deterministic for a seed, so a failure replays exactly */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

static uint8_t out_store[MOCK_OUT_CAP];
static mock_t m;
static sb_hal_t hal;
static sb_device_t dev;
static uint16_t samples[32768];
static uint8_t seg[8192];

static size_t valid_command(uint8_t *out)
{
    static const uint8_t types[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x00, 0x55, 0x81};
    uint8_t payload[1100];
    uint8_t type = types[rnd() % sizeof types];
    uint32_t plen = 0, i;
    uint8_t flags = (uint8_t)((rnd() % 4 == 0) ? SB_FLAG_RETRY : 0);
    switch (type) {
    case 0x02:
        plen = 100;
        break;
    case 0x03:
        plen = 4;
        break;
    case 0x06:
        plen = 4 + rnd() % 1021;
        break;
    default:
        plen = rnd() % 8 == 0 ? rnd() % 16 : 0;
    }
    for (i = 0; i < plen; i++)
        payload[i] = (uint8_t)rnd();
    if (type == 0x02 && rnd() % 2) {
        /* a plausible configuration: small lines, so a START streams cheaply */
        memset(payload, 0, 100);
        payload[0] = (uint8_t)(rnd() % 4);
        payload[1] = 1;
        payload[2] = (uint8_t)(1 + rnd() % 3);
        payload[3] = 1;
        sb_put_u32(payload + 4, 64 + 2 * (rnd() % 64));
        sb_put_u32(payload + 12, 1000 + rnd() % 19000);
        sb_put_u16(payload + 16, (uint16_t)(1 + rnd() % 8));
        payload[18] = 1;
        sb_put_u32(payload + 28, 5000000);
        sb_put_u32(payload + 32, 48000);
    }
    if (type == 0x03)
        sb_put_u32(payload, rnd() % 3);
    return sb_frame_encode(out, 2048, type, rnd() % 64, flags, payload, plen);
}

static size_t segment(uint8_t *out)
{
    uint32_t kind = rnd() % 11, n, i;
    if (kind < 3) { /* random bytes */
        n = 1 + rnd() % 300;
        for (i = 0; i < n; i++)
            out[i] = (uint8_t)rnd();
        return n;
    }
    if (kind < 4) { /* sync-heavy noise */
        n = 2 + rnd() % 200;
        for (i = 0; i < n; i++)
            out[i] = (rnd() % 3) ? (i % 2 ? SB_SYNC1 : SB_SYNC0) : (uint8_t)rnd();
        return n;
    }
    if (kind < 5) { /* an oversized header (valid CRC-16), then a little of its body */
        sb_frame_header(out, (uint8_t)(rnd() % 3 ? 1 : rnd()), (uint8_t)rnd(),
                        1100 + rnd() % 6000, rnd(), (uint8_t)(rnd() % 4 ? 0 : rnd()));
        n = 16 + rnd() % 1500;
        for (i = 16; i < n; i++)
            out[i] = (uint8_t)rnd();
        return n;
    }
    if (kind == 10) { /* a complete, intact frame too long for any command */
        static uint8_t body[6000];
        uint32_t plen = 1025 + rnd() % 4000;
        for (i = 0; i < plen; i++)
            body[i] = (uint8_t)rnd();
        return sb_frame_encode(out, 8192, (uint8_t)(rnd() % 2 ? 0x06 : rnd()), rnd(), 0, body,
                               plen);
    }
    n = (uint32_t)valid_command(out);
    if (rnd() % 2) { /* mutate: flip bits */
        uint32_t flips = 1 + rnd() % 3;
        for (i = 0; i < flips; i++)
            out[rnd() % n] ^= (uint8_t)(1u << (rnd() % 8));
    }
    if (rnd() % 5 == 0) /* truncate */
        n = rnd() % n;
    return n;
}

static int count_device_info(size_t *pos, uint32_t *last_request_seq)
{
    out_frame_t fr[64];
    int k, n, found = 0;
    while ((n = mock_frames(&m, pos, fr, 64)) > 0) {
        for (k = 0; k < n; k++) {
            if (fr[k].type == SB_MSG_DEVICE_INFO) {
                found++;
                *last_request_seq = sb_get_u32(fr[k].payload);
            }
        }
    }
    if (n < 0) {
        printf("fuzz: device output is not a clean frame stream\n");
        exit(1);
    }
    if (*pos == m.out_len) { /* all read: reuse the capture buffer */
        *pos = 0;
        m.out_len = 0;
    }
    return found;
}

int main(int argc, char **argv)
{
    unsigned long total = argc > 1 ? strtoul(argv[1], NULL, 0) : 1000000ul;
    unsigned long seed = argc > 2 ? strtoul(argv[2], NULL, 0) : 1ul;
    unsigned long fed = 0, segments = 0, tries;
    size_t pos = 0;
    uint32_t rseq = 0;
    uint8_t get_info[20];
    int i;

    rng_state = 0x9E3779B97F4A7C15ULL ^ seed;
    mock_init(&m, out_store);
    m.capture_out = 0;
    mock_hal(&m, &hal);
    sb_device_init(&dev, &mock_board, &hal, samples, 32768);

    while (fed < total) {
        size_t n = segment(seg), at = 0;
        segments++;
        while (at < n) {
            size_t chunk = 1 + rnd() % 64;
            if (chunk > n - at)
                chunk = n - at;
            sb_device_rx(&dev, seg + at, chunk);
            at += chunk;
            if (dev.parser.len > SB_RX_CAP) {
                printf("fuzz: parser holds %u bytes\n", (unsigned)dev.parser.len);
                return 1;
            }
        }
        fed += n;
        if (dev.parser.stats.bytes_in != (uint32_t)fed) {
            printf("fuzz: parser saw %u bytes of %lu\n", (unsigned)dev.parser.stats.bytes_in, fed);
            return 1;
        }
        if (rnd() % 4 == 0) { /* let a started acquisition run a little */
            m.now += rnd() % 3000;
            sb_device_poll(&dev);
        }
        if (rnd() % 16 == 0) { /* the link goes quiet: whatever is held times out */
            m.now += SB_PARTIAL_FRAME_TIMEOUT_US + rnd() % 1000;
            sb_device_poll(&dev);
            if (dev.parser.len != 0 || dev.parser.skipping) {
                printf("fuzz: parser holds %u bytes after an idle gap\n",
                       (unsigned)dev.parser.len);
                return 1;
            }
        }
    }

    /* recovery: from here on the host only sends GET_INFO, retrying until it is answered */
    m.capture_out = 1;
    m.out_len = 0;
    for (tries = 1; tries <= (SB_MAX_PAYLOAD + 4096) / 20; tries++) {
        sb_frame_encode(get_info, sizeof get_info, SB_MSG_GET_INFO, 0x10000u + (uint32_t)tries,
                        0, NULL, 0);
        sb_device_rx(&dev, get_info, sizeof get_info);
        if (count_device_info(&pos, &rseq))
            break;
    }
    if (tries > (SB_MAX_PAYLOAD + 4096) / 20) {
        printf("fuzz: no DEVICE_INFO after %lu GET_INFO\n", tries - 1);
        return 1;
    }
    for (i = 0; i < 10; i++) {
        uint32_t seq = 0x20000u + (uint32_t)i;
        sb_frame_encode(get_info, sizeof get_info, SB_MSG_GET_INFO, seq, 0, NULL, 0);
        sb_device_rx(&dev, get_info, sizeof get_info);
        if (count_device_info(&pos, &rseq) != 1 || rseq != seq) {
            printf("fuzz: GET_INFO %d after recovery was not answered\n", i);
            return 1;
        }
    }
    printf("fuzz: seed %lu, %lu bytes in %lu segments: %u frames ok, %u oversized, "
           "%u header errors, %u crc errors, %u bytes discarded, %u idle-gap timeouts; "
           "%u lines sent; recovered after %lu GET_INFO\n",
           seed, fed, segments, (unsigned)dev.parser.stats.frames_ok,
           (unsigned)dev.parser.stats.frames_oversized, (unsigned)dev.parser.stats.header_errors,
           (unsigned)dev.parser.stats.crc_errors, (unsigned)dev.parser.stats.bytes_discarded,
           (unsigned)dev.parser.stats.timeouts, (unsigned)dev.lines_sent, tries);
    if (dev.parser.stats.frames_ok < 100 || dev.parser.stats.frames_oversized == 0 ||
        dev.parser.stats.crc_errors == 0 || dev.parser.stats.timeouts == 0) {
        printf("fuzz: the stream did not exercise the parser's paths\n");
        return 1;
    }
    printf("fuzz: ok\n");
    return 0;
}
