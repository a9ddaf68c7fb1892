/* topic.c - the subscription trie: one node per level, literal children in a hash map, '+' and
 * '#' children kept aside so matching a publication costs one lookup per level plus the
 * wildcard branches. The rules (validity, what matches) are proto/topic.h's: callers validate
 * first, and tests/native/test_rules_agree.c checks that fan-out agrees with
 * aipc_proto_topic_match. */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <stdlib.h>
#include <string.h>

/* Allocates a node with its level name stored inline. */
static aipc_tnode *node_new(aipc_tnode *parent, const char *name, size_t len)
{
    aipc_tnode *n = calloc(1, sizeof *n + len + 1);
    if (!n)
        return NULL;
    n->parent = parent;
    n->name = (char *)(n + 1);
    memcpy(n->name, name, len);
    n->name[len] = 0;
    n->len = (uint32_t)len;
    return n;
}

/* The heap of a node (its level name and NUL inline) and of a child table of cap slots. */
static uint64_t node_mem(size_t len)
{
    return sizeof(aipc_tnode) + len + 1 + AIPC_HEAP_OVERHEAD;
}

static uint64_t table_mem(uint32_t cap)
{
    return cap ? (uint64_t)cap * sizeof(aipc_strmap_ent) + AIPC_HEAP_OVERHEAD : 0;
}

static void mem_add(uint64_t *mem, uint64_t add, uint64_t sub)
{
    if (mem)
        *mem = *mem + add - sub;
}

/* The child of n for one level, created on demand (heap accounted in *mem). */
static aipc_tnode *child(aipc_tnode *n, uint64_t *mem, const char *lvl, size_t len, bool create)
{
    aipc_tnode **slot = NULL;
    if (len == 1 && lvl[0] == '+')
        slot = &n->plus;
    else if (len == 1 && lvl[0] == '#')
        slot = &n->hash;
    if (slot) {
        if (!*slot && create && (*slot = node_new(n, lvl, len)))
            mem_add(mem, node_mem(len), 0);
        return *slot;
    }
    aipc_tnode *k = aipc_strmap_get(&n->kids, lvl, len);
    if (k || !create)
        return k;
    k = node_new(n, lvl, len);
    if (!k)
        return NULL;
    uint32_t cap = n->kids.cap;
    if (aipc_strmap_put(&n->kids, k->name, k->len, k) != 0) {
        free(k);
        return NULL;
    }
    mem_add(mem, node_mem(len) + table_mem(n->kids.cap), table_mem(cap));
    return k;
}

/* Walks (or builds) the node path of a validated topic or filter. NULL: absent or no memory. */
aipc_tnode *aipc_trie_path(aipc_tnode *root, uint64_t *mem, const char *topic, size_t n,
                           bool create)
{
    aipc_tnode *node = root;
    size_t start = 0;
    for (size_t i = 0; i <= n && node; i++) {
        if (i < n && topic[i] != '/')
            continue;
        aipc_tnode *k = child(node, mem, topic + start, i - start, create);
        if (!k && create)
            aipc_trie_prune(node, mem);   /* undo what this call created */
        node = k;
        start = i + 1;
    }
    return node;
}

/* Mirrors child()/strmap_put for a literal path: the nodes it would create, the new nodes'
 * one-key tables and the growth of the table of the deepest existing node. */
uint64_t aipc_trie_add_cost(const aipc_tnode *root, const char *topic, size_t n)
{
    const aipc_tnode *node = root;
    uint64_t cost = 0;
    bool missing = false;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && topic[i] != '/')
            continue;
        size_t len = i - start;
        if (!missing) {
            const aipc_tnode *k = aipc_strmap_get(&node->kids, topic + start, len);
            if (k) {
                node = k;
                start = i + 1;
                continue;
            }
            missing = true;
            uint32_t cap = node->kids.cap;
            if ((node->kids.count + 1) * 4 > cap * 3)
                cost += table_mem(cap ? cap * 2 : 4) - table_mem(cap);
        } else {
            cost += table_mem(4);           /* the previous new node's table, one key */
        }
        cost += node_mem(len);
        start = i + 1;
    }
    return cost;
}

/* True when a node carries nothing and can go. */
static bool node_empty(const aipc_tnode *n)
{
    return !n->nsubs && !n->ret && !n->kids.count && !n->plus && !n->hash;
}

/* Removes empty nodes from node up to (not including) the root, so the trie only holds live
 * filters and topics; a child table left empty goes too. */
void aipc_trie_prune(aipc_tnode *node, uint64_t *mem)
{
    while (node && node->parent && node_empty(node)) {
        aipc_tnode *p = node->parent;
        if (p->plus == node) {
            p->plus = NULL;
        } else if (p->hash == node) {
            p->hash = NULL;
        } else {
            aipc_strmap_del(&p->kids, node->name, node->len);
            if (!p->kids.count) {
                mem_add(mem, 0, table_mem(p->kids.cap));
                aipc_strmap_free(&p->kids);
            }
        }
        mem_add(mem, 0, node_mem(node->len) + table_mem(node->kids.cap));
        aipc_strmap_free(&node->kids);
        free(node->subs);
        free(node);
        node = p;
    }
}

/* Frees a node's subtree (depth is bounded by AIPC_PROTO_TOPIC_MAX_LEVELS). */
static void subtree_free(aipc_tnode *n)
{
    for (uint32_t i = 0; i < n->kids.cap; i++)
        if (n->kids.ents[i].val)
            subtree_free(n->kids.ents[i].val);
    if (n->plus)
        subtree_free(n->plus);
    if (n->hash)
        subtree_free(n->hash);
    aipc_strmap_free(&n->kids);
    free(n->subs);
    if (n->parent)
        free(n);
}

/* Frees everything below an embedded root and resets it. */
void aipc_trie_free(aipc_tnode *root)
{
    subtree_free(root);
    memset(root, 0, sizeof *root);
}

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
 * A new one must fit the client's max_subscriptions and max_subscription_bytes. */
int aipc_subscribe(aipc_broker *b, aipc_client *c, const char *filter, size_t n,
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
void aipc_unsubscribe(aipc_broker *b, aipc_client *c, const char *filter, size_t n)
{
    aipc_tnode *node = aipc_trie_path(&b->sub_root, NULL, filter, n, false);
    if (!node)
        return;
    aipc_sub *s = aipc_pmap_get(&b->sub_index, (uintptr_t)c, (uintptr_t)node);
    if (s)
        sub_remove(b, s);
}

/* Drops every subscription of a leaving client. */
void aipc_unsubscribe_all(aipc_broker *b, aipc_client *c)
{
    while (c->subs)
        sub_remove(b, c->subs);
}

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
            x->frame = aipc_build_msg(b, x->topic, x->tlen, x->from, x->from_len, false,
                                      x->payload, x->plen);
            x->failed = !x->frame;
        }
        if (x->failed) {
            b->st.drops++;
            continue;
        }
        if (aipc_queue_frame(c, x->frame) == 0)
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
int aipc_publish(aipc_broker *b, const char *topic, size_t tlen, const char *from,
                 size_t from_len, const uint8_t *payload, size_t plen, bool retain)
{
    pubctx x = {b, topic, from, tlen, from_len, payload, plen, topic[0] == '$', false, NULL};
    b->st.publications++;
    b->pub_seq++;
    match(&x, &b->sub_root, topic, true);
    aipc_frame_unref(x.frame);
    if (!retain)
        return 0;
    if (plen == 0)
        return aipc_retained_set(b, topic, tlen, NULL);
    if (b->retained_bytes + plen > b->cfg.max_retained_bytes + aipc_retained_held(b, topic, tlen))
        return AIPC_PUB_RETAINED_FULL;      /* cannot fit whatever else: no frame built */
    aipc_frame *rf = aipc_build_msg(b, topic, tlen, from, from_len, true, payload, plen);
    if (!rf)
        return AIPC_ENOMEM;
    int rc = aipc_retained_set(b, topic, tlen, rf);
    aipc_frame_unref(rf);
    return rc;
}
