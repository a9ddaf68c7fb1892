/*
 * relseq.c - a connection's release counter: sequence numbers, the circular bitmap of releases
 * behind a held descriptor, the prefix, and the page store (relseq.h).
 */
#include "relseq.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "asyncipc/asyncipc.h"

static int bit_get(const aipc__relseq *r, uint32_t seq)
{
    uint32_t i = seq & (r->cap - 1);
    return (r->bits[i >> 5] >> (i & 31)) & 1u;
}

static void bit_put(aipc__relseq *r, uint32_t seq, int on)
{
    uint32_t i = seq & (r->cap - 1), m = 1u << (i & 31);
    if (on)
        r->bits[i >> 5] |= m;
    else
        r->bits[i >> 5] &= ~m;
}

void aipc__relseq_init(aipc__relseq *r, uint32_t start)
{
    memset(r, 0, sizeof *r);
    r->next = start;
    r->prefix = start;
}

void aipc__relseq_free(aipc__relseq *r)
{
    free(r->bits);
    aipc__relseq_init(r, 0);
}

/* Doubles the bitmap (or makes the first one), moving the outstanding bits to their places. */
static int grow(aipc__relseq *r)
{
    uint32_t cap = r->cap ? r->cap * 2 : AIPC__RELSEQ_MIN_BITS;
    if (cap < r->cap || cap > 0x80000000u)
        return AIPC_ENOMEM;
    uint32_t *bits = calloc(cap / 32, sizeof *bits);
    if (!bits)
        return AIPC_ENOMEM;
    aipc__relseq old = *r;
    r->bits = bits;
    r->cap = cap;
    for (uint32_t s = old.prefix; s != old.next; s++)
        if (bit_get(&old, s))
            bit_put(r, s, 1);
    free(old.bits);
    return 0;
}

int aipc__relseq_take(aipc__relseq *r, uint32_t *seq)
{
    if (r->next - r->prefix >= r->cap) {
        int rc = grow(r);
        if (rc != 0)
            return rc;
    }
    *seq = r->next++;
    return 0;
}

int aipc__relseq_release(aipc__relseq *r, uint32_t seq)
{
    if (seq - r->prefix >= r->next - r->prefix || bit_get(r, seq))
        return AIPC_EINVAL;
    if (seq != r->prefix) {
        bit_put(r, seq, 1);
        r->waiting++;
        return 0;
    }
    r->prefix++;
    while (r->prefix != r->next && bit_get(r, r->prefix)) {
        bit_put(r, r->prefix, 0);
        r->prefix++;
        r->waiting--;
    }
    return 1;
}

void aipc__relseq_store(volatile void *page, uint32_t v)
{
    atomic_store_explicit((volatile _Atomic uint32_t *)page, v, memory_order_release);
}

uint32_t aipc__relseq_load(const volatile void *page)
{
    return atomic_load_explicit((const volatile _Atomic uint32_t *)page, memory_order_acquire);
}
