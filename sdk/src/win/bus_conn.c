/*
 * bus_conn.c - the bus client's connection to the broker, on its engine's I/O thread
 * (aipc_bus_options.engine: loop_apc.c or loop_iocp.c): open with retry and backoff, hello and
 * welcome, the read loop (frames go to bus_dispatch.c), the write pump (coalesced batches of
 * the control and user queues), reconnect, request deadlines, and the tasks that public calls
 * post (start, wake, close) and the dispatcher posts (resume).
 *
 * Every function here runs on the I/O thread ([io] fields); `lock` guards what public calls
 * share. All I/O goes through the engine table (b->loop->eng: attach, read, write, detach,
 * post) with the client's aipc__op records, so either engine runs it the same way: each
 * completion or task runs its op's callback on the I/O thread (the APC engine defers it while
 * a user callback runs there). Each kernel operation and posted task holds a reference.
 *
 * Connection life cycle (`st`)
 *   OPENING   dial the pipe (win_dial.c); busy/absent pipe: retry timer until the deadline
 *   HELLO     pipe open, hello written, read pending; timer = welcome deadline (a full
 *             connect timeout from the open)
 *   READY     welcomed: resubscribe frames (ctl queue) and then the user queue are written
 *   DRAINING  connection lost: I/O cancelled; the handle closes when no operation is pending,
 *             then BACKOFF (reconnect on) or DOWN
 *   BACKOFF   waiting for the next attempt (timer)
 *   DOWN      gave up (reconnect off): calls return AIPC_EDISCONNECTED
 *   CLOSED    the close task ran (completions may still be in flight); aipc_bus_close itself
 *             shut the callbacks and ran the final ones on its caller's thread
 *
 * The reads and writes are the connection's (b->io, win_conn.c); this file is its handler: the
 * decoder gets what is read, the queues are its output source. The pipe handle is closed once,
 * here (aipc__conn_close_handle), when no operation is pending on it; the buffers handed to the
 * kernel (the connection's read buffer, wbuf, the decoder's frame) live at least until then.
 */
#include "bus_internal.h"
#include "win_dial.h"
#include "win_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t now_ms(void)
{
    return GetTickCount64();
}

/* Maps the Win32 error of a failed connection/operation to an AIPC_E* code (win_error.c). */
static int map_win32(DWORD e)
{
    return aipc__win_err(e);
}

/* ---- timers --------------------------------------------------------------------------------- */

static void on_req_timer(aipc__timer *t);

/* Arms req_timer for `due` if that is earlier than what is armed. [io] */
static void arm_req_timer(aipc_bus *b, uint64_t due)
{
    if (!due || b->st == BS_CLOSED)
        return;
    if (b->req_timer_due && b->req_timer_due <= due)
        return;
    uint64_t now = now_ms();
    DWORD ms = due > now ? (DWORD)((due - now) > 0x7FFFFFFF ? 0x7FFFFFFF : (due - now)) : 0;
    aipc__timer_start(b->loop, &b->req_timer, ms, on_req_timer);
    b->req_timer_due = due;
}

/* Fails every expired request with AIPC_ETIMEDOUT (and drops its frame if still unsent). */
static void on_req_timer(aipc__timer *t)
{
    aipc_bus *b = CONTAINING_RECORD(t, aipc_bus, req_timer);
    b->req_timer_due = 0;
    if (b->st == BS_CLOSED)
        return;
    aipc__bus_ref(b);
    aipc__bus_ev_expire(b);
    AcquireSRWLockExclusive(&b->lock);
    uint64_t next = aipc__bus_pending_next_deadline(&b->pend);
    ReleaseSRWLockExclusive(&b->lock);
    arm_req_timer(b, next);
    aipc__bus_unref(b);
}

/* ---- connection ----------------------------------------------------------------------------- */

static void start_attempt(aipc_bus *b);
static void try_open(aipc_bus *b);
static void conn_lost(aipc_bus *b, int err);

/* Appends a control frame (hello, resubscribe) for the I/O thread to write first. [io] */
static int push_ctl(aipc_bus *b, const aipc__bus_out *o)
{
    size_t ml;
    char *meta = aipc__bus_meta_build(o, &ml);
    aipc__bus_qnode *n = meta ? aipc__bus_frame_new(meta, ml, NULL, 0, 0) : NULL;
    free(meta);
    if (!n)
        return AIPC_ENOMEM;
    aipc__bus_queue_push(&b->ctl, n, 0);
    return 0;
}

static void on_conn_timer(aipc__timer *t)
{
    aipc_bus *b = CONTAINING_RECORD(t, aipc_bus, conn_timer);
    aipc__bus_ref(b);
    switch (b->st) {
    case BS_OPENING: try_open(b); break;
    case BS_HELLO: conn_lost(b, AIPC_ETIMEDOUT); break;
    case BS_BACKOFF: start_attempt(b); break;
    default: break;
    }
    aipc__bus_unref(b);
}

/* After a failed attempt or a lost connection (handle closed): back off or give up. [io] */
static void after_failure(aipc_bus *b, int err)
{
    if (b->st == BS_CLOSED)
        return;
    if (b->o.reconnect) {
        b->rnd = b->rnd * 1664525u + 1013904223u;
        uint32_t delay = aipc__bus_backoff_delay(b->o.backoff_min_ms, b->o.backoff_max_ms,
                                                b->attempt, b->rnd >> 8);
        if (b->attempt < 64)
            b->attempt++;
        b->st = BS_BACKOFF;
        aipc__timer_start(b->loop, &b->conn_timer, delay, on_conn_timer);
        aipc__bus_ev_state(b, AIPC_BUS_RECONNECTING, err);
        return;
    }
    /* reconnect off: final. Queued frames are discarded, every request fails. */
    b->st = BS_DOWN;
    AcquireSRWLockExclusive(&b->lock);
    b->down = 1;
    aipc__bus_queue_free(&b->q);
    ReleaseSRWLockExclusive(&b->lock);
    aipc__bus_ev_fail_pending(b, 1, AIPC_EDISCONNECTED);
    aipc__bus_ev_state(b, AIPC_BUS_DISCONNECTED, err);
}

/* Starts one connection attempt (bounded by connect_timeout_ms). [io] */
static void start_attempt(aipc_bus *b)
{
    b->st = BS_OPENING;
    b->sys_err = 0;
    b->deadline = now_ms() + b->o.connect_timeout_ms;
    b->open_retry = BUS_OPEN_RETRY_MIN;
    try_open(b);
}

static void io_out_drop(aipc__conn *c);

/* Closes the pipe handle once nothing is pending on it, then moves on. [io] */
static void maybe_finish_drain(aipc_bus *b)
{
    if (aipc__conn_pending(&b->io) || b->io.h == INVALID_HANDLE_VALUE)
        return;
    aipc__conn_close_handle(&b->io, NULL);
    aipc__bus_shm_drain(b);              /* queued descriptors go inline; segments and views go */
    io_out_drop(&b->io);
    aipc_decoder_free(&b->dec);
    if (b->st == BS_DRAINING)
        after_failure(b, b->last_error);
}

/* The connection broke (or an attempt failed after the pipe opened). [io] */
static void conn_lost(aipc_bus *b, int err)
{
    if (b->st != BS_HELLO && b->st != BS_READY)
        return;
    int was_ready = b->st == BS_READY;
    b->st = BS_DRAINING;
    b->last_error = err ? err : AIPC_EDISCONNECTED;
    aipc__timer_stop(b->loop, &b->conn_timer);
    AcquireSRWLockExclusive(&b->lock);
    b->ready = 0;
    /* Reconnect off: final. Calls fail from now on, not only once the handle has drained
     * (after_failure): on_state(DISCONNECTED) below must not come before that. */
    if (!b->o.reconnect)
        b->down = 1;
    ReleaseSRWLockExclusive(&b->lock);
    InterlockedExchange64(&b->client_id, 0);
    aipc__bus_shm_lost(b);
    aipc__bus_queue_free(&b->ctl);
    aipc__conn_cancel(&b->io);
    /* requests already handed to the broker will never be answered on a new connection */
    aipc__bus_ev_fail_pending(b, 0, AIPC_EDISCONNECTED);
    if (was_ready)
        aipc__bus_ev_state(b, AIPC_BUS_DISCONNECTED, b->last_error);
    maybe_finish_drain(b);
}

void aipc__bus_conn_lost(aipc_bus *b, int err)
{
    conn_lost(b, err);
}

/* Tries to open the broker pipe; retries a busy/absent pipe until the attempt deadline. [io] */
static void try_open(aipc_bus *b)
{
    aipc__dial_result r;
    aipc__dial_verdict v = aipc__dial(b->pipe, &b->owners, b->pipe_utf8, &r);
    b->sys_err = r.win32;
    uint64_t now = now_ms();
    if (v == AIPC__DIAL_RETRY && now < b->deadline) {
        uint64_t left = b->deadline - now;
        DWORD wait = b->open_retry < left ? b->open_retry : (DWORD)left;
        if (b->open_retry < BUS_OPEN_RETRY_MAX)
            b->open_retry *= 2;
        aipc__timer_start(b->loop, &b->conn_timer, wait, on_conn_timer);
        return;
    }
    if (v != AIPC__DIAL_OK) {
        if (r.code == AIPC_EUNTRUSTED)    /* who serves this name: nothing goes to an impostor */
            aipc__bus_ev_error(b, AIPC_EUNTRUSTED, "untrusted_server",
                               "the broker pipe is owned by an unexpected account; nothing sent");
        else if (r.win32 == ERROR_ACCESS_DENIED)
            aipc_log(AIPC_LOG_WARN, "bus(%s): access denied by the broker pipe's descriptor",
                     b->pipe_utf8);
        else if (r.win32)
            aipc_log(AIPC_LOG_DEBUG, "bus(%s): connect failed (%lu)", b->pipe_utf8, r.win32);
        after_failure(b, r.code == AIPC_EBUSY ? AIPC_ETIMEDOUT : r.code);
        return;
    }
    HANDLE h = r.h;
    /* bound to the engine (the IOCP engine's port) before the first read or write */
    DWORD ae = b->loop->eng->attach(b->loop, h, NULL);
    if (ae) {
        aipc_log(AIPC_LOG_ERROR, "bus(%s): cannot attach the pipe to the %s engine (%lu)",
                 b->pipe_utf8, b->loop->eng->name, ae);
        CloseHandle(h);
        after_failure(b, AIPC_ESYS);
        return;
    }
    aipc__conn_start(&b->io, b->loop->eng, b->loop, h);
    /* PIPE_OVERLAPPED: a read or write that succeeds at once is handled where it was issued,
     * without a completion packet to dequeue (one wineserver round trip less per operation;
     * a shared-memory stream is one small read and one small write per message); a run of
     * such reads yields to the port (win_conn.c). The drain then also finishes in io_unref. */
    int skip = b->loop->eng == &aipc__engine_iocp &&
               SetFileCompletionNotificationModes(h, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS);
    b->io.rd.skip_port = b->io.wr.skip_port = skip;
    b->io.port = skip ? b->loop->port : NULL;
    /* A new connection reads at once; a pause of the old one ends with it (a resume task
     * still queued finds the read pending and does nothing). */
    InterlockedExchange(&b->rpaused, 0);
    aipc_decoder_init(&b->dec, AIPC_MAX_META, 0);
    /* A stream of large frames is read whole into a block kept from the previous one: the
     * decoder is freed only when no read is pending (maybe_finish_drain), never inside its
     * callbacks. */
    b->dec.keep_max = AIPC_RECV_KEEP_MAX;
    AcquireSRWLockShared(&b->lock);
    if (b->max_payload > b->dec.max_payload && b->max_payload <= UINT32_MAX)
        b->dec.max_payload = (uint32_t)b->max_payload;
    ReleaseSRWLockShared(&b->lock);
    b->st = BS_HELLO;
    aipc__bus_queue_free(&b->ctl);
    if (push_ctl(b, &(aipc__bus_out){.op = "hello", .name = b->name,
                                     .shm = b->o.shm == AIPC_SHM_AUTO}) != 0) {
        conn_lost(b, AIPC_ENOMEM);
        return;
    }
    /* the welcome gets a full connect timeout of its own, however long opening took */
    aipc__timer_start(b->loop, &b->conn_timer, b->o.connect_timeout_ms, on_conn_timer);
    aipc__conn_read(&b->io);
    aipc__conn_kick(&b->io);
}

/* Marks a request's frame as handed to the pipe (called under the lock by take_batch). */
static void mark_sent(void *ctx, uint64_t tag)
{
    aipc_bus *b = ctx;
    aipc__bus_pend *e = aipc__bus_pending_find(&b->pend, tag);
    if (e)
        e->sent = 1;
}

/* The broker welcomed us: resubscribe, then let queued frames flow. [io] (bus_dispatch.c) */
void aipc__bus_conn_welcome(aipc_bus *b, const aipc__bus_in *in)
{
    aipc__timer_stop(b->loop, &b->conn_timer);
    b->st = BS_READY;
    b->attempt = 0;
    b->ever_connected = 1;
    InterlockedExchange64(&b->client_id, (LONG64)in->id);
    if (b->o.on_presence) {
        push_ctl(b, &(aipc__bus_out){.op = "sub", .topic = "$bus/joined"});
        push_ctl(b, &(aipc__bus_out){.op = "sub", .topic = "$bus/left"});
    }
    AcquireSRWLockExclusive(&b->lock);
    if (in->max_payload)
        b->max_payload = in->max_payload;
    if (b->max_payload > b->dec.max_payload && b->max_payload <= UINT32_MAX)
        b->dec.max_payload = (uint32_t)b->max_payload;
    for (size_t i = 0; i < b->subs.count; i++) {
        uint64_t id = (uint64_t)InterlockedIncrement64(&b->next_id);
        char desc[96];
        snprintf(desc, sizeof desc, "subscribe '%.64s'", b->subs.filters[i]);
        aipc__bus_pend e = {.id = id, .kind = AIPC_BUS_PEND_ACK, .desc = desc, .sent = 1};
        if (push_ctl(b, &(aipc__bus_out){.op = "sub", .topic = b->subs.filters[i], .id = id}) == 0)
            aipc__bus_pending_add(&b->pend, &e);
    }
    b->ready = 1;
    ReleaseSRWLockExclusive(&b->lock);
    aipc_log(AIPC_LOG_INFO, "bus(%s): welcome, client id %llu", b->pipe_utf8,
             (unsigned long long)in->id);
    aipc__bus_shm_welcome(b, in);          /* the first segment is announced with this kick */
    aipc__conn_kick(&b->io);
    aipc__bus_ev_state(b, AIPC_BUS_CONNECTED, 0);
}

/* ---- the connection's handler (win_conn.c does the I/O) ------------------------------------ */

static int live(const aipc_bus *b)
{
    return b->st == BS_HELLO || b->st == BS_READY;
}

static uint8_t *io_read_direct(aipc__conn *c, size_t *want)
{
    aipc_bus *b = c->ctx;
    return aipc_decoder_direct(&b->dec, want);
}

/* What a read returned: frames to bus_dispatch.c; 0 to read on. */
static int io_input(aipc__conn *c, uint8_t *data, size_t n, int direct)
{
    aipc_bus *b = c->ctx;
    int rc;
    /* Without a dispatcher the callbacks of this read run here: hold the gate once for all of
     * them (each still checks it, so close waits only for the one running). */
    int held = !b->disp && aipc__gate_enter(&b->gate);
    b->in_read = 1;                       /* releases are gathered until the end (bus_shm.c) */
    if (direct)
        rc = aipc_decoder_commit(&b->dec, n, aipc__bus_on_frame, b);
    else
        rc = aipc_decoder_feed(&b->dec, data, n, aipc__bus_on_frame, b, NULL);
    aipc__bus_shm_read_end(b);
    if (held)
        aipc__gate_leave(&b->gate);
    if (rc < 0 && live(b)) {
        aipc__bus_ev_error(b, AIPC_EPROTO, "", "malformed frame from the broker");
        conn_lost(b, AIPC_EPROTO);
    }
    if (b->shm_kick) {                    /* releases gathered, answers: one write after the read */
        b->shm_kick = 0;
        aipc__conn_kick(&b->io);
    }
    /* paused: the dispatcher's thread posts the resume task */
    return live(b) && !aipc__bus_ev_closed(b) && !aipc__bus_ev_should_pause(b) ? 0 : 1;
}

/* [io] Releases owed while a batch is being written: at a frame boundary of the batch they
 * go next (review bperf M2: not after the rest of the batch, up to 4 MiB); inside a frame the
 * write offered ends at that frame's end. 1 when the releases are offered in iov[0]. */
static int out_releases_first(aipc_bus *b, int boundary, aipc_iov *iov)
{
    if (b->st != BS_READY || !b->shm_on || !aipc__shm_link_owes(&b->shm))
        return 0;
    if (boundary) {
        size_t len = 0;
        uint8_t *x = aipc__bus_shm_out(b, &len);
        if (!x)
            return 0;
        b->xbuf = x;
        b->xlen = len;
        b->xoff = 0;
        iov[0].base = x;
        iov[0].len = len;
        return 1;
    }
    iov[0].base = b->wbuf + b->woff;
    iov[0].len = b->wfend - b->woff;
    return 0;
}

/* The output source: the rest of the current batch (with releases owed written at its next
 * frame boundary), else the next coalesced batch - releases owed first, then control frames,
 * then user frames once welcomed. */
static int io_out_next(aipc__conn *c, aipc_iov *iov, int max)
{
    aipc_bus *b = c->ctx;
    (void)max;
    if (b->xbuf) {                        /* releases between two frames, partly written */
        iov[0].base = b->xbuf + b->xoff;
        iov[0].len = b->xlen - b->xoff;
        return 1;
    }
    if (!b->wbuf || b->woff >= b->wlen) {
        size_t len = 0;
        /* releases owed to the broker first (its slots must not wait behind our batch), and a
         * wanted segment's announce into ctl */
        uint8_t *buf = b->st == BS_READY ? aipc__bus_shm_out(b, &len) : NULL;
        if (!buf && b->ctl.head) {
            buf = aipc__bus_queue_take_batch(&b->ctl, BUS_BATCH_MAX, &len, NULL, NULL);
        } else if (!buf && b->st == BS_READY) {
            AcquireSRWLockExclusive(&b->lock);
            buf = aipc__bus_queue_take_batch(&b->q, BUS_BATCH_MAX, &len, mark_sent, b);
            ReleaseSRWLockExclusive(&b->lock);
        }
        free(b->wbuf);
        b->wbuf = buf;
        b->wlen = buf ? len : 0;
        b->woff = b->wfend = 0;
        if (!buf)
            return 0;
    }
    /* whole frames, headers in place: wfend moves to the end of the frame that holds woff */
    int boundary = 0;
    while (b->wfend <= b->woff) {
        boundary = b->wfend == b->woff;
        uint32_t ml = 0, pl = 0;
        aipc_frame_get_header(b->wbuf + b->wfend, &ml, &pl);
        uint64_t end = (uint64_t)b->wfend + AIPC_HDR_SIZE + ml + pl;
        b->wfend = end < b->wlen ? (size_t)end : b->wlen;
    }
    iov[0].base = b->wbuf + b->woff;
    iov[0].len = b->wlen - b->woff;
    out_releases_first(b, boundary, iov);  /* the releases instead, or up to the frame's end */
    return 1;
}

static void io_out_done(aipc__conn *c, size_t bytes)
{
    aipc_bus *b = c->ctx;
    if (b->xbuf) {
        b->xoff += bytes;
        if (b->xoff >= b->xlen) {
            free(b->xbuf);
            b->xbuf = NULL;
            b->xlen = b->xoff = 0;
        }
        return;
    }
    b->woff += bytes;
}

/* The batch will not be written (the connection is lost): it goes with the connection. */
static void io_out_drop(aipc__conn *c)
{
    aipc_bus *b = c->ctx;
    free(b->wbuf);
    b->wbuf = NULL;
    b->wlen = b->woff = b->wfend = 0;
    free(b->xbuf);
    b->xbuf = NULL;
    b->xlen = b->xoff = 0;
}

static void io_on_error(aipc__conn *c, DWORD err, const char *what)
{
    aipc_bus *b = c->ctx;
    (void)what;
    b->sys_err = err;
    conn_lost(b, map_win32(err));
}

static void io_done(aipc__conn *c)
{
    aipc_bus *b = c->ctx;
    if (!live(b))
        maybe_finish_drain(b);
}

static void io_ref(aipc__conn *c)
{
    aipc__bus_ref(c->ctx);
}

static void io_unref(aipc__conn *c)
{
    aipc_bus *b = c->ctx;
    if (c->rd.skip_port && !live(b))     /* an operation handled inline ended the connection */
        maybe_finish_drain(b);
    aipc__bus_unref(b);
}

const aipc__conn_handler aipc__bus_io_handler = {
    io_read_direct, io_input, io_out_next, io_out_done, io_out_drop, io_on_error, io_done,
    io_ref, io_unref,
};

/* The dispatcher caught up: read again. [io] */
static void on_resume(aipc__op *op, DWORD err, DWORD bytes)
{
    aipc_bus *b = CONTAINING_RECORD(op, aipc_bus, resume_op);
    (void)err;
    (void)bytes;
    InterlockedExchange(&b->resume_posted, 0);
    if (live(b) && !aipc__bus_ev_closed(b))
        aipc__conn_read(&b->io);          /* nothing if a read is pending */
    aipc__bus_unref(b);
}

/* ---- tasks posted from other threads ------------------------------------------------------ */

/* Wake: new frames to write and/or a new request deadline. [io] */
static void on_wake(aipc__op *op, DWORD err, DWORD bytes)
{
    aipc_bus *b = CONTAINING_RECORD(op, aipc_bus, wake_op);
    AcquireSRWLockExclusive(&b->lock);
    b->wake_posted = 0;
    uint64_t due = b->new_deadline;
    b->new_deadline = 0;
    ReleaseSRWLockExclusive(&b->lock);
    if (b->st != BS_CLOSED) {
        arm_req_timer(b, due);
        aipc__conn_kick(&b->io);
    }
    aipc__bus_unref(b);
}

static void on_start(aipc__op *op, DWORD err, DWORD bytes)
{
    aipc_bus *b = CONTAINING_RECORD(op, aipc_bus, start_op);
    if (b->st == BS_OPENING)
        start_attempt(b);
    aipc__bus_unref(b);
}

/* Teardown on the I/O thread after aipc_bus_close (whose caller ran the final callbacks):
 * timers stop, I/O is cancelled (the handle closes when the completions are in), and the
 * user's reference goes. */
static void on_close(aipc__op *op, DWORD err, DWORD bytes)
{
    aipc_bus *b = CONTAINING_RECORD(op, aipc_bus, close_op);
    (void)err;
    (void)bytes;
    b->st = BS_CLOSED;
    aipc__timer_stop(b->loop, &b->conn_timer);
    aipc__timer_stop(b->loop, &b->req_timer);
    b->req_timer_due = 0;
    AcquireSRWLockExclusive(&b->lock);
    aipc__bus_queue_free(&b->q);          /* what wakes before this task did not write */
    ReleaseSRWLockExclusive(&b->lock);
    aipc__bus_queue_free(&b->ctl);
    if (b->io.h != INVALID_HANDLE_VALUE) {
        aipc__conn_cancel(&b->io);
        maybe_finish_drain(b);
    }
    aipc__bus_unref(b);                  /* the user's reference */
    aipc__bus_unref(b);                  /* this task's reference */
}

void aipc__bus_conn_init(aipc_bus *b)
{
    b->wake_op.cb = on_wake;
    b->start_op.cb = on_start;
    b->close_op.cb = on_close;
    b->resume_op.cb = on_resume;
    b->st = BS_OPENING;
    b->rnd = (uint32_t)GetCurrentProcessId() * 2654435761u ^ (uint32_t)(uintptr_t)b ^
             (uint32_t)GetTickCount64();
}
