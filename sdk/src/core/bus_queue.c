/* bus_queue.c - bounded FIFO of encoded frames, drained in coalesced batches (portable). */
#include "bus_core.h"
#include "proto/frame.h"

#include <stdlib.h>
#include <string.h>

aipc__bus_qnode *aipc__bus_frame_new(const void *meta, size_t meta_len, const void *payload,
                                   size_t payload_len, uint64_t tag)
{
    if (meta_len > AIPC_MAX_META || payload_len > UINT32_MAX ||
        (payload_len && !payload) || (meta_len && !meta))
        return NULL;
    size_t total = AIPC_HDR_SIZE + meta_len + payload_len;
    if (total < payload_len)
        return NULL;
    aipc__bus_qnode *n = malloc(sizeof *n + total);
    if (!n)
        return NULL;
    n->next = NULL;
    n->tag = tag;
    n->shm_cut = n->shm_seg = n->shm_off = n->shm_len = 0;
    n->len = total;
    aipc_frame_put_header(n->data, (uint32_t)meta_len, (uint32_t)payload_len);
    if (meta_len)
        memcpy(n->data + AIPC_HDR_SIZE, meta, meta_len);
    if (payload_len)
        memcpy(n->data + AIPC_HDR_SIZE + meta_len, payload, payload_len);
    return n;
}

void aipc__bus_queue_init(aipc__bus_queue *q, size_t max_bytes)
{
    memset(q, 0, sizeof *q);
    q->max_bytes = max_bytes;
}

void aipc__bus_queue_free(aipc__bus_queue *q)
{
    aipc__bus_qnode *n = q->head;
    while (n) {
        aipc__bus_qnode *next = n->next;
        free(n);
        n = next;
    }
    q->head = q->tail = NULL;
    q->bytes = q->count = 0;
}

int aipc__bus_queue_push(aipc__bus_queue *q, aipc__bus_qnode *n, int bounded)
{
    if (bounded && (n->len > q->max_bytes || q->bytes > q->max_bytes - n->len))
        return AIPC_EQUEUEFULL;
    n->next = NULL;
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
    q->bytes += n->len;
    q->count++;
    return 0;
}

void aipc__bus_queue_splice(aipc__bus_queue *q, aipc__bus_queue *from, int prepend)
{
    if (!from->head)
        return;
    if (!q->head) {
        q->head = from->head;
        q->tail = from->tail;
    } else if (prepend) {
        from->tail->next = q->head;
        q->head = from->head;
    } else {
        q->tail->next = from->head;
        q->tail = from->tail;
    }
    q->bytes += from->bytes;
    q->count += from->count;
    from->head = from->tail = NULL;
    from->bytes = from->count = 0;
}

size_t aipc__bus_queue_remove_tag(aipc__bus_queue *q, uint64_t tag)
{
    size_t removed = 0;
    aipc__bus_qnode *prev = NULL;
    for (aipc__bus_qnode **l = &q->head; *l;) {
        aipc__bus_qnode *n = *l;
        if (tag != 0 && n->tag == tag) {
            *l = n->next;
            q->bytes -= n->len;
            q->count--;
            free(n);
            removed++;
        } else {
            prev = n;
            l = &n->next;
        }
    }
    q->tail = prev;
    return removed;
}

uint8_t *aipc__bus_queue_take_batch(aipc__bus_queue *q, size_t max_len, size_t *len,
                                   void (*on_tag)(void *ctx, uint64_t tag), void *ctx)
{
    *len = 0;
    if (!q->head)
        return NULL;
    /* how many frames fit (always at least the first) */
    size_t total = q->head->len;
    aipc__bus_qnode *end = q->head->next;
    while (end && total + end->len <= max_len) {
        total += end->len;
        end = end->next;
    }
    uint8_t *buf = malloc(total ? total : 1);
    if (!buf)
        return NULL;
    size_t at = 0;
    while (q->head != end) {
        aipc__bus_qnode *n = q->head;
        memcpy(buf + at, n->data, n->len);
        at += n->len;
        if (n->tag && on_tag)
            on_tag(ctx, n->tag);
        q->head = n->next;
        q->bytes -= n->len;
        q->count--;
        free(n);
    }
    if (!q->head)
        q->tail = NULL;
    *len = total;
    return buf;
}
