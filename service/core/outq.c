/* outq.c - refcounted encoded frames and the per-client outbound queue: a ring array of frame
 * references (grows geometrically; no node per message), drained through a scatter list.
 * Publications dropped for a slow client are reported promptly and coalesced: one counter per
 * client, turned into a `dropped` frame at the head of its queue as soon as the writer is at a
 * frame boundary (ahead of the publications still queued), however many drops happened. */
#include "internal.h"

#include "asyncipc/asyncipc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Encodes header + meta + payload once into one refcounted buffer (refs = 1), so one
 * publication is shared by every subscriber's queue without copies. */
aipc_frame *aipc_frame_make(int kind, const char *meta, size_t meta_len,
                            const uint8_t *payload, size_t payload_len)
{
    if (meta_len > UINT32_MAX || payload_len > UINT32_MAX)
        return NULL;
    uint64_t len = (uint64_t)AIPC_HDR_SIZE + meta_len + payload_len;
    aipc_frame *f = malloc(sizeof *f + (size_t)len);
    if (!f)
        return NULL;
    f->refs = 1;
    f->kind = (uint32_t)kind;
    f->len = len;
    f->data = (uint8_t *)(f + 1);
    f->mem = NULL;
    f->mem_len = 0;
    aipc_frame_put_header(f->data, (uint32_t)meta_len, (uint32_t)payload_len);
    if (meta_len)
        memcpy(f->data + AIPC_HDR_SIZE, meta, meta_len);
    if (payload_len)
        memcpy(f->data + AIPC_HDR_SIZE + meta_len, payload, payload_len);
    return f;
}

/* Drops one reference; the last one frees the frame (and the block it adopted, if any). */
void aipc_frame_unref(aipc_frame *f)
{
    if (f && --f->refs == 0) {
        free(f->mem);
        free(f);
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
    return 0;
}

/* Releases every queued frame (client detached). */
void aipc_outq_free(aipc_outq *q)
{
    for (uint32_t i = 0; i < q->count; i++)
        aipc_frame_unref(q->ring[(q->head + i) & (q->cap - 1)]);
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
    aipc_frame *f = aipc_frame_make(AIPC_FK_CONTROL, meta, (size_t)n, NULL, 0);
    if (f && aipc_outq_push_front(q, f) == 0) {
        cl->report = f;
        cl->dropped_pending = 0;
        cl->b->st.drop_reports++;
    }
    aipc_frame_unref(f);
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
    }
    return n;
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
        if (aipc_fk_data(f->kind)) {
            q->data_bytes -= f->len;
            q->data_frames--;
        }
        else if (f->kind == AIPC_FK_ANSWER) {
            cl->answers_queued--;
            cl->answer_bytes -= f->len;
        }
        cl->report_wait = f == cl->report;      /* a report out: the next after progress */
        if (f == cl->report)
            cl->report = NULL;
        b->st.msgs_out++;
        aipc_frame_unref(f);
    }
}

/* Bytes waiting to be written. */
uint64_t aipc_client_out_pending(const aipc_client *cl)
{
    return cl->q.bytes;
}
