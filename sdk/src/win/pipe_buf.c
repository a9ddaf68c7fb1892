/*
 * pipe_buf.c - zero-copy buffers of a point-to-point pipe (asyncipc.h "Zero-copy buffers",
 * docs/design/shared-memory.md section 13): aipc_pipe_alloc / aipc_pipe_send_buf, what
 * aipc_buf_release (pipe_buf_live.c) does for a pipe's buffer (buf_drop) and the buffer receive
 * callback (aipc_pipe_set_recv_ref). The bus client's buffers: bus_buf.c.
 *
 * A buffer is a private object whose first member is the common header (aipc__buf_hdr,
 * pipe_internal.h: the public aipc_buf, the owner kind, the drop function that
 * aipc_buf_release calls, pipe_buf_live.c). Four kinds:
 *   HEAP       aipc_pipe_alloc without a shared slot: the bytes follow the object; sending
 *              copies them into the pending batch like aipc_pipe_send.
 *   SLOT       aipc_pipe_alloc into a slot of our shared segments lent by shm_link.c
 *              (aipc__shm_link_lend): sending queues only the descriptor.
 *   RECV_HEAP  a received inline message, copied (the decoder's buffer is reused).
 *   RECV_SHM   a received shared message: data points into the peer's segment (read-only
 *              view), the buffer holds one reference on that mapping (aipc__shm_rx) and owes
 *              the slot's release (aipc__shm_link_release) until aipc_buf_release.
 * Every buffer holds a reference on its pipe: the pipe's memory (its lock, its shm_link) stays
 * until the last buffer is released, even after aipc_pipe_free.
 * Accounting: an allocated buffer's capacity plus a frame header counts in p->lent (the queue
 * bound, aipc__pipe_queued_locked) from aipc_pipe_alloc until it is sent (then the batch or
 * the shared bytes held count it) or released.
 * Live set: every buffer handed out is in the process's live set (pipe_buf_live.c) until it is
 * released or sent; aipc_buf_release and aipc_pipe_send_buf look the pointer up there instead
 * of reading it, so a pointer given back twice is ignored (logged) as long as no new buffer
 * got its address (then it is undefined, like free: asyncipc.h).
 * Threads: the exported functions run on any thread (the pipe's lock and the live set's lock,
 * never nested, never a wait); the receive entry runs on the I/O thread, the delivery there or
 * on the dispatcher's thread.
 */
#include "pipe_internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum { BUF_HEAP = 1, BUF_SLOT, BUF_RECV_HEAP, BUF_RECV_SHM };

typedef struct pbuf {
    aipc__buf_hdr h;           /* first: h.pub is what the application holds */
    int kind;
    aipc__pipe *p;             /* referenced until the buffer is released or sent */
    aipc__shm_tx *tx;          /* SLOT: the segment lent from */
    aipc__shm_rx *rx;          /* RECV_SHM: the mapping held */
    uint32_t seg, off, gen;    /* SLOT: off; RECV_SHM: the slot and the connection number */
    uint8_t heap[];            /* HEAP, RECV_HEAP: the bytes and a spare NUL */
} pbuf;

/* A live pipe buffer, looked up in the live set (pipe_buf_live.c) without reading *buf. */
static pbuf *buf_of(aipc_buf *buf)
{
    return (pbuf *)aipc__buf_of(buf, AIPC__BUF_PIPE);
}

/* Under the lock: the queue accounting of an allocated buffer, added (+1) or removed (-1). */
static void charge_locked(aipc__pipe *p, const pbuf *b, int sign)
{
    uint64_t size = b->h.pub.size;
    if (sign > 0) {
        p->lent += size + AIPC_HDR_SIZE;
        p->buf_bytes += size;
        if (b->kind == BUF_SLOT)
            p->buf_shm_bytes += size;
    } else {
        p->lent -= size + AIPC_HDR_SIZE;
        p->buf_bytes -= size;
        if (b->kind == BUF_SLOT)
            p->buf_shm_bytes -= size;
    }
}

/* Frees a buffer already taken out of the live set. */
static void buf_free(pbuf *b)
{
    aipc__pipe *p = b->p;
    free(b);
    aipc__pipe_unref(p);
}

static void buf_drop(pbuf *b);
static void hdr_drop(aipc__buf_hdr *h)
{
    buf_drop((pbuf *)h);
}

/* ---- send ------------------------------------------------------------------------------------- */

int aipc_pipe_alloc(aipc_named_pipe *pipe, size_t size, aipc_buf **out)
{
    aipc__pipe *p = (aipc__pipe *)pipe;
    if (out)
        *out = NULL;
    if (!p || !out)
        return AIPC_EINVAL;
    if (size > p->max_msg)
        return AIPC_ETOOBIG;
    pbuf *b = calloc(1, sizeof *b);            /* a slot's object; a heap one grows below */
    if (!b)
        return AIPC_ENOMEM;
    b->h.pub.size = size;
    b->h.owner = AIPC__BUF_PIPE;
    b->h.drop = hdr_drop;
    b->kind = BUF_HEAP;
    uint8_t *view = NULL;
    AcquireSRWLockExclusive(&p->lock);
    int rc = 0;
    uint64_t queued = aipc__pipe_queued_locked(p), limit = aipc__pipe_queue_limit(p);
    if (p->send_closed)
        rc = AIPC_ECLOSED;
    else if (limit && queued > 0 && queued + AIPC_HDR_SIZE + size > limit)
        rc = AIPC_EQUEUEFULL;
    else {
        if (p->shm_on && p->shm_threshold && size >= p->shm_threshold &&
            aipc__shm_link_lend(&p->shm, (uint32_t)size, &b->tx, &b->off, &view) == 1)
            b->kind = BUF_SLOT;
        charge_locked(p, b, +1);
    }
    ReleaseSRWLockExclusive(&p->lock);
    if (rc != 0) {
        free(b);
        return rc;
    }
    if (b->kind == BUF_HEAP) {
        pbuf *h = realloc(b, AIPC__BUF_ALLOC(pbuf, size + 1));
        if (!h) {
            AcquireSRWLockExclusive(&p->lock);
            charge_locked(p, b, -1);
            ReleaseSRWLockExclusive(&p->lock);
            free(b);
            return AIPC_ENOMEM;
        }
        b = h;
        view = b->heap;
        view[size] = 0;
    }
    b->h.pub.data = view;
    b->p = p;
    aipc__pipe_ref(p);
    if (aipc__buf_live_add(b) != 0) {
        buf_drop(b);                         /* its room and slot back */
        return AIPC_ENOMEM;
    }
    *out = &b->h.pub;
    return 0;
}

int aipc_pipe_send_buf(aipc_named_pipe *pipe, aipc_buf *buf, size_t len)
{
    aipc__pipe *p = (aipc__pipe *)pipe;
    pbuf *b = buf_of(buf);
    if (!p || !b || b->p != p || (b->kind != BUF_HEAP && b->kind != BUF_SLOT) ||
        len > b->h.pub.size)
        return AIPC_EINVAL;
    aipc__shm_tx *gone = NULL;
    int rc = 0, fallback = 0;
    AcquireSRWLockExclusive(&p->lock);
    if (p->send_closed) {
        rc = AIPC_ECLOSED;
    } else if (b->kind == BUF_SLOT) {
        aipc_shm_desc d;
        rc = aipc__shm_link_send_lent(&p->shm, b->tx, b->off, (uint32_t)len, &d);
        if (rc == 1 && aipc__pipe_append_desc_locked(p, &d) != 0) {
            aipc__shm_link_unsend_lent(&p->shm, &d);
            rc = AIPC_ENOMEM;
        } else if (rc == 1) {
            rc = 0;
        } else if (rc == 0) {
            /* The connection changed since the slot was lent: the bytes go inline. */
            rc = aipc__batch_append(&p->q[p->qi], b->h.pub.data, (uint32_t)len);
            if (rc == 0) {
                gone = aipc__shm_link_unlend(&p->shm, b->tx, b->off);
                fallback = 1;
            }
        }
    } else {
        rc = aipc__batch_append(&p->q[p->qi], b->h.pub.data, (uint32_t)len);
        fallback = rc == 0 && p->shm_on && p->shm_threshold && len >= p->shm_threshold;
    }
    if (rc == 0)
        charge_locked(p, b, -1);
    int poke = rc == 0 && aipc__pipe_take_token_locked(p);
    ReleaseSRWLockExclusive(&p->lock);
    aipc__shm_tx_free(gone);
    if (fallback)
        InterlockedIncrement64(&p->shm.st_fallback);
    if (poke)
        aipc__pipe_kick(p);
    if (rc == 0 && aipc__buf_live_take(b))
        buf_free(b);
    return rc;
}

/* Gives back what a buffer taken out of the live set holds (queue room, its slot, a received
 * slot owed to the peer) and frees it. */
static void buf_drop(pbuf *b)
{
    aipc__pipe *p = b->p;
    aipc__shm_tx *gone = NULL;
    switch (b->kind) {
    case BUF_HEAP:
    case BUF_SLOT:
        AcquireSRWLockExclusive(&p->lock);
        charge_locked(p, b, -1);
        if (b->kind == BUF_SLOT)
            gone = aipc__shm_link_unlend(&p->shm, b->tx, b->off);
        ReleaseSRWLockExclusive(&p->lock);
        aipc__shm_tx_free(gone);
        break;
    case BUF_RECV_SHM:
        InterlockedAdd64(&p->recv_buf_bytes, -(LONG64)b->h.pub.size);
        if (aipc__shm_link_release(&p->shm, b->rx, b->gen, b->seg, b->off))
            aipc__pipe_poke(p);        /* the first release owed: a write carries it */
        break;
    default:
        InterlockedAdd64(&p->recv_buf_bytes, -(LONG64)b->h.pub.size);
        break;
    }
    buf_free(b);
}

/* ---- receive ---------------------------------------------------------------------------------- */

int aipc_pipe_set_recv_ref(aipc_named_pipe *pipe, aipc_pipe_recv_ref_fn fn, void *user)
{
    aipc__pipe *p = (aipc__pipe *)pipe;
    if (!p)
        return AIPC_EINVAL;
    if (p->created)
        return AIPC_ESTATE;
    p->recv_ref = fn;
    p->recv_ref_user = fn ? user : NULL;
    return 0;
}

void aipc__pipe_buf_deliver(aipc__pipe *p, aipc_buf *buf)
{
    if (!p->recv_ref || !aipc__gate_enter(&p->gate)) {
        aipc_buf_release(buf);               /* Exit came first: nobody takes it */
        return;
    }
    p->recv_ref(&p->pub, p->recv_ref_user, buf);
    aipc__gate_leave(&p->gate);
}

typedef struct buf_item {
    aipc__dq_item it;          /* first */
    aipc__pipe *p;             /* referenced */
    aipc_buf *buf;
    uint64_t flow;             /* added to p->dq_bytes */
} buf_item;

/* Dispatcher's thread: deliver (run) or drop (release) the buffer. */
static void buf_item_fn(aipc__dq_item *it, int run)
{
    buf_item *e = (buf_item *)it;
    aipc__pipe *p = e->p;
    if (run)
        aipc__pipe_buf_deliver(p, e->buf);
    else
        aipc_buf_release(e->buf);
    aipc__pipe_dq_done(p, e->flow);
    free(e);
    aipc__pipe_unref(p);
}

void aipc__pipe_ev_recv_ref(aipc__pipe *p, const uint8_t *data, uint32_t size, aipc__shm_rx *rx,
                            uint32_t gen, uint32_t seg, uint32_t off)
{
    pbuf *b = malloc(rx ? sizeof *b : AIPC__BUF_ALLOC(pbuf, (size_t)size + 1));
    buf_item *e = p->disp && b ? malloc(sizeof *e) : NULL;
    if (!b || (p->disp && !e)) {
        aipc_log(AIPC_LOG_ERROR, "pipe %s: out of memory for a received buffer of %lu bytes: "
                 "lost", p->name_utf8 ? p->name_utf8 : "?", (unsigned long)size);
        free(b);
        if (rx && aipc__shm_link_release(&p->shm, rx, gen, seg, off))
            aipc__pipe_poke(p);
        return;
    }
    memset(b, 0, sizeof *b);
    b->h.owner = AIPC__BUF_PIPE;
    b->h.drop = hdr_drop;
    b->p = p;
    b->h.pub.size = size;
    if (rx) {
        b->kind = BUF_RECV_SHM;
        b->rx = rx;                          /* the caller's hold on it is now ours */
        b->gen = gen;
        b->seg = seg;
        b->off = off;
        b->h.pub.data = (void *)data;          /* read-only view; data[size] was 0 (pipe_ctl.c) */
    } else {
        b->kind = BUF_RECV_HEAP;
        memcpy(b->heap, data, size);
        b->heap[size] = 0;
        b->h.pub.data = b->heap;
    }
    aipc__pipe_ref(p);
    InterlockedAdd64(&p->recv_buf_bytes, (LONG64)size);
    if (aipc__buf_live_add(b) != 0) {
        aipc_log(AIPC_LOG_ERROR, "pipe %s: out of memory for a received buffer of %lu bytes: "
                 "lost", p->name_utf8 ? p->name_utf8 : "?", (unsigned long)size);
        free(e);
        buf_drop(b);                         /* its slot goes back to the peer */
        return;
    }
    if (!p->disp) {
        aipc__pipe_buf_deliver(p, &b->h.pub);
        return;
    }
    e->it.fn = buf_item_fn;
    e->it.charge = AIPC_DISPATCH_ITEM_OVERHEAD + size;
    e->p = p;
    e->buf = &b->h.pub;
    e->flow = e->it.charge;                  /* counted like a copied message */
    InterlockedAdd64(&p->dq_bytes, (LONG64)e->flow);
    aipc__pipe_ref(p);
    aipc__dispatcher_push(p->disp, &e->it);  /* a freed dispatcher drops it (fn(.., 0)) */
}
