/* outq.c - the per-client outbound queue: a ring array of frame references (grows
 * geometrically; no node per message), drained through a scatter list, and the rules that
 * decide what may be queued:
 *   - publications (msg) are dropped for a client whose queued publications/directs would
 *     exceed max_queue_bytes, each counted with its overhead (AIPC_QUEUED_FRAME_OVERHEAD: the
 *     bound is on memory; unless none are queued: one frame may always be in flight),
 *     counted, and reported with `dropped` at the head of its queue;
 *   - direct/req/rep frames over the bound are refused (the caller answers queue_full);
 *   - control frames (ok, error, welcome, pong, stats, dropped, bye) are never dropped, but a
 *     client that lets more than max_queue_bytes + 1 MiB of them (overhead included) pile up
 *     is cut off;
 *   - answers that settle a pending request (ANSWER) are exempt from that cut-off: their number
 *     is bounded by max_pending_requests (see aipc_reqs_room);
 *   - all queues together are bounded by max_total_queue_bytes (qtotal.c): a frame that would
 *     take the total over it first evicts queued publications of the clients whose queues are
 *     larger; if that cannot make room, a publication is dropped for c, a direct refused; a
 *     control frame or an answer also evicts c's own queued publications, and past that a
 *     client with more than 64 KiB of unread control frames is cut off, as is any client whose
 *     control frame would take the total over the bound by more than 1 MiB in all.
 * Publications dropped for a slow client are reported promptly and coalesced: one counter per
 * client, turned into a `dropped` frame at the head of its queue as soon as the writer is at a
 * frame boundary (ahead of the publications still queued), however many drops happened. */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONTROL_SLACK (1024u * 1024u)
/* While every queue together is at max_total_queue_bytes, a client with more unread control
 * frames than this is cut off (it does not read its answers). */
#define TOTAL_CONTROL_SLACK (64u * 1024u)

/* Whether anything may still be queued to c (not closing). */
bool aipc__client_can_queue(const aipc_client *c)
{
    return c->state != AIPC_CL_CLOSING;
}

/* The memory of c's queued control frames with one more of len bytes: bytes + head_off is the
 * whole size of the queued frames, minus data and answers is control; each frame also counts
 * its overhead, as data frames do (a small pong costs more in overhead than in bytes). */
static uint64_t control_cost(const aipc_client *c, uint64_t len)
{
    const aipc_outq *q = &c->q;
    uint64_t bytes = q->bytes + q->head_off - q->data_bytes - c->answer_bytes + len;
    uint64_t frames = q->count - q->data_frames - c->answers_queued + 1;
    return bytes + frames * AIPC_QUEUED_FRAME_OVERHEAD;
}

/* Queues a frame reference to c applying the drop rules above; wakes the engine's writer when
 * the queue was empty. Returns 0, AIPC_EQUEUEFULL, AIPC_ECLOSED or AIPC_ENOMEM. */
int aipc__queue_frame(aipc_client *c, aipc_frame *f)
{
    aipc_broker *b = c->b;
    if (aipc_fk_data(f->kind))
        aipc_shm_rel_drain(b, c);     /* slots it released in its page no longer count */
    if (c->state == AIPC_CL_CLOSING)
        return AIPC_ECLOSED;
    uint64_t max = b->cfg.max_queue_bytes;
    if (aipc_fk_data(f->kind)) {
        uint64_t extra = aipc_shm_frame_extra(f);   /* a descriptor: the slot it will hold */
        bool full = aipc_outq_has_data(&c->q) && aipc_outq_data_cost(&c->q, f->len) + extra > max;
        bool total_full = !full && !aipc_qtotal_room(c, f->len + extra);
        if (full || total_full) {
            if (f->kind == AIPC_FK_PUB) {
                c->dropped_pending++;
                b->st.drops++;
                if (total_full)
                    b->st.queue_total_drops++;
            }
            return AIPC_EQUEUEFULL;
        }
    } else if (f->kind == AIPC_FK_CONTROL &&
               (control_cost(c, f->len) > max + CONTROL_SLACK ||
                (!aipc_qtotal_room(c, f->len) &&
                 (control_cost(c, f->len) > TOTAL_CONTROL_SLACK ||
                  !aipc_qtotal_room_control(c, f->len))))) {
        aipc__logf(b, AIPC_LOG_WARN, "client %" PRIu64 " does not read its answers: closing it",
                  c->id);
        c->kill = true;
        aipc__request_close(c);
        return AIPC_EQUEUEFULL;
    } else if (f->kind == AIPC_FK_ANSWER) {
        aipc_qtotal_room_control(c, f->len);    /* queued anyway (bounded by their number) */
    }
    bool was_empty = c->q.count == 0;
    if (aipc_outq_push(&c->q, f) != 0) {
        if (f->kind == AIPC_FK_PUB) {
            c->dropped_pending++;
            b->st.drops++;
        }
        return AIPC_ENOMEM;
    }
    if (f->kind == AIPC_FK_ANSWER) {
        c->answers_queued++;
        b->answers_queued++;
        c->answer_bytes += f->len;
    }
    if (was_empty && c->conn->ops && c->conn->ops->want_write)
        c->conn->ops->want_write(c->conn);
    return 0;
}

bool aipc__data_refused(aipc_client *c, size_t plen)
{
    aipc_shm_rel_drain(c->b, c);      /* (a subscriber that released everything is not full) */
    const aipc_outq *q = &c->q;
    return aipc_outq_has_data(q) &&
           aipc_outq_data_cost(q, (uint64_t)plen + AIPC_FRAME_HEADER_SIZE) > c->b->cfg.max_queue_bytes;
}

bool aipc__pub_refused(aipc_client *c, size_t plen)
{
    if (!aipc__data_refused(c, plen))
        return false;
    c->dropped_pending++;
    c->b->st.drops++;
    return true;
}

/* Queued right behind the frames of the write in flight (the frames the last out_next offered,
 * or as many as the engine reported its write covers: aipc_client_out_issued; a partly written
 * head is among them), ahead of everything else queued (review 2 finding 2, review bperf M1).
 * Several frames queued this way end up in reverse order (each goes to the same place):
 * harmless for releases, which are a set. */
int aipc__queue_frame_first(aipc_client *c, aipc_frame *f)
{
    int rc = aipc__queue_frame(c, f);
    aipc_outq *q = &c->q;
    uint32_t mask = q->cap - 1;
    if (rc != 0 || q->count < 2 || q->ring[(q->head + q->count - 1) & mask] != f)
        return rc;
    uint32_t at = q->handed ? q->handed : (q->head_off ? 1u : 0u);
    if (at >= q->count - 1)
        return 0;                                 /* nothing unhanded ahead of it */
    if (at == 0) {
        q->head = (q->head + mask) & mask;        /* the tail entry becomes the head */
        q->ring[q->head] = f;
        return 0;
    }
    for (uint32_t i = q->count - 1; i > at; i--)  /* the unhanded ones move back by one */
        q->ring[(q->head + i) & mask] = q->ring[(q->head + i - 1) & mask];
    q->ring[(q->head + at) & mask] = f;
    return 0;
}

/* Keeps the queue's charge and the broker's total (max_total_queue_bytes) with a frame. */
static void outq_charge(aipc_outq *q, const aipc_frame *f, bool add)
{
    uint64_t ch = f->len + AIPC_QUEUED_FRAME_OVERHEAD;
    if (add) {
        q->charge += ch;
        if (q->total)
            *q->total += ch;
    } else {
        q->charge -= ch;
        if (q->total)
            *q->total -= ch;
    }
}

/* Doubles the ring, unwrapping it so head is 0 again. */
static int outq_grow(aipc_outq *q)
{
    uint32_t ncap = q->cap ? q->cap * 2 : 16;
    aipc_frame **nr = malloc((size_t)ncap * sizeof *nr);
    if (!nr)
        return AIPC_ENOMEM;
    for (uint32_t i = 0; i < q->count; i++)
        nr[i] = q->ring[(q->head + i) & (q->cap - 1)];
    free(q->ring);
    q->ring = nr;
    q->cap = ncap;
    q->head = 0;
    return 0;
}

/* Appends a frame reference; the only allocation is the occasional ring growth. */
int aipc_outq_push(aipc_outq *q, aipc_frame *f)
{
    if (q->count == q->cap && outq_grow(q) != 0)
        return AIPC_ENOMEM;
    q->ring[(q->head + q->count) & (q->cap - 1)] = f;
    q->count++;
    f->refs++;
    q->bytes += f->len;
    if (aipc_fk_data(f->kind)) {
        q->data_bytes += f->len;
        q->data_frames++;
    }
    outq_charge(q, f, true);
    return 0;
}

/* Puts a frame reference before everything queued; only at a frame boundary (head_off 0). */
int aipc_outq_push_front(aipc_outq *q, aipc_frame *f)
{
    if (q->count == q->cap && outq_grow(q) != 0)
        return AIPC_ENOMEM;
    q->head = (q->head + q->cap - 1) & (q->cap - 1);
    q->ring[q->head] = f;
    q->count++;
    f->refs++;
    q->bytes += f->len;
    if (aipc_fk_data(f->kind)) {
        q->data_bytes += f->len;
        q->data_frames++;
    }
    outq_charge(q, f, true);
    return 0;
}

/* Releases every queued frame (client detached). */
void aipc_outq_free(aipc_broker *b, aipc_outq *q)
{
    for (uint32_t i = 0; i < q->count; i++)
        aipc__frame_unref(b, q->ring[(q->head + i) & (q->cap - 1)]);
    if (q->total)
        *q->total -= q->charge;
    free(q->ring);
    memset(q, 0, sizeof *q);
}

/* The pending drops become one `dropped` report at the head of the queue, when nothing is
 * partly written (never inside a frame). Out of memory: they stay pending for the next try. */
static void report_drops(aipc_client *cl)
{
    aipc_outq *q = &cl->q;
    if (!cl->dropped_pending || q->head_off || cl->report || cl->report_wait ||
        cl->state == AIPC_CL_CLOSING)
        return;
    char meta[64];
    int n = snprintf(meta, sizeof meta, "{\"op\":\"dropped\",\"count\":%" PRIu64 "}",
                     cl->dropped_pending);
    aipc_frame *f = aipc__frame_make(cl->b, AIPC_FK_CONTROL, meta, (size_t)n, NULL, 0);
    if (f && aipc_outq_push_front(q, f) == 0) {
        cl->report = f;
        cl->dropped_pending = 0;
        cl->b->st.drop_reports++;
    }
    aipc__frame_unref(cl->b, f);
}

/* Scatter list of what is queued, starting inside the first frame if it is partly written
 * (a report of the drops since the last one first, at a frame boundary). */
int aipc_client_out_next(aipc_client *cl, aipc_iov *iov, int max_iov)
{
    aipc_outq *q = &cl->q;
    report_drops(cl);
    int n = 0;
    for (uint32_t i = 0; i < q->count && n < max_iov; i++) {
        aipc_frame *f = q->ring[(q->head + i) & (q->cap - 1)];
        uint64_t off = i == 0 ? q->head_off : 0;
        iov[n].base = f->data + off;
        iov[n].len = (size_t)(f->len - off);
        n++;
        if (aipc_frame_slot(f))
            aipc_shm_handed(cl, f);             /* the client may see (and release) it now */
    }
    q->handed = (uint32_t)n;
    return n;
}

void aipc_client_out_issued(aipc_client *cl, int n)
{
    if (n >= 1 && (uint32_t)n < cl->q.handed)
        cl->q.handed = (uint32_t)n;
}

/* Accounts written bytes: whole frames are released; a partial one keeps its offset. */
void aipc_client_out_consume(aipc_client *cl, size_t nbytes)
{
    aipc_outq *q = &cl->q;
    aipc_broker *b = cl->b;
    if (nbytes > q->bytes)
        nbytes = (size_t)q->bytes;
    b->st.bytes_out += nbytes;
    q->bytes -= nbytes;
    while (nbytes > 0 && q->count > 0) {
        aipc_frame *f = q->ring[q->head];
        uint64_t left = f->len - q->head_off;
        if (nbytes < left) {
            q->head_off += nbytes;
            break;
        }
        nbytes -= (size_t)left;
        q->head_off = 0;
        q->head = (q->head + 1) & (q->cap - 1);
        q->count--;
        if (q->handed)
            q->handed--;
        outq_charge(q, f, false);
        if (aipc_fk_data(f->kind)) {
            q->data_bytes -= f->len;
            q->data_frames--;
        }
        else if (f->kind == AIPC_FK_ANSWER) {
            cl->answers_queued--;
            b->answers_queued--;
            cl->answer_bytes -= f->len;
        }
        if (aipc_frame_slot(f))
            aipc_shm_written(b, cl, f);         /* the client may release it from now on */
        cl->report_wait = f == cl->report;      /* a report out: the next after progress */
        if (f == cl->report)
            cl->report = NULL;
        b->st.msgs_out++;
        aipc__frame_unref(b, f);
    }
}

/* Bytes waiting to be written. */
uint64_t aipc_client_out_pending(const aipc_client *cl)
{
    return cl->q.bytes;
}
