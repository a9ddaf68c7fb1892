/* shm_ring.c - the slot allocator of one shared-memory segment (shm_ring.h). */
#include "proto/shm_ring.h"

#include <string.h>

#include "asyncipc/asyncipc.h"

int aipc_shm_ring_init(aipc_shm_ring *r, uint32_t size)
{
    if (!r || size == 0 || size % AIPC_SHM_RING_ALIGN != 0)
        return AIPC_EINVAL;
    memset(r, 0, sizeof *r);
    r->size = size;
    return 0;
}

void aipc_shm_ring_free(aipc_shm_ring *r)
{
    if (!r)
        return;
    uint32_t size = r->size, gen = r->gen;
    memset(r, 0, sizeof *r);
    r->size = size;
    r->gen = gen;                     /* generations stay unique across a reset */
}

int aipc_shm_ring_alloc(aipc_shm_ring *r, uint32_t len, uint32_t *off)
{
    return aipc_shm_ring_alloc_gen(r, len, off, NULL);
}

int aipc_shm_ring_alloc_gen(aipc_shm_ring *r, uint32_t len, uint32_t *off, uint32_t *gen)
{
    uint64_t need = ((uint64_t)len + 1 + AIPC_SHM_RING_ALIGN - 1) / AIPC_SHM_RING_ALIGN * AIPC_SHM_RING_ALIGN;
    if (!r || !off || r->size == 0)
        return AIPC_EINVAL;
    if (need > r->size)
        return AIPC_ETOOBIG;
    if (r->count == AIPC_SHM_RING_SLOTS || r->used == r->size)
        return AIPC_EQUEUEFULL;
    uint32_t n = (uint32_t)need, at, span;
    if (r->count == 0) {
        r->head = 0;
        at = 0;
        span = n;
    } else {
        uint32_t tail = r->slot[r->first].start;
        if (r->head > tail || (r->head == tail && r->used == 0)) {
            /* Free: [head, size) and [0, tail). */
            if (r->size - r->head >= n) {
                at = r->head;
                span = n;
            } else if (tail >= n) {
                at = 0;
                span = (r->size - r->head) + n;     /* the skipped tail goes with this slot */
            } else {
                return AIPC_EQUEUEFULL;
            }
        } else if (r->head < tail && tail - r->head >= n) {
            at = r->head;                           /* free: [head, tail) */
            span = n;
        } else {
            return AIPC_EQUEUEFULL;
        }
    }
    aipc_shm_ring_slot *s = &r->slot[(r->first + r->count) % AIPC_SHM_RING_SLOTS];
    s->off = at;
    s->start = r->head;
    s->span = span;
    s->done = 0;
    if (++r->gen == 0)
        r->gen = 1;
    s->gen = r->gen;
    if (gen)
        *gen = s->gen;
    r->count++;
    r->live++;
    r->used += span;
    r->head = at + n;
    *off = at;
    return 0;
}

int aipc_shm_ring_release(aipc_shm_ring *r, uint32_t off)
{
    return aipc_shm_ring_release_gen(r, off, 0);
}

/* gen 0: any generation. */
int aipc_shm_ring_release_gen(aipc_shm_ring *r, uint32_t off, uint32_t gen)
{
    if (!r || off % AIPC_SHM_RING_ALIGN != 0)
        return AIPC_EINVAL;
    uint32_t i;
    for (i = 0; i < r->count; i++) {
        aipc_shm_ring_slot *s = &r->slot[(r->first + i) % AIPC_SHM_RING_SLOTS];
        if (s->off == off && !s->done && (gen == 0 || s->gen == gen)) {
            s->done = 1;
            break;
        }
    }
    if (i == r->count)
        return AIPC_EINVAL;
    r->live--;
    while (r->count > 0 && r->slot[r->first].done) {
        r->used -= r->slot[r->first].span;
        r->first = (r->first + 1) % AIPC_SHM_RING_SLOTS;
        r->count--;
    }
    if (r->count == 0)
        r->head = 0;
    return 0;
}

uint32_t aipc_shm_ring_used(const aipc_shm_ring *r)
{
    return r ? r->used : 0;
}

uint32_t aipc_shm_ring_live(const aipc_shm_ring *r)
{
    return r ? r->live : 0;
}

uint32_t aipc_shm_ring_pinned(const aipc_shm_ring *r)
{
    uint32_t n = 0;
    for (uint32_t i = 0; r && i < r->count; i++) {
        const aipc_shm_ring_slot *s = &r->slot[(r->first + i) % AIPC_SHM_RING_SLOTS];
        if (s->done)
            n += s->span;
    }
    return n;
}
