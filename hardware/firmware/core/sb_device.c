#include "sb_device.h"

#include <string.h>

#include "sb_config.h"
#include "sb_crc.h"
#include "sb_pack.h"

static void on_frame(void *ctx, const sb_frame_t *f);

/* -- sending ------------------------------------------------------------------------------- */

static sb_sink_t link_sink(sb_device_t *dev)
{
    sb_sink_t s;
    s.write = dev->hal->link_write;
    s.ctx = dev->hal->ctx;
    return s;
}

static void send(sb_device_t *dev, uint8_t type, const uint8_t *payload, size_t len)
{
    sb_tx_t tx;
    /* a frame goes out whole or not at all: a half-written frame would cost the host a
       resync. A reply lost this way is recovered by the host's retry; the seq does not move,
       because seq counts frames sent. */
    if (dev->hal->link_space(dev->hal->ctx) < (size_t)SB_FRAME_LEN(len)) {
        dev->tx_dropped++;
        return;
    }
    sb_tx_begin(&tx, link_sink(dev), type, (uint32_t)len, dev->tx_seq, dev->tx_flags);
    sb_tx_put(&tx, payload, len);
    sb_tx_end(&tx);
    dev->tx_seq++; /* wraps at 2^32 by unsigned arithmetic, as the spec wants */
}

/* A reply to a handled command: remembered so a RETRY gets the same answer. */
static void reply(sb_device_t *dev, uint32_t seq, uint8_t type, size_t len)
{
    dev->have_last = 1;
    dev->last_seq = seq;
    dev->last_type = type;
    dev->last_len = (uint32_t)len;
    send(dev, type, dev->last_reply, len);
}

static void ack(sb_device_t *dev, uint32_t seq, uint8_t cmd)
{
    reply(dev, seq, SB_MSG_ACK, sb_enc_ack(dev->last_reply, seq, cmd));
}

static void nak(sb_device_t *dev, uint32_t seq, uint8_t cmd, uint8_t code, uint8_t field,
                const char *text)
{
    size_t n = sb_enc_nak(dev->last_reply, seq, cmd, code, field, text, strlen(text));
    reply(dev, seq, SB_MSG_NAK, n);
}

/* A NAK for a frame that was not a usable command; not remembered for RETRY. */
static void reject(sb_device_t *dev, const sb_frame_t *f, uint8_t code, const char *text)
{
    size_t room = sizeof dev->aux - SB_LEN_NAK_MIN;
    size_t n = strlen(text);
    n = sb_enc_nak(dev->aux, f->seq, f->msg_type, code, 0, text, n < room ? n : room);
    send(dev, SB_MSG_NAK, dev->aux, n);
}

void sb_device_log(sb_device_t *dev, uint8_t level, const char *text)
{
    size_t room = sizeof dev->aux - SB_LEN_LOG_MIN;
    size_t n = strlen(text);
    send(dev, SB_MSG_LOG, dev->aux, sb_enc_log(dev->aux, level, text, n < room ? n : room));
}

void sb_device_announce(sb_device_t *dev)
{
    send(dev, SB_MSG_DEVICE_INFO, dev->aux,
         sb_enc_device_info(dev->aux, SB_UNSOLICITED, &dev->board->info));
}

/* -- state ---------------------------------------------------------------------------------- */

static uint8_t hal_faults(const sb_device_t *dev)
{
    return dev->hal->faults ? dev->hal->faults(dev->hal->ctx) : 0;
}

static void apply_config(sb_device_t *dev)
{
    const sb_board_t *b = dev->board;
    uint32_t n = b->tgc_table_len;
    uint32_t dac_max = (b->tgc_dac_bits >= 16) ? 0xFFFFu : (1u << b->tgc_dac_bits) - 1u;
    if (n > SB_TGC_TABLE_MAX)
        n = SB_TGC_TABLE_MAX;
    if (n == 0)
        n = 1;
    sb_tgc_table(&dev->cfg, b->tgc_dac_gain_min_cdb, b->tgc_dac_gain_max_cdb, dac_max,
                 dev->tgc_codes, n);
    if (dev->hal->tgc_write)
        dev->hal->tgc_write(dev->hal->ctx, dev->tgc_codes, n);
    if (dev->hal->hv_set && (b->info.capabilities & SB_CAP_HV_CONTROL))
        dev->hal->hv_set(dev->hal->ctx, dev->cfg.hv_mv);
}

static void power_on(sb_device_t *dev)
{
    dev->tx_seq = 0;
    dev->tx_flags = (dev->board->info.capabilities & SB_CAP_SIMULATED) ? SB_FLAG_SIMULATED : 0;
    dev->cfg = dev->board->defaults;
    dev->config_id = 0;
    dev->state = SB_STATE_IDLE;
    dev->fault_flags = 0;
    dev->dropped_lines = 0;
    dev->lines_sent = 0;
    dev->have_last = 0;
    dev->reset_pending = 0;
    dev->next_due_us = UINT64_MAX;
    /* a reboot forgets half-received bytes; the parser's counters are diagnostics since
       power-up and survive it */
    sb_parser_reset(&dev->parser);
    if (dev->hal->front_end_reset)
        dev->hal->front_end_reset(dev->hal->ctx);
    apply_config(dev);
}

void sb_device_init(sb_device_t *dev, const sb_board_t *board, const sb_hal_t *hal,
                    uint16_t *samples, uint32_t samples_cap)
{
    memset(dev, 0, sizeof *dev);
    dev->board = board;
    dev->hal = hal;
    dev->samples = samples;
    dev->samples_cap = samples_cap;
    sb_parser_init(&dev->parser, on_frame, dev);
    power_on(dev);
}

uint64_t sb_device_next_due_us(const sb_device_t *dev)
{
    uint64_t fire = dev->state == SB_STATE_STREAMING ? dev->next_due_us : UINT64_MAX;
    uint64_t expire = sb_parser_deadline_us(&dev->parser);
    return fire < expire ? fire : expire;
}

/* -- commands ------------------------------------------------------------------------------- */

static void status(sb_device_t *dev, uint32_t seq)
{
    const sb_hal_t *h = dev->hal;
    sb_status_t st;
    uint8_t now_faults = hal_faults(dev);
    st.state = now_faults ? SB_STATE_FAULT : dev->state;
    st.fault_flags = (uint8_t)(dev->fault_flags | now_faults);
    st.temperature_cdeg = h->temperature_cdeg ? h->temperature_cdeg(h->ctx) : 0;
    if (h->hv_read_mv)
        st.hv_mv = h->hv_read_mv(h->ctx);
    else
        st.hv_mv = dev->state == SB_STATE_STREAMING ? dev->cfg.hv_mv : 0;
    st.device_time_us = h->now_us(h->ctx);
    st.dropped_lines = dev->dropped_lines;
    st.lines_sent = dev->lines_sent;
    st.buffer_fill_permille = h->link_fill_permille ? h->link_fill_permille(h->ctx) : 0;
    st.config_id = dev->config_id;
    reply(dev, seq, SB_MSG_STATUS, sb_enc_status(dev->last_reply, seq, &st));
}

static void start(sb_device_t *dev, uint32_t n_frames)
{
    uint64_t now = dev->hal->now_us(dev->hal->ctx);
    dev->state = SB_STATE_STREAMING;
    dev->n_frames = n_frames;
    dev->frames_done = 0;
    dev->frame_index = 0;
    dev->line = 0;
    dev->ens = 0;
    dev->frame_lines_sent = 0;
    dev->overflow_logged = 0;
    dev->anchor_us = now;
    dev->k = 0;
    dev->next_due_us = now;
}

static void handle(sb_device_t *dev, const sb_frame_t *f)
{
    const uint8_t t = f->msg_type;
    const uint32_t seq = f->seq;
    switch (t) {
    case SB_MSG_GET_INFO:
        reply(dev, seq, SB_MSG_DEVICE_INFO,
              sb_enc_device_info(dev->last_reply, seq, &dev->board->info));
        return;
    case SB_MSG_GET_STATUS:
        status(dev, seq);
        return;
    case SB_MSG_PING: {
        uint32_t token = 0, n = 0;
        (void)sb_dec_ping(f->payload, f->payload_len, &token, &n);
        reply(dev, seq, SB_MSG_PONG,
              sb_enc_pong(dev->last_reply, seq, token, dev->hal->now_us(dev->hal->ctx),
                          f->payload + SB_LEN_PING_MIN, n));
        return;
    }
    case SB_MSG_STOP:
        /* a firing is never in progress here: poll runs each one to completion */
        dev->state = SB_STATE_IDLE;
        ack(dev, seq, t);
        return;
    case SB_MSG_CONFIGURE: {
        sb_config_t c;
        sb_verdict_t v;
        if (dev->state == SB_STATE_STREAMING) {
            nak(dev, seq, t, SB_NAK_BUSY, 0, "STOP before CONFIGURE");
            return;
        }
        (void)sb_dec_configure(f->payload, f->payload_len, &c);
        sb_config_check(&c, &dev->board->info, &v);
        if (v.code) {
            nak(dev, seq, t, v.code, v.field_id, v.text);
            return;
        }
        c.reserved = 0;
        dev->cfg = c;
        dev->config_id++;
        apply_config(dev);
        ack(dev, seq, t);
        return;
    }
    case SB_MSG_START: {
        uint32_t n_frames = 0;
        (void)sb_dec_start(f->payload, f->payload_len, &n_frames);
        if (dev->state == SB_STATE_STREAMING) {
            nak(dev, seq, t, SB_NAK_BUSY, 0, "already streaming");
            return;
        }
        if (hal_faults(dev)) {
            nak(dev, seq, t, SB_NAK_HARDWARE_FAULT, 0, "front end fault: see STATUS");
            return;
        }
        if (dev->cfg.samples_per_line > dev->samples_cap) {
            nak(dev, seq, t, SB_NAK_UNSUPPORTED, 0, "line longer than the sample buffer");
            return;
        }
        ack(dev, seq, t);
        start(dev, n_frames);
        return;
    }
    case SB_MSG_RESET:
        if (!(dev->board->info.capabilities & SB_CAP_RESET)) {
            nak(dev, seq, t, SB_NAK_UNSUPPORTED, 0, "no RESET capability");
            return;
        }
        ack(dev, seq, t);
        /* reboot once the ACK is out and the parser has returned from this frame */
        dev->reset_pending = 1;
        return;
    default:
        reject(dev, f, SB_NAK_UNKNOWN_TYPE, "not a command");
        return;
    }
}

static void on_frame(void *ctx, const sb_frame_t *f)
{
    sb_device_t *dev = (sb_device_t *)ctx;
    /* a frame found behind a RESET in bytes held across an idle gap: the reboot that is
       about to happen forgets it, as it forgets every byte not yet handled */
    if (dev->reset_pending)
        return;
    /* the spec's order: version, must-understand flags, type, length */
    if (f->version != SB_PROTOCOL_VERSION) {
        reject(dev, f, SB_NAK_UNSUPPORTED_VERSION, "protocol version not supported");
        return;
    }
    if (f->flags & SB_FLAGS_MUST_UNDERSTAND & (uint8_t)~SB_FLAGS_KNOWN_MUST_UNDERSTAND) {
        reject(dev, f, SB_NAK_UNSUPPORTED_FLAG, "must-understand flag not supported");
        return;
    }
    if (!sb_is_command(f->msg_type)) {
        reject(dev, f, SB_NAK_UNKNOWN_TYPE, "not a command");
        return;
    }
    if (f->payload == NULL || !sb_command_length_ok(f->msg_type, f->payload_len)) {
        reject(dev, f, SB_NAK_BAD_LENGTH, "payload length does not fit the command");
        return;
    }
    if ((f->flags & SB_FLAG_RETRY) && dev->have_last && dev->last_seq == f->seq) {
        send(dev, dev->last_type, dev->last_reply, dev->last_len);
        return;
    }
    handle(dev, f);
}

static void reboot_if_asked(sb_device_t *dev)
{
    if (dev->reset_pending) {
        power_on(dev);
        sb_device_announce(dev);
    }
}

void sb_device_rx(sb_device_t *dev, const uint8_t *data, size_t len)
{
    size_t i;
    uint64_t now = dev->hal->now_us(dev->hal->ctx);
    /* a partial command held since before an idle gap is abandoned before these bytes count */
    sb_parser_expire(&dev->parser, now);
    reboot_if_asked(dev);
    /* byte by byte so that a RESET takes effect before the next byte is parsed */
    for (i = 0; i < len; i++) {
        sb_parser_feed_at(&dev->parser, data + i, 1, now);
        reboot_if_asked(dev);
    }
}

/* -- acquisition ---------------------------------------------------------------------------- */

static void send_line(sb_device_t *dev, uint64_t t_fire, uint32_t nbytes)
{
    const sb_config_t *c = &dev->cfg;
    const sb_info_t *in = &dev->board->info;
    sb_line_header_t h;
    sb_tx_t tx;
    uint8_t head[SB_LEN_ECHO_HEADER];
    uint32_t i, step;

    h.sample_format = c->sample_format;
    h.adc_bits = sb_line_adc_bits(c->sample_format, in->adc_bits);
    h.ensemble_index = dev->ens;
    h.ensemble_size = c->ensemble_size;
    h.sample_rate_hz = sb_sample_rate_hz(in, c);
    h.start_delay_samples = c->start_delay_samples;
    h.frame_index = dev->frame_index;
    h.line_index = dev->line;
    h.lines_per_frame = c->lines_per_frame;
    h.beam_position = dev->position;
    h.timestamp_us = t_fire;
    h.config_id = dev->config_id;
    h.sweep_kind = in->sweep_kind;
    h.n_samples = c->samples_per_line;
    sb_enc_echo_header(head, &h);

    sb_tx_begin(&tx, link_sink(dev), SB_MSG_ECHO_LINE, SB_LEN_ECHO_HEADER + nbytes, dev->tx_seq,
                dev->tx_flags);
    sb_tx_put(&tx, head, sizeof head);
    /* samples per chunk: 64 (PACKED12: 192 bytes; I16: 128; U8: 64) */
    step = 64;
    for (i = 0; i < c->samples_per_line; i += step) {
        uint32_t m = c->samples_per_line - i < step ? c->samples_per_line - i : step;
        sb_tx_put(&tx, dev->chunk,
                  sb_pack(dev->chunk, dev->samples + i, m, c->sample_format, in->adc_bits));
    }
    sb_tx_end(&tx);
    dev->tx_seq++;
}

static uint32_t prf_of(const sb_device_t *dev)
{
    return dev->cfg.prf_hz ? dev->cfg.prf_hz : 1;
}

/* Grid point k of the schedule, anchor + ceil(k / prf): no drift by rounding. */
static uint64_t grid_us(const sb_device_t *dev, uint64_t k)
{
    uint32_t prf = prf_of(dev);
    return dev->anchor_us + (k * 1000000u + prf - 1u) / prf;
}

/* The last grid point not after now: floor((now - anchor) * prf / 10^6), without overflow. */
static uint64_t last_grid_point(const sb_device_t *dev, uint64_t now)
{
    uint64_t e = now - dev->anchor_us;
    uint32_t prf = prf_of(dev);
    return (e / 1000000u) * prf + (e % 1000000u) * prf / 1000000u;
}

static void schedule_next(sb_device_t *dev, uint64_t t_fire)
{
    uint32_t prf = prf_of(dev);
    uint64_t half_period = 500000u / prf;
    uint64_t due;
    dev->k++;
    due = grid_us(dev, dev->k);
    /* a real board: a firing so late that the next would follow within half a period restarts
       the schedule from it, so a stall never becomes a burst of pulses whose echoes overlap,
       while clock jitter (well under half a period) leaves the schedule alone. The emulated
       board's pulses were on time: sb_device_poll catches up on its grid instead. */
    if (!dev->hal->emulated_timing && due < t_fire + half_period) {
        dev->anchor_us = t_fire;
        dev->k = 1;
        due = grid_us(dev, 1);
    }
    dev->next_due_us = due;
}

void sb_device_poll(sb_device_t *dev)
{
    const sb_hal_t *h = dev->hal;
    const sb_config_t *c = &dev->cfg;
    uint64_t now, t_fire;
    uint32_t nbytes;
    int adc_fault;

    now = h->now_us(h->ctx);
    /* the timer half of the partial-frame timeout: no new bytes need to arrive for it */
    sb_parser_expire(&dev->parser, now);
    reboot_if_asked(dev);
    if (dev->state != SB_STATE_STREAMING)
        return;
    if (now < dev->next_due_us)
        return;

    if (dev->ens == 0) {
        int32_t nominal = sb_nominal_position(c, dev->line);
        dev->position = h->sweep_move ? h->sweep_move(h->ctx, nominal) : nominal;
    }
    h->adc_arm(h->ctx, dev->samples, c->samples_per_line, c->start_delay_samples,
               c->decimation);
    if (h->emulated_timing) {
        /* An emulated DMA-paced board fires on the grid by itself and its DMA keeps capturing
           while the CPU is away, so every grid point is a line, stamped with its grid time,
           and a poll that finds several points passed (the process was descheduled) computes
           them one after the other: only the sending is late, as on the board. A stall
           longer than the capture buffers hold (SB_EMULATED_BACKLOG_US) is not a board's:
           the points in it stay empty, and the sweep goes on at the latest one. */
        uint64_t last = last_grid_point(dev, now);
        if (last > dev->k && now - grid_us(dev, dev->k) > SB_EMULATED_BACKLOG_US)
            dev->k = last;
        t_fire = grid_us(dev, dev->k);
    } else {
        t_fire = h->now_us(h->ctx);
    }
    h->pulse_fire(h->ctx, c->pulse_freq_hz, c->pulse_cycles);
    adc_fault = h->adc_wait(h->ctx);

    nbytes = (uint32_t)sb_sample_nbytes(c->sample_format, c->samples_per_line);
    if (adc_fault) {
        dev->fault_flags |= SB_FAULT_ADC;
        dev->dropped_lines++;
    } else if (h->link_space(h->ctx) >=
               (size_t)SB_FRAME_LEN(SB_LEN_ECHO_HEADER + nbytes) + SB_REPLY_HEADROOM) {
        send_line(dev, t_fire, nbytes);
        dev->lines_sent++;
        dev->frame_lines_sent++;
    } else {
        dev->dropped_lines++;
        dev->fault_flags |= SB_FAULT_OVERFLOW;
        if (!dev->overflow_logged) {
            dev->overflow_logged = 1;
            sb_device_log(dev, SB_LOG_WARNING,
                          "send buffer full: dropping lines (link too slow for this PRF "
                          "and line size)");
        }
    }

    schedule_next(dev, t_fire);
    if (++dev->ens < c->ensemble_size)
        return;
    dev->ens = 0;
    if (++dev->line < c->lines_per_frame)
        return;
    {
        uint8_t fe[SB_LEN_FRAME_END];
        send(dev, SB_MSG_FRAME_END, fe,
             sb_enc_frame_end(fe, dev->frame_index, dev->frame_lines_sent, c->lines_per_frame,
                              h->now_us(h->ctx)));
    }
    dev->line = 0;
    dev->frame_lines_sent = 0;
    dev->frame_index++;
    dev->frames_done++;
    if (dev->n_frames && dev->frames_done >= dev->n_frames)
        dev->state = SB_STATE_IDLE;
}
