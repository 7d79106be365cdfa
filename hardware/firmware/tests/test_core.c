/* CRCs, the shared vectors, packing, validation, positions, TGC and the ring. */
#include <string.h>

#include "sb_config.h"
#include "sb_crc.h"
#include "sb_frame.h"
#include "sb_msg.h"
#include "sb_pack.h"
#include "sb_parser.h"
#include "sb_ring.h"
#include "sb_test.h"
#include "vectors_gen.h"

static const uint8_t check_input[] = "123456789";

TEST(test_crc_check_values)
{
    CHECK_EQ(sb_crc16(check_input, 9), 0x29B1);
    CHECK_EQ(sb_crc32(check_input, 9), 0xCBF43926u);
    CHECK_EQ(sb_crc32(check_input, 0), 0);
}

TEST(test_crc_streaming_equals_whole)
{
    uint8_t data[300];
    unsigned i, cut;
    for (i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 37u + 11u);
    for (cut = 0; cut <= sizeof data; cut += 7) {
        uint32_t c = sb_crc32_update(SB_CRC32_INIT, data, cut);
        uint16_t h = sb_crc16_update(SB_CRC16_INIT, data, cut);
        c = sb_crc32_update(c, data + cut, sizeof data - cut);
        h = sb_crc16_update(h, data + cut, sizeof data - cut);
        CHECK_EQ(sb_crc32_final(c), sb_crc32(data, sizeof data));
        CHECK_EQ(h, sb_crc16(data, sizeof data));
    }
}

/* -- vectors -------------------------------------------------------------------------------- */

static uint16_t wire_to_code(uint8_t fmt, uint8_t bits, int32_t s)
{
    /* the vectors hold samples as they are on the wire; the packer takes ADC codes */
    if (fmt == SB_FMT_I16)
        return (uint16_t)(s + (1 << (bits - 1)));
    return (uint16_t)s;
}

static size_t build_echo_line(const vec_t *v, uint8_t *out, size_t cap)
{
    uint8_t head[SB_LEN_ECHO_HEADER];
    uint8_t packed[256];
    uint16_t codes[128];
    sb_membuf_t mb = {0};
    sb_sink_t sink;
    sb_tx_t tx;
    uint32_t i;
    size_t n;
    for (i = 0; i < v->n_samples; i++)
        codes[i] = wire_to_code(v->line.sample_format, v->line.adc_bits, v->samples[i]);
    n = sb_pack(packed, codes, v->n_samples, v->line.sample_format, v->line.adc_bits);
    sb_enc_echo_header(head, &v->line);
    mb.buf = out;
    mb.cap = cap;
    sink.write = sb_membuf_write;
    sink.ctx = &mb;
    sb_tx_begin(&tx, sink, SB_MSG_ECHO_LINE, (uint32_t)(sizeof head + n), v->seq, v->flags);
    sb_tx_put(&tx, head, sizeof head);
    sb_tx_put(&tx, packed, n);
    sb_tx_end(&tx);
    return mb.len;
}

TEST(test_vectors_device_to_host_bytes)
{
    unsigned i, checked = 0;
    for (i = 0; i < N_VECTORS; i++) {
        const vec_t *v = &vectors[i];
        uint8_t payload[1100];
        uint8_t out[1200];
        size_t plen, n;
        switch (v->msg_type) {
        case SB_MSG_DEVICE_INFO:
            plen = sb_enc_device_info(payload, v->request_seq, &v->info);
            break;
        case SB_MSG_ACK:
            plen = sb_enc_ack(payload, v->request_seq, v->request_type);
            break;
        case SB_MSG_NAK:
            plen = sb_enc_nak(payload, v->request_seq, v->request_type, v->error_code,
                              v->field_id, v->text, v->text_len);
            break;
        case SB_MSG_STATUS:
            plen = sb_enc_status(payload, v->request_seq, &v->status);
            break;
        case SB_MSG_PONG:
            plen = sb_enc_pong(payload, v->request_seq, v->token, v->device_time_us, v->data,
                               v->data_len);
            break;
        case SB_MSG_LOG:
            plen = sb_enc_log(payload, v->level, v->text, v->text_len);
            break;
        case SB_MSG_FRAME_END:
            plen = sb_enc_frame_end(payload, v->fe_frame_index, v->fe_lines_sent,
                                    v->fe_lines_per_frame, v->fe_timestamp_us);
            break;
        case SB_MSG_ECHO_LINE:
            CHECK_EQ(sb_line_adc_bits(v->line.sample_format, v->line.adc_bits),
                     v->line.adc_bits);
            n = build_echo_line(v, out, sizeof out);
            if (n != v->frame_len || memcmp(out, v->frame, n) != 0)
                printf("  vector %s differs\n", v->name);
            CHECK_EQ(n, v->frame_len);
            CHECK(memcmp(out, v->frame, n) == 0);
            checked++;
            continue;
        default:
            continue; /* a command: see the parse test */
        }
        n = sb_frame_encode(out, sizeof out, v->msg_type, v->seq, v->flags, payload,
                            (uint32_t)plen);
        if (n != v->frame_len || memcmp(out, v->frame, n) != 0)
            printf("  vector %s differs\n", v->name);
        CHECK_EQ(n, v->frame_len);
        CHECK(memcmp(out, v->frame, n) == 0);
        checked++;
    }
    CHECK_EQ(checked, 11); /* DEVICE_INFO ACK NAK STATUS PONG LOG 4xECHO_LINE FRAME_END */
}

typedef struct {
    unsigned n;
    sb_frame_t f;
    uint8_t payload[SB_CMD_MAX_PAYLOAD];
} got_t;

static void record(void *ctx, const sb_frame_t *f)
{
    got_t *g = (got_t *)ctx;
    g->n++;
    g->f = *f;
    if (f->payload) {
        memcpy(g->payload, f->payload, f->payload_len);
        g->f.payload = g->payload;
    }
}

TEST(test_vectors_host_to_device_parse)
{
    unsigned i, checked = 0;
    static sb_parser_t p;
    for (i = 0; i < N_VECTORS; i++) {
        const vec_t *v = &vectors[i];
        got_t g = {0};
        if (!sb_is_command(v->msg_type))
            continue;
        sb_parser_init(&p, record, &g);
        sb_parser_feed(&p, v->frame, v->frame_len);
        CHECK_EQ(g.n, 1);
        CHECK_EQ(g.f.version, 1);
        CHECK_EQ(g.f.msg_type, v->msg_type);
        CHECK_EQ(g.f.seq, v->seq);
        CHECK_EQ(g.f.flags, v->flags);
        CHECK(sb_command_length_ok(g.f.msg_type, g.f.payload_len));
        if (v->msg_type == SB_MSG_CONFIGURE) {
            sb_config_t c;
            const sb_config_t *e = &v->config;
            unsigned k;
            CHECK_EQ(sb_dec_configure(g.f.payload, g.f.payload_len, &c), 0);
            CHECK_EQ(c.sample_format, e->sample_format);
            CHECK_EQ(c.decimation, e->decimation);
            CHECK_EQ(c.ensemble_size, e->ensemble_size);
            CHECK_EQ(c.pulse_cycles, e->pulse_cycles);
            CHECK_EQ(c.samples_per_line, e->samples_per_line);
            CHECK_EQ(c.start_delay_samples, e->start_delay_samples);
            CHECK_EQ(c.prf_hz, e->prf_hz);
            CHECK_EQ(c.lines_per_frame, e->lines_per_frame);
            CHECK_EQ(c.tgc_count, e->tgc_count);
            CHECK_EQ(c.sweep_start, e->sweep_start);
            CHECK_EQ(c.sweep_end, e->sweep_end);
            CHECK_EQ(c.pulse_freq_hz, e->pulse_freq_hz);
            CHECK_EQ(c.hv_mv, e->hv_mv);
            for (k = 0; k < SB_TGC_MAX_POINTS; k++)
                CHECK_EQ(c.tgc_cdb[k], e->tgc_cdb[k]);
        } else if (v->msg_type == SB_MSG_START) {
            uint32_t n = 0xDEAD;
            CHECK_EQ(sb_dec_start(g.f.payload, g.f.payload_len, &n), 0);
            CHECK_EQ(n, v->n_frames);
        } else if (v->msg_type == SB_MSG_PING) {
            uint32_t token = 0, n = 0;
            CHECK_EQ(sb_dec_ping(g.f.payload, g.f.payload_len, &token, &n), 0);
            CHECK_EQ(token, v->token);
            CHECK_EQ(n, v->data_len);
            CHECK(memcmp(g.f.payload + 4, v->data, n) == 0);
        } else {
            CHECK_EQ(g.f.payload_len, 0);
        }
        checked++;
    }
    CHECK_EQ(checked, 8);
}

/* -- packing -------------------------------------------------------------------------------- */

TEST(test_pack_u8_shifts_wide_adc)
{
    const uint16_t codes[4] = {0, 512, 1023, 0xFC00u | 4u}; /* junk above bit 9 is ignored */
    uint8_t out[4];
    CHECK_EQ(sb_line_adc_bits(SB_FMT_U8, 10), 8);
    CHECK_EQ(sb_line_adc_bits(SB_FMT_U8, 6), 6);
    CHECK_EQ(sb_pack(out, codes, 4, SB_FMT_U8, 10), 4);
    CHECK_EQ(out[0], 0);
    CHECK_EQ(out[1], 128); /* the zero level stays the zero level: 2^(8-1) */
    CHECK_EQ(out[2], 255);
    CHECK_EQ(out[3], 1);
}

TEST(test_pack_i16_u16_offset_binary)
{
    const uint16_t codes[3] = {0, 512, 1023};
    uint8_t out[6];
    CHECK_EQ(sb_pack(out, codes, 3, SB_FMT_I16, 10), 6);
    CHECK_EQ(out[0], 0x00);
    CHECK_EQ(out[1], 0xFE); /* -512 */
    CHECK_EQ(out[2], 0);
    CHECK_EQ(out[3], 0);
    CHECK_EQ(out[4], 0xFF); /* 511 */
    CHECK_EQ(out[5], 0x01);
    CHECK_EQ(sb_pack(out, codes, 3, SB_FMT_U16_OB, 10), 6);
    CHECK_EQ(out[2], 0x00);
    CHECK_EQ(out[3], 0x02);
    CHECK_EQ(out[4], 0xFF);
    CHECK_EQ(out[5], 0x03);
    {
        const uint16_t c16[2] = {0, 0xFFFF};
        CHECK_EQ(sb_pack(out, c16, 2, SB_FMT_I16, 16), 4);
        CHECK_EQ(out[1], 0x80); /* -32768 */
        CHECK_EQ(out[3], 0x7F); /* 32767 */
    }
}

TEST(test_pack_packed12_layout)
{
    const uint16_t codes[4] = {0xABC, 0x123, 0xFFF, 0x000};
    const uint16_t wide[2] = {0xFFFF, 0x0010};
    uint8_t out[6];
    CHECK_EQ(sb_pack(out, codes, 4, SB_FMT_PACKED12, 12), 6);
    CHECK_EQ(out[0], 0xBC); /* a[7:0] */
    CHECK_EQ(out[1], 0x3A); /* a[11:8] | b[3:0] << 4 */
    CHECK_EQ(out[2], 0x12); /* b[11:4] */
    CHECK_EQ(out[3], 0xFF);
    CHECK_EQ(out[4], 0x0F);
    CHECK_EQ(out[5], 0x00);
    CHECK_EQ(sb_line_adc_bits(SB_FMT_PACKED12, 16), 12);
    CHECK_EQ(sb_pack(out, wide, 2, SB_FMT_PACKED12, 16), 3); /* 16-bit ADC: top 12 bits */
    CHECK_EQ(out[0], 0xFF);
    CHECK_EQ(out[1], 0x1F);
    CHECK_EQ(out[2], 0x00);
}

/* -- validation ----------------------------------------------------------------------------- */

static const sb_info_t *vec_info(void)
{
    unsigned i;
    for (i = 0; i < N_VECTORS; i++)
        if (vectors[i].msg_type == SB_MSG_DEVICE_INFO)
            return &vectors[i].info;
    return NULL;
}

static sb_config_t vec_config(void)
{
    unsigned i;
    sb_config_t c;
    memset(&c, 0, sizeof c);
    for (i = 0; i < N_VECTORS; i++)
        if (vectors[i].msg_type == SB_MSG_CONFIGURE)
            c = vectors[i].config;
    return c;
}

TEST(test_config_accepts_vector_configure)
{
    sb_config_t c = vec_config();
    sb_verdict_t v;
    sb_config_check(&c, vec_info(), &v);
    CHECK_EQ(v.code, 0);
    CHECK_EQ(v.field_id, 0);
}

static void expect(const sb_config_t *c, uint8_t code, uint8_t field)
{
    sb_verdict_t v;
    sb_config_check(c, vec_info(), &v);
    if (v.code != code || v.field_id != field)
        printf("  got code %u field %u (%s), want %u %u\n", v.code, v.field_id, v.text, code,
               field);
    CHECK_EQ(v.code, code);
    CHECK_EQ(v.field_id, field);
    CHECK(code == 0 || v.text[0] != '\0');
}

TEST(test_config_each_field_out_of_range)
{
    const sb_info_t *in = vec_info();
    sb_config_t c;
    int before = sb_test_failed;
#define OOR(mutation, field)                                                        \
    do {                                                                            \
        c = vec_config();                                                           \
        mutation;                                                                   \
        expect(&c, SB_NAK_OUT_OF_RANGE, field);                                     \
        if (sb_test_failed != before)                                               \
            return;                                                                 \
    } while (0)
    OOR(c.sample_format = 4, SB_FIELD_SAMPLE_FORMAT);
    OOR(c.decimation = 0, SB_FIELD_DECIMATION);
    OOR(c.decimation = (uint8_t)(in->max_decimation + 1), SB_FIELD_DECIMATION);
    OOR(c.ensemble_size = 0, SB_FIELD_ENSEMBLE_SIZE);
    OOR(c.ensemble_size = (uint8_t)(in->ensemble_max + 1), SB_FIELD_ENSEMBLE_SIZE);
    OOR(c.pulse_cycles = 0, SB_FIELD_PULSE_CYCLES);
    OOR(c.samples_per_line = in->min_samples_per_line - 1, SB_FIELD_SAMPLES_PER_LINE);
    OOR(c.samples_per_line = in->max_samples_per_line + 1, SB_FIELD_SAMPLES_PER_LINE);
    OOR(c.start_delay_samples = in->max_start_delay_samples + 1, SB_FIELD_START_DELAY_SAMPLES);
    OOR(c.prf_hz = in->prf_min_hz - 1, SB_FIELD_PRF_HZ);
    OOR(c.prf_hz = in->prf_max_hz + 1, SB_FIELD_PRF_HZ);
    OOR(c.lines_per_frame = 0, SB_FIELD_LINES_PER_FRAME);
    OOR(c.lines_per_frame = (uint16_t)(in->max_lines_per_frame + 1), SB_FIELD_LINES_PER_FRAME);
    OOR(c.tgc_count = 0, SB_FIELD_TGC_COUNT);
    OOR(c.tgc_count = 33, SB_FIELD_TGC_COUNT);
    OOR(c.sweep_start = in->sweep_min - 1, SB_FIELD_SWEEP_START);
    OOR(c.sweep_end = in->sweep_max + 1, SB_FIELD_SWEEP_END);
    OOR(c.pulse_freq_hz = in->pulse_freq_max_hz + 1, SB_FIELD_PULSE_FREQ_HZ);
    OOR(c.hv_mv = in->hv_min_mv - 1, SB_FIELD_HV_MV);
    OOR(c.tgc_cdb[0] = (int16_t)(in->gain_max_cdb + 1), SB_FIELD_TGC_CDB);
    OOR(c.tgc_cdb[3] = (int16_t)(in->gain_min_cdb - 1), SB_FIELD_TGC_CDB);
    OOR(c.tgc_cdb[4] = 1, SB_FIELD_TGC_CDB); /* past tgc_count */
#undef OOR
    c = vec_config();
    c.reserved = 0xFF; /* field 10 is never reported */
    expect(&c, 0, 0);
}

TEST(test_config_first_failure_in_table_order)
{
    sb_config_t c = vec_config();
    c.hv_mv = 1;           /* field 14 */
    c.prf_hz = 0;          /* field 7 */
    c.tgc_cdb[31] = 5;     /* field 15 */
    expect(&c, SB_NAK_OUT_OF_RANGE, SB_FIELD_PRF_HZ);
    c = vec_config();
    c.samples_per_line = 65; /* odd, a combination failure ... */
    c.sample_format = SB_FMT_PACKED12;
    c.tgc_count = 0;         /* ... but range failures come first */
    expect(&c, SB_NAK_OUT_OF_RANGE, SB_FIELD_TGC_COUNT);
}

TEST(test_config_tgc_and_hv_rules)
{
    sb_info_t in = *vec_info();
    sb_config_t c = vec_config();
    sb_verdict_t v;
    c.tgc_count = 32;
    c.tgc_cdb[31] = in.gain_max_cdb; /* every point used, at the limit: fine */
    sb_config_check(&c, &in, &v);
    CHECK_EQ(v.code, 0);
    /* without HV_CONTROL, hv_mv must equal hv_min_mv */
    in.capabilities = (uint8_t)(in.capabilities & ~SB_CAP_HV_CONTROL);
    c = vec_config();
    sb_config_check(&c, &in, &v);
    CHECK_EQ(v.code, SB_NAK_OUT_OF_RANGE);
    CHECK_EQ(v.field_id, SB_FIELD_HV_MV);
    c.hv_mv = in.hv_min_mv;
    sb_config_check(&c, &in, &v);
    CHECK_EQ(v.code, 0);
    /* a format the device does not announce */
    in.sample_formats = 1u << SB_FMT_I16;
    c.sample_format = SB_FMT_U8;
    sb_config_check(&c, &in, &v);
    CHECK_EQ(v.field_id, SB_FIELD_SAMPLE_FORMAT);
}

TEST(test_config_combinations)
{
    sb_info_t in = *vec_info();
    sb_config_t c = vec_config();
    sb_verdict_t v;
    c.sample_format = SB_FMT_PACKED12;
    c.samples_per_line = 2049;
    expect(&c, SB_NAK_INVALID_COMBINATION, SB_FIELD_SAMPLES_PER_LINE);
    /* the line must fit in a frame: 65536 I16 samples are 131072 + 40 bytes */
    in.max_samples_per_line = 65536;
    c = vec_config();
    c.samples_per_line = 65536;
    c.prf_hz = 10;
    sb_config_check(&c, &in, &v);
    CHECK_EQ(v.code, SB_NAK_INVALID_COMBINATION);
    CHECK_EQ(v.field_id, SB_FIELD_SAMPLES_PER_LINE);
    c.samples_per_line = 65516; /* 40 + 131032 bytes fits */
    sb_config_check(&c, &in, &v);
    CHECK_EQ(v.code, 0);
    /* window: (100 + 2048) * 1 / 40 MHz = 53.7 us; 1/prf must be longer */
    c = vec_config();
    c.start_delay_samples = 1952; /* (1952 + 2048) * 1 / 40e6 = 100 us exactly */
    c.prf_hz = 10000;             /* 100 us period: not strictly longer */
    expect(&c, SB_NAK_INVALID_COMBINATION, SB_FIELD_PRF_HZ);
    c.prf_hz = 9999;
    expect(&c, 0, 0);
}

/* -- positions and TGC ---------------------------------------------------------------------- */

TEST(test_nominal_positions)
{
    sb_config_t c = vec_config();
    c.sweep_start = -523599;
    c.sweep_end = 523599;
    c.lines_per_frame = 96;
    CHECK_EQ(sb_nominal_position(&c, 0), -523599);
    CHECK_EQ(sb_nominal_position(&c, 95), 523599);
    /* -523599 + 1047198 * 5 / 95 = -468483.32 -> -468483 */
    CHECK_EQ(sb_nominal_position(&c, 5), -468483);
    c.lines_per_frame = 1;
    CHECK_EQ(sb_nominal_position(&c, 0), -523599);
    /* ties go to even, as Python's round() does: 0 + 1 * 5 / 2 = 2.5 -> 2; 3 * 5 / 2 -> 8 */
    c.sweep_start = 0;
    c.sweep_end = 5;
    c.lines_per_frame = 3;
    CHECK_EQ(sb_nominal_position(&c, 1), 2);
    c.sweep_start = 5;
    c.sweep_end = 10;
    CHECK_EQ(sb_nominal_position(&c, 1), 8);
    CHECK_EQ(sb_div_round_even(-5, 2), -2);
    CHECK_EQ(sb_div_round_even(-7, 2), -4);
    CHECK_EQ(sb_div_round_even(7, 3), 2);
}

TEST(test_tgc_gain_curve)
{
    sb_config_t c = vec_config(); /* 0, 500, 1000, 1500 cdB over 2048 samples */
    CHECK_EQ(sb_tgc_gain_cdb(&c, 0), 0);
    CHECK_EQ(sb_tgc_gain_cdb(&c, 2047), 1500);
    /* point 1 sits at 2047/3 = 682.33: sample 682 is 499.76 -> 500 */
    CHECK_EQ(sb_tgc_gain_cdb(&c, 682), 500);
    /* half way between points 1 and 2: sample 1023.5 -> 1023 is 749.6 -> 750 */
    CHECK_EQ(sb_tgc_gain_cdb(&c, 1023), 750);
    CHECK_EQ(sb_tgc_gain_cdb(&c, 5000), 1500); /* clamped to the last sample */
    c.tgc_count = 1;
    CHECK_EQ(sb_tgc_gain_cdb(&c, 1000), 0);
}

TEST(test_tgc_dac_table)
{
    sb_config_t c = vec_config();
    uint16_t codes[5];
    /* DAC 0..1000 spans -1000..4000 cdB: 5 cdB per code */
    sb_tgc_table(&c, -1000, 4000, 1000, codes, 5);
    CHECK_EQ(codes[0], 200);  /* 0 cdB */
    CHECK_EQ(codes[4], 500);  /* 1500 cdB */
    /* entry 2 is the middle of the line: 750 cdB -> (750 + 1000) / 5 = 350 */
    CHECK_EQ(codes[2], 350);
    /* entry 1 is 1/4 of the line = 3/4 of the first segment: 375 cdB -> 275 */
    CHECK_EQ(codes[1], 275);
    c.tgc_cdb[0] = -1000;
    c.tgc_cdb[3] = 4000;
    sb_tgc_table(&c, -500, 3000, 4095, codes, 5); /* out of the DAC's range: clamped */
    CHECK_EQ(codes[0], 0);
    CHECK_EQ(codes[4], 4095);
}

TEST(test_ring_wraps_any_capacity)
{
    uint8_t store[7];
    uint8_t out[32];
    sb_ring_t r;
    const uint8_t *p;
    uint32_t got = 0, i, round;
    sb_ring_init(&r, store, sizeof store);
    /* odd capacity and many wraps: bytes come out in order */
    for (round = 0; round < 50; round++) {
        uint8_t in[5];
        for (i = 0; i < 5; i++)
            in[i] = (uint8_t)(round * 5 + i);
        CHECK(sb_ring_write(&r, in, 5));
        CHECK(!sb_ring_write(&r, in, 3)); /* 5 used, 2 free: all or nothing */
        CHECK_EQ(sb_ring_used(&r), 5);
        got = 0;
        while (got < 5) {
            uint32_t n = sb_ring_peek(&r, &p);
            CHECK(n > 0);
            memcpy(out + got, p, n);
            sb_ring_consume(&r, n);
            got += n;
        }
        for (i = 0; i < 5; i++)
            CHECK_EQ(out[i], (uint8_t)(round * 5 + i));
    }
    CHECK_EQ(r.rejected, 50);
    CHECK_EQ(sb_ring_space(&r), 7);
}
