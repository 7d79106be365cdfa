/*
 * Payload layouts of protocol v1 (docs/protocol.md section 7): encoders for what the device
 * sends, decoders for the commands it receives. Encoders write into a caller's buffer and
 * return the payload length.
 */
#ifndef SB_MSG_H
#define SB_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "sb_wire.h"

/* DEVICE_INFO without request_seq: what a board announces. */
typedef struct {
    uint8_t protocol_version;
    uint8_t fw_major, fw_minor, fw_patch;
    uint32_t board_id;
    char board_name[32]; /* NUL padded, not necessarily NUL terminated */
    uint8_t adc_bits;
    uint8_t sample_formats;
    uint8_t sweep_kind;
    uint8_t capabilities;
    uint32_t adc_rate_hz;
    uint8_t max_decimation;
    uint8_t tgc_points_max;
    uint8_t ensemble_max;
    uint8_t pulse_cycles_max;
    uint32_t min_samples_per_line;
    uint32_t max_samples_per_line;
    uint32_t max_start_delay_samples;
    uint16_t max_lines_per_frame;
    int16_t gain_min_cdb;
    int16_t gain_max_cdb;
    int32_t sweep_min;
    int32_t sweep_max;
    uint32_t prf_min_hz, prf_max_hz;
    uint32_t pulse_freq_min_hz, pulse_freq_max_hz;
    uint32_t hv_min_mv, hv_max_mv;
    uint32_t transducer_freq_hz;
    uint32_t rated_throughput_bps;
} sb_info_t;

/* CONFIGURE (field ids 1..15 in table order). */
typedef struct {
    uint8_t sample_format;       /* 1 */
    uint8_t decimation;          /* 2 */
    uint8_t ensemble_size;       /* 3 */
    uint8_t pulse_cycles;        /* 4 */
    uint32_t samples_per_line;   /* 5 */
    uint32_t start_delay_samples;/* 6 */
    uint32_t prf_hz;             /* 7 */
    uint16_t lines_per_frame;    /* 8 */
    uint8_t tgc_count;           /* 9 */
    uint8_t reserved;            /* 10, ignored */
    int32_t sweep_start;         /* 11 */
    int32_t sweep_end;           /* 12 */
    uint32_t pulse_freq_hz;      /* 13 */
    uint32_t hv_mv;              /* 14 */
    int16_t tgc_cdb[SB_TGC_MAX_POINTS]; /* 15 */
} sb_config_t;

typedef struct {
    uint8_t state;
    uint8_t fault_flags;
    int16_t temperature_cdeg;
    uint32_t hv_mv;
    uint64_t device_time_us;
    uint32_t dropped_lines;
    uint32_t lines_sent;
    uint16_t buffer_fill_permille;
    uint16_t config_id;
} sb_status_t;

typedef struct {
    uint8_t sample_format;
    uint8_t adc_bits;
    uint8_t ensemble_index;
    uint8_t ensemble_size;
    uint32_t sample_rate_hz;
    uint32_t start_delay_samples;
    uint32_t frame_index;
    uint16_t line_index;
    uint16_t lines_per_frame;
    int32_t beam_position;
    uint64_t timestamp_us;
    uint16_t config_id;
    uint8_t sweep_kind;
    uint32_t n_samples;
} sb_line_header_t;

size_t sb_enc_device_info(uint8_t out[SB_LEN_DEVICE_INFO], uint32_t request_seq,
                          const sb_info_t *info);
size_t sb_enc_ack(uint8_t out[SB_LEN_ACK], uint32_t request_seq, uint8_t request_type);
/* text is clipped to SB_MAX_NAK_TEXT bytes; out must hold SB_LEN_NAK_MIN + SB_MAX_NAK_TEXT */
size_t sb_enc_nak(uint8_t *out, uint32_t request_seq, uint8_t request_type, uint8_t error_code,
                  uint8_t field_id, const char *text, size_t text_len);
size_t sb_enc_status(uint8_t out[SB_LEN_STATUS], uint32_t request_seq, const sb_status_t *st);
/* data is clipped to SB_MAX_PING_DATA bytes */
size_t sb_enc_pong(uint8_t *out, uint32_t request_seq, uint32_t token, uint64_t device_time_us,
                   const uint8_t *data, size_t data_len);
/* text is clipped to SB_MAX_LOG_TEXT bytes */
size_t sb_enc_log(uint8_t *out, uint8_t level, const char *text, size_t text_len);
size_t sb_enc_echo_header(uint8_t out[SB_LEN_ECHO_HEADER], const sb_line_header_t *h);
size_t sb_enc_frame_end(uint8_t out[SB_LEN_FRAME_END], uint32_t frame_index, uint16_t lines_sent,
                        uint16_t lines_per_frame, uint64_t timestamp_us);

/* Decoders return 0, or -1 when payload_len does not fit the layout (NAK BAD_LENGTH). */
int sb_dec_configure(const uint8_t *p, uint32_t payload_len, sb_config_t *out);
int sb_dec_start(const uint8_t *p, uint32_t payload_len, uint32_t *n_frames);
/* PING: token, and data = p + 4 with *data_len bytes */
int sb_dec_ping(const uint8_t *p, uint32_t payload_len, uint32_t *token, uint32_t *data_len);

/* Is msg_type a command (host -> device) of v1, and is payload_len right for it? */
int sb_is_command(uint8_t msg_type);
int sb_command_length_ok(uint8_t msg_type, uint32_t payload_len);

#endif
