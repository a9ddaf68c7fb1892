/* retained.c - retained messages: a trie of topics (for lookups and clears) whose nodes point to
 * aipc_ret records, each holding the last retained publication already encoded with
 * "retained":true, so a new subscriber gets it by reference. The records also form one list in
 * store order (a replaced message moves to the tail), which retained deliveries walk.
 *
 * Memory: b->retained_bytes is the heap the store really holds - the trie's nodes and child
 * tables (kept exact by trie.c), each record and its frame (aipc_frame_heap) - and a store
 * that would take it over max_retained_bytes is refused before anything changes.
 *
 * Delivery after a sub: a cursor per subscription walks the list in slices (a first one at
 * once, the rest from aipc_broker_tick, a budget of entries per turn shared round-robin), so a
 * "#" against a large store never holds the I/O thread for long; it pauses while the
 * subscriber's queue has no room for the next frame (nothing is dropped) and skips what was
 * stored after the sub (that went out live). */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <stdlib.h>
#include <string.h>

#define RET_FIRST_SLICE 1024u   /* entries looked at inside the sub itself */

/* ---- store --------------------------------------------------------------------------------- */

static uint64_t rec_heap(void)
{
    return sizeof(aipc_ret) + AIPC_HEAP_OVERHEAD;
}

uint64_t aipc_retained_held(aipc_broker *b, const char *topic, size_t tlen)
{
    const aipc_tnode *node = aipc_trie_path(&b->ret_root, NULL, topic, tlen, false);
    return node && node->ret ? node->ret->charge : 0;
}

/* Cursors looking at e next move past it (it is going, or moving to the tail with a seq newer
 * than any cursor's `until`). */
static void cursors_skip(aipc_broker *b, const aipc_ret *e)
{
    for (aipc_rcursor *k = b->cursors; k; k = k->nextc)
        if (k->next == e)
            k->next = k->exact ? NULL : e->next;
}

static void list_unlink(aipc_broker *b, aipc_ret *e)
{
    cursors_skip(b, e);
    if (e->prev)
        e->prev->next = e->next;
    else
        b->ret_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        b->ret_tail = e->prev;
    e->prev = e->next = NULL;
}

static void list_append(aipc_broker *b, aipc_ret *e)
{
    e->seq = ++b->ret_seq;
    e->prev = b->ret_tail;
    e->next = NULL;
    if (b->ret_tail)
        b->ret_tail->next = e;
    else
        b->ret_head = e;
    b->ret_tail = e;
}

/* Stores f (a new reference is taken) as topic's retained message, or clears it (f NULL,
 * never refused). A store is charged the heap it adds: the frame, plus for a new topic its
 * record and the trie nodes and table growth it needs; a replacement only the difference of
 * the frames. Over max_retained_bytes: AIPC_PUB_RETAINED_FULL, nothing changed. */
int aipc_retained_set(aipc_broker *b, const char *topic, size_t tlen, aipc_frame *f)
{
    aipc_tnode *node = aipc_trie_path(&b->ret_root, NULL, topic, tlen, false);
    aipc_ret *old = node ? node->ret : NULL;
    if (!f) {
        if (!old)
            return 0;
        list_unlink(b, old);
        b->retained_bytes -= old->charge;
        b->nretained--;
        aipc__frame_unref(b, old->frame);
        free(old);
        node->ret = NULL;
        aipc_trie_prune(node, &b->retained_bytes);
        return 0;
    }
    uint64_t fheap = aipc_frame_heap(f);
    uint64_t need = old ? fheap : fheap + rec_heap() +
                                      (node ? 0 : aipc_trie_add_cost(&b->ret_root, topic, tlen));
    uint64_t freed = old ? aipc_frame_heap(old->frame) : 0;
    if (b->retained_bytes - freed + need > b->cfg.max_retained_bytes)
        return AIPC_PUB_RETAINED_FULL;
    f->refs++;
    if (old) {                          /* replace: same record, moved to the tail */
        list_unlink(b, old);
        aipc__frame_unref(b, old->frame);
        old->frame = f;
        old->charge = old->charge - freed + fheap;
        b->retained_bytes = b->retained_bytes - freed + fheap;
        list_append(b, old);
        return 0;
    }
    aipc_ret *e = calloc(1, sizeof *e);
    if (!e) {
        aipc__frame_unref(b, f);
        return AIPC_ENOMEM;
    }
    if (!node && !(node = aipc_trie_path(&b->ret_root, &b->retained_bytes, topic, tlen, true))) {
        free(e);
        aipc__frame_unref(b, f);
        return AIPC_ENOMEM;
    }
    e->node = node;
    e->frame = f;
    e->charge = fheap + rec_heap();
    node->ret = e;
    b->retained_bytes += e->charge;
    b->nretained++;
    list_append(b, e);
    return 0;
}

/* Frees every retained message (broker teardown; cursors went with the subscriptions). */
void aipc_retained_free(aipc_broker *b)
{
    for (aipc_ret *e = b->ret_head, *n; e; e = n) {
        n = e->next;
        aipc__frame_unref(b, e->frame);
        free(e);
    }
    b->ret_head = b->ret_tail = NULL;
    aipc_trie_free(&b->ret_root);
    b->nretained = 0;
    b->retained_bytes = 0;
}

/* ---- delivery ------------------------------------------------------------------------------ */

/* The levels of a trie node's path, root excluded (at most AIPC_PROTO_TOPIC_MAX_LEVELS), in
 * the form proto's matcher takes. */
static size_t levels_of(const aipc_tnode *n, aipc_proto_level *out)
{
    size_t k = 0;
    for (const aipc_tnode *p = n; p->parent; p = p->parent)
        k++;
    size_t i = k;
    for (const aipc_tnode *p = n; p->parent; p = p->parent)
        out[--i] = (aipc_proto_level){p->name, p->len};
    return k;
}

static bool is_wild(const aipc_proto_level *l)
{
    return l->len == 1 && (l->s[0] == '+' || l->s[0] == '#');
}

static void cursor_unlink(aipc_broker *b, aipc_rcursor *k)
{
    if (k->prev)
        k->prev->nextc = k->nextc;
    else
        b->cursors = k->nextc;
    if (k->nextc)
        k->nextc->prev = k->prev;
    else
        b->cursors_tail = k->prev;
    k->prev = k->nextc = NULL;
}

static void cursor_append(aipc_broker *b, aipc_rcursor *k)
{
    k->prev = b->cursors_tail;
    k->nextc = NULL;
    if (b->cursors_tail)
        b->cursors_tail->nextc = k;
    else
        b->cursors = k;
    b->cursors_tail = k;
}

void aipc_retained_cursor_free(aipc_broker *b, aipc_sub *s)
{
    if (!s->cur)
        return;
    cursor_unlink(b, s->cur);
    free(s->cur);
    s->cur = NULL;
}

/* Whether the client has room for a publication of len bytes: the queue's drop rule, and
 * every queue together under max_total_queue_bytes as they stand (no eviction: a paused
 * delivery goes on once the total has room; a frame that can never fit the total is let
 * through, to be dropped and reported as a live one would be). */
static bool room(const aipc_client *c, uint64_t len)
{
    const aipc_broker *b = c->b;
    uint64_t total = b->cfg.max_total_queue_bytes, need = len + AIPC_QUEUED_FRAME_OVERHEAD;
    if (total && need <= total && b->queue_total + need > total)
        return false;
    return !aipc_outq_has_data(&c->q) || aipc_outq_data_cost(&c->q, len) <= b->cfg.max_queue_bytes;
}

/* room(), after evicting publications of larger queues where the total rule lets it
 * (qtotal.c): a retained delivery loses to the largest queues as a live publication does. */
static bool make_room(aipc_client *c, uint64_t len)
{
    aipc_shm_rel_drain(c->b, c);        /* slots it released in its page no longer count */
    uint64_t total = c->b->cfg.max_total_queue_bytes;
    if (total && len + AIPC_QUEUED_FRAME_OVERHEAD <= total && !room(c, len) &&
        (!aipc_outq_has_data(&c->q) || aipc_outq_data_cost(&c->q, len) <= c->b->cfg.max_queue_bytes))
        aipc_qtotal_room(c, len);
    return room(c, len);
}

/* One slice of k: looks at up to *budget entries (deducted). Returns true when k is done (then
 * it is freed), false when it paused or ran out of budget. */
static bool cursor_slice(aipc_broker *b, aipc_rcursor *k, uint32_t *budget)
{
    aipc_sub *s = k->sub;
    aipc_client *c = s->client;
    aipc_proto_level f[AIPC_PROTO_TOPIC_MAX_LEVELS + 1], t[AIPC_PROTO_TOPIC_MAX_LEVELS + 1];
    size_t nf = k->exact ? 0 : levels_of(s->node, f);
    if (c->state != AIPC_CL_READY)
        k->next = NULL;
    k->wait_len = 0;
    while (k->next && *budget) {
        aipc_ret *e = k->next;
        if (e->seq > k->until) {        /* stored after the sub, and so is the rest */
            k->next = NULL;
            break;
        }
        (*budget)--;
        if (!k->exact && !aipc_proto_match_levels(f, nf, t, levels_of(e->node, t))) {
            k->next = e->next;
            continue;
        }
        if (!make_room(c, e->frame->len)) {
            k->wait_len = e->frame->len;
            return false;
        }
        if (aipc__queue_frame(c, e->frame) == 0)
            b->st.deliveries++;
        k->next = k->exact ? NULL : e->next;
    }
    if (k->next)
        return false;
    aipc_retained_cursor_free(b, s);
    return true;
}

/* After the sub's ok: the retained matches of its filter, a first slice at once. A repeated
 * sub starts over. Filters without wildcards look up their one topic. */
void aipc_retained_deliver(aipc_broker *b, aipc_sub *s)
{
    aipc_retained_cursor_free(b, s);
    if (!b->nretained)
        return;
    aipc_rcursor *k = calloc(1, sizeof *k);
    if (!k)
        return;                         /* out of memory: no retained delivery */
    k->sub = s;
    k->until = b->ret_seq;
    aipc_proto_level f[AIPC_PROTO_TOPIC_MAX_LEVELS + 1];
    size_t nf = levels_of(s->node, f);
    k->exact = true;
    for (size_t i = 0; i < nf; i++)
        if (is_wild(&f[i]))
            k->exact = false;
    if (k->exact) {
        const aipc_tnode *n = &b->ret_root;
        for (size_t i = 0; i < nf && n; i++)
            n = aipc_strmap_get(&n->kids, f[i].s, f[i].len);
        k->next = n ? n->ret : NULL;
    } else {
        k->next = b->ret_head;
    }
    s->cur = k;
    cursor_append(b, k);
    uint32_t budget = RET_FIRST_SLICE;
    cursor_slice(b, k, &budget);
}

/* Runs cursors round-robin for up to budget entries; each one that ran moves to the tail.
 * Returns true when one could go on at once (not paused for room). */
bool aipc_retained_run(aipc_broker *b, uint32_t budget)
{
    aipc_rcursor *stop = b->cursors_tail;
    for (aipc_rcursor *k = b->cursors, *n; k && budget; k = n) {
        n = k->nextc;
        bool last = k == stop;
        aipc_client *c = k->sub->client;
        if (k->wait_len)
            aipc_shm_rel_drain(b, c);   /* paused for room: its page may have made some */
        if (!k->wait_len || room(c, k->wait_len) || c->state != AIPC_CL_READY) {
            if (!cursor_slice(b, k, &budget)) {
                cursor_unlink(b, k);
                cursor_append(b, k);
            }
        }
        if (last)
            break;
    }
    for (const aipc_rcursor *k = b->cursors; k; k = k->nextc)
        if (!k->wait_len || room(k->sub->client, k->wait_len) ||
            k->sub->client->state != AIPC_CL_READY)
            return true;
    return false;
}
