/*
 * bus_buf.c - zero-copy buffers of the bus client (asyncipc.h "Zero-copy buffers" and
 * "aipc_bus_alloc"; docs/sdk.md "Zero-copy buffers"): aipc_bus_alloc, aipc_bus_publish_buf,
 * aipc_bus_send_buf, and the buffers that on_message_buf / on_direct_buf receive. The same
 * object model as a pipe's (pipe_buf.c): a private object whose first member is the common
 * header (aipc__buf_hdr, owner AIPC__BUF_BUS), kept in the process's live set
 * (pipe_buf_live.c) until aipc_buf_release (or a successful send) takes it out and calls
 * buf_drop. Four kinds:
 *   HEAP       aipc_bus_alloc without a slot: the bytes follow the object; sending copies them
 *              like aipc_bus_publish (into a frame, or into a slot of ours from the threshold).
 *   SLOT       aipc_bus_alloc into a slot of our shared segments (aipc__shm_link_lend): sending
 *              queues only its descriptor; a slot of an older connection (a reconnect or a reset
 *              came between) is copied instead, into the new connection's slot or inline.
 *   RECV_HEAP  a received inline payload, copied (the decoder's buffer is reused).
 *   RECV_SHM   a received shared payload: data points into our read-only view of the broker's
 *              segment; the buffer holds that view and owes the slot's release (the frame's
 *              aipc__bus_shm_msg, taken over), written as shm_done once released.
 * Every buffer holds a reference on its client (aipc__bus_ref): the client's memory (its lock,
 * its shm_link, a retired segment's mapping) stays until the last buffer is released, also
 * after aipc_bus_close.
 * Accounting: an allocated buffer's capacity plus a frame header counts in b->lent (part of the
 * max_queue_bytes bound) from aipc_bus_alloc until it is queued (then the frame or the shared
 * bytes held count it) or released.
 * Threads: the exported calls run on any thread and take b->lock briefly (never across a call
 * out, never a wait); aipc__bus_buf_received runs on the I/O thread.
 */
#include "bus_internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum { BB_HEAP = 1, BB_SLOT, BB_RECV_HEAP, BB_RECV_SHM };

typedef struct bbuf {
    aipc__buf_hdr h;           /* first: h.pub is what the application holds */
    int kind;
    aipc_bus *b;               /* referenced until the buffer is released or sent */
    aipc__shm_tx *tx;          /* SLOT: the segment lent from ... */
    uint32_t off;              /* ... and the slot's offset */
    aipc__bus_shm_msg shm;     /* RECV_SHM: the view held and the release owed */
    uint8_t heap[];            /* HEAP, RECV_HEAP: the bytes and a spare NUL */
} bbuf;

static uint64_t charge_of(const bbuf *x)
{
    return (uint64_t)x->h.pub.size + AIPC_HDR_SIZE;
}

/* Under the lock: an allocated buffer's accounting added (+1) or removed (-1). */
static void charge_locked(aipc_bus *b, const bbuf *x, int sign)
{
    uint64_t size = x->h.pub.size, shm = x->kind == BB_SLOT ? size : 0;
    if (sign > 0) {
        b->lent += charge_of(x);
        b->buf_bytes += size;
        b->buf_shm_bytes += shm;
    } else {
        b->lent -= charge_of(x);
        b->buf_bytes -= size;
        b->buf_shm_bytes -= shm;
    }
}

static void buf_free(bbuf *x)
{
    aipc_bus *b = x->b;
    free(x);
    aipc__bus_unref(b);
}

/* Taken out of the live set (aipc_buf_release, or a failed hand-over): gives back what it
 * holds and frees it. */
static void buf_drop(aipc__buf_hdr *h)
{
    bbuf *x = (bbuf *)h;
    aipc_bus *b = x->b;
    aipc__shm_tx *gone = NULL;
    switch (x->kind) {
    case BB_HEAP:
    case BB_SLOT:
        AcquireSRWLockExclusive(&b->lock);
        charge_locked(b, x, -1);
        if (x->kind == BB_SLOT)
            gone = aipc__shm_link_unlend(&b->shm, x->tx, x->off);
        ReleaseSRWLockExclusive(&b->lock);
        aipc__shm_tx_free(gone);
        break;
    case BB_RECV_SHM:
        InterlockedAdd64(&b->recv_buf_bytes, -(LONG64)x->h.pub.size);
        aipc__bus_shm_release(b, &x->shm);    /* owed to the broker (dropped if reconnected) */
        break;
    default:
        InterlockedAdd64(&b->recv_buf_bytes, -(LONG64)x->h.pub.size);
        break;
    }
    buf_free(x);
}

/* A new buffer object with `extra` bytes of heap; NULL on no memory. */
static bbuf *buf_new(aipc_bus *b, int kind, size_t size, size_t extra)
{
    bbuf *x = malloc(AIPC__BUF_ALLOC(bbuf, extra));
    if (!x)
        return NULL;
    memset(x, 0, sizeof *x);
    x->h.owner = AIPC__BUF_BUS;
    x->h.drop = buf_drop;
    x->h.pub.size = size;
    x->kind = kind;
    x->b = b;
    return x;
}

/* ---- send ------------------------------------------------------------------------------------- */

int aipc_bus_alloc(aipc_bus *bus, size_t size, aipc_buf **out)
{
    if (out)
        *out = NULL;
    if (!bus || !out)
        return AIPC_EINVAL;
    if (size > UINT32_MAX - 1)
        return AIPC_ETOOBIG;
    int shared_ok = bus->o.shm == AIPC_SHM_AUTO && size >= bus->o.shm_threshold;
    bbuf *x = buf_new(bus, BB_HEAP, size, 0);       /* a slot's object; a heap one grows below */
    if (!x)
        return AIPC_ENOMEM;
    uint8_t *view = NULL;
    AcquireSRWLockExclusive(&bus->lock);
    int rc = aipc__bus_usable_locked(bus);
    if (rc == 0 && size > bus->max_payload)
        rc = AIPC_ETOOBIG;
    if (rc == 0 && (uint64_t)bus->q.bytes + bus->shm.held + bus->lent + AIPC_HDR_SIZE + size >
                       bus->q.max_bytes)
        rc = AIPC_EQUEUEFULL;
    if (rc == 0) {
        if (shared_ok && bus->shm.active &&
            aipc__shm_link_lend(&bus->shm, (uint32_t)size, &x->tx, &x->off, &view) == 1)
            x->kind = BB_SLOT;
        charge_locked(bus, x, +1);
    }
    ReleaseSRWLockExclusive(&bus->lock);
    if (rc != 0) {
        free(x);
        return rc;
    }
    aipc__bus_ref(bus);
    if (x->kind == BB_HEAP) {
        bbuf *h = realloc(x, AIPC__BUF_ALLOC(bbuf, size + 1));
        if (!h) {
            x->h.drop(&x->h);                       /* its room back, the reference dropped */
            return AIPC_ENOMEM;
        }
        x = h;
        view = x->heap;
        view[size] = 0;
    }
    x->h.pub.data = view;
    if (aipc__buf_live_add(x) != 0) {
        buf_drop(&x->h);                            /* its room and slot back */
        return AIPC_ENOMEM;
    }
    *out = &x->h.pub;
    return 0;
}

/* A buffer of this client that can be sent with `len` bytes, or NULL. */
static bbuf *sendable(aipc_bus *bus, aipc_buf *buf, size_t len)
{
    bbuf *x = (bbuf *)aipc__buf_of(buf, AIPC__BUF_BUS);
    if (!x || x->b != bus || (x->kind != BB_HEAP && x->kind != BB_SLOT) || len > x->h.pub.size)
        return NULL;
    return x;
}

/* What aipc__bus_enqueue needs of it. */
static aipc__bus_lent lent_of(const bbuf *x)
{
    return (aipc__bus_lent){charge_of(x), x->kind == BB_SLOT ? x->tx : NULL, x->off, NULL, 0};
}

/* rc 0: x was queued (its b->lent charge went with the frame): the rest of it goes. Else it
 * stays the caller's, still charged. Returns rc. */
static int sent(aipc_bus *bus, bbuf *x, aipc__bus_lent *bl, int rc)
{
    if (rc != 0)
        return rc;
    aipc__shm_tx_free(bl->gone);
    if (bl->fell_back)                              /* (a fallback inline counted itself) */
        aipc_log(AIPC_LOG_DEBUG, "bus(%s): a buffer lent before the connection changed was "
                 "copied", bus->pipe_utf8);
    AcquireSRWLockExclusive(&bus->lock);
    bus->buf_bytes -= x->h.pub.size;
    if (x->kind == BB_SLOT)
        bus->buf_shm_bytes -= x->h.pub.size;
    ReleaseSRWLockExclusive(&bus->lock);
    if (aipc__buf_live_take(x))
        buf_free(x);
    return 0;
}

int aipc_bus_publish_buf(aipc_bus *bus, const char *topic, aipc_buf *buf, size_t len)
{
    bbuf *x = bus && aipc__bus_topic_valid(topic) ? sendable(bus, buf, len) : NULL;
    if (!x)
        return AIPC_EINVAL;
    aipc__bus_lent bl = lent_of(x);
    return sent(bus, x, &bl, aipc__bus_enqueue(bus, &(aipc__bus_out){.op = "pub", .topic = topic},
                                               x->h.pub.data, len, NULL, 0, &bl));
}

int aipc_bus_send_buf(aipc_bus *bus, const char *to, aipc_buf *buf, size_t len)
{
    bbuf *x = bus ? sendable(bus, buf, len) : NULL;
    if (!x)
        return AIPC_EINVAL;
    aipc__bus_lent bl = lent_of(x);
    return sent(bus, x, &bl, aipc__bus_send_to(bus, to, x->h.pub.data, len, &bl));
}

/* ---- receive ---------------------------------------------------------------------------------- */

aipc_buf *aipc__bus_buf_received(aipc_bus *b, const void *data, size_t len)
{
    /* The shared payload being dispatched, with the broker's NUL after it: kept in place. */
    int view = b->rx_cur.rx && data == (const void *)b->rx_cur.data &&
               ((const uint8_t *)data)[len] == 0;
    bbuf *x = buf_new(b, view ? BB_RECV_SHM : BB_RECV_HEAP, len, view ? 0 : len + 1);
    if (!x) {
        aipc_log(AIPC_LOG_ERROR, "bus(%s): out of memory for a received buffer of %lu bytes: "
                 "lost", b->pipe_utf8, (unsigned long)len);
        return NULL;                         /* a shared slot: released by the frame's end */
    }
    if (view) {
        x->shm = b->rx_cur;                  /* its hold and its release are the buffer's now */
        b->rx_cur.rx = NULL;
        x->h.pub.data = (void *)data;
    } else {
        if (len)
            memcpy(x->heap, data, len);
        x->heap[len] = 0;
        x->h.pub.data = x->heap;
    }
    aipc__bus_ref(b);
    InterlockedAdd64(&b->recv_buf_bytes, (LONG64)len);
    if (aipc__buf_live_add(x) != 0) {
        aipc_log(AIPC_LOG_ERROR, "bus(%s): out of memory for a received buffer of %lu bytes: "
                 "lost", b->pipe_utf8, (unsigned long)len);
        buf_drop(&x->h);                     /* its slot goes back to the broker */
        return NULL;
    }
    return &x->h.pub;
}
