/* shm_in.c - clients' segments: payloads a client sends through shared memory it created
 * (docs/design/shared-memory.md section 6, docs/protocol.md section 11).
 *
 * A client welcomed with shm announces a segment (shm_seg); the broker opens it read-only
 * through the engine's backend, as the identity the engine captured for the connection (never
 * the announce's session), and answers ok or ok:false with a code. At most
 * AIPC_SHM_IN_MAX_SEGS segments per client, each at most max(max_payload + 1 rounded up to
 * 1 MiB, 64 MiB). A descriptor in pub, send, req or rep names a range of one of them: resolved
 * without a system call, the payload is then copied once (into the fan-out slot or an inline
 * frame) and never parsed in place. Every resolved pair is owed back in shm_done frames
 * (AIPC_SHM_DONE_MAX pairs each) built at the end of the input turn that brought it, queued
 * ahead of the client's queued frames when no write is in flight; a pair named again while
 * still owed (the SDK never reuses one before its shm_done) is bad_request + close, so one turn
 * cannot make the broker copy one range many times. shm_unseg or detach closes the client's
 * segments. */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MIB (1024u * 1024u)
#define AIPC_SHM_IN_MIN_BOUND (64ull * MIB)

typedef struct shm_in_seg {
    void *h;                  /* the backend's segment */
    const uint8_t *base;      /* read-only view */
    uint32_t size;
} shm_in_seg;

/* The largest client segment the broker maps. */
static uint64_t size_bound(const aipc_broker *b)
{
    uint64_t m = ((uint64_t)b->cfg.max_payload + 1 + MIB - 1) / MIB * MIB;
    return m > AIPC_SHM_IN_MIN_BOUND ? m : AIPC_SHM_IN_MIN_BOUND;
}

void aipc_shm_in_answer(aipc_client *c, uint32_t id, uint32_t seg, bool ok, const char *code)
{
    char meta[160];
    size_t n = aipc_shm_answer_put(meta, sizeof meta, id, seg, ok, ok ? NULL : code);
    if (!n && !ok)                     /* a code that is not [a-z_]{1,31} */
        n = aipc_shm_answer_put(meta, sizeof meta, id, seg, false, "error");
    aipc__send_meta(c, meta, n);
}

void aipc_shm_in_announce(aipc_broker *b, aipc_client *c, const aipc_shm_ctl *ctl)
{
    if (aipc_pmap_get(&c->shm_in, ctl->seg, 0)) {
        aipc__send_error(c, false, 0, "bad_request", "segment announced twice");
        aipc__request_close(c);
        return;
    }
    const char *code = NULL;
    shm_in_seg *s = NULL;
    if (ctl->size > size_bound(b))
        code = "too_large";
    else if (c->shm_nin >= AIPC_SHM_IN_MAX_SEGS)
        code = "too_many_segments";
    else if (!(s = calloc(1, sizeof *s)))
        code = "no_memory";
    if (s) {
        s->h = b->shm_be.open(b->shm_be.ctx, c->conn, ctl->name, ctl->size, &s->base, &code);
        if (s->h && aipc_pmap_put(&c->shm_in, ctl->seg, 0, s) != 0) {
            b->shm_be.close(b->shm_be.ctx, s->h);
            s->h = NULL;
            code = "no_memory";
        }
        if (!s->h) {
            free(s);
            s = NULL;
            if (!code)
                code = "error";
        }
    }
    if (!s) {
        b->st.shm_map_failures++;
        aipc__logf(b, AIPC_LOG_INFO, "client %" PRIu64 ": its segment %u (%u bytes) not mapped: %s",
                   c->id, ctl->seg, ctl->size, code);
        aipc_shm_in_answer(c, ctl->id, ctl->seg, false, code);
        return;
    }
    s->size = ctl->size;
    c->shm_nin++;
    b->shm_in_segs++;
    aipc_shm_in_answer(c, ctl->id, ctl->seg, true, NULL);
}

/* Closes one mapped client segment (the record is already out of the map). */
static void seg_close(aipc_broker *b, aipc_client *c, shm_in_seg *s)
{
    b->shm_be.close(b->shm_be.ctx, s->h);
    free(s);
    c->shm_nin--;
    b->shm_in_segs--;
}

void aipc_shm_in_unseg(aipc_broker *b, aipc_client *c, uint32_t seg)
{
    shm_in_seg *s = aipc_pmap_del(&c->shm_in, seg, 0);
    if (s)
        seg_close(b, c, s);
}

/* Remembers that (seg, off) is owed back to c in a shm_done. */
static int owe(aipc_client *c, uint32_t seg, uint32_t off)
{
    if (c->shm_nowed == c->shm_capowed) {
        uint32_t ncap = c->shm_capowed ? c->shm_capowed * 2 : 16;
        aipc_shm_ref *n = realloc(c->shm_owed, ncap * sizeof *n);
        if (!n)
            return AIPC_ENOMEM;
        c->shm_owed = n;
        c->shm_capowed = ncap;
    }
    c->shm_owed[c->shm_nowed++] = (aipc_shm_ref){seg, off};
    return 0;
}

int aipc_shm_in_resolve(aipc_broker *b, aipc_client *c, const uint8_t *meta, size_t mlen,
                        size_t plen_in, const uint8_t **payload, size_t *plen,
                        const char **why)
{
    aipc_shm_desc d;
    shm_in_seg *s;
    *why = "malformed \"shm\" descriptor";
    if (!c->shm_on) {
        *why = "shared memory was not negotiated (hello without \"shm\")";
        return AIPC_EPROTO;
    }
    if (plen_in || aipc_shm_desc_find((const char *)meta, mlen, &d) != 1)
        return AIPC_EPROTO;
    if (!(s = aipc_pmap_get(&c->shm_in, d.seg, 0))) {
        *why = "descriptor on a segment that is not mapped";
        return AIPC_EPROTO;
    }
    if ((uint64_t)d.off + d.len > s->size || d.len > b->cfg.max_payload) {
        *why = "descriptor outside its segment, or over max_payload";
        return AIPC_EPROTO;
    }
    if (aipc_pmap_get(&c->shm_owed_set, d.seg, d.off)) {
        *why = "descriptor on a range already in use (not released yet)";
        return AIPC_EPROTO;
    }
    if (aipc_pmap_put(&c->shm_owed_set, d.seg, d.off, (void *)(uintptr_t)1) != 0 ||
        owe(c, d.seg, d.off) != 0) {
        aipc_pmap_del(&c->shm_owed_set, d.seg, d.off);
        *why = "out of memory";
        return AIPC_ENOMEM;
    }
    *payload = s->base + d.off;
    *plen = d.len;
    b->st.shm_in++;
    return 1;
}

void aipc_shm_in_flush(aipc_broker *b, aipc_client *c)
{
    (void)b;
    char meta[4096];                   /* 128 pairs fit (proto/shm.h) */
    uint32_t done = 0;
    c->shm_yield = c->shm_nowed != 0;  /* payloads copied this turn: others go first next */
    while (done < c->shm_nowed && aipc__client_can_queue(c)) {
        uint32_t n = c->shm_nowed - done;
        if (n > AIPC_SHM_DONE_MAX)
            n = AIPC_SHM_DONE_MAX;
        aipc__send_meta_first(c, meta, aipc_shm_done_put(meta, sizeof meta, c->shm_owed + done, n));
        done += n;
    }
    for (uint32_t i = 0; i < c->shm_nowed; i++)
        aipc_pmap_del(&c->shm_owed_set, c->shm_owed[i].seg, c->shm_owed[i].off);
    c->shm_nowed = 0;
}

void aipc_shm_in_gone(aipc_broker *b, aipc_client *c)
{
    aipc_pmap *m = &c->shm_in;
    for (uint32_t i = 0; i < m->cap; i++)
        if (m->ents[i].val)
            seg_close(b, c, m->ents[i].val);
    aipc_pmap_free(m);
    aipc_pmap_free(&c->shm_owed_set);
    free(c->shm_owed);
    c->shm_owed = NULL;
    c->shm_nowed = c->shm_capowed = 0;
}

bool aipc_client_take_yield(aipc_client *cl)
{
    bool y = cl->shm_yield;
    cl->shm_yield = false;
    return y;
}
