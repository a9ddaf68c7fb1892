/* qtotal.c - every client's outbound queue together is bounded by max_total_queue_bytes
 * (0 = no bound), each queued frame charged its bytes plus AIPC_QUEUED_FRAME_OVERHEAD (the
 * charge as if no frame were shared, so the bound is on the memory queues can hold).
 *
 * When a frame for client c would take the total over the bound, the client with the largest
 * queue is the one that loses: while another client's queue is larger than c's would be with
 * the frame, its newest queued publications are evicted (never a frame the engine is writing,
 * never a direct, request, reply or control frame), counted as drops and reported to it with
 * `dropped` like any drop; a batch of at least an eighth of its queue goes at once, so the work
 * per evicted frame stays constant. If c's queue is the largest, or no room can be made, the
 * caller drops the publication for c (or refuses the direct with queue_full). So a client whose
 * queue is small never loses a publication to the global bound while larger ones hold some.
 * Control frames and answers take room the same way, then from the client's own publications;
 * only frames that cannot be dropped can hold the total over the bound, and then control
 * frames go over it by at most AIPC_TOTAL_CONTROL_RESERVE in all (aipc_qtotal_room_control). */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <inttypes.h>

#define MAX_VICTIMS 4u   /* clients looked at per decision (each scan is O(clients)) */

/* The client with the largest queue charge besides c and the ones already tried. */
static aipc_client *largest(aipc_broker *b, aipc_client *c, aipc_client *const *tried,
                            unsigned ntried)
{
    aipc_client *best = NULL;
    for (aipc_client *o = b->clients; o; o = o->next) {
        if (o == c || !o->q.data_frames || (best && o->q.charge <= best->q.charge))
            continue;
        bool seen = false;
        for (unsigned i = 0; i < ntried; i++)
            seen = seen || tried[i] == o;
        if (!seen)
            best = o;
    }
    return best;
}

/* Evicts v's newest queued publications until `want` charge is freed (or none is left that
 * may go), keeping the order of what stays; returns the charge freed. The frames handed to
 * the engine (q->handed, and a partly written head) stay. */
static uint64_t evict(aipc_broker *b, aipc_client *v, uint64_t want)
{
    aipc_outq *q = &v->q;
    uint32_t mask = q->cap - 1;
    uint32_t keep = q->handed ? q->handed : (q->head_off ? 1u : 0u);
    uint32_t w = q->count, removed = 0;
    uint64_t freed = 0;
    for (uint32_t r = q->count; r-- > keep;) {
        aipc_frame *f = q->ring[(q->head + r) & mask];
        if (freed < want && f->kind == AIPC_FK_PUB) {
            uint64_t ch = f->len + AIPC_QUEUED_FRAME_OVERHEAD;
            freed += ch;
            q->charge -= ch;
            *q->total -= ch;
            q->bytes -= f->len;
            q->data_bytes -= f->len;
            q->data_frames--;
            removed++;
            if (aipc_frame_slot(f))
                freed += aipc_shm_evicted(b, v, f);   /* its slot is released too */
            aipc__frame_unref(b, f);
            continue;
        }
        q->ring[(q->head + --w) & mask] = f;
    }
    if (!removed)
        return 0;
    for (uint32_t i = keep; i-- > 0;)       /* the untouched head moves up behind the hole */
        q->ring[(q->head + i + removed) & mask] = q->ring[(q->head + i) & mask];
    q->head = (q->head + removed) & mask;
    q->count -= removed;
    v->dropped_pending += removed;
    b->st.drops += removed;
    b->st.queue_total_drops += removed;
    aipc__logf(b, AIPC_LOG_DEBUG, "client %" PRIu64 ": %u queued publications dropped "
              "(max_total_queue_bytes)", v->id, removed);
    return freed;
}

/* Control frames and answers are charged like any frame: room is made from the larger queues
 * (aipc_qtotal_room), then from c's own queued publications (its answers go before them). If
 * the total is still over (what holds it cannot be dropped: directs, requests, replies,
 * answers, control frames, frames being written), a control frame may still go over it by
 * AIPC_TOTAL_CONTROL_RESERVE in all; true when it fits that way. */
bool aipc_qtotal_room_control(aipc_client *c, uint64_t len)
{
    aipc_broker *b = c->b;
    uint64_t max = b->cfg.max_total_queue_bytes;
    uint64_t need = len + AIPC_QUEUED_FRAME_OVERHEAD;
    if (aipc_qtotal_room(c, len))
        return true;
    if (c->q.data_frames)
        evict(b, c, b->queue_total + need - max);
    return b->queue_total + need <= max + AIPC_TOTAL_CONTROL_RESERVE;
}

bool aipc_qtotal_room(aipc_client *c, uint64_t len)
{
    aipc_broker *b = c->b;
    uint64_t max = b->cfg.max_total_queue_bytes;
    uint64_t need = len + AIPC_QUEUED_FRAME_OVERHEAD;
    if (!max || b->queue_total + need <= max)
        return true;
    if (aipc_shm_rel_drain_all(b) && b->queue_total + need <= max)
        return true;                        /* slots released in pages made the room */
    aipc_client *tried[MAX_VICTIMS];
    for (unsigned n = 0; n < MAX_VICTIMS; n++) {
        aipc_client *v = largest(b, c, tried, n);
        if (!v || v->q.charge <= c->q.charge + need)
            return false;                   /* c's queue would be the largest: c loses */
        tried[n] = v;
        uint64_t want = b->queue_total + need - max;
        evict(b, v, want + v->q.charge / 8);
        if (b->queue_total + need <= max)
            return true;
    }
    return false;
}
