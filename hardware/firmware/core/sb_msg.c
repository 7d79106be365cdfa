#include "sb_msg.h"

#include <string.h>

static size_t clip(size_t n, size_t max)
{
    return n < max ? n : max;
}

size_t sb_enc_device_info(uint8_t out[SB_LEN_DEVICE_INFO], uint32_t request_seq,
                          const sb_info_t *in)
{
    sb_put_u32(out + 0, request_seq);
    out[4] = in->protocol_version;
    out[5] = in->fw_major;
    out[6] = in->fw_minor;
    out[7] = in->fw_patch;
    sb_put_u32(out + 8, in->board_id);
    memcpy(out + 12, in->board_name, 32);
    out[44] = in->adc_bits;
    out[45] = in->sample_formats;
    out[46] = in->sweep_kind;
    out[47] = in->capabilities;
    sb_put_u32(out + 48, in->adc_rate_hz);
    out[52] = in->max_decimation;
    out[53] = in->tgc_points_max;
    out[54] = in->ensemble_max;
    out[55] = in->pulse_cycles_max;
    sb_put_u32(out + 56, in->min_samples_per_line);
    sb_put_u32(out + 60, in->max_samples_per_line);
    sb_put_u32(out + 64, in->max_start_delay_samples);
    sb_put_u16(out + 68, in->max_lines_per_frame);
    sb_put_u16(out + 70, (uint16_t)in->gain_min_cdb);
    sb_put_u16(out + 72, (uint16_t)in->gain_max_cdb);
    sb_put_u16(out + 74, 0);
    sb_put_u32(out + 76, (uint32_t)in->sweep_min);
    sb_put_u32(out + 80, (uint32_t)in->sweep_max);
    sb_put_u32(out + 84, in->prf_min_hz);
    sb_put_u32(out + 88, in->prf_max_hz);
    sb_put_u32(out + 92, in->pulse_freq_min_hz);
    sb_put_u32(out + 96, in->pulse_freq_max_hz);
    sb_put_u32(out + 100, in->hv_min_mv);
    sb_put_u32(out + 104, in->hv_max_mv);
    sb_put_u32(out + 108, in->transducer_freq_hz);
    sb_put_u32(out + 112, in->rated_throughput_bps);
    return SB_LEN_DEVICE_INFO;
}

size_t sb_enc_ack(uint8_t out[SB_LEN_ACK], uint32_t request_seq, uint8_t request_type)
{
    sb_put_u32(out, request_seq);
    out[4] = request_type;
    out[5] = out[6] = out[7] = 0;
    return SB_LEN_ACK;
}

size_t sb_enc_nak(uint8_t *out, uint32_t request_seq, uint8_t request_type, uint8_t error_code,
                  uint8_t field_id, const char *text, size_t text_len)
{
    text_len = clip(text_len, SB_MAX_NAK_TEXT);
    sb_put_u32(out, request_seq);
    out[4] = request_type;
    out[5] = error_code;
    out[6] = field_id;
    out[7] = 0;
    if (text_len)
        memcpy(out + 8, text, text_len);
    return SB_LEN_NAK_MIN + text_len;
}

size_t sb_enc_status(uint8_t out[SB_LEN_STATUS], uint32_t request_seq, const sb_status_t *st)
{
    sb_put_u32(out + 0, request_seq);
    out[4] = st->state;
    out[5] = st->fault_flags;
    sb_put_u16(out + 6, (uint16_t)st->temperature_cdeg);
    sb_put_u32(out + 8, st->hv_mv);
    sb_put_u64(out + 12, st->device_time_us);
    sb_put_u32(out + 20, st->dropped_lines);
    sb_put_u32(out + 24, st->lines_sent);
    sb_put_u16(out + 28, st->buffer_fill_permille);
    sb_put_u16(out + 30, st->config_id);
    return SB_LEN_STATUS;
}

size_t sb_enc_pong(uint8_t *out, uint32_t request_seq, uint32_t token, uint64_t device_time_us,
                   const uint8_t *data, size_t data_len)
{
    data_len = clip(data_len, SB_MAX_PING_DATA);
    sb_put_u32(out, request_seq);
    sb_put_u32(out + 4, token);
    sb_put_u64(out + 8, device_time_us);
    if (data_len)
        memmove(out + 16, data, data_len); /* data may live in the parser buffer */
    return SB_LEN_PONG_MIN + data_len;
}

size_t sb_enc_log(uint8_t *out, uint8_t level, const char *text, size_t text_len)
{
    text_len = clip(text_len, SB_MAX_LOG_TEXT);
    out[0] = level;
    out[1] = out[2] = out[3] = 0;
    if (text_len)
        memcpy(out + 4, text, text_len);
    return SB_LEN_LOG_MIN + text_len;
}

size_t sb_enc_echo_header(uint8_t out[SB_LEN_ECHO_HEADER], const sb_line_header_t *h)
{
    out[0] = h->sample_format;
    out[1] = h->adc_bits;
    out[2] = h->ensemble_index;
    out[3] = h->ensemble_size;
    sb_put_u32(out + 4, h->sample_rate_hz);
    sb_put_u32(out + 8, h->start_delay_samples);
    sb_put_u32(out + 12, h->frame_index);
    sb_put_u16(out + 16, h->line_index);
    sb_put_u16(out + 18, h->lines_per_frame);
    sb_put_u32(out + 20, (uint32_t)h->beam_position);
    sb_put_u64(out + 24, h->timestamp_us);
    sb_put_u16(out + 32, h->config_id);
    out[34] = h->sweep_kind;
    out[35] = 0;
    sb_put_u32(out + 36, h->n_samples);
    return SB_LEN_ECHO_HEADER;
}

size_t sb_enc_frame_end(uint8_t out[SB_LEN_FRAME_END], uint32_t frame_index, uint16_t lines_sent,
                        uint16_t lines_per_frame, uint64_t timestamp_us)
{
    sb_put_u32(out, frame_index);
    sb_put_u16(out + 4, lines_sent);
    sb_put_u16(out + 6, lines_per_frame);
    sb_put_u64(out + 8, timestamp_us);
    return SB_LEN_FRAME_END;
}

int sb_dec_configure(const uint8_t *p, uint32_t payload_len, sb_config_t *c)
{
    unsigned i;
    if (payload_len != SB_LEN_CONFIGURE)
        return -1;
    c->sample_format = p[0];
    c->decimation = p[1];
    c->ensemble_size = p[2];
    c->pulse_cycles = p[3];
    c->samples_per_line = sb_get_u32(p + 4);
    c->start_delay_samples = sb_get_u32(p + 8);
    c->prf_hz = sb_get_u32(p + 12);
    c->lines_per_frame = sb_get_u16(p + 16);
    c->tgc_count = p[18];
    c->reserved = p[19];
    c->sweep_start = sb_u32_to_i32(sb_get_u32(p + 20));
    c->sweep_end = sb_u32_to_i32(sb_get_u32(p + 24));
    c->pulse_freq_hz = sb_get_u32(p + 28);
    c->hv_mv = sb_get_u32(p + 32);
    for (i = 0; i < SB_TGC_MAX_POINTS; i++)
        c->tgc_cdb[i] = sb_u16_to_i16(sb_get_u16(p + 36 + 2 * i));
    return 0;
}

int sb_dec_start(const uint8_t *p, uint32_t payload_len, uint32_t *n_frames)
{
    if (payload_len != SB_LEN_START)
        return -1;
    *n_frames = sb_get_u32(p);
    return 0;
}

int sb_dec_ping(const uint8_t *p, uint32_t payload_len, uint32_t *token, uint32_t *data_len)
{
    if (payload_len < SB_LEN_PING_MIN || payload_len > SB_LEN_PING_MIN + SB_MAX_PING_DATA)
        return -1;
    *token = sb_get_u32(p);
    *data_len = payload_len - SB_LEN_PING_MIN;
    return 0;
}

int sb_is_command(uint8_t t)
{
    return t >= SB_MSG_GET_INFO && t <= SB_MSG_RESET;
}

int sb_command_length_ok(uint8_t t, uint32_t n)
{
    switch (t) {
    case SB_MSG_CONFIGURE:
        return n == SB_LEN_CONFIGURE;
    case SB_MSG_START:
        return n == SB_LEN_START;
    case SB_MSG_PING:
        return n >= SB_LEN_PING_MIN && n <= SB_LEN_PING_MIN + SB_MAX_PING_DATA;
    case SB_MSG_GET_INFO:
    case SB_MSG_STOP:
    case SB_MSG_GET_STATUS:
    case SB_MSG_RESET:
        return n == 0;
    default:
        return 0;
    }
}
