/*
 * A byte ring for the device's send buffer: single producer (the device core), single
 * consumer (the link drain), caller-provided storage. Writes are all or nothing, so a frame is
 * never half queued. Each side owns its position; the byte counts run free and wrap at 2^32,
 * so their difference is the fill level for any capacity (not only powers of two).
 */
#ifndef SB_RING_H
#define SB_RING_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *buf;
    uint32_t cap;
    uint32_t head_pos;          /* producer's next write offset */
    uint32_t tail_pos;          /* consumer's next read offset */
    volatile uint32_t written;  /* total bytes written (producer only) */
    volatile uint32_t read;     /* total bytes read (consumer only) */
    uint32_t rejected;      /* writes refused for lack of room */
} sb_ring_t;

void sb_ring_init(sb_ring_t *r, uint8_t *storage, uint32_t cap);
uint32_t sb_ring_used(const sb_ring_t *r);
uint32_t sb_ring_space(const sb_ring_t *r);
/* 1 if all len bytes were queued, 0 (and nothing queued) otherwise */
int sb_ring_write(sb_ring_t *r, const uint8_t *data, uint32_t len);
/* The longest contiguous readable run: returns its length, *data points at it. */
uint32_t sb_ring_peek(const sb_ring_t *r, const uint8_t **data);
void sb_ring_consume(sb_ring_t *r, uint32_t n);

#endif
