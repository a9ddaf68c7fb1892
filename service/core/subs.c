/* subs.c - subscriptions: what one costs (max_subscription_bytes), subscribe, unsubscribe, a
 * client's subscriptions dropped when it leaves. Filters are validated by the caller. */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <stdlib.h>
#include <string.h>

/* ---- subscriptions ---------------------------------------------------------------------- */

#define HEAP_OVERHEAD AIPC_HEAP_OVERHEAD
/* A trie level: its node with the level name and NUL inline, the heap's share, and for a
 * literal level its slots in the parent's child table (a table holds at least 4 and is kept
 * under 3/4 full, so one child costs at most 4 slots; '+' and '#' children have their own
 * pointers instead). */
#define NODE_COST (sizeof(aipc_tnode) + HEAP_OVERHEAD + 1)
#define KID_COST (4 * sizeof(aipc_strmap_ent))
/* A subscription: its record, the node's pointer array (doubling: two slots each), the
 * (client, node) index (kept under 3/4 full after doubling: under 3 slots each, 4 charged)
 * and the cursor of its retained delivery while one runs. */
#define SUB_FIXED (sizeof(aipc_sub) + HEAP_OVERHEAD + 2 * sizeof(aipc_sub *) +              \
                   4 * sizeof(aipc_pmap_ent) + sizeof(aipc_rcursor) + HEAP_OVERHEAD)

uint64_t aipc_subscription_cost(const char *filter, size_t n)
{
    uint64_t cost = SUB_FIXED + n;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && filter[i] != '/')
            continue;
        bool wild = i - start == 1 && (filter[start] == '+' || filter[start] == '#');
        cost += NODE_COST + (wild ? 0 : KID_COST);
        start = i + 1;
    }
    return cost;
}

/* Adds (client, filter) once; a repeated sub is a no-op (it still gets the retained matches).
 * A new one must fit the client's max_subscriptions and max_subscription_bytes, and every
 * client's subscriptions together max_total_subscription_bytes. */
int aipc__subscribe(aipc_broker *b, aipc_client *c, const char *filter, size_t n,
                   aipc_sub **out)
{
    aipc_tnode *node = aipc_trie_path(&b->sub_root, NULL, filter, n, false);
    aipc_sub *held = node ? aipc_pmap_get(&b->sub_index, (uintptr_t)c, (uintptr_t)node) : NULL;
    if (held) {
        *out = held;
        return 0;
    }
    uint64_t cost = aipc_subscription_cost(filter, n);
    if (c->nsubs >= b->cfg.max_subscriptions)
        return AIPC_SUB_TOO_MANY;
    if (c->sub_bytes + cost > b->cfg.max_subscription_bytes)
        return AIPC_SUB_TOO_BIG;
    if (b->cfg.max_total_subscription_bytes &&
        b->sub_bytes + cost > b->cfg.max_total_subscription_bytes)
        return AIPC_SUB_TOTAL_FULL;
    node = aipc_trie_path(&b->sub_root, NULL, filter, n, true);
    if (!node)
        return AIPC_ENOMEM;
    aipc_sub *s = calloc(1, sizeof *s);
    if (!s)
        goto oom;
    if (node->nsubs == node->subcap) {
        uint32_t ncap = node->subcap ? node->subcap * 2 : 4;
        aipc_sub **ns = realloc(node->subs, (size_t)ncap * sizeof *ns);
        if (!ns)
            goto oom;
        node->subs = ns;
        node->subcap = ncap;
    }
    if (aipc_pmap_put(&b->sub_index, (uintptr_t)c, (uintptr_t)node, s) != 0)
        goto oom;
    s->client = c;
    s->node = node;
    s->cost = (uint32_t)cost;            /* < 2^32: filters are at most 32000 bytes */
    c->nsubs++;
    c->sub_bytes += cost;
    b->sub_bytes += cost;
    s->idx = node->nsubs;
    node->subs[node->nsubs++] = s;
    s->cnext = c->subs;
    if (c->subs)
        c->subs->cprev = s;
    c->subs = s;
    b->nsubs++;
    *out = s;
    return 0;
oom:
    free(s);
    aipc_trie_prune(node, NULL);
    return AIPC_ENOMEM;
}

/* Removes one subscription record (O(1): swap-remove in the node, unlink from the client). */
static void sub_remove(aipc_broker *b, aipc_sub *s)
{
    aipc_tnode *node = s->node;
    aipc_client *c = s->client;
    aipc_retained_cursor_free(b, s);
    aipc_pmap_del(&b->sub_index, (uintptr_t)c, (uintptr_t)node);
    aipc_sub *last = node->subs[--node->nsubs];
    node->subs[s->idx] = last;
    last->idx = s->idx;
    if (s->cprev)
        s->cprev->cnext = s->cnext;
    else
        c->subs = s->cnext;
    if (s->cnext)
        s->cnext->cprev = s->cprev;
    c->nsubs--;
    c->sub_bytes -= s->cost;
    b->sub_bytes -= s->cost;
    free(s);
    b->nsubs--;
    aipc_trie_prune(node, NULL);
}

/* Drops (client, filter) if present; unknown filters are fine (idempotent). */
void aipc__unsubscribe(aipc_broker *b, aipc_client *c, const char *filter, size_t n)
{
    aipc_tnode *node = aipc_trie_path(&b->sub_root, NULL, filter, n, false);
    if (!node)
        return;
    aipc_sub *s = aipc_pmap_get(&b->sub_index, (uintptr_t)c, (uintptr_t)node);
    if (s)
        sub_remove(b, s);
}

/* Drops every subscription of a leaving client. */
void aipc__unsubscribe_all(aipc_broker *b, aipc_client *c)
{
    while (c->subs)
        sub_remove(b, c->subs);
}
