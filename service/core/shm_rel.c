/* shm_rel.c - release pages: a bus client releases the broker's fan-out slots it was sent by a
 * counter in a page of its own, which the broker maps read-only (docs/protocol.md section 11
 * "Release page", docs/design/shared-memory.md section 18).
 *
 * The page's first 4 bytes are a uint32 `released` (little-endian, like every Windows target):
 * the client has released every one of the first `released` descriptors the broker sent it on
 * this connection (mod 2^32), written with a release store after its last read of their slots
 * and read here once per drain with an acquire load. 32 bits on purpose: a 64-bit atomic load
 * may be a locked cmpxchg8b on 32-bit x86, which writes and faults on a read-only view.
 * Descriptors reach the client in the order their writes complete (one write in flight per
 * client, frames in queue order), so the broker keeps the (segment, offset) of every written
 * descriptor in a FIFO and pops as many as the counter moved: each pop is one shm_done pair. A
 * counter needs no acknowledgement (a ring of pairs would need its consumer index back, and the
 * broker cannot write the client's memory).
 *
 * Per client (struct aipc_shm_rel, made at the page's announce, freed at detach):
 *   fifo    written descriptors not released yet, in completion (= the client's arrival)
 *           order; an entry with segment 0 only keeps the count for a descriptor whose hold
 *           was gone at its completion (never with a correct core);
 *   done    how many of the counted descriptors were applied (popped);
 *   seen    the counter's last value read: ahead of done when the client released descriptors
 *           whose write completion the broker had not processed yet; each completion then pops
 *           at once (aipc_shm_rel_written) until done catches up;
 *   handed  descriptors handed to the engine (HANDED) and not written: the client may have them.
 * The counter starts at what the page holds when the broker maps it (0 from a fresh section).
 * A drain that finds it moved back, or beyond what the client can have received (fifo + handed
 * - (seen - done)), closes the client with bad_request (shm_bad_releases): like a bad shm_done,
 * a client can only ever release its own holds.
 *
 * When the broker drains (no doorbell: every decision that depends on a client's charge drains
 * that client first, everything that needs pool room drains every client with a page):
 *   - at the end of each input turn of the client (broker.c);
 *   - before a delivery to it is checked against its bound, charged or pinned (outq.c
 *     aipc__data_refused / aipc__queue_frame, shm_out.c aipc_shm_queue_desc);
 *   - at each write completion of a descriptor (the early case above, shm_out.c);
 *   - every client with a page: before a pool grows or falls back inline (shm_pool.c), before
 *     max_total_queue_bytes refuses (qtotal.c), at the stats op (router.c) and at the tick.
 * Errors found while draining are sent as whole metas (aipc__send_meta): a drain may run in the
 * middle of a fan-out that is building a frame in the scratch b->meta. */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct aipc_shm_rel {
    uint32_t seg;                       /* its id (the client's segment id space) */
    void *h;                            /* the backend's segment; NULL: refused */
    const volatile uint32_t *page;      /* read-only view (NULL: refused) */
    aipc_shm_ref *fifo;                 /* ring of cap entries (a power of two, or 0) */
    uint32_t head, len, cap;
    uint32_t done, seen, handed;
    bool bad;                           /* closed for a bad counter: never drained again */
};

#define BAD_REQUEST(msg) "{\"op\":\"error\",\"code\":\"bad_request\",\"message\":\"" msg "\"}"

/* Closes c with bad_request (meta: a whole error meta); its page is not read again. */
static void violation(aipc_client *c, const char *meta)
{
    if (c->shm_rel)
        c->shm_rel->bad = true;
    aipc__send_meta(c, meta, strlen(meta));
    aipc__request_close(c);
}

/* The counter: one aligned 32-bit read, then acquire (pairs with the client's release store). */
static uint32_t page_load(const aipc_shm_rel *r)
{
    uint32_t v = *r->page;
    atomic_thread_fence(memory_order_acquire);
    return v;
}

void aipc_shm_rel_announce(aipc_broker *b, aipc_client *c, const aipc_shm_ctl *ctl)
{
    const char *bad = NULL;
    if (!c->shm_rel_offer)
        bad = BAD_REQUEST("release page announced to a broker that did not offer rel");
    else if (c->shm_rel || c->shm_rel_tried)
        bad = BAD_REQUEST("a second release page");
    else if (c->shm_desc_sent)
        bad = BAD_REQUEST("release page announced after the broker sent a descriptor");
    else if (aipc_pmap_get(&c->shm_in, ctl->seg, 0))
        bad = BAD_REQUEST("segment announced twice");
    if (bad) {
        violation(c, bad);
        return;
    }
    c->shm_rel_tried = true;
    aipc_shm_rel *r = calloc(1, sizeof *r);
    if (!r) {
        b->st.shm_map_failures++;
        aipc_shm_in_answer(c, ctl->id, ctl->seg, false, "no_memory");
        return;
    }
    r->seg = ctl->seg;
    c->shm_rel = r;
    const char *code = NULL;
    const uint8_t *base = NULL;
    if (ctl->size < AIPC_SHM_REL_MIN || ctl->size > AIPC_SHM_REL_MAX)
        code = "bad_size";
    else if (c->shm_nin >= AIPC_SHM_IN_MAX_SEGS)
        code = "too_many_segments";
    else if (!(r->h = b->shm_be.open(b->shm_be.ctx, c->conn, ctl->name, ctl->size, &base, &code)))
        code = code ? code : "error";
    if (!r->h) {
        b->st.shm_map_failures++;
        aipc__logf(b, AIPC_LOG_INFO, "client %" PRIu64 ": its release page %u (%u bytes) not "
                   "mapped: %s (it releases by shm_done)", c->id, ctl->seg, ctl->size, code);
        aipc_shm_in_answer(c, ctl->id, ctl->seg, false, code);
        return;
    }
    r->page = (const volatile uint32_t *)(const void *)base;
    r->done = r->seen = page_load(r);
    c->shm_nin++;
    b->shm_npages++;
    aipc_shm_in_answer(c, ctl->id, ctl->seg, true, NULL);
}

bool aipc_shm_rel_on(const aipc_client *c)
{
    return c->shm_rel && c->shm_rel->page;
}

bool aipc_shm_rel_is_page(const aipc_client *c, uint32_t seg)
{
    return c->shm_rel && c->shm_rel->seg == seg;
}

/* Appends a written descriptor's (seg, off); AIPC_ENOMEM when the ring cannot grow. */
static int fifo_push(aipc_shm_rel *r, uint32_t seg, uint32_t off)
{
    if (r->len == r->cap) {
        uint32_t ncap = r->cap ? r->cap * 2 : 16;
        aipc_shm_ref *n = ncap > r->cap ? malloc((size_t)ncap * sizeof *n) : NULL;
        if (!n)
            return AIPC_ENOMEM;
        for (uint32_t i = 0; i < r->len; i++)
            n[i] = r->fifo[(r->head + i) & (r->cap - 1)];
        free(r->fifo);
        r->fifo = n;
        r->cap = ncap;
        r->head = 0;
    }
    r->fifo[(r->head + r->len) & (r->cap - 1)] = (aipc_shm_ref){seg, off};
    r->len++;
    return 0;
}

/* Applies the n oldest written descriptors: each one's hold goes as with a shm_done pair. */
static void pop(aipc_broker *b, aipc_client *c, aipc_shm_rel *r, uint32_t n)
{
    while (n--) {
        aipc_shm_ref e = r->fifo[r->head];
        r->head = (r->head + 1) & (r->cap - 1);
        r->len--;
        r->done++;
        if (e.seg && aipc_shm_hold_release(b, c, e.seg, e.off))
            b->st.shm_page_releases++;
    }
}

bool aipc_shm_rel_drain(aipc_broker *b, aipc_client *c)
{
    aipc_shm_rel *r = c->shm_rel;
    if (!r || !r->page || r->bad || (!r->len && !r->handed))
        return false;                   /* nothing the counter could release */
    uint32_t v = page_load(r);          /* read once: the client may change it any time */
    uint32_t adv = v - r->seen;
    if (!adv)
        return false;
    uint32_t ahead = r->seen - r->done;
    if ((uint64_t)adv + ahead > (uint64_t)r->len + r->handed) {
        b->st.shm_bad_releases++;
        aipc__logf(b, AIPC_LOG_WARN, "client %" PRIu64 ": release page counter %" PRIu32
                   " (was %" PRIu32 ") claims descriptors it cannot have: closing it", c->id, v,
                   r->seen);
        violation(c, BAD_REQUEST("release page counter beyond the descriptors sent"));
        return false;
    }
    r->seen = v;
    uint32_t n = adv + ahead < r->len ? adv + ahead : r->len;
    pop(b, c, r, n);
    return n != 0;
}

bool aipc_shm_rel_drain_all(aipc_broker *b)
{
    bool any = false;
    if (!b->shm_npages)
        return false;
    for (aipc_client *c = b->clients; c; c = c->next)
        if (c->shm_rel)
            any |= aipc_shm_rel_drain(b, c);
    return any;
}

void aipc_shm_rel_handed(aipc_client *c)
{
    if (aipc_shm_rel_on(c))
        c->shm_rel->handed++;
}

void aipc_shm_rel_unhanded(aipc_client *c)
{
    if (aipc_shm_rel_on(c) && c->shm_rel->handed)
        c->shm_rel->handed--;
}

void aipc_shm_rel_written(aipc_broker *b, aipc_client *c, uint32_t seg, uint32_t off,
                          bool was_handed)
{
    aipc_shm_rel *r = c->shm_rel;
    if (!r || !r->page)
        return;
    if (was_handed && r->handed)
        r->handed--;
    if (r->bad)
        return;
    if (fifo_push(r, seg, off) != 0) {  /* the count would be lost: cut the connection */
        r->bad = true;
        c->kill = true;
        aipc__request_close(c);
        return;
    }
    if (r->seen != r->done)             /* released before its completion came: applied now */
        pop(b, c, r, 1);
}

void aipc_shm_rel_gone(aipc_broker *b, aipc_client *c)
{
    aipc_shm_rel *r = c->shm_rel;
    if (!r)
        return;
    if (r->h) {
        b->shm_be.close(b->shm_be.ctx, r->h);
        c->shm_nin--;
        b->shm_npages--;
    }
    free(r->fifo);
    free(r);
    c->shm_rel = NULL;
}
