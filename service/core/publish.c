/* publish.c - publication fan-out: one frame built on the first delivery and shared by every
 * matching subscriber (once per client per publication), then the retained store updated.
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
    aipc_frame *frame;        /* built on the first delivery, shared by all */
} pubctx;

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
        if (!x->frame && !x->failed) {
            x->frame = aipc__build_msg(b, x->topic, x->tlen, x->from, x->from_len, false,
                                      x->payload, x->plen);
            x->failed = !x->frame;
        }
        if (x->failed) {
            b->st.drops++;
            continue;
        }
        if (aipc__queue_frame(c, x->frame) == 0)
            b->st.deliveries++;
    }
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
    pubctx x = {b, topic, from, tlen, from_len, payload, plen, topic[0] == '$', false, NULL};
    b->st.publications++;
    b->pub_seq++;
    match(&x, &b->sub_root, topic, true);
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
