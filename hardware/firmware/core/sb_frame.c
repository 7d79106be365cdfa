#include "sb_frame.h"

#include <string.h>

#include "sb_crc.h"

static const uint8_t zero_pad[3] = {0, 0, 0};

void sb_frame_header(uint8_t out[SB_HEADER_SIZE], uint8_t version, uint8_t msg_type,
                     uint32_t payload_len, uint32_t seq, uint8_t flags)
{
    out[0] = SB_SYNC0;
    out[1] = SB_SYNC1;
    out[2] = version;
    out[3] = msg_type;
    sb_put_u32(out + 4, payload_len);
    sb_put_u32(out + 8, seq);
    out[12] = flags;
    out[13] = 0;
    sb_put_u16(out + 14, sb_crc16(out, 14));
}

void sb_tx_begin(sb_tx_t *tx, sb_sink_t sink, uint8_t msg_type, uint32_t payload_len,
                 uint32_t seq, uint8_t flags)
{
    uint8_t hdr[SB_HEADER_SIZE];
    sb_frame_header(hdr, SB_PROTOCOL_VERSION, msg_type, payload_len, seq, flags);
    tx->sink = sink;
    tx->plen = payload_len;
    tx->left = payload_len;
    tx->crc = sb_crc32_update(SB_CRC32_INIT, hdr, sizeof hdr);
    sink.write(sink.ctx, hdr, sizeof hdr);
}

void sb_tx_put(sb_tx_t *tx, const uint8_t *data, size_t len)
{
    /* a caller that writes more than it announced would corrupt the stream: clip instead */
    if (len > tx->left)
        len = tx->left;
    if (len == 0)
        return;
    tx->crc = sb_crc32_update(tx->crc, data, len);
    tx->left -= (uint32_t)len;
    tx->sink.write(tx->sink.ctx, data, len);
}

void sb_tx_end(sb_tx_t *tx)
{
    uint8_t trailer[4];
    size_t pad;
    /* keep the frame length honest even if the caller fell short */
    while (tx->left > 0) {
        size_t n = tx->left < sizeof zero_pad ? tx->left : sizeof zero_pad;
        sb_tx_put(tx, zero_pad, n);
    }
    pad = (size_t)(SB_PAD4(tx->plen) - tx->plen);
    if (pad) {
        tx->crc = sb_crc32_update(tx->crc, zero_pad, pad);
        tx->sink.write(tx->sink.ctx, zero_pad, pad);
    }
    sb_put_u32(trailer, sb_crc32_final(tx->crc));
    tx->sink.write(tx->sink.ctx, trailer, sizeof trailer);
}

void sb_membuf_write(void *ctx, const uint8_t *data, size_t len)
{
    sb_membuf_t *m = (sb_membuf_t *)ctx;
    size_t room = m->cap - m->len;
    size_t n = len < room ? len : room;
    if (n)
        memcpy(m->buf + m->len, data, n);
    m->len += n;
    m->overflow += len - n;
}

size_t sb_frame_encode(uint8_t *out, size_t cap, uint8_t msg_type, uint32_t seq, uint8_t flags,
                       const uint8_t *payload, uint32_t payload_len)
{
    sb_membuf_t mb;
    sb_sink_t sink;
    sb_tx_t tx;
    if (payload_len > SB_MAX_PAYLOAD || cap < SB_FRAME_LEN(payload_len))
        return 0;
    mb.buf = out;
    mb.cap = cap;
    mb.len = 0;
    mb.overflow = 0;
    sink.write = sb_membuf_write;
    sink.ctx = &mb;
    sb_tx_begin(&tx, sink, msg_type, payload_len, seq, flags);
    sb_tx_put(&tx, payload, payload_len);
    sb_tx_end(&tx);
    return mb.len;
}
