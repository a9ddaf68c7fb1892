/* publish.c - publication fan-out: one frame built on the first delivery and shared by every
 * matching subscriber (once per client per publication), then the retained store updated.
 * A payload at or above shm_threshold while shm clients are attached is routed in two passes:
 * the matched clients are collected first (their principals choose the fan-out pool), then
 * the payload is copied once per integrity level present among the shm clients into a slot of
 * that level's pool, and one descriptor frame goes to every shm client at that level that
 * confirmed the slot's segment, the inline frame to the others (shm_out.c).
 * tests/native/test_rules_agree.c checks that fan-out agrees with aipc_proto_topic_match. */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <stdlib.h>
#include <string.h>

/* ---- publication fan-out ---------------------------------------------------------------- */
typedef struct pubctx {
    aipc_broker *b;
    const char *topic, *from;
    size_t tlen, from_len;
    const uint8_t *payload;
    size_t plen;
    bool dollar;              /* topic starts with '$': wildcards at level 1 do not match */
    bool failed;              /* frame could not be built (no memory) */
    bool collect;             /* shared-memory candidate: collect the targets first */
    aipc_frame *frame;        /* built on the first delivery, shared by all */
} pubctx;

/* Queues the inline frame of the publication to c. */
static void deliver_inline(pubctx *x, aipc_client *c)
{
    aipc_broker *b = x->b;
    if (aipc__pub_refused(c, x->plen))
        return;                       /* its queue is full: dropped before any frame is built */
    if (!x->frame && !x->failed) {
        x->frame = aipc__build_msg(b, x->topic, x->tlen, x->from, x->from_len, false,
                                  x->payload, x->plen);
        x->failed = !x->frame;
    }
    if (x->failed) {
        b->st.drops++;
        return;
    }
    if (aipc__queue_frame(c, x->frame) == 0)
        b->st.deliveries++;
}

/* Adds c to the collected targets (inline at once if the list cannot grow). */
static void collect(pubctx *x, aipc_client *c)
{
    aipc_broker *b = x->b;
    if (b->shm_ntargets == b->shm_captargets) {
        uint32_t ncap = b->shm_captargets ? b->shm_captargets * 2 : 16;
        aipc_client **nt = realloc(b->shm_targets, ncap * sizeof *nt);
        if (!nt) {
            deliver_inline(x, c);
            return;
        }
        b->shm_targets = nt;
        b->shm_captargets = ncap;
    }
    b->shm_targets[b->shm_ntargets++] = c;
}

/* Queues the publication to every subscriber of one node, once per client per publication. */
static void deliver(pubctx *x, const aipc_tnode *node)
{
    aipc_broker *b = x->b;
    for (uint32_t i = 0; i < node->nsubs; i++) {
        aipc_client *c = node->subs[i]->client;
        if (c->mark == b->pub_seq)
            continue;
        c->mark = b->pub_seq;
        if (c->state != AIPC_CL_READY)
            continue;
        if (x->collect)
            collect(x, c);
        else
            deliver_inline(x, c);
    }
}

/* The shm clients at integrity level lvl among the collected targets: one slot for their
 * principal set, a descriptor to each that confirmed its segment, the inline frame to the
 * others (counted fallbacks). True when a descriptor was queued. */
static bool deliver_level(pubctx *x, uint32_t lvl)
{
    aipc_broker *b = x->b;
    aipc_client **t = b->shm_targets;
    uint32_t n = b->shm_ntargets;
    bool any = false;                 /* no slot copy unless one of them has room */
    for (uint32_t i = 0; i < n && !any; i++)
        any = t[i]->state == AIPC_CL_READY && aipc_shm_eligible(b, t[i], x->plen) &&
              aipc_shm_level(t[i]) == lvl && !aipc__data_refused(t[i], x->plen);
    aipc_shm_slot *s = any ? aipc_shm_pool_slot(b, t, n, lvl, x->payload, x->plen) : NULL;
    aipc_frame *d = s ? aipc__build_msg_shm(b, x->topic, x->tlen, x->from, x->from_len, s) : NULL;
    bool used = false;
    for (uint32_t i = 0; i < n; i++) {
        aipc_client *c = t[i];
        if (c->state != AIPC_CL_READY || !aipc_shm_eligible(b, c, x->plen) ||
            aipc_shm_level(c) != lvl)
            continue;                 /* (cut off while this publication was handed out) */
        if (aipc__pub_refused(c, x->plen))
            continue;                 /* its queue is full: dropped, nothing built or held */
        int rc = d ? aipc_shm_queue_desc(b, c, d) : 0;
        if (rc == 1) {
            b->st.deliveries++;
            used = true;
            continue;
        }
        if (rc < 0)
            continue;                 /* over its bound: dropped as the inline frame would be */
        b->st.shm_inline_fallbacks++;
        deliver_inline(x, c);
    }
    aipc__frame_unref(b, d);
    if (s)
        aipc_shm_slot_put(b, s);
    return used;
}

/* Second pass of a large publication: per integrity level of the shm clients among the
 * targets (lowest first), one slot and descriptors (deliver_level); the inline frame to the
 * clients without shared memory. */
static void deliver_collected(pubctx *x)
{
    aipc_broker *b = x->b;
    aipc_client **t = b->shm_targets;
    uint32_t n = b->shm_ntargets;
    bool used = false;
    for (uint32_t lvl = 0;;) {
        uint32_t next = 0;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t l = aipc_shm_level(t[i]);
            if (t[i]->state == AIPC_CL_READY && aipc_shm_eligible(b, t[i], x->plen) &&
                l > lvl && (!next || l < next))
                next = l;
        }
        if (!next)
            break;
        lvl = next;
        used |= deliver_level(x, lvl);
    }
    for (uint32_t i = 0; i < n; i++) {
        aipc_client *c = t[i];
        if (c->state == AIPC_CL_READY && !aipc_shm_eligible(b, c, x->plen))
            deliver_inline(x, c);
    }
    if (used)
        b->st.shm_publications++;
    b->shm_ntargets = 0;
}

/* Walks the trie along the topic's levels; recursion only for '+' branches. */
static void match(pubctx *x, const aipc_tnode *n, const char *lvl, bool first)
{
    const char *end = x->topic + x->tlen;
    for (;;) {
        const char *slash = memchr(lvl, '/', (size_t)(end - lvl));
        const char *lend = slash ? slash : end;
        bool wild_ok = !(first && x->dollar);
        if (wild_ok && n->hash)
            deliver(x, n->hash);
        if (wild_ok && n->plus) {
            if (slash) {
                match(x, n->plus, slash + 1, false);
            } else {
                deliver(x, n->plus);
                if (n->plus->hash)
                    deliver(x, n->plus->hash);   /* "a/+/#" matches "a/b" */
            }
        }
        const aipc_tnode *k = aipc_strmap_get(&n->kids, lvl, (size_t)(lend - lvl));
        if (!k)
            return;
        if (!slash) {
            deliver(x, k);
            if (k->hash)
                deliver(x, k->hash);             /* "a/#" matches "a" */
            return;
        }
        n = k;
        lvl = slash + 1;
        first = false;
    }
}

/* Routes one publication (topic already validated) to all matching subscribers, then updates
 * the retained store: retain + payload stores, retain + empty payload clears. Delivery never
 * depends on the store: returns 0, AIPC_PUB_RETAINED_FULL (storing would exceed
 * max_retained_bytes; the store is unchanged, the old retained message stays) or AIPC_ENOMEM
 * (the store is unchanged). */
int aipc__publish(aipc_broker *b, const char *topic, size_t tlen, const char *from,
                 size_t from_len, const uint8_t *payload, size_t plen, bool retain)
{
    pubctx x = {b, topic, from, tlen, from_len, payload, plen, topic[0] == '$', false, false,
                NULL};
    x.collect = b->shm_nclients && plen >= b->cfg.shm_threshold && b->cfg.max_shm_bytes;
    b->st.publications++;
    b->pub_seq++;
    match(&x, &b->sub_root, topic, true);
    if (x.collect)
        deliver_collected(&x);
    aipc__frame_unref(b, x.frame);
    if (!retain)
        return 0;
    if (plen == 0)
        return aipc_retained_set(b, topic, tlen, NULL);
    if (b->retained_bytes + plen > b->cfg.max_retained_bytes + aipc_retained_held(b, topic, tlen))
        return AIPC_PUB_RETAINED_FULL;      /* cannot fit whatever else: no frame built */
    aipc_frame *rf = aipc__build_msg(b, topic, tlen, from, from_len, true, payload, plen);
    if (!rf)
        return AIPC_ENOMEM;
    int rc = aipc_retained_set(b, topic, tlen, rf);
    aipc__frame_unref(b, rf);
    return rc;
}
