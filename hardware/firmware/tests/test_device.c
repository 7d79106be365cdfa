/* The device state machine against scripted hardware (mock_hal.c). */
#include <string.h>

#include "mock_hal.h"
#include "sb_config.h"
#include "sb_crc.h"
#include "sb_frame.h"
#include "sb_msg.h"
#include "sb_test.h"

static uint8_t out_store[MOCK_OUT_CAP];
static mock_t m;
static sb_hal_t hal;
static sb_device_t dev;
static uint16_t samples[32768];
static out_frame_t fr[256];
static size_t rd;

static void setup_board(const sb_board_t *board)
{
    mock_init(&m, out_store);
    mock_hal(&m, &hal);
    sb_device_init(&dev, board, &hal, samples, 32768);
    rd = 0;
}

static void setup(void)
{
    setup_board(&mock_board);
}

static void cmd_v(uint8_t version, uint8_t type, uint32_t seq, uint8_t flags,
                  const uint8_t *payload, uint32_t plen)
{
    static uint8_t buf[4096];
    sb_membuf_t mb = {0};
    sb_sink_t sink;
    uint8_t hdr[16];
    uint32_t crc;
    size_t n;
    /* built by hand so the version byte can be wrong */
    sb_frame_header(hdr, version, type, plen, seq, flags);
    mb.buf = buf;
    mb.cap = sizeof buf;
    sink.write = sb_membuf_write;
    sink.ctx = &mb;
    sink.write(sink.ctx, hdr, 16);
    if (plen)
        sink.write(sink.ctx, payload, plen);
    while (mb.len % 4)
        buf[mb.len++] = 0;
    crc = sb_crc32(buf, mb.len);
    n = mb.len;
    sb_put_u32(buf + n, crc);
    sb_device_rx(&dev, buf, n + 4);
}

static void cmd(uint8_t type, uint32_t seq, uint8_t flags, const uint8_t *payload, uint32_t plen)
{
    cmd_v(1, type, seq, flags, payload, plen);
}

static int next_frames(void)
{
    return mock_frames(&m, &rd, fr, 256);
}

static void enc_config(uint8_t p[100], const sb_config_t *c)
{
    unsigned i;
    p[0] = c->sample_format;
    p[1] = c->decimation;
    p[2] = c->ensemble_size;
    p[3] = c->pulse_cycles;
    sb_put_u32(p + 4, c->samples_per_line);
    sb_put_u32(p + 8, c->start_delay_samples);
    sb_put_u32(p + 12, c->prf_hz);
    sb_put_u16(p + 16, c->lines_per_frame);
    p[18] = c->tgc_count;
    p[19] = c->reserved;
    sb_put_u32(p + 20, (uint32_t)c->sweep_start);
    sb_put_u32(p + 24, (uint32_t)c->sweep_end);
    sb_put_u32(p + 28, c->pulse_freq_hz);
    sb_put_u32(p + 32, c->hv_mv);
    for (i = 0; i < 32; i++)
        sb_put_u16(p + 36 + 2 * i, (uint16_t)c->tgc_cdb[i]);
}

static void configure(uint32_t seq, const sb_config_t *c)
{
    uint8_t p[100];
    enc_config(p, c);
    cmd(SB_MSG_CONFIGURE, seq, 0, p, 100);
}

static void start(uint32_t seq, uint32_t n_frames)
{
    uint8_t p[4];
    sb_put_u32(p, n_frames);
    cmd(SB_MSG_START, seq, 0, p, 4);
}

/* run the acquisition until idle or max polls; the mock clock advances 1 us per read */
static void run(unsigned max_polls)
{
    unsigned i;
    for (i = 0; i < max_polls && dev.state == SB_STATE_STREAMING; i++)
        sb_device_poll(&dev);
}

TEST(test_device_get_info_and_seq)
{
    uint8_t expect[SB_LEN_DEVICE_INFO];
    setup();
    cmd(SB_MSG_GET_INFO, 5, 0, NULL, 0);
    cmd(SB_MSG_GET_INFO, 6, 0, NULL, 0);
    CHECK_EQ(next_frames(), 2);
    CHECK_EQ(fr[0].type, SB_MSG_DEVICE_INFO);
    CHECK_EQ(fr[0].seq, 0);
    CHECK_EQ(fr[1].seq, 1);
    CHECK_EQ(fr[0].flags, SB_FLAG_SIMULATED); /* the board has the SIMULATED capability */
    CHECK_EQ(fr[0].plen, SB_LEN_DEVICE_INFO);
    sb_enc_device_info(expect, 5, &mock_board.info);
    CHECK(memcmp(fr[0].payload, expect, sizeof expect) == 0);
    CHECK_EQ(sb_get_u32(fr[1].payload), 6);
}

static uint32_t status_u32(const out_frame_t *f, unsigned off)
{
    return sb_get_u32(f->payload + off);
}

static void get_status(uint32_t seq, out_frame_t *st)
{
    int n;
    cmd(SB_MSG_GET_STATUS, seq, 0, NULL, 0);
    n = next_frames();
    *st = fr[n - 1];
}

TEST(test_device_configure_ack_nak)
{
    sb_config_t c = mock_board.defaults;
    out_frame_t st;
    uint32_t writes;
    setup();
    writes = m.tgc_writes;
    c.tgc_count = 3;
    c.tgc_cdb[2] = 2000;
    configure(7, &c);
    CHECK_EQ(next_frames(), 1);
    CHECK_EQ(fr[0].type, SB_MSG_ACK);
    CHECK_EQ(sb_get_u32(fr[0].payload), 7);
    CHECK_EQ(fr[0].payload[4], SB_MSG_CONFIGURE);
    CHECK_EQ(m.tgc_writes, writes + 1);
    CHECK_EQ(m.tgc_n, 16);
    /* gain 0 cdB at code (0 + 450) * 4095 / 4800 = 383.9 -> 384; 2000 cdB -> 2090 */
    CHECK_EQ(m.tgc[0], 384);
    CHECK_EQ(m.tgc[15], 2090);
    get_status(8, &st);
    CHECK_EQ(sb_get_u16(st.payload + 30), 1); /* config_id */
    c.prf_hz = 50000;
    c.hv_mv = 1; /* a later field is also wrong: the first one in table order is named */
    configure(9, &c);
    CHECK_EQ(next_frames(), 1);
    CHECK_EQ(fr[0].type, SB_MSG_NAK);
    CHECK_EQ(sb_get_u32(fr[0].payload), 9);
    CHECK_EQ(fr[0].payload[4], SB_MSG_CONFIGURE);
    CHECK_EQ(fr[0].payload[5], SB_NAK_OUT_OF_RANGE);
    CHECK_EQ(fr[0].payload[6], SB_FIELD_PRF_HZ);
    CHECK(fr[0].plen > 8);
    CHECK(memcmp(fr[0].payload + 8, "prf_hz = 50000", 14) == 0);
    get_status(10, &st);
    CHECK_EQ(sb_get_u16(st.payload + 30), 1); /* a refused CONFIGURE changes nothing */
}

static void expect_nak(uint32_t seq, uint8_t type, uint8_t code)
{
    int n = next_frames();
    CHECK_EQ(n, 1);
    CHECK_EQ(fr[0].type, SB_MSG_NAK);
    CHECK_EQ(sb_get_u32(fr[0].payload), seq);
    CHECK_EQ(fr[0].payload[4], type);
    CHECK_EQ(fr[0].payload[5], code);
    CHECK_EQ(fr[0].payload[6], 0);
}

TEST(test_device_rejects_bad_frames)
{
    static uint8_t junk[2000];
    int before = sb_test_failed;
#define NAKS(send, seq, type, code)         \
    do {                                    \
        send;                               \
        expect_nak(seq, type, code);        \
        if (sb_test_failed != before)       \
            return;                         \
    } while (0)
    setup();
    NAKS(cmd_v(2, SB_MSG_GET_INFO, 1, 0, NULL, 0), 1, SB_MSG_GET_INFO,
         SB_NAK_UNSUPPORTED_VERSION);
    NAKS(cmd(SB_MSG_GET_INFO, 2, 0x10, NULL, 0), 2, SB_MSG_GET_INFO, SB_NAK_UNSUPPORTED_FLAG);
    NAKS(cmd(0x55, 3, 0, NULL, 0), 3, 0x55, SB_NAK_UNKNOWN_TYPE);
    NAKS(cmd(SB_MSG_ACK, 4, 0, junk, 8), 4, SB_MSG_ACK, SB_NAK_UNKNOWN_TYPE);
    NAKS(cmd(SB_MSG_GET_INFO, 5, 0, junk, 4), 5, SB_MSG_GET_INFO, SB_NAK_BAD_LENGTH);
    NAKS(cmd(SB_MSG_CONFIGURE, 6, 0, junk, 99), 6, SB_MSG_CONFIGURE, SB_NAK_BAD_LENGTH);
    NAKS(cmd(SB_MSG_PING, 7, 0, junk, 3), 7, SB_MSG_PING, SB_NAK_BAD_LENGTH);
    NAKS(cmd(SB_MSG_START, 8, 0, junk, 0), 8, SB_MSG_START, SB_NAK_BAD_LENGTH);
    /* longer than any command: streamed past, not buffered, and still answered */
    NAKS(cmd(SB_MSG_PING, 9, 0, junk, 1025), 9, SB_MSG_PING, SB_NAK_BAD_LENGTH);
    NAKS(cmd(0x7E, 10, 0, junk, 2000), 10, 0x7E, SB_NAK_UNKNOWN_TYPE);
    NAKS(cmd_v(3, 0x7E, 11, 0x80, junk, 2000), 11, 0x7E, SB_NAK_UNSUPPORTED_VERSION);
#undef NAKS
    /* the advisory bits are ignored */
    cmd(SB_MSG_GET_INFO, 12, 0x0C, NULL, 0);
    CHECK_EQ(next_frames(), 1);
    CHECK_EQ(fr[0].type, SB_MSG_DEVICE_INFO);
    CHECK_EQ(fr[0].seq, 11); /* one reply per frame, seq counting every one */
}

static sb_config_t small_config(void)
{
    sb_config_t c = mock_board.defaults;
    c.sample_format = SB_FMT_U8;
    c.samples_per_line = 64;
    c.lines_per_frame = 3;
    c.ensemble_size = 2;
    c.prf_hz = 1000;
    c.sweep_start = -1000;
    c.sweep_end = 1000;
    return c;
}

TEST(test_device_stream_n_frames)
{
    sb_config_t c = small_config();
    int n, i, k = 0;
    uint32_t expect_seq = 0;
    unsigned frame, line, ens;
    setup();
    configure(1, &c);
    start(2, 2);
    run(100000);
    CHECK_EQ(dev.state, SB_STATE_IDLE);
    n = next_frames();
    CHECK_EQ(n, 2 + 2 * (6 + 1));
    for (i = 0; i < n; i++)
        CHECK_EQ(fr[i].seq, expect_seq++);
    CHECK_EQ(fr[0].type, SB_MSG_ACK);
    CHECK_EQ(fr[1].type, SB_MSG_ACK);
    CHECK_EQ(sb_get_u32(fr[1].payload), 2);
    k = 2;
    for (frame = 0; frame < 2; frame++) {
        for (line = 0; line < 3; line++) {
            for (ens = 0; ens < 2; ens++, k++) {
                const uint8_t *p = fr[k].payload;
                CHECK_EQ(fr[k].type, SB_MSG_ECHO_LINE);
                CHECK_EQ(fr[k].plen, 40 + 64);
                CHECK_EQ(p[0], SB_FMT_U8);
                CHECK_EQ(p[1], 8); /* a 10-bit ADC sent as U8 says 8 bits */
                CHECK_EQ(p[2], ens);
                CHECK_EQ(p[3], 2);
                CHECK_EQ(sb_get_u32(p + 4), 40000000u);
                CHECK_EQ(sb_get_u32(p + 12), frame);
                CHECK_EQ(sb_get_u16(p + 16), line);
                CHECK_EQ(sb_get_u16(p + 18), 3);
                CHECK_EQ(sb_get_u16(p + 32), 1); /* config_id */
                CHECK_EQ(p[34], SB_SWEEP_SECTOR);
                CHECK_EQ(sb_get_u32(p + 36), 64);
            }
        }
        CHECK_EQ(fr[k].type, SB_MSG_FRAME_END);
        CHECK_EQ(sb_get_u32(fr[k].payload), frame);
        CHECK_EQ(sb_get_u16(fr[k].payload + 4), 6);
        CHECK_EQ(sb_get_u16(fr[k].payload + 6), 3);
        k++;
    }
    CHECK_EQ(m.pulses, 12);
    CHECK_EQ(m.armed_n, 64);
    CHECK_EQ(m.last_freq, c.pulse_freq_hz);
    CHECK_EQ(m.last_cycles, c.pulse_cycles);
    CHECK_EQ(dev.lines_sent, 12);
}

TEST(test_device_ensembles_and_positions)
{
    sb_config_t c = small_config();
    int n, k;
    setup();
    configure(1, &c);
    start(2, 1);
    run(100000);
    n = next_frames();
    CHECK_EQ(n, 2 + 6 + 1);
    /* the mechanism moves once per line, not per firing */
    CHECK_EQ(m.n_moves, 3);
    CHECK_EQ(m.moves[0], -1000);
    CHECK_EQ(m.moves[1], 0);
    CHECK_EQ(m.moves[2], 1000);
    for (k = 0; k < 6; k++) {
        const uint8_t *p = fr[2 + k].payload;
        /* the line carries the actual position (the mock overshoots by one) */
        CHECK_EQ((int32_t)sb_get_u32(p + 20), m.moves[k / 2] + 1);
        CHECK_EQ(p[2], k % 2);
        /* samples are the ADC codes >> 2 */
        CHECK_EQ(p[40 + 5], (uint8_t)((((k + 1) * 7u + 5u) & 0x3FFu) >> 2));
    }
}

TEST(test_device_prf_timing)
{
    sb_config_t c = small_config();
    int n, k;
    setup();
    c.prf_hz = 3000; /* 333.33 us: the schedule must not drift by rounding */
    configure(1, &c);
    start(2, 5);
    run(1000000);
    CHECK_EQ(m.pulses, 30);
    for (k = 1; k < 30; k++) {
        uint64_t d = m.fire_times[k] - m.fire_times[k - 1];
        CHECK(d >= 333 && d <= 336);
    }
    /* 29 periods of 1/3000 s: 9666.7 us, to within the clock's 1 us steps */
    CHECK(m.fire_times[29] - m.fire_times[0] >= 9666 && m.fire_times[29] - m.fire_times[0] <= 9670);
    n = next_frames();
    CHECK_EQ(n, 2 + 5 * 7);
    for (k = 0; k < 6; k++)
        CHECK_EQ(sb_get_u64(fr[2 + k].payload + 24), m.fire_times[k]);
    /* a stall never turns into a burst: the next two firings are still a period apart */
    setup();
    configure(1, &c);
    start(2, 0);
    run(2000);
    m.now += 5000;
    k = (int)m.pulses;
    while (m.pulses < (uint32_t)k + 2)
        sb_device_poll(&dev);
    CHECK(m.fire_times[k + 1] - m.fire_times[k] >= 333);
}

TEST(test_device_stop_busy_retry)
{
    sb_config_t c = small_config();
    int n;
    uint32_t pulses;
    setup();
    configure(1, &c);
    start(10, 0);
    run(1500); /* part way into a frame */
    CHECK(m.pulses > 0 && m.pulses < 6);
    pulses = m.pulses;
    /* the ACK of START was lost: the host retries with the same seq */
    {
        uint8_t p[4] = {0, 0, 0, 0};
        cmd(SB_MSG_START, 10, SB_FLAG_RETRY, p, 4);
    }
    n = next_frames();
    CHECK_EQ(fr[n - 1].type, SB_MSG_ACK);
    CHECK_EQ(sb_get_u32(fr[n - 1].payload), 10);
    CHECK_EQ(dev.frame_index, 0); /* not restarted */
    start(11, 0);
    n = next_frames();
    CHECK_EQ(fr[n - 1].type, SB_MSG_NAK);
    CHECK_EQ(fr[n - 1].payload[5], SB_NAK_BUSY);
    configure(12, &c);
    n = next_frames();
    CHECK_EQ(fr[n - 1].payload[5], SB_NAK_BUSY);
    /* RETRY of a seq that is not the last handled one is handled normally */
    {
        uint8_t p[4] = {0, 0, 0, 0};
        cmd(SB_MSG_START, 10, SB_FLAG_RETRY, p, 4);
    }
    n = next_frames();
    CHECK_EQ(fr[n - 1].type, SB_MSG_NAK);
    CHECK_EQ(fr[n - 1].payload[5], SB_NAK_BUSY);
    cmd(SB_MSG_STOP, 13, 0, NULL, 0);
    n = next_frames();
    CHECK_EQ(fr[n - 1].type, SB_MSG_ACK);
    CHECK_EQ(fr[n - 1].payload[4], SB_MSG_STOP);
    CHECK_EQ(dev.state, SB_STATE_IDLE);
    pulses = m.pulses;
    run(5000);
    sb_device_poll(&dev);
    CHECK_EQ(m.pulses, pulses); /* nothing fires after STOP ... */
    CHECK_EQ(next_frames(), 0); /* ... and no FRAME_END for the partial frame */
    cmd(SB_MSG_STOP, 14, 0, NULL, 0); /* STOP while idle is ACKed too */
    n = next_frames();
    CHECK_EQ(n, 1);
    CHECK_EQ(fr[0].type, SB_MSG_ACK);
    /* a retried STATUS gets the earlier reply, byte for byte but under a new seq */
    cmd(SB_MSG_GET_STATUS, 15, 0, NULL, 0);
    m.now += 12345;
    cmd(SB_MSG_GET_STATUS, 15, SB_FLAG_RETRY, NULL, 0);
    n = next_frames();
    CHECK_EQ(n, 2);
    CHECK_EQ(fr[1].seq, fr[0].seq + 1);
    CHECK(memcmp(fr[0].payload, fr[1].payload, SB_LEN_STATUS) == 0);
}

TEST(test_device_reset)
{
    sb_config_t c = small_config();
    sb_board_t no_reset = mock_board;
    out_frame_t st;
    int n;
    setup();
    configure(1, &c);
    cmd(SB_MSG_GET_INFO, 2, 0, NULL, 0);
    cmd(SB_MSG_RESET, 3, 0, NULL, 0);
    cmd(SB_MSG_GET_STATUS, 4, 0, NULL, 0); /* in the same chunk as far as the link knows */
    n = next_frames();
    CHECK_EQ(n, 5);
    CHECK_EQ(fr[2].type, SB_MSG_ACK);
    CHECK_EQ(fr[2].seq, 2);
    CHECK_EQ(fr[3].type, SB_MSG_DEVICE_INFO);
    CHECK_EQ(fr[3].seq, 0); /* the counter restarts */
    CHECK_EQ(sb_get_u32(fr[3].payload), SB_UNSOLICITED);
    CHECK_EQ(fr[4].type, SB_MSG_STATUS);
    CHECK_EQ(fr[4].seq, 1);
    CHECK_EQ(sb_get_u16(fr[4].payload + 30), 0); /* power-up configuration */
    CHECK_EQ(m.resets, 2);                        /* power-up and RESET */
    CHECK_EQ(dev.cfg.samples_per_line, mock_board.defaults.samples_per_line);
    no_reset.info.capabilities = 0;
    setup_board(&no_reset);
    cmd(SB_MSG_RESET, 5, 0, NULL, 0);
    expect_nak(5, SB_MSG_RESET, SB_NAK_UNSUPPORTED);
    CHECK_EQ(fr[0].flags, 0); /* no SIMULATED capability, no SIMULATED flag */
    get_status(6, &st);
    CHECK_EQ(st.seq, 1);
}

TEST(test_device_drops_lines_when_link_full)
{
    sb_config_t c = small_config();
    out_frame_t st;
    int n, k, logs = 0, lines = 0;
    setup();
    configure(1, &c);
    m.space = SB_REPLY_HEADROOM + 100; /* a line of 104 + 20 bytes does not fit */
    start(2, 2);
    run(100000);
    n = next_frames();
    for (k = 0; k < n; k++) {
        logs += fr[k].type == SB_MSG_LOG;
        lines += fr[k].type == SB_MSG_ECHO_LINE;
        if (fr[k].type == SB_MSG_FRAME_END)
            CHECK_EQ(sb_get_u16(fr[k].payload + 4), 0); /* honest lines_sent */
    }
    CHECK_EQ(lines, 0);
    CHECK_EQ(logs, 1); /* warned once, not per line */
    get_status(3, &st);
    CHECK_EQ(status_u32(&st, 20), 12); /* dropped_lines */
    CHECK_EQ(status_u32(&st, 24), 0);  /* lines_sent */
    CHECK(st.payload[5] & SB_FAULT_OVERFLOW);
}

TEST(test_device_ping_status)
{
    const uint8_t ping[] = {0xEF, 0xBE, 0xAD, 0xDE, 's', 'o', 'n', 'o'};
    static uint8_t big_ping[4 + 1020];
    sb_config_t c = small_config();
    out_frame_t st;
    int n;
    setup();
    m.now = 1000000;
    cmd(SB_MSG_PING, 7, 0, ping, sizeof ping);
    n = next_frames();
    CHECK_EQ(n, 1);
    CHECK_EQ(fr[0].type, SB_MSG_PONG);
    CHECK_EQ(fr[0].plen, 16 + 4);
    CHECK_EQ(sb_get_u32(fr[0].payload), 7);
    CHECK_EQ(sb_get_u32(fr[0].payload + 4), 0xDEADBEEFu);
    CHECK(sb_get_u64(fr[0].payload + 8) > 1000000);
    CHECK(memcmp(fr[0].payload + 16, "sono", 4) == 0);
    memset(big_ping, 0xA5, sizeof big_ping); /* the largest PING, full of sync bytes */
    cmd(SB_MSG_PING, 8, 0, big_ping, sizeof big_ping);
    n = next_frames();
    CHECK_EQ(n, 1);
    CHECK_EQ(fr[0].plen, 16 + 1020);
    configure(9, &c);
    start(10, 0);
    get_status(11, &st);
    CHECK_EQ(st.type, SB_MSG_STATUS);
    CHECK_EQ(sb_get_u32(st.payload), 11);
    CHECK_EQ(st.payload[4], SB_STATE_STREAMING);
    CHECK_EQ(sb_get_u32(st.payload + 8), c.hv_mv);
    CHECK_EQ(sb_get_u16(st.payload + 30), 1);
}

TEST(test_device_hardware_fault)
{
    out_frame_t st;
    setup();
    m.faults = SB_FAULT_HV;
    start(1, 0);
    expect_nak(1, SB_MSG_START, SB_NAK_HARDWARE_FAULT);
    get_status(2, &st);
    CHECK_EQ(st.payload[4], SB_STATE_FAULT);
    CHECK_EQ(st.payload[5], SB_FAULT_HV);
    m.faults = 0;
    m.adc_fault = 1; /* a capture that fails is dropped, counted and flagged */
    start(3, 1);
    run(100000);
    get_status(4, &st);
    CHECK_EQ(sb_get_u32(st.payload + 20), 4);
    CHECK(st.payload[5] & SB_FAULT_ADC);
}

/* Runs the emulated board through 4 firings, a stall of stall_us, and 4 more; returns the
   8 lines' device timestamps in ts and their line indices in li. */
static void emulated_stall(uint64_t stall_us, uint64_t ts[8], uint16_t li[8])
{
    sb_config_t c = small_config();
    int n, k, lines = 0;
    setup();
    hal.emulated_timing = 1; /* the host build's rule */
    c.prf_hz = 3000;
    c.ensemble_size = 1;
    c.lines_per_frame = 16;
    configure(1, &c);
    start(2, 0);
    while (m.pulses < 4)
        sb_device_poll(&dev);
    m.now += stall_us; /* the process was descheduled */
    while (m.pulses < 8)
        sb_device_poll(&dev);
    n = next_frames();
    for (k = 0; k < n; k++) {
        if (fr[k].type != SB_MSG_ECHO_LINE)
            continue;
        CHECK(lines < 8);
        ts[lines] = sb_get_u64(fr[k].payload + 24);
        li[lines] = sb_get_u16(fr[k].payload + 16);
        lines++;
    }
    CHECK_EQ(lines, 8);
}

TEST(test_device_emulated_timing_catches_up_after_stall)
{
    const uint32_t prf = 3000, period = 1000000u / 3000u; /* 333.3 us */
    uint64_t ts[8];
    uint16_t li[8];
    int k;
    /* ten periods away: the emulated DMA captured them all, the CPU sends them late */
    emulated_stall(10u * period + 10u, ts, li);
    for (k = 0; k < 8; k++) {
        uint64_t e = ts[k] - ts[0];
        CHECK_EQ(li[k], k);                               /* no line skipped, none lost */
        CHECK_EQ((e * prf / 1000000u * 1000000u + prf - 1u) / prf, e); /* on the grid */
        CHECK(m.fire_times[k] >= ts[k]);                  /* computed at or after its time */
        if (k > 0) /* consecutive grid points: the stall does not show in the timestamps */
            CHECK(ts[k] - ts[k - 1] >= period && ts[k] - ts[k - 1] <= period + 1u);
    }
    /* the firings after the stall were computed late, one after the other */
    CHECK(m.fire_times[4] - ts[4] >= 9u * period);
}

TEST(test_device_emulated_timing_reanchors_after_long_stall)
{
    const uint32_t period = 1000000u / 3000u;
    uint64_t ts[8];
    uint16_t li[8];
    int k;
    /* longer than the capture buffers: those points stay empty, nothing bursts */
    emulated_stall(SB_EMULATED_BACKLOG_US + 10u * period, ts, li);
    for (k = 0; k < 8; k++)
        CHECK_EQ(li[k], k); /* the sweep goes on with the line that was due */
    CHECK(ts[4] - ts[3] >= SB_EMULATED_BACKLOG_US + 10u * period - period);
    CHECK(m.fire_times[4] - ts[4] <= period + 1u);      /* stamped at the latest grid point */
    for (k = 5; k < 8; k++)
        CHECK(ts[k] - ts[k - 1] >= period && ts[k] - ts[k - 1] <= period + 1u);
}

TEST(test_device_partial_command_times_out)
{
    static uint8_t bytes[256];
    const uint8_t ping[] = {0x0D, 0xF0, 0xAD, 0xBA};
    uint8_t p[100];
    sb_config_t c = small_config();
    uint64_t due;
    size_t n;
    int k;
    setup();
    m.now = 1000000;
    enc_config(p, &c);
    n = sb_frame_encode(bytes, sizeof bytes, SB_MSG_CONFIGURE, 1, 0, p, sizeof p);
    CHECK_EQ(n, 120);
    n = 60; /* the host's write was cut short; its next command follows at once */
    n += sb_frame_encode(bytes + n, sizeof bytes - n, SB_MSG_PING, 2, 0, ping, sizeof ping);
    sb_device_rx(&dev, bytes, n);
    CHECK_EQ(next_frames(), 0);
    due = sb_device_next_due_us(&dev);
    CHECK(due > m.now && due <= m.now + SB_PARTIAL_FRAME_TIMEOUT_US);
    m.now = due - 2; /* the mock clock reads one microsecond on */
    sb_device_poll(&dev);
    CHECK_EQ(next_frames(), 0);
    m.now = due;
    sb_device_poll(&dev); /* the port's main loop, with no new bytes */
    CHECK_EQ(next_frames(), 1);
    CHECK_EQ(fr[0].type, SB_MSG_PONG);
    CHECK_EQ(sb_get_u32(fr[0].payload), 2);
    CHECK_EQ(sb_get_u32(fr[0].payload + 4), 0xBAADF00Du);
    CHECK_EQ(fr[0].seq, 0); /* the truncated CONFIGURE got no reply at all */
    CHECK_EQ(dev.config_id, 0);
    CHECK_EQ(dev.parser.stats.bytes_discarded, 60);
    CHECK_EQ(dev.parser.stats.timeouts, 1);
    CHECK(sb_device_next_due_us(&dev) == UINT64_MAX);
    /* a truncated frame while streaming, and a command long after it: the command arriving
       after the gap is not swallowed (the stale bytes are dropped before it is parsed) */
    start(3, 0);
    sb_device_rx(&dev, bytes, 60);
    for (k = 0; k < 100; k++) {
        m.now += 1000u;
        sb_device_poll(&dev);
    }
    CHECK(dev.parser.len == 0); /* timed out by poll alone, 50 ms into the 100 */
    CHECK_EQ(dev.parser.stats.timeouts, 2);
    sb_device_rx(&dev, bytes, 60);
    m.now += SB_PARTIAL_FRAME_TIMEOUT_US;
    cmd(SB_MSG_GET_STATUS, 4, 0, NULL, 0);
    k = next_frames();
    CHECK(k > 0);
    CHECK_EQ(fr[k - 1].type, SB_MSG_STATUS);
    CHECK_EQ(sb_get_u32(fr[k - 1].payload), 4);
    CHECK_EQ(dev.parser.stats.timeouts, 3);
}
