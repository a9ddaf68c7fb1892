/* shm_out.c - deliveries through the broker's fan-out slots (docs/design/shared-memory.md
 * sections 6, 8, 9, 12; docs/protocol.md section 11).
 *
 * Per client:
 *   - views: each fan-out segment's state for it - announced (shm_seg sent), confirmed (ok) or
 *     refused. A segment is used for a client only once it confirmed it; until then, and after
 *     a refusal, the client gets the frame inline (shm_inline_fallbacks). A client that refused
 *     AIPC_SHM_MAX_REFUSALS segments is offered no more.
 *   - holds: the slots it holds, (segment, offset) -> slot, from the moment a descriptor is
 *     queued to it until it releases the slot (shm_done) or leaves. A pair it does not hold, or
 *     holds but whose descriptor was not handed to the engine yet, is ignored
 *     (shm_bad_releases): a client can never free a slot another client still reads. HANDED
 *     means offered to the engine (out_next tags every frame it offers, before out_issued
 *     says how many the write covers), so a client may "release" a descriptor offered but not
 *     in the write: it is only marked EARLY, no slot is freed before its write completed, and
 *     an eviction of that frame drops the hold cleanly. A release may arrive before the engine reports the write complete
 *     (the client read the descriptor while the rest of a long write was still pending): it is
 *     noted (EARLY) and applied when the write completes, since the queued frame names the
 *     slot until then.
 *     A held slot costs its payload + AIPC_QUEUED_FRAME_OVERHEAD in the client's queue
 *     (q.shm_bytes, in q.charge and the broker's total), so max_queue_bytes and
 *     max_total_queue_bytes bound it as they bound inline frames.
 *   - pins: a held slot keeps its whole segment from being reclaimed behind it (ring order),
 *     so a client that keeps one slot per segment would pin every segment of its pool. The
 *     segments a client holds slots in are bounded: their sizes together at most
 *     aipc_shm_pin_limit (its first segment always); a descriptor on another segment goes to
 *     it inline (shm_inline_fallbacks). One client can thus never fill max_shm_bytes and push
 *     every other principal set inline.
 * A client with a release page (shm_rel.c) releases through its counter instead of shm_done:
 * the hooks below tell shm_rel.c which descriptors were handed and written, in order, and it
 * takes the holds back through aipc_shm_hold_release.
 * A slot is freed when its last holder released it (its fan-out holds it while it runs). */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <inttypes.h>
#include <stdint.h>
#include <string.h>

/* Tags in the low bits of a hold's slot pointer (calloc'd: 8-byte aligned at least). */
#define WRITTEN ((uintptr_t)1)   /* the descriptor's write completed (out_consume) */
#define HANDED ((uintptr_t)2)    /* offered to the engine (out_next): maybe not in the write */
#define EARLY ((uintptr_t)4)     /* released while HANDED, not yet WRITTEN: drop at consume */
#define TAGS (WRITTEN | HANDED | EARLY)

static aipc_shm_slot *hold_slot(const void *v)
{
    return (aipc_shm_slot *)((uintptr_t)v & ~TAGS);
}

/* c's hold entry for the slot of descriptor frame f, or NULL (released early / evicted). */
static void **hold_ref(aipc_client *c, const aipc_frame *f)
{
    aipc_shm_slot *s = aipc_frame_slot(f);
    void **v = aipc_pmap_ref(&c->shm_holds, s->seg->id, s->off);
    return v && hold_slot(*v) == s ? v : NULL;
}

static int view_get(const aipc_client *c, uint32_t seg)
{
    return (int)(uintptr_t)aipc_pmap_get(&c->shm_views, seg, 0);
}

uint64_t aipc_shm_pin_limit(const aipc_broker *b)
{
    uint64_t lim = b->cfg.max_queue_bytes + 2u * (uint64_t)b->cfg.shm_segment_bytes;
    uint64_t half = b->cfg.max_shm_bytes / 2u;
    return lim < half ? lim : half;
}

/* c takes a hold in seg: counted, unless seg would take c's pinned segments over the limit. */
static bool pin_add(const aipc_broker *b, aipc_client *c, const aipc_shm_seg *seg)
{
    void **v = aipc_pmap_ref(&c->shm_pins, seg->id, 0);
    if (v) {
        *v = (void *)((uintptr_t)*v + 1u);
        return true;
    }
    if (c->shm_pinned && c->shm_pinned + seg->size > aipc_shm_pin_limit(b))
        return false;
    if (aipc_pmap_put(&c->shm_pins, seg->id, 0, (void *)(uintptr_t)1u) != 0)
        return false;
    c->shm_pinned += seg->size;
    return true;
}

static void pin_sub(aipc_client *c, const aipc_shm_seg *seg)
{
    void **v = aipc_pmap_ref(&c->shm_pins, seg->id, 0);
    if (!v)
        return;
    uintptr_t n = (uintptr_t)*v - 1u;
    if (n) {
        *v = (void *)n;
        return;
    }
    aipc_pmap_del(&c->shm_pins, seg->id, 0);
    c->shm_pinned -= seg->size;
}

bool aipc_shm_eligible(const aipc_broker *b, const aipc_client *c, size_t plen)
{
    return c->shm_on && plen >= b->cfg.shm_threshold && b->cfg.max_shm_bytes;
}

uint64_t aipc_shm_frame_extra(const aipc_frame *f)
{
    const aipc_shm_slot *s = aipc_frame_slot(f);
    return s ? (uint64_t)s->len + AIPC_QUEUED_FRAME_OVERHEAD : 0;
}

/* Offers segment s to c: shm_seg announce, the view is SENT. */
static void announce(aipc_client *c, const aipc_shm_seg *s)
{
    char meta[256];
    size_t n = aipc_shm_seg_put(meta, sizeof meta, s->id, s->name, s->size, s->session, s->id);
    if (!n || aipc_pmap_put(&c->shm_views, s->id, 0, (void *)(uintptr_t)AIPC_SHM_VIEW_SENT) != 0)
        return;                        /* not offered: stays inline */
    aipc__send_meta(c, meta, n);
}

/* Charges (add) or uncharges c's queue for holding s. */
static void hold_charge(aipc_client *c, const aipc_shm_slot *s, bool add)
{
    uint64_t cost = (uint64_t)s->len + AIPC_QUEUED_FRAME_OVERHEAD;
    aipc_outq *q = &c->q;
    if (add) {
        q->shm_bytes += cost;
        q->charge += cost;
        *q->total += cost;
    } else {
        q->shm_bytes -= cost;
        q->charge -= cost;
        *q->total -= cost;
    }
}

/* c no longer holds s (its hold entry is already gone): uncharged, and s freed if last.
 * Returns the charge it took off (read before the put: s may be gone after it). */
static uint64_t hold_drop(aipc_broker *b, aipc_client *c, aipc_shm_slot *s)
{
    uint64_t cost = (uint64_t)s->len + AIPC_QUEUED_FRAME_OVERHEAD;
    hold_charge(c, s, false);
    pin_sub(c, s->seg);
    aipc_shm_slot_put(b, s);           /* (may free s) */
    return cost;
}

int aipc_shm_queue_desc(aipc_broker *b, aipc_client *c, aipc_frame *desc)
{
    aipc_shm_slot *s = aipc_frame_slot(desc);
    const aipc_shm_seg *seg = s->seg;
    aipc_shm_rel_drain(b, c);          /* what it released no longer counts or pins */
    int st = view_get(c, seg->id);
    if (st != AIPC_SHM_VIEW_OK) {
        if (!st && c->shm_refusals < AIPC_SHM_MAX_REFUSALS)
            announce(c, seg);
        return 0;
    }
    if (aipc_pmap_get(&c->shm_holds, seg->id, s->off) || !pin_add(b, c, seg))
        return 0;                      /* (never held twice; pins at the limit: inline) */
    if (aipc_pmap_put(&c->shm_holds, seg->id, s->off, s) != 0) {
        pin_sub(c, seg);
        return 0;                      /* no memory: inline */
    }
    int rc = aipc__queue_frame(c, desc);
    if (rc != 0) {
        aipc_pmap_del(&c->shm_holds, seg->id, s->off);
        pin_sub(c, seg);
        return rc;
    }
    s->holders++;
    hold_charge(c, s, true);
    c->shm_desc_sent = true;
    b->st.shm_deliveries++;
    return 1;
}

void aipc_shm_handed(aipc_client *c, const aipc_frame *f)
{
    void **v = hold_ref(c, f);
    if (v && !((uintptr_t)*v & HANDED)) {
        *v = (void *)((uintptr_t)*v | HANDED);
        aipc_shm_rel_handed(c);
    }
}

void aipc_shm_written(aipc_broker *b, aipc_client *c, const aipc_frame *f)
{
    void **v = hold_ref(c, f);
    if (!v) {
        aipc_shm_rel_written(b, c, 0, 0, false);   /* (counted by the client all the same) */
        return;
    }
    aipc_shm_slot *s = hold_slot(*v);
    if ((uintptr_t)*v & EARLY) {       /* its release came first: applied now */
        aipc_pmap_del(&c->shm_holds, s->seg->id, s->off);
        hold_drop(b, c, s);
        return;
    }
    bool handed = ((uintptr_t)*v & HANDED) != 0;
    *v = (void *)((uintptr_t)*v | WRITTEN);
    aipc_shm_rel_written(b, c, s->seg->id, s->off, handed);   /* (may release it at once) */
}

uint64_t aipc_shm_evicted(aipc_broker *b, aipc_client *c, const aipc_frame *f)
{
    aipc_shm_slot *s = aipc_frame_slot(f);
    void **v = hold_ref(c, f);
    if (!v)
        return 0;
    if (((uintptr_t)*v & (HANDED | WRITTEN)) == HANDED)
        aipc_shm_rel_unhanded(c);
    aipc_pmap_del(&c->shm_holds, s->seg->id, s->off);
    return hold_drop(b, c, s);
}

void aipc_shm_release(aipc_broker *b, aipc_client *c, const aipc_shm_ref *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        void **v = aipc_pmap_ref(&c->shm_holds, r[i].seg, r[i].off);
        uintptr_t t = v ? (uintptr_t)*v & TAGS : 0;
        if (!(t & (WRITTEN | HANDED)) || (t & EARLY)) {
            b->st.shm_bad_releases++;  /* not held, not handed yet, or a repeat */
            continue;
        }
        if (!(t & WRITTEN)) {          /* being written: dropped at its consume */
            *v = (void *)((uintptr_t)*v | EARLY);
            continue;
        }
        aipc_shm_slot *s = hold_slot(*v);
        aipc_pmap_del(&c->shm_holds, r[i].seg, r[i].off);
        hold_drop(b, c, s);
    }
}

bool aipc_shm_hold_release(aipc_broker *b, aipc_client *c, uint32_t seg, uint32_t off)
{
    void **v = aipc_pmap_ref(&c->shm_holds, seg, off);
    if (!v || !((uintptr_t)*v & WRITTEN))
        return false;
    aipc_shm_slot *s = hold_slot(*v);
    aipc_pmap_del(&c->shm_holds, seg, off);
    hold_drop(b, c, s);
    return true;
}

int aipc_shm_answer(aipc_broker *b, aipc_client *c, uint32_t seg, bool ok)
{
    int st = view_get(c, seg);
    if (!st)                           /* retired since (ids are never reused): ignored */
        return seg >= 1 && seg <= b->shm_next_seg ? 0 : AIPC_EPROTO;
    if (st != AIPC_SHM_VIEW_SENT)
        return AIPC_EPROTO;            /* answered twice */
    void **v = aipc_pmap_ref(&c->shm_views, seg, 0);
    *v = (void *)(uintptr_t)(ok ? AIPC_SHM_VIEW_OK : AIPC_SHM_VIEW_REFUSED);
    if (!ok && ++c->shm_refusals == AIPC_SHM_MAX_REFUSALS)
        aipc__logf(b, AIPC_LOG_INFO, "client %" PRIu64 " refused %u segments: inline from now on",
                   c->id, AIPC_SHM_MAX_REFUSALS);
    return 0;
}

void aipc_shm_seg_retired(aipc_broker *b, uint32_t seg)
{
    char meta[64];
    size_t n = aipc_shm_unseg_put(meta, sizeof meta, seg);
    for (aipc_client *c = b->clients; c; c = c->next) {
        int st = view_get(c, seg);
        if (!st)
            continue;
        aipc_pmap_del(&c->shm_views, seg, 0);
        if (st != AIPC_SHM_VIEW_REFUSED)
            aipc__send_meta(c, meta, n);
    }
}

void aipc_shm_out_gone(aipc_broker *b, aipc_client *c)
{
    aipc_pmap *h = &c->shm_holds;
    for (uint32_t i = 0; i < h->cap; i++)
        if (h->ents[i].val)
            hold_drop(b, c, hold_slot(h->ents[i].val));
    aipc_pmap_free(h);
    aipc_pmap_free(&c->shm_pins);
    aipc_pmap_free(&c->shm_views);
}

int aipc_shm_deliver_one(aipc_broker *b, aipc_client *t, const char *op, const char *from,
                         size_t from_len, const char *extra_key, bool has_extra, int64_t extra,
                         const uint8_t *payload, size_t plen)
{
    if (t->state != AIPC_CL_CLOSING && aipc__data_refused(t, plen))
        return AIPC_EQUEUEFULL;        /* its queue is full: refused before any copy */
    if (aipc_shm_eligible(b, t, plen)) {
        aipc_shm_slot *s = aipc_shm_pool_slot(b, &t, 1, aipc_shm_level(t), payload, plen);
        int rc = 0;
        if (s) {
            aipc_frame *d = aipc__build_delivery_shm(b, op, from, from_len, extra_key,
                                                     has_extra, extra, s);
            rc = d ? aipc_shm_queue_desc(b, t, d) : 0;
            aipc__frame_unref(b, d);
            aipc_shm_slot_put(b, s);
        }
        if (rc == 1) {
            b->st.shm_publications++;
            return 0;
        }
        if (rc < 0)
            return AIPC_EQUEUEFULL;    /* over its bound: refused as inline would be */
        b->st.shm_inline_fallbacks++;
    }
    aipc_frame *f = aipc__build_delivery(b, op, from, from_len, extra_key, has_extra, extra,
                                        payload, plen);
    if (!f)
        return AIPC_ENOMEM;
    int rc = aipc__queue_frame(t, f);
    aipc__frame_unref(b, f);
    return rc ? AIPC_EQUEUEFULL : 0;
}
