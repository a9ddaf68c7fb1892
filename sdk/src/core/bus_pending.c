/* bus_pending.c - outstanding requests/acks keyed by id, with deadlines (portable). */
#include "bus_core.h"

#include <stdlib.h>
#include <string.h>

#define PEND_MIN_BUCKETS 16u

void aipc__bus_pending_init(aipc__bus_pending *p)
{
    memset(p, 0, sizeof *p);
}

void aipc__bus_pending_free(aipc__bus_pending *p)
{
    for (size_t b = 0; b < p->nbuckets; b++) {
        aipc__bus_pend *e = p->buckets[b];
        while (e) {
            aipc__bus_pend *next = e->next_;
            free(e->desc);
            free(e);
            e = next;
        }
    }
    free(p->buckets);
    memset(p, 0, sizeof *p);
}

/* Ids are mostly sequential, so a multiplicative hash spreads them well. */
static size_t bucket_of(const aipc__bus_pending *p, uint64_t id)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 17) & (p->nbuckets - 1);
}

/* Doubles the bucket array when the load factor passes 1 (keeps lookups O(1)). */
static int grow(aipc__bus_pending *p)
{
    size_t n = p->nbuckets ? p->nbuckets * 2 : PEND_MIN_BUCKETS;
    aipc__bus_pend **nb = calloc(n, sizeof *nb);
    if (!nb)
        return AIPC_ENOMEM;
    aipc__bus_pending np = {nb, n, p->count};
    for (size_t b = 0; b < p->nbuckets; b++) {
        aipc__bus_pend *e = p->buckets[b];
        while (e) {
            aipc__bus_pend *next = e->next_;
            size_t k = bucket_of(&np, e->id);
            e->next_ = nb[k];
            nb[k] = e;
            e = next;
        }
    }
    free(p->buckets);
    *p = np;
    return 0;
}

aipc__bus_pend *aipc__bus_pending_find(aipc__bus_pending *p, uint64_t id)
{
    if (!p->nbuckets)
        return NULL;
    for (aipc__bus_pend *e = p->buckets[bucket_of(p, id)]; e; e = e->next_)
        if (e->id == id)
            return e;
    return NULL;
}

int aipc__bus_pending_add(aipc__bus_pending *p, const aipc__bus_pend *src)
{
    if (!src || src->id == 0 || aipc__bus_pending_find(p, src->id))
        return AIPC_EINVAL;
    if (p->count >= p->nbuckets && grow(p) != 0)
        return AIPC_ENOMEM;
    aipc__bus_pend *e = malloc(sizeof *e);
    if (!e)
        return AIPC_ENOMEM;
    *e = *src;
    e->desc = NULL;
    if (src->desc) {
        size_t n = strlen(src->desc) + 1;
        e->desc = malloc(n);
        if (!e->desc) {
            free(e);
            return AIPC_ENOMEM;
        }
        memcpy(e->desc, src->desc, n);
    }
    size_t k = bucket_of(p, e->id);
    e->next_ = p->buckets[k];
    p->buckets[k] = e;
    p->count++;
    return 0;
}

/* Unlinks *link's entry into *out and frees the node (desc ownership moves to *out). */
static void unlink_into(aipc__bus_pending *p, aipc__bus_pend **link, aipc__bus_pend *out)
{
    aipc__bus_pend *e = *link;
    *link = e->next_;
    *out = *e;
    out->next_ = NULL;
    free(e);
    p->count--;
}

int aipc__bus_pending_take(aipc__bus_pending *p, uint64_t id, aipc__bus_pend *out)
{
    if (!p->nbuckets)
        return 0;
    for (aipc__bus_pend **l = &p->buckets[bucket_of(p, id)]; *l; l = &(*l)->next_) {
        if ((*l)->id == id) {
            unlink_into(p, l, out);
            return 1;
        }
    }
    return 0;
}

/* Removes the first entry satisfying pred; shared by take_expired and take_sent. */
static int take_first(aipc__bus_pending *p, int (*pred)(const aipc__bus_pend *, uint64_t),
                      uint64_t arg, aipc__bus_pend *out)
{
    for (size_t b = 0; b < p->nbuckets; b++)
        for (aipc__bus_pend **l = &p->buckets[b]; *l; l = &(*l)->next_)
            if (pred(*l, arg)) {
                unlink_into(p, l, out);
                return 1;
            }
    return 0;
}

static int is_expired(const aipc__bus_pend *e, uint64_t now)
{
    return e->deadline_ms != 0 && e->deadline_ms <= now;
}

static int is_sent(const aipc__bus_pend *e, uint64_t all)
{
    return all || e->sent;
}

int aipc__bus_pending_take_expired(aipc__bus_pending *p, uint64_t now_ms, aipc__bus_pend *out)
{
    return take_first(p, is_expired, now_ms, out);
}

int aipc__bus_pending_take_sent(aipc__bus_pending *p, int all, aipc__bus_pend *out)
{
    return take_first(p, is_sent, (uint64_t)(all != 0), out);
}

uint64_t aipc__bus_pending_next_deadline(const aipc__bus_pending *p)
{
    uint64_t best = 0;
    for (size_t b = 0; b < p->nbuckets; b++)
        for (const aipc__bus_pend *e = p->buckets[b]; e; e = e->next_)
            if (e->deadline_ms && (best == 0 || e->deadline_ms < best))
                best = e->deadline_ms;
    return best;
}
