/* trie.c - the topic trie (subscriptions and the retained store use one each): one node per
 * level, literal children in a hash map, '+' and '#' children kept aside so matching a
 * publication costs one lookup per level plus the wildcard branches; each trie's memory kept
 * exact. The rules (validity, what matches) are proto/topic.h's: callers validate first. */
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
