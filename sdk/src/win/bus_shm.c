/*
 * bus_shm.c - shared memory between the bus client and the broker (docs/sdk.md "Shared
 * memory", docs/protocol.md): the client is the owner of one shm_link (shm_link.c does the
 * segments, slots, descriptors and releases, as for a point-to-point pipe).
 *
 *   - Negotiation: the hello offers {"shm":{"v":1}} unless aipc_bus_options.shm is
 *     AIPC_SHM_OFF (bus_conn.c); a welcome with "shm" (v >= 1) turns it on for that connection:
 *     our segments are granted to the owner of the broker's pipe (what the dial's owner check
 *     accepted) and the broker's are opened in the broker's session
 *     (GetNamedPipeServerSessionId), expecting that owner.
 *   - Send (enqueue, under `lock`, any thread): publish (not retained), send, request, reply of
 *     at least shm_threshold bytes go into a slot of our pool and their frame carries the
 *     descriptor instead of the payload, in the same queue as inline frames (order kept). The
 *     payload counts against max_queue_bytes until the broker's shm_done. No room in the pool
 *     (or a segment the broker refused): inline.
 *   - Receive (I/O thread): msg, direct, req, rep with a descriptor reach the callbacks with a
 *     pointer into our read-only view of the broker's segment, valid during the callback (with
 *     a dispatcher, the queued item holds the view until its callback ran; with on_message_buf
 *     / on_direct_buf a buffer takes the hold over, bus_buf.c, until aipc_buf_release). Then
 *     the release is owed. With a release page in use (bus_relpage.c: the broker offered it
 *     and mapped it) a release is one store into the page, under `lock`, on the releasing
 *     thread, and none of what follows applies. Otherwise: releases of one read's callbacks
 *     are gathered into one shm_done written at the end of the read (ahead of any batch;
 *     while a write is in flight, at the next frame boundary of the batch being written:
 *     bus_conn.c io_out_next), except that they are written at once when they pass rel_gather_max (1/4 of the max_queue_bytes the broker's
 *     welcome tells, 2 MiB by default; a broker that does not tell it: at each release) or
 *     the first of them has waited BUS_REL_GATHER_US (1 ms: slow callbacks of any kind;
 *     checked at each release and before every frame of the read: bus_dispatch.c): the
 *     broker charges a slot to our queue until its release arrives. A release on another
 *     thread (dispatcher) starts a write at once. "At once" holds unless a write is in
 *     flight: the kick then does nothing and the releases go after it (on PIPE_ASYNC every
 *     write completes by APC, so after the read's callbacks).
 *   - Announces and answers go into the control queue (`ctl`, written first, dropped with the
 *     connection). A lost connection: no new descriptors; once nothing is pending, descriptor
 *     frames still queued become inline frames again (their payload is copied out of our slot)
 *     and every segment and slot of the connection goes (aipc__shm_link_reset).
 */
#include "bus_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- the client as shm_link's owner --------------------------------------------------------- */

/* [io] (create_segment under the lock, or an answer): ctl belongs to the I/O thread. */
static int own_queue_locked(void *ctx, const char *meta, size_t len)
{
    aipc_bus *b = ctx;
    aipc__bus_qnode *n = aipc__bus_frame_new(meta, len, NULL, 0, 0);
    if (!n)
        return AIPC_ENOMEM;
    aipc__bus_queue_push(&b->ctl, n, 0);
    return 0;
}

/* [io] An answer to the broker's announce, while reading: written after the read. */
static int own_queue_ctl(void *ctx, const char *meta, uint32_t len)
{
    aipc_bus *b = ctx;
    int rc = own_queue_locked(ctx, meta, len);
    if (rc == 0)
        b->shm_kick = 1;
    return rc;
}

static uint64_t own_pool_max(void *ctx)
{
    aipc_bus *b = ctx;
    return b->o.max_queue_bytes;
}

void aipc__bus_shm_init(aipc_bus *b)
{
    InitializeConditionVariable(&b->shm_copied);
    aipc__shm_owner own = {b, &b->lock, own_queue_locked, own_queue_ctl, NULL, own_pool_max};
    aipc__shm_link_init(&b->shm, &own, "bus");
}

/* ---- connection ----------------------------------------------------------------------------- */

void aipc__bus_shm_welcome(aipc_bus *b, const aipc__bus_in *in)
{
    b->shm_on = 0;
    /* the broker charges a held slot to our queue until its release arrives: gather at most
     * a quarter of its bound; a broker that does not tell it: none (one slot at a time) */
    b->rel_gather_max = in->max_queue_bytes / BUS_REL_GATHER_SHARE;
    if (b->o.shm != AIPC_SHM_AUTO || in->shm_v < 1)
        return;
    PSID owner = NULL;
    DWORD e = aipc__sec_pipe_owner(b->io.h, &owner);
    if (e || !owner) {
        aipc_log(AIPC_LOG_WARN, "bus(%s): cannot read the broker pipe's owner (%lu): no shared "
                 "memory", b->pipe_utf8, e);
        free(owner);
        return;
    }
    ULONG session = 0;
    int known = GetNamedPipeServerSessionId(b->io.h, &session) != 0;
    if (!known)
        aipc_log(AIPC_LOG_DEBUG, "bus(%s): the broker's session is unknown (%lu): its segments "
                 "are looked up in ours", b->pipe_utf8, GetLastError());
    aipc__shm_link_set_peer(&b->shm, owner, 0, known, session, b->pipe_utf8);
    b->shm_on = 1;
    aipc__shm_link_start(&b->shm);
    if (in->shm_rel >= 1)
        aipc__bus_relpage_offer(b);       /* its announce first in ctl (bus_relpage.c) */
    aipc_log(AIPC_LOG_INFO, "bus(%s): shared memory on (payloads from %u bytes)", b->pipe_utf8,
             b->o.shm_threshold);
}

void aipc__bus_shm_lost(aipc_bus *b)
{
    AcquireSRWLockExclusive(&b->lock);
    b->shm.active = 0;
    ReleaseSRWLockExclusive(&b->lock);
}

/* Under the lock: descriptor frames still queued become inline frames (the payload copied out
 * of our slot, still mapped): they go to the next connection like any queued frame. */
static void inline_back_locked(aipc_bus *b)
{
    aipc__bus_queue *q = &b->q;
    aipc__bus_qnode *prev = NULL;
    unsigned moved = 0;
    for (aipc__bus_qnode **l = &q->head; *l;) {
        aipc__bus_qnode *n = *l;
        if (!n->shm_cut) {
            prev = n;
            l = &n->next;
            continue;
        }
        const uint8_t *pl = aipc__shm_link_slot(&b->shm, n->shm_seg, n->shm_off);
        char *meta = pl ? malloc((size_t)n->shm_cut + 1) : NULL;
        aipc__bus_qnode *m = NULL;
        if (meta) {
            memcpy(meta, n->data + AIPC_HDR_SIZE, n->shm_cut);
            meta[n->shm_cut] = '}';
            m = aipc__bus_frame_new(meta, (size_t)n->shm_cut + 1, pl, n->shm_len, n->tag);
            free(meta);
        }
        if (m) {
            m->next = n->next;
            *l = m;
            q->bytes = q->bytes - n->len + m->len;
            if (q->tail == n)
                q->tail = m;
            prev = m;
            l = &m->next;
            moved++;
        } else {
            aipc_log(AIPC_LOG_ERROR, "bus(%s): out of memory moving a queued shared message of "
                     "%u bytes inline: it is lost", b->pipe_utf8, n->shm_len);
            *l = n->next;
            q->bytes -= n->len;
            q->count--;
            if (q->tail == n)
                q->tail = prev;
        }
        free(n);
    }
    if (moved)
        aipc_log(AIPC_LOG_INFO, "bus(%s): %u queued shared messages go inline to the next "
                 "connection", b->pipe_utf8, moved);
}

void aipc__bus_shm_drain(aipc_bus *b)
{
    AcquireSRWLockExclusive(&b->lock);
    while (b->shm_copying)               /* a caller still copies into one of our segments */
        SleepConditionVariableSRW(&b->shm_copied, &b->lock, INFINITE, 0);
    inline_back_locked(b);
    ReleaseSRWLockExclusive(&b->lock);
    aipc__bus_relpage_reset(b);
    aipc__shm_link_reset(&b->shm);
    b->shm_on = 0;
    b->shm_kick = 0;
}

uint8_t *aipc__bus_shm_out(aipc_bus *b, size_t *len)
{
    *len = 0;
    if (!b->shm_on)
        return NULL;
    /* releases owed while the release page waits for its answer wait with it */
    if (!aipc__bus_relpage_withholds(b) && aipc__shm_link_owes(&b->shm)) {
        uint8_t *buf = malloc(AIPC__SHM_DONE_FRAME);
        size_t n = buf ? aipc__shm_link_take_done(&b->shm, buf, AIPC__SHM_DONE_FRAME) : 0;
        if (n) {
            *len = n;
            return buf;
        }
        free(buf);
    }
    aipc__shm_link_pump(&b->shm);
    return NULL;
}

/* ---- receive -------------------------------------------------------------------------------- */

int aipc__bus_shm_ctl(aipc_bus *b, const uint8_t *meta, uint32_t ml)
{
    aipc_shm_ctl c;
    aipc_shm_ref refs[AIPC_SHM_DONE_MAX];
    if (!b->shm_on ||
        aipc_shm_ctl_parse((const char *)meta, ml, &c, refs, AIPC_SHM_DONE_MAX) != 1 ||
        c.op == AIPC_SHM_OP_HELLO)
        return AIPC_EPROTO;
    if (aipc__bus_relpage_answer(b, &c))
        return 0;
    return aipc__shm_link_ctl(&b->shm, &c, refs);
}

int aipc__bus_shm_resolve(aipc_bus *b, const aipc__bus_in *in, uint32_t pn, const uint8_t **pl,
                          uint32_t *len)
{
    if (!b->shm_on || in->has_shm != 1 || pn != 0)
        return AIPC_EPROTO;
    aipc_shm_desc d = {in->shm[0], in->shm[1], in->shm[2]};
    uint8_t *data;
    aipc__shm_rx *rx;
    uint32_t seq = 0;
    if (aipc__shm_link_resolve(&b->shm, &d, &data, &rx) != 0 || aipc__bus_relpage_rx(b, &seq))
        return AIPC_EPROTO;
    aipc__shm_rx_hold(rx);
    b->rx_cur.rx = rx;
    b->rx_cur.data = data;
    b->rx_cur.gen = b->shm.gen;          /* changes only on this thread (the reset) */
    b->rx_cur.seg = d.seg;
    b->rx_cur.off = d.off;
    b->rx_cur.len = d.len;
    b->rx_cur.seq = seq;
    *pl = data;
    *len = d.len;
    return 0;
}

/* [io] Microseconds since the first release gathered in this read. */
static uint64_t gathered_us(const aipc_bus *b)
{
    LARGE_INTEGER now, f;
    QueryPerformanceCounter(&now);       /* no server request under Wine */
    QueryPerformanceFrequency(&f);
    return (uint64_t)(now.QuadPart - b->rel_t0) * 1000000u / (uint64_t)f.QuadPart;
}

/* [io] Writes the releases gathered so far now (the read goes on afterwards). */
static void gathered_flush(aipc_bus *b)
{
    b->rel_bytes = 0;
    if (b->st == BS_READY)
        aipc__conn_kick(&b->io);          /* inside the read's callbacks: safe (win_conn) */
}

void aipc__bus_shm_release(aipc_bus *b, aipc__bus_shm_msg *m)
{
    aipc__shm_rx *rx = m->rx;
    if (!rx)
        return;
    m->rx = NULL;
    AcquireSRWLockExclusive(&b->lock);
    int paged = aipc__bus_relpage_release_locked(b, m);
    int first = paged ? 0 : aipc__shm_link_release_locked(&b->shm, m->gen, m->seg, m->off);
    ReleaseSRWLockExclusive(&b->lock);
    aipc__shm_rx_drop(rx);
    if (paged)                            /* one store into the page: no write, nothing owed */
        return;
    if (GetCurrentThreadId() != b->loop->tid) {
        if (first)                        /* else a write is due already: it carries this one */
            aipc__bus_wake(b);
        return;
    }
    if (!b->in_read) {                    /* [io] outside a read (a deferred callback) */
        if (first && b->st == BS_READY)
            aipc__conn_kick(&b->io);
        return;
    }
    /* Inside a read: gathered into one shm_done at the end of the read (io_input), but the
     * broker charges every slot to our queue until its release reaches it, so a long read
     * with slow callbacks must not keep them (a fast subscriber dropped; notes busfail):
     * written at once when the gathered releases pass rel_gather_max or the first of
     * them waits for more than BUS_REL_GATHER_US. A write in flight carries them on its
     * completion (ahead of any user batch: io_out_next). */
    if (!b->rel_bytes) {
        LARGE_INTEGER t;
        QueryPerformanceCounter(&t);
        b->rel_t0 = t.QuadPart;
    }
    b->rel_bytes += (uint64_t)m->len + AIPC_HDR_SIZE;
    b->shm_kick = 1;
    if (b->rel_bytes > b->rel_gather_max || gathered_us(b) > BUS_REL_GATHER_US)
        gathered_flush(b);
}

int aipc__bus_shm_gather_check(aipc_bus *b)
{
    if (!b->in_read || !b->rel_bytes || gathered_us(b) <= BUS_REL_GATHER_US)
        return 0;
    gathered_flush(b);                    /* a slow callback (of any kind) before this frame */
    return 1;
}

void aipc__bus_shm_read_end(aipc_bus *b)
{
    b->in_read = 0;
    b->rel_bytes = 0;
}

/* ---- send ----------------------------------------------------------------------------------- */

aipc__bus_qnode *aipc__bus_shm_desc_frame(const char *meta, size_t ml, const aipc_shm_desc *d,
                                         uint64_t tag)
{
    if (ml < 2 || meta[ml - 1] != '}')
        return NULL;
    char tail[64];
    tail[0] = ',';
    size_t tl = aipc_shm_desc_put(tail + 1, sizeof tail - 2, d);
    tail[1 + tl] = '}';
    tl += 2;
    size_t cut = ml - 1;                 /* meta without its closing brace */
    char *m = malloc(cut + tl);
    aipc__bus_qnode *n = NULL;
    if (m) {
        memcpy(m, meta, cut);
        memcpy(m + cut, tail, tl);
        n = aipc__bus_frame_new(m, cut + tl, NULL, 0, tag);
        free(m);
    }
    if (!n)
        return NULL;
    n->shm_cut = (uint32_t)cut;
    n->shm_seg = d->seg;
    n->shm_off = d->off;
    n->shm_len = d->len;
    return n;
}

int aipc__bus_shm_frame_locked(aipc_bus *b, const char *meta, size_t ml, size_t len,
                               uint64_t tag, aipc__bus_qnode **out, uint8_t **copy_to)
{
    aipc__shm_link *L = &b->shm;
    *out = NULL;
    *copy_to = NULL;
    if (!L->active || ml < 2 || meta[ml - 1] != '}' || len > UINT32_MAX)
        return 0;
    /* The payload counts against the queue bound until its release: past it, the inline path
     * refuses it as it would any frame. */
    uint64_t need = (uint64_t)AIPC_HDR_SIZE + ml + len;
    if ((uint64_t)b->q.bytes + L->held + need > b->q.max_bytes)
        return 0;
    aipc_shm_desc d;
    uint8_t *dst;
    int r = aipc__shm_link_reserve(L, (uint32_t)len, &d, &dst);
    if (r == 0)
        InterlockedIncrement64(&L->st_fallback);
    if (r != 1)
        return r;
    aipc__bus_qnode *n = aipc__bus_shm_desc_frame(meta, ml, &d, tag);
    if (!n) {
        aipc__shm_link_unput(L, &d);
        return AIPC_ENOMEM;
    }
    *out = n;
    *copy_to = dst;
    return 0;
}

void aipc__bus_shm_copy(aipc_bus *b, uint8_t *to, const void *data, size_t len)
{
    b->shm_copying++;
    ReleaseSRWLockExclusive(&b->lock);
    memcpy(to, data, len);               /* in place before its descriptor is queued */
    to[len] = 0;                         /* the spare NUL: the broker never writes it */
    AcquireSRWLockExclusive(&b->lock);
    if (--b->shm_copying == 0)
        WakeAllConditionVariable(&b->shm_copied);
}

void aipc__bus_shm_forget_tag_locked(aipc_bus *b, uint64_t tag)
{
    for (aipc__bus_qnode *n = b->q.head; n; n = n->next)
        if (n->tag == tag && n->shm_cut) {
            aipc_shm_desc d = {n->shm_seg, n->shm_off, n->shm_len};
            aipc__shm_link_unput(&b->shm, &d);
        }
}

/* ---- counters ------------------------------------------------------------------------------- */

int aipc_bus_get_counters(aipc_bus *bus, aipc_bus_counters *out)
{
    if (!bus || !out || out->size < 8)
        return AIPC_EINVAL;
    aipc_bus_counters c;
    memset(&c, 0, sizeof c);
    c.size = out->size;
    aipc__shm_counts k;
    aipc__shm_link_counts(&bus->shm, &k);
    AcquireSRWLockShared(&bus->lock);
    c.shm_active = bus->shm.active != 0;
    c.buf_bytes = bus->buf_bytes;
    c.buf_shm_bytes = bus->buf_shm_bytes;
    aipc__bus_relpage_counts_locked(bus, &c.shm_page, &c.shm_page_waiting);
    ReleaseSRWLockShared(&bus->lock);
    c.recv_buf_bytes = (uint64_t)InterlockedCompareExchange64(&bus->recv_buf_bytes, 0, 0);
    c.shm_sent = k.sent;
    c.shm_recv = k.recv;
    c.shm_fallback = k.fallback;
    c.shm_mapfail = k.mapfail;
    c.shm_held_bytes = k.held;
    c.shm_segments = k.segs;
    c.shm_peer_segments = k.peer_segs;
    memcpy(out, &c, out->size < sizeof c ? out->size : sizeof c);
    return 0;
}
