#include "sb_ring.h"

#include <string.h>

void sb_ring_init(sb_ring_t *r, uint8_t *storage, uint32_t cap)
{
    r->buf = storage;
    r->cap = cap;
    r->head_pos = 0;
    r->tail_pos = 0;
    r->written = 0;
    r->read = 0;
    r->rejected = 0;
}

uint32_t sb_ring_used(const sb_ring_t *r)
{
    return r->written - r->read;
}

uint32_t sb_ring_space(const sb_ring_t *r)
{
    return r->cap - sb_ring_used(r);
}

int sb_ring_write(sb_ring_t *r, const uint8_t *data, uint32_t len)
{
    uint32_t first;
    if (len > sb_ring_space(r)) {
        r->rejected++;
        return 0;
    }
    if (len == 0)
        return 1;
    first = r->cap - r->head_pos;
    if (first > len)
        first = len;
    memcpy(r->buf + r->head_pos, data, first);
    if (len > first)
        memcpy(r->buf, data + first, len - first);
    r->head_pos = (r->head_pos + len) % r->cap;
    /* publish the count last: the consumer reads nothing before it is in place */
    r->written += len;
    return 1;
}

uint32_t sb_ring_peek(const sb_ring_t *r, const uint8_t **data)
{
    uint32_t used = sb_ring_used(r);
    uint32_t run = r->cap - r->tail_pos;
    *data = r->buf + r->tail_pos;
    return used < run ? used : run;
}

void sb_ring_consume(sb_ring_t *r, uint32_t n)
{
    uint32_t used = sb_ring_used(r);
    if (n > used)
        n = used;
    if (n == 0)
        return;
    r->tail_pos = (r->tail_pos + n) % r->cap;
    r->read += n;
}
