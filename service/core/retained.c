/* retained.c - retained messages: a trie of topics holding, per topic, the last retained
 * publication already encoded with "retained":true, so a new subscriber gets it by reference. */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <string.h>

/* True when retaining plen payload bytes on topic keeps the store within max_retained_bytes:
 * the store counts topic + payload bytes, and a replacement is charged only the difference. */
bool aipc_retained_fits(aipc_broker *b, const char *topic, size_t tlen, size_t plen)
{
    const aipc_tnode *node = aipc_trie_path(&b->ret_root, topic, tlen, false);
    uint64_t old = node && node->retained ? node->ret_bytes : 0;
    uint64_t need = (uint64_t)tlen + (uint64_t)plen;
    return b->retained_bytes - old + need <= b->cfg.max_retained_bytes;
}

/* Stores f (ownership taken; its payload is plen bytes) as the retained message of topic, or
 * clears it when f is NULL, keeping retained_bytes exact. The caller checked the bound
 * (aipc_retained_fits). On AIPC_ENOMEM the store is unchanged. */
int aipc_retained_set(aipc_broker *b, const char *topic, size_t tlen, aipc_frame *f,
                      size_t plen)
{
    aipc_tnode *node = aipc_trie_path(&b->ret_root, topic, tlen, f != NULL);
    if (!node) {
        aipc_frame_unref(f);
        return f ? AIPC_ENOMEM : 0;
    }
    if (node->retained) {
        aipc_frame_unref(node->retained);
        b->nretained--;
        b->retained_bytes -= node->ret_bytes;
    }
    node->retained = f;
    node->ret_bytes = f ? (uint64_t)tlen + (uint64_t)plen : 0;
    if (f) {
        b->nretained++;
        b->retained_bytes += node->ret_bytes;
    } else {
        aipc_trie_prune(node);
    }
    return 0;
}

/* Queues one retained frame (it is a publication: the slow-consumer drop rule applies). */
static void give(aipc_broker *b, aipc_client *c, const aipc_tnode *n)
{
    if (n->retained && aipc_queue_frame(c, n->retained) == 0)
        b->st.deliveries++;
}

/* Everything at and below n ('#'); skip_dollar hides '$' topics at the first level. */
static void give_all(aipc_broker *b, aipc_client *c, const aipc_tnode *n, bool skip_dollar)
{
    give(b, c, n);
    for (uint32_t i = 0; i < n->kids.cap; i++) {
        const aipc_tnode *k = n->kids.ents[i].val;
        if (k && !(skip_dollar && k->len > 0 && k->name[0] == '$'))
            give_all(b, c, k, false);
    }
}

/* Walks the retained trie along a filter's levels starting at lvl (first: level 1). */
static void walk(aipc_broker *b, aipc_client *c, const aipc_tnode *n, const char *lvl,
                 const char *end, bool first)
{
    const char *slash = memchr(lvl, '/', (size_t)(end - lvl));
    const char *lend = slash ? slash : end;
    size_t len = (size_t)(lend - lvl);
    if (len == 1 && lvl[0] == '#') {
        give_all(b, c, n, first);       /* also the parent level itself: "a/#" matches "a" */
        return;
    }
    if (len == 1 && lvl[0] == '+') {
        for (uint32_t i = 0; i < n->kids.cap; i++) {
            const aipc_tnode *k = n->kids.ents[i].val;
            if (!k || (first && k->len > 0 && k->name[0] == '$'))
                continue;
            if (slash)
                walk(b, c, k, slash + 1, end, false);
            else
                give(b, c, k);
        }
        return;
    }
    const aipc_tnode *k = aipc_strmap_get(&n->kids, lvl, len);
    if (!k)
        return;
    if (slash)
        walk(b, c, k, slash + 1, end, false);
    else
        give(b, c, k);
}

/* Delivers the retained messages matching a (validated) filter to c, right after its ok. */
void aipc_retained_deliver(aipc_broker *b, aipc_client *c, const char *filter, size_t n)
{
    if (b->nretained)
        walk(b, c, &b->ret_root, filter, filter + n, true);
}

/* Frees every retained message (broker teardown). */
void aipc_retained_free(aipc_broker *b)
{
    aipc_trie_free(&b->ret_root);
    b->nretained = 0;
    b->retained_bytes = 0;
}
