/* shm_pool.c - the broker's fan-out pools (docs/design/shared-memory.md sections 5, 7, 9, 11).
 *
 * A pool belongs to one set of receiving principals: the sorted unique user SIDs of the shm
 * clients at ONE integrity level a payload goes to (a payload for receivers at several levels
 * takes one slot per level: a section labelled at the lowest level would let every process of
 * those users at that level read what only their higher-level clients were sent, and the
 * backend refuses a label above the broker's own level). Its segments are created
 * by the engine's backend for exactly that set and never re-granted, so every payload ever put
 * in a segment is addressed to principals that may read all of it. Segments are
 * max(shm_segment_bytes, payload + 1 rounded up to 1 MiB) bytes; all pools' segments together
 * stay under max_shm_bytes (idle segments of any pool are retired to make room); at most
 * AIPC_SHM_MAX_POOLS pools exist (the least recently used idle one is retired for a new one).
 * The tick's sweep retires segments idle for AIPC_SHM_IDLE_MS, and idle ones no attached client
 * has a view of at once, so the sections of a burst do not stay committed for the broker's
 * life; a pool left without segments is freed.
 * Slots inside a segment come from its ring (proto/shm_ring.h). */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define AIPC_SHM_MAX_POOLS 64u
#define MIB (1024u * 1024u)

struct aipc_shm_pool {
    char *key;                /* "<integrity>|<sid>,<sid>,..." (the strmap's key) */
    size_t klen;
    char *sidbuf;             /* the key's SIDs, each NUL-terminated */
    const char *sids[AIPC_SHM_BACKEND_MAX_READERS];  /* point into sidbuf */
    size_t nsids;
    uint32_t integrity;
    aipc_shm_seg *segs;       /* oldest first */
    uint64_t used_at;         /* b->shm_use_seq of its last slot (LRU retirement) */
};

/* 0 (unknown) counts as medium, as the backend reads it. */
uint32_t aipc_shm_level(const aipc_client *c)
{
    return c->ident.integrity ? c->ident.integrity : 0x2000u;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Whether a segment holds no slot at all (nothing live, nothing waiting to be reclaimed). */
static bool seg_idle(const aipc_shm_seg *s)
{
    return aipc_shm_ring_used(&s->ring) == 0 && aipc_shm_ring_live(&s->ring) == 0;
}

/* Closes an idle segment: every client it was announced to gets shm_unseg. */
static void seg_retire(aipc_broker *b, aipc_shm_seg *s)
{
    aipc_shm_pool *p = s->pool;
    for (aipc_shm_seg **pp = &p->segs; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    aipc_pmap_del(&b->shm_segs, s->id, 0);
    aipc_shm_seg_retired(b, s->id);
    b->shm_be.close(b->shm_be.ctx, s->h);
    b->shm_seg_bytes -= s->size;
    aipc__logf(b, AIPC_LOG_DEBUG, "shm: segment %u (%u bytes) retired", s->id, s->size);
    free(s);
}

static void pool_free(aipc_broker *b, aipc_shm_pool *p)
{
    while (p->segs)
        seg_retire(b, p->segs);
    aipc_strmap_del(&b->shm_pools, p->key, p->klen);
    b->shm_npools--;
    free(p->sidbuf);
    free(p->key);
    free(p);
}

/* Retires idle segments of pools other than keep until `need` more bytes fit the budget. */
static bool make_room(aipc_broker *b, const aipc_shm_pool *keep, uint64_t need)
{
    aipc_strmap *m = &b->shm_pools;
    for (uint32_t i = 0; i < m->cap && b->shm_seg_bytes + need > b->cfg.max_shm_bytes; i++) {
        aipc_shm_pool *p = m->ents[i].val;
        if (!p)
            continue;
        for (aipc_shm_seg *s = p->segs, *nx; s && b->shm_seg_bytes + need >
                                                     b->cfg.max_shm_bytes; s = nx) {
            nx = s->next;                  /* (no more than needed: each costs its clients an
                                            * shm_unseg, a new announce and inline frames) */
            if ((p != keep || s->size < need) && seg_idle(s))
                seg_retire(b, s);
        }
    }
    return b->shm_seg_bytes + need <= b->cfg.max_shm_bytes;
}

/* A new segment of at least min bytes for pool p, appended to its list; NULL when the budget
 * or the backend says no. */
static aipc_shm_seg *seg_new(aipc_broker *b, aipc_shm_pool *p, uint64_t min)
{
    uint64_t size = (min + MIB - 1) / MIB * MIB;
    if (size < b->cfg.shm_segment_bytes)
        size = b->cfg.shm_segment_bytes;
    if (size > UINT32_MAX - MIB || !make_room(b, p, size))
        return NULL;
    aipc_shm_seg *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    char name[AIPC_SHM_NAME_BUF] = "";
    uint32_t session = 0;
    if (aipc_shm_ring_init(&s->ring, (uint32_t)size) != 0 ||
        aipc_pmap_put(&b->shm_segs, (uint64_t)b->shm_next_seg + 1, 0, s) != 0) {
        free(s);
        return NULL;
    }
    s->h = b->shm_be.create(b->shm_be.ctx, (uint32_t)size, p->sids, p->nsids, p->integrity,
                            &s->base, name, &session);
    if (!s->h) {
        aipc_pmap_del(&b->shm_segs, (uint64_t)b->shm_next_seg + 1, 0);
        free(s);
        return NULL;
    }
    s->id = ++b->shm_next_seg;
    s->size = (uint32_t)size;
    s->pool = p;
    aipc_shm_seg **pp = &p->segs;
    while (*pp)
        pp = &(*pp)->next;
    *pp = s;
    b->shm_seg_bytes += size;
    aipc__logf(b, AIPC_LOG_DEBUG, "shm: segment %u (%s, %" PRIu64 " bytes) for %s", s->id, name,
               size, p->key);
    /* The announce is queued per client when it first needs the segment (shm_out.c); keep the
     * name for it. */
    memcpy(s->name, name, sizeof name);
    s->session = session;
    return s;
}

/* Builds the key of the principal set of the shm clients at `lvl` among targets into b->meta. */
static bool pool_key(aipc_broker *b, aipc_client *const *targets, size_t n, uint32_t lvl)
{
    const char *sids[AIPC_SHM_BACKEND_MAX_READERS];
    size_t ns = 0;
    for (size_t i = 0; i < n; i++) {
        const aipc_client *c = targets[i];
        if (!c->shm_on || c->shm_refusals >= AIPC_SHM_MAX_REFUSALS || aipc_shm_level(c) != lvl)
            continue;
        bool dup = false;
        for (size_t k = 0; k < ns && !dup; k++)
            dup = strcmp(sids[k], c->ident.user_sid) == 0;
        if (!dup) {
            if (ns == AIPC_SHM_BACKEND_MAX_READERS)
                return false;             /* too many principals for one section: inline */
            sids[ns++] = c->ident.user_sid;
        }
    }
    if (!ns)
        return false;
    qsort(sids, ns, sizeof sids[0], cmp_str);
    aipc_sbuf *m = &b->meta;
    aipc_sbuf_reset(m);
    aipc_sbuf_u64(m, lvl);
    aipc_sbuf_lit(m, "|");
    for (size_t k = 0; k < ns; k++) {
        if (k)
            aipc_sbuf_lit(m, ",");
        aipc_sbuf_lit(m, sids[k]);
    }
    return !m->oom;
}

/* The pool of the key in b->meta, created (after retiring an idle one at the limit) if new.
 * The key is copied out of b->meta BEFORE anything is retired: retiring sends shm_unseg. */
static aipc_shm_pool *pool_get(aipc_broker *b, uint32_t integrity)
{
    aipc_shm_pool *p = aipc_strmap_get(&b->shm_pools, b->meta.p, b->meta.len);
    if (p)
        return p;
    size_t klen = b->meta.len;
    const char *bar = memchr(b->meta.p, '|', klen);
    size_t sids_at = bar ? (size_t)(bar - b->meta.p) + 1 : 0;
    p = calloc(1, sizeof *p);
    char *key = p ? malloc(klen + 1) : NULL;
    char *sidbuf = key ? malloc(klen + 1) : NULL;
    if (!sidbuf || !bar) {
        free(sidbuf);
        free(key);
        free(p);
        return NULL;
    }
    memcpy(key, b->meta.p, klen);
    key[klen] = 0;
    if (b->shm_npools >= AIPC_SHM_MAX_POOLS) {
        aipc_shm_pool *lru = NULL;
        for (uint32_t i = 0; i < b->shm_pools.cap; i++) {
            aipc_shm_pool *q = b->shm_pools.ents[i].val;
            bool idle = q != NULL;
            for (aipc_shm_seg *s = q ? q->segs : NULL; s && idle; s = s->next)
                idle = seg_idle(s);
            if (idle && (!lru || q->used_at < lru->used_at))
                lru = q;
        }
        if (lru)
            pool_free(b, lru);             /* (sends shm_unseg; the key is safe in `key`) */
        else {
            free(sidbuf);
            free(key);
            free(p);
            return NULL;
        }
    }
    p->key = key;
    p->klen = klen;
    p->integrity = integrity;
    p->sidbuf = sidbuf;
    if (aipc_strmap_put(&b->shm_pools, key, p->klen, p) != 0) {
        free(sidbuf);
        free(key);
        free(p);
        return NULL;
    }
    memcpy(p->sidbuf, key, p->klen + 1);
    for (char *s = p->sidbuf + sids_at; s; ) {   /* the SIDs, NUL-separated */
        p->sids[p->nsids++] = s;
        s = strchr(s, ',');
        if (s)
            *s++ = 0;
    }
    b->shm_npools++;
    return p;
}

/* The first of p's segments with room for plen bytes (sl's offset and generation set), or NULL. */
static aipc_shm_seg *slot_in(aipc_shm_pool *p, size_t plen, aipc_shm_slot *sl)
{
    aipc_shm_seg *s = p->segs;
    for (; s; s = s->next)
        if (aipc_shm_ring_alloc_gen(&s->ring, (uint32_t)plen, &sl->off, &sl->gen) == 0)
            break;
    return s;
}

aipc_shm_slot *aipc_shm_pool_slot(aipc_broker *b, aipc_client *const *targets, size_t n,
                                  uint32_t level, const uint8_t *payload, size_t plen)
{
    if (plen >= UINT32_MAX - MIB || !pool_key(b, targets, n, level))
        return NULL;
    aipc_shm_pool *p = pool_get(b, level);
    if (!p)
        return NULL;
    aipc_shm_slot *sl = calloc(1, sizeof *sl);
    if (!sl)
        return NULL;
    aipc_shm_seg *s = slot_in(p, plen, sl);
    if (!s && aipc_shm_rel_drain_all(b))      /* slots released in pages: retry once */
        s = slot_in(p, plen, sl);
    if (!s && (s = seg_new(b, p, (uint64_t)plen + 1)) != NULL &&
        aipc_shm_ring_alloc_gen(&s->ring, (uint32_t)plen, &sl->off, &sl->gen) != 0)
        s = NULL;
    if (!s) {
        free(sl);
        return NULL;
    }
    sl->seg = s;
    sl->holders = 1;
    sl->len = (uint32_t)plen;
    sl->span = ((uint32_t)plen + AIPC_SHM_RING_ALIGN) / AIPC_SHM_RING_ALIGN * AIPC_SHM_RING_ALIGN;
    memcpy(s->base + sl->off, payload, plen);   /* the one copy of the payload */
    s->base[sl->off + plen] = 0;                /* the spare byte (receivers never write) */
    b->shm_slot_bytes += sl->span;
    p->used_at = ++b->shm_use_seq;   /* (every slot: directs, requests and replies too) */
    return sl;
}

void aipc_shm_slot_put(aipc_broker *b, aipc_shm_slot *sl)
{
    if (--sl->holders)
        return;
    aipc_shm_ring_release_gen(&sl->seg->ring, sl->off, sl->gen);
    b->shm_slot_bytes -= sl->span;
    free(sl);
}

/* One pool's part of a sweep: its idle segments retired as aipc_shm_pools_tick says. */
static void pool_sweep(aipc_broker *b, aipc_shm_pool *p, uint64_t now)
{
    for (aipc_shm_seg *s = p->segs, *nx; s; s = nx) {
        nx = s->next;
        if (!seg_idle(s)) {
            s->idle_since = 0;
            continue;
        }
        if (!s->idle_since)
            s->idle_since = now ? now : 1;
        if (s->viewed != b->shm_sweep_no || now - s->idle_since >= AIPC_SHM_IDLE_MS)
            seg_retire(b, s);
    }
}

uint64_t aipc_shm_pools_tick(aipc_broker *b, uint64_t now)
{
    if (!b->shm_npools)
        return UINT64_MAX;
    if (now < b->shm_sweep_at)
        return b->shm_sweep_at - now;
    b->shm_sweep_at = now + AIPC_SHM_SWEEP_MS;
    uint64_t mark = ++b->shm_sweep_no;
    for (aipc_client *c = b->clients; c; c = c->next)
        for (uint32_t i = 0; i < c->shm_views.cap; i++)
            if (c->shm_views.ents[i].val) {
                aipc_shm_seg *s = aipc_pmap_get(&b->shm_segs, c->shm_views.ents[i].a, 0);
                if (s)
                    s->viewed = mark;
            }
    aipc_strmap *m = &b->shm_pools;
    for (uint32_t i = 0; i < m->cap; i++)
        while (m->ents && m->ents[i].val) {   /* a freed pool's entry: the next shifts back */
            aipc_shm_pool *p = m->ents[i].val;
            pool_sweep(b, p, now);
            if (p->segs)
                break;
            pool_free(b, p);
        }
    return b->shm_npools ? AIPC_SHM_SWEEP_MS : UINT64_MAX;
}

void aipc_shm_pools_free(aipc_broker *b)
{
    aipc_strmap *m = &b->shm_pools;
    for (uint32_t i = 0; i < m->cap; i++)
        while (m->ents && m->ents[i].val)   /* pool_free deletes (entries shift back) */
            pool_free(b, m->ents[i].val);
    aipc_strmap_free(m);
    aipc_pmap_free(&b->shm_segs);
}
