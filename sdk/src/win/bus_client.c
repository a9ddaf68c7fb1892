/*
 * bus_client.c - the bus client (aipc_bus_*): a connection to the broker on the APC engine's
 * process-wide I/O thread (loop_apc.c), speaking wire protocol v1 over a byte-mode pipe.
 *
 * Threads
 *   - Public calls run on any thread. They build the frame (meta + payload copy) on the calling
 *     thread, then queue it under `lock` and, when needed, post one `wake` task to the I/O thread
 *     (at most one wake is outstanding per client, so bursts cost one APC).
 *   - Everything marked [io] is touched only on the I/O thread: the pipe handle, the read and
 *     write operations (through the APC engine: loop_apc.c), timers and the decoder. User
 *     callbacks go through bus_events.c: on this thread or on the client's dispatcher.
 *   - Fields marked [lock] are guarded by the SRW lock and may be touched by any thread.
 *
 * Connection life cycle ([io] `st`)
 *   OPENING   CreateFile on the pipe; busy/absent pipe: retry timer until the attempt deadline
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
 * Lifetime: `refs` counts the user's handle, every kernel operation in flight and every posted
 * task; memory (including each buffer handed to the kernel) is freed when it reaches zero. The
 * pipe handle is closed once, on the I/O thread, when no operation is pending on it.
 */
#include "bus_internal.h"
#include "win_dial.h"
#include "win_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void aipc_bus_ref(aipc_bus *b)
{
    InterlockedIncrement(&b->refs);
}

/* Frees everything once the last reference is gone (any thread; nothing is pending then). */
void aipc_bus_unref(aipc_bus *b)
{
    if (InterlockedDecrement(&b->refs) != 0)
        return;
    aipc_bus_ev_free_done(b);
    aipc_gate_free(&b->gate);
    aipc_sec_expect_free(&b->owners);
    if (b->disp)
        aipc_dispatcher_unref(b->disp);
    aipc_bus_queue_free(&b->q);
    aipc_bus_queue_free(&b->ctl);
    aipc_bus_subs_free(&b->subs);
    aipc_bus_pending_free(&b->pend);
    aipc_decoder_free(&b->dec);
    free(b->wbuf);
    free(b->rbuf);
    free(b->pipe);
    free(b->pipe_utf8);
    free(b->name);
    free(b);
}

static uint64_t now_ms(void)
{
    return GetTickCount64();
}

/* Maps the Win32 error of a failed connection/operation to an AIPC_E* code (win_error.c). */
static int map_win32(DWORD e)
{
    return aipc__win_err(e);
}

const char *aipc_bus_state_name(aipc_bus_state s)
{
    switch (s) {
    case AIPC_BUS_CONNECTING: return "connecting";
    case AIPC_BUS_CONNECTED: return "connected";
    case AIPC_BUS_DISCONNECTED: return "disconnected";
    case AIPC_BUS_RECONNECTING: return "reconnecting";
    case AIPC_BUS_CLOSED: return "closed";
    }
    return "unknown";
}

/* ---- timers --------------------------------------------------------------------------------- */

static void on_req_timer(aipc_timer *t);

/* Arms req_timer for `due` if that is earlier than what is armed. [io] */
static void arm_req_timer(aipc_bus *b, uint64_t due)
{
    if (!due || b->st == BS_CLOSED)
        return;
    if (b->req_timer_due && b->req_timer_due <= due)
        return;
    uint64_t now = now_ms();
    DWORD ms = due > now ? (DWORD)((due - now) > 0x7FFFFFFF ? 0x7FFFFFFF : (due - now)) : 0;
    aipc_timer_start(b->loop, &b->req_timer, ms, on_req_timer);
    b->req_timer_due = due;
}

/* Fails every expired request with AIPC_ETIMEDOUT (and drops its frame if still unsent). */
static void on_req_timer(aipc_timer *t)
{
    aipc_bus *b = CONTAINING_RECORD(t, aipc_bus, req_timer);
    b->req_timer_due = 0;
    if (b->st == BS_CLOSED)
        return;
    aipc_bus_ref(b);
    aipc_bus_ev_expire(b);
    AcquireSRWLockExclusive(&b->lock);
    uint64_t next = aipc_bus_pending_next_deadline(&b->pend);
    ReleaseSRWLockExclusive(&b->lock);
    arm_req_timer(b, next);
    aipc_bus_unref(b);
}

/* ---- connection ----------------------------------------------------------------------------- */

static void start_attempt(aipc_bus *b);
static void try_open(aipc_bus *b);
static void conn_lost(aipc_bus *b, int err);
static void issue_read(aipc_bus *b);
static void pump_write(aipc_bus *b);

/* Appends a control frame (hello, resubscribe) for the I/O thread to write first. [io] */
static int push_ctl(aipc_bus *b, const aipc_bus_out *o)
{
    size_t ml;
    char *meta = aipc_bus_meta_build(o, &ml);
    aipc_bus_qnode *n = meta ? aipc_bus_frame_new(meta, ml, NULL, 0, 0) : NULL;
    free(meta);
    if (!n)
        return AIPC_ENOMEM;
    aipc_bus_queue_push(&b->ctl, n, 0);
    return 0;
}

static void on_conn_timer(aipc_timer *t)
{
    aipc_bus *b = CONTAINING_RECORD(t, aipc_bus, conn_timer);
    aipc_bus_ref(b);
    switch (b->st) {
    case BS_OPENING: try_open(b); break;
    case BS_HELLO: conn_lost(b, AIPC_ETIMEDOUT); break;
    case BS_BACKOFF: start_attempt(b); break;
    default: break;
    }
    aipc_bus_unref(b);
}

/* After a failed attempt or a lost connection (handle closed): back off or give up. [io] */
static void after_failure(aipc_bus *b, int err)
{
    if (b->st == BS_CLOSED)
        return;
    if (b->o.reconnect) {
        b->rnd = b->rnd * 1664525u + 1013904223u;
        uint32_t delay = aipc_bus_backoff_delay(b->o.backoff_min_ms, b->o.backoff_max_ms,
                                                b->attempt, b->rnd >> 8);
        if (b->attempt < 64)
            b->attempt++;
        b->st = BS_BACKOFF;
        aipc_timer_start(b->loop, &b->conn_timer, delay, on_conn_timer);
        aipc_bus_ev_state(b, AIPC_BUS_RECONNECTING, err);
        return;
    }
    /* reconnect off: final. Queued frames are discarded, every request fails. */
    b->st = BS_DOWN;
    AcquireSRWLockExclusive(&b->lock);
    b->down = 1;
    aipc_bus_queue_free(&b->q);
    ReleaseSRWLockExclusive(&b->lock);
    aipc_bus_ev_fail_pending(b, 1, AIPC_EDISCONNECTED);
    aipc_bus_ev_state(b, AIPC_BUS_DISCONNECTED, err);
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

/* Closes the pipe handle once nothing is pending on it, then moves on. [io] */
static void maybe_finish_drain(aipc_bus *b)
{
    if (b->rbusy || b->wbusy || b->h == INVALID_HANDLE_VALUE)
        return;
    b->loop->eng->detach(b->loop, b->h, NULL);
    CloseHandle(b->h);
    b->h = INVALID_HANDLE_VALUE;
    free(b->wbuf);
    b->wbuf = NULL;
    b->wlen = b->woff = 0;
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
    aipc_timer_stop(b->loop, &b->conn_timer);
    AcquireSRWLockExclusive(&b->lock);
    b->ready = 0;
    ReleaseSRWLockExclusive(&b->lock);
    InterlockedExchange64(&b->client_id, 0);
    aipc_bus_queue_free(&b->ctl);
    if (b->rbusy || b->wbusy)
        CancelIoEx(b->h, NULL);
    /* requests already handed to the broker will never be answered on a new connection */
    aipc_bus_ev_fail_pending(b, 0, AIPC_EDISCONNECTED);
    if (was_ready)
        aipc_bus_ev_state(b, AIPC_BUS_DISCONNECTED, b->last_error);
    maybe_finish_drain(b);
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
        aipc_timer_start(b->loop, &b->conn_timer, wait, on_conn_timer);
        return;
    }
    if (v != AIPC__DIAL_OK) {
        if (r.code == AIPC_EUNTRUSTED)    /* who serves this name: nothing goes to an impostor */
            aipc_bus_ev_error(b, AIPC_EUNTRUSTED, "untrusted_server",
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
    b->h = h;
    /* A new connection reads at once; a pause of the old one ends with it (a resume task
     * still queued finds the read pending and does nothing). */
    InterlockedExchange(&b->rpaused, 0);
    aipc_decoder_init(&b->dec, AIPC_MAX_META, 0);
    AcquireSRWLockShared(&b->lock);
    if (b->max_payload > b->dec.max_payload && b->max_payload <= UINT32_MAX)
        b->dec.max_payload = (uint32_t)b->max_payload;
    ReleaseSRWLockShared(&b->lock);
    b->st = BS_HELLO;
    aipc_bus_queue_free(&b->ctl);
    if (push_ctl(b, &(aipc_bus_out){.op = "hello", .name = b->name}) != 0) {
        conn_lost(b, AIPC_ENOMEM);
        return;
    }
    /* the welcome gets a full connect timeout of its own, however long opening took */
    aipc_timer_start(b->loop, &b->conn_timer, b->o.connect_timeout_ms, on_conn_timer);
    issue_read(b);
    pump_write(b);
}

/* Marks a request's frame as handed to the pipe (called under the lock by take_batch). */
static void mark_sent(void *ctx, uint64_t tag)
{
    aipc_bus *b = ctx;
    aipc_bus_pend *e = aipc_bus_pending_find(&b->pend, tag);
    if (e)
        e->sent = 1;
}

/* The broker welcomed us: resubscribe, then let queued frames flow. [io] */
static void on_welcome(aipc_bus *b, const aipc_bus_in *in)
{
    aipc_timer_stop(b->loop, &b->conn_timer);
    b->st = BS_READY;
    b->attempt = 0;
    b->ever_connected = 1;
    InterlockedExchange64(&b->client_id, (LONG64)in->id);
    if (b->o.on_presence) {
        push_ctl(b, &(aipc_bus_out){.op = "sub", .topic = "$bus/joined"});
        push_ctl(b, &(aipc_bus_out){.op = "sub", .topic = "$bus/left"});
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
        aipc_bus_pend e = {.id = id, .kind = AIPC_BUS_PEND_ACK, .desc = desc, .sent = 1};
        if (push_ctl(b, &(aipc_bus_out){.op = "sub", .topic = b->subs.filters[i], .id = id}) == 0)
            aipc_bus_pending_add(&b->pend, &e);
    }
    b->ready = 1;
    ReleaseSRWLockExclusive(&b->lock);
    aipc_log(AIPC_LOG_INFO, "bus(%s): welcome, client id %llu", b->pipe_utf8,
             (unsigned long long)in->id);
    pump_write(b);
    aipc_bus_ev_state(b, AIPC_BUS_CONNECTED, 0);
}

/* ---- write path ----------------------------------------------------------------------------- */

static void on_write_done(aipc_op *op, DWORD err, DWORD bytes);

/* Writes the rest of the current batch. [io] */
static void issue_write(aipc_bus *b)
{
    size_t left = b->wlen - b->woff;
    DWORD chunk = left > AIPC_IO_CHUNK_MAX ? AIPC_IO_CHUNK_MAX : (DWORD)left;
    b->wr.cb = on_write_done;
    aipc_bus_ref(b);
    DWORD e = b->loop->eng->write(b->h, &b->wr, b->wbuf + b->woff, chunk);
    if (e) {
        b->sys_err = e;
        aipc_bus_unref(b);
        conn_lost(b, map_win32(e));
        return;
    }
    b->wbusy = 1;
}

/* Starts the next coalesced write if the pipe is idle: ctl frames first, then user frames
 * once welcomed. [io] */
static void pump_write(aipc_bus *b)
{
    if (b->wbusy || (b->st != BS_HELLO && b->st != BS_READY))
        return;
    size_t len = 0;
    uint8_t *buf = NULL;
    if (b->ctl.head) {
        buf = aipc_bus_queue_take_batch(&b->ctl, BUS_BATCH_MAX, &len, NULL, NULL);
    } else if (b->st == BS_READY) {
        AcquireSRWLockExclusive(&b->lock);
        buf = aipc_bus_queue_take_batch(&b->q, BUS_BATCH_MAX, &len, mark_sent, b);
        ReleaseSRWLockExclusive(&b->lock);
    }
    if (!buf)
        return;
    free(b->wbuf);
    b->wbuf = buf;
    b->wlen = len;
    b->woff = 0;
    issue_write(b);
}

static void on_write_done(aipc_op *op, DWORD err, DWORD bytes)
{
    aipc_bus *b = CONTAINING_RECORD(op, aipc_bus, wr);
    b->wbusy = 0;
    if (b->st == BS_HELLO || b->st == BS_READY) {
        if (err) {
            b->sys_err = err;
            conn_lost(b, map_win32(err));
        } else {
            b->woff += bytes;
            if (b->woff < b->wlen) {
                issue_write(b);
            } else {
                free(b->wbuf);
                b->wbuf = NULL;
                b->wlen = b->woff = 0;
                pump_write(b);
            }
        }
    } else {
        maybe_finish_drain(b);
    }
    aipc_bus_unref(b);
}

/* ---- read path ------------------------------------------------------------------------------ */

static void on_read_done(aipc_op *op, DWORD err, DWORD bytes);

/* Issues the next read: straight into a large frame's buffer when one is being assembled. [io] */
static void issue_read(aipc_bus *b)
{
    size_t want = 0;
    uint8_t *dst = aipc_decoder_direct(&b->dec, &want);
    DWORD len;
    if (dst && want >= AIPC_DIRECT_MIN) {
        b->rdirect = 1;
        len = want > BUS_READ_SIZE * 16u ? BUS_READ_SIZE * 16u : (DWORD)want;
    } else {
        b->rdirect = 0;
        dst = b->rbuf;
        len = BUS_READ_SIZE;
    }
    b->rd.cb = on_read_done;
    aipc_bus_ref(b);
    DWORD e = b->loop->eng->read(b->h, &b->rd, dst, len);
    if (e) {
        b->sys_err = e;
        aipc_bus_unref(b);
        conn_lost(b, map_win32(e));
        return;
    }
    b->rbusy = 1;
}

/* Delivers a request to on_request, or answers it empty when nobody listens. [io] */
static void dispatch_req(aipc_bus *b, const aipc_bus_in *in, const uint8_t *pl, uint32_t pn)
{
    if (!in->has_id || !in->has_from)
        return;
    if (b->o.on_request)
        aipc_bus_ev_request(b, &in->from, in->id, pl, pn);
    else
        aipc_bus_reply(b, in->from.id, in->id, NULL, 0);
}

/* A publication: presence first (internal $bus subscriptions), then on_message. [io] */
static void dispatch_msg(aipc_bus *b, const aipc_bus_in *in, const uint8_t *pl, uint32_t pn)
{
    const char *topic = in->topic;
    if (topic[0] == '$') {
        int joined = strcmp(topic, "$bus/joined") == 0;
        int left = strcmp(topic, "$bus/left") == 0;
        if ((joined || left) && b->o.on_presence) {
            aipc_bus_peer who;
            char name[AIPC_BUS_PRESENCE_BUF];
            if (aipc_bus_presence_parse(pl, pn, &who, name, sizeof name) == 0)
                aipc_bus_ev_presence(b, joined != 0, &who);
        }
        AcquireSRWLockShared(&b->lock);
        int wanted = aipc_bus_subs_match(&b->subs, topic);
        ReleaseSRWLockShared(&b->lock);
        if (!wanted)
            return;
    }
    aipc_bus_ev_message(b, topic, &in->from, in->retained != 0, pl, pn);
}

/* An answer carrying "re": completes the matching pending entry. [io] */
static void dispatch_answer(aipc_bus *b, const aipc_bus_in *in, const uint8_t *pl, uint32_t pn)
{
    int found;
    if (!in->has_re)
        found = 0;
    else if (in->op == AIPC_BUS_IN_ERROR)
        found = aipc_bus_ev_answer(b, in->re, AIPC_EREFUSED, NULL, in->code, strlen(in->code));
    else
        found = aipc_bus_ev_answer(b, in->re, 0, in->has_from ? &in->from : NULL, pl, pn);
    if (!found && in->op == AIPC_BUS_IN_ERROR)
        aipc_bus_ev_error(b, AIPC_EREFUSED, in->code, in->message[0] ? in->message : in->code);
}

/* One whole frame from the broker (decoder callback). Non-zero stops decoding: the connection
 * was lost or the client closed inside a callback. [io] */
static int on_frame(void *ctx, const uint8_t *meta, uint32_t ml, const uint8_t *pl, uint32_t pn)
{
    aipc_bus *b = ctx;
    aipc_bus_in in;
    if (aipc_bus_meta_parse(meta, ml, &in) != 0) {
        aipc_log(AIPC_LOG_WARN, "bus(%s): ignoring a frame with bad meta", b->pipe_utf8);
        return 0;
    }
    if (b->st == BS_HELLO) {
        if (in.op == AIPC_BUS_IN_WELCOME) {
            on_welcome(b, &in);
        } else if (in.op == AIPC_BUS_IN_ERROR || in.op == AIPC_BUS_IN_BYE) {
            if (in.op == AIPC_BUS_IN_ERROR)
                aipc_bus_ev_error(b, AIPC_EREFUSED, in.code, in.message[0] ? in.message : in.code);
            conn_lost(b, in.op == AIPC_BUS_IN_ERROR ? AIPC_EREFUSED : AIPC_EDISCONNECTED);
        }
        aipc_bus_in_free(&in);
        return (b->st == BS_READY && !aipc_bus_ev_closed(b)) ? 0 : 1;
    }
    switch (in.op) {
    case AIPC_BUS_IN_MSG: dispatch_msg(b, &in, pl, pn); break;
    case AIPC_BUS_IN_DIRECT:
        aipc_bus_ev_direct(b, &in.from, pl, pn);
        break;
    case AIPC_BUS_IN_REQ: dispatch_req(b, &in, pl, pn); break;
    case AIPC_BUS_IN_REP: case AIPC_BUS_IN_OK: case AIPC_BUS_IN_ERROR: case AIPC_BUS_IN_PONG:
    case AIPC_BUS_IN_STATS:
        dispatch_answer(b, &in, pl, pn);
        break;
    case AIPC_BUS_IN_DROPPED:
        aipc_bus_ev_dropped(b, in.count);
        break;
    case AIPC_BUS_IN_BYE:
        aipc_log(AIPC_LOG_INFO, "bus(%s): broker says bye (%s)", b->pipe_utf8, in.reason);
        conn_lost(b, AIPC_EDISCONNECTED);
        break;
    default:
        aipc_log(AIPC_LOG_DEBUG, "bus(%s): ignoring op '%s'", b->pipe_utf8, in.op_text);
        break;
    }
    aipc_bus_in_free(&in);
    return (b->st == BS_READY && !aipc_bus_ev_closed(b)) ? 0 : 1;
}

static void on_read_done(aipc_op *op, DWORD err, DWORD bytes)
{
    aipc_bus *b = CONTAINING_RECORD(op, aipc_bus, rd);
    b->rbusy = 0;
    if (b->st != BS_HELLO && b->st != BS_READY) {
        maybe_finish_drain(b);
        aipc_bus_unref(b);
        return;
    }
    if (err && err != ERROR_MORE_DATA) {
        b->sys_err = err;
        conn_lost(b, map_win32(err));
        aipc_bus_unref(b);
        return;
    }
    int rc;
    /* Without a dispatcher the callbacks of this read run here: hold the gate once for all of
     * them (each still checks it, so close waits only for the one running). */
    int held = !b->disp && aipc_gate_enter(&b->gate);
    if (b->rdirect)
        rc = aipc_decoder_commit(&b->dec, bytes, on_frame, b);
    else
        rc = aipc_decoder_feed(&b->dec, b->rbuf, bytes, on_frame, b, NULL);
    if (held)
        aipc_gate_leave(&b->gate);
    if (rc < 0 && (b->st == BS_HELLO || b->st == BS_READY)) {
        aipc_bus_ev_error(b, AIPC_EPROTO, "", "malformed frame from the broker");
        conn_lost(b, AIPC_EPROTO);
    }
    if ((b->st == BS_HELLO || b->st == BS_READY) && !aipc_bus_ev_closed(b) &&
        !aipc_bus_ev_should_pause(b))
        issue_read(b);        /* paused: the dispatcher's thread posts the resume task */
    aipc_bus_unref(b);
}

/* The dispatcher caught up: read again. [io] */
static void on_resume(aipc_op *op, DWORD err, DWORD bytes)
{
    aipc_bus *b = CONTAINING_RECORD(op, aipc_bus, resume_op);
    (void)err;
    (void)bytes;
    InterlockedExchange(&b->resume_posted, 0);
    if ((b->st == BS_HELLO || b->st == BS_READY) && !b->rbusy && !aipc_bus_ev_closed(b))
        issue_read(b);
    aipc_bus_unref(b);
}

/* ---- tasks posted from other threads ------------------------------------------------------ */

/* Wake: new frames to write and/or a new request deadline. [io] */
static void on_wake(aipc_op *op, DWORD err, DWORD bytes)
{
    aipc_bus *b = CONTAINING_RECORD(op, aipc_bus, wake_op);
    AcquireSRWLockExclusive(&b->lock);
    b->wake_posted = 0;
    uint64_t due = b->new_deadline;
    b->new_deadline = 0;
    ReleaseSRWLockExclusive(&b->lock);
    if (b->st != BS_CLOSED) {
        arm_req_timer(b, due);
        pump_write(b);
    }
    aipc_bus_unref(b);
}

/* Posts the wake task unless one is queued. Caller holds the lock. */
static void wake_locked(aipc_bus *b)
{
    if (b->wake_posted || b->closing)
        return;
    b->wake_posted = 1;
    aipc_bus_ref(b);
    if (!b->loop->eng->post(b->loop, &b->wake_op)) {
        b->wake_posted = 0;
        InterlockedDecrement(&b->refs);   /* never the last reference: the caller holds one */
    }
}

static void on_start(aipc_op *op, DWORD err, DWORD bytes)
{
    aipc_bus *b = CONTAINING_RECORD(op, aipc_bus, start_op);
    if (b->st == BS_OPENING)
        start_attempt(b);
    aipc_bus_unref(b);
}

/* Teardown on the I/O thread after aipc_bus_close (whose caller ran the final callbacks):
 * timers stop, I/O is cancelled (the handle closes when the completions are in), and the
 * user's reference goes. */
static void on_close(aipc_op *op, DWORD err, DWORD bytes)
{
    aipc_bus *b = CONTAINING_RECORD(op, aipc_bus, close_op);
    (void)err;
    (void)bytes;
    int had_conn = b->st == BS_HELLO || b->st == BS_READY;
    b->st = BS_CLOSED;
    aipc_timer_stop(b->loop, &b->conn_timer);
    aipc_timer_stop(b->loop, &b->req_timer);
    b->req_timer_due = 0;
    AcquireSRWLockExclusive(&b->lock);
    aipc_bus_queue_free(&b->q);          /* what wakes before this task did not write */
    ReleaseSRWLockExclusive(&b->lock);
    aipc_bus_queue_free(&b->ctl);
    if (b->h != INVALID_HANDLE_VALUE) {
        if (had_conn || b->rbusy || b->wbusy)
            CancelIoEx(b->h, NULL);
        maybe_finish_drain(b);
    }
    aipc_bus_unref(b);                   /* the user's reference */
    aipc_bus_unref(b);                   /* this task's reference */
}

/* ---- public API ------------------------------------------------------------------------------ */

void aipc_bus_options_init(aipc_bus_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->reconnect = 1;
    o->backoff_min_ms = AIPC_BUS_DEFAULT_BACKOFF_MIN_MS;
    o->backoff_max_ms = AIPC_BUS_DEFAULT_BACKOFF_MAX_MS;
    o->max_queue_bytes = AIPC_BUS_DEFAULT_MAX_QUEUE_BYTES;
    o->connect_timeout_ms = AIPC_BUS_DEFAULT_CONNECT_TIMEOUT_MS;
}

/* Smallest options struct accepted: everything up to and including on_error. */
#define BUS_OPTS_MIN_SIZE (offsetof(aipc_bus_options, on_error) + sizeof(void (*)(void)))

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int aipc_bus_connect(const aipc_bus_options *opts, aipc_bus **out)
{
    if (!out)
        return AIPC_EINVAL;
    *out = NULL;
    if (!opts || opts->size < BUS_OPTS_MIN_SIZE)
        return AIPC_EINVAL;
    if (opts->name && !aipc_bus_name_valid(opts->name))
        return AIPC_EINVAL;
    if (opts->size >= offsetof(aipc_bus_options, engine) + sizeof opts->engine &&
        opts->engine != PIPE_ASYNC && opts->engine != PIPE_OVERLAPPED)
        return AIPC_EINVAL;
    aipc_bus *b = calloc(1, sizeof *b);
    if (!b)
        return AIPC_ENOMEM;
    /* copy what the caller's version has; newer fields keep their defaults */
    aipc_bus_options def;
    aipc_bus_options_init(&def);
    def.reconnect = 0;
    memcpy(&def, opts, opts->size < sizeof def ? opts->size : sizeof def);
    if (opts->size < offsetof(aipc_bus_options, reconnect) + sizeof def.reconnect)
        def.reconnect = 1;
    b->o = def;
    b->o.size = sizeof b->o;
    if (!b->o.backoff_min_ms)
        b->o.backoff_min_ms = AIPC_BUS_DEFAULT_BACKOFF_MIN_MS;
    if (!b->o.backoff_max_ms)
        b->o.backoff_max_ms = AIPC_BUS_DEFAULT_BACKOFF_MAX_MS;
    if (b->o.backoff_max_ms < b->o.backoff_min_ms)
        b->o.backoff_max_ms = b->o.backoff_min_ms;
    if (!b->o.max_queue_bytes)
        b->o.max_queue_bytes = AIPC_BUS_DEFAULT_MAX_QUEUE_BYTES;
    if (!b->o.connect_timeout_ms)
        b->o.connect_timeout_ms = AIPC_BUS_DEFAULT_CONNECT_TIMEOUT_MS;
    if (opts->size < offsetof(aipc_bus_options, dispatcher) + sizeof(void *))
        b->o.dispatcher = NULL;
    if (opts->size < offsetof(aipc_bus_options, max_dispatch_bytes) + sizeof(uint64_t) ||
        !b->o.max_dispatch_bytes)
        b->o.max_dispatch_bytes = AIPC_DEFAULT_MAX_DISPATCH;
    aipc_gate_init(&b->gate);
    if (opts->size < offsetof(aipc_bus_options, server_owners) + sizeof(char *))
        b->o.server_owners = NULL;
    if (opts->size < offsetof(aipc_bus_options, engine) + sizeof b->o.engine)
        b->o.engine = PIPE_ASYNC;
    int orc = aipc_sec_expect_parse(b->o.server_owners ? b->o.server_owners
                                                       : AIPC_BUS_DEFAULT_SERVER_OWNERS, &b->owners);
    b->o.server_owners = NULL;      /* the caller's string is not kept */
    if (orc != 0) {
        free(b);
        return orc == AIPC_ENOMEM ? AIPC_ENOMEM : AIPC_EINVAL;
    }
    b->disp = b->o.dispatcher;
    if (b->disp)
        aipc_dispatcher_ref(b->disp);

    int rc = aipc_wname_normalize(opts->pipe_name ? opts->pipe_name : AIPC_DEFAULT_BROKER_PIPE,
                                  &b->pipe);
    if (rc == 0 && !(b->pipe_utf8 = aipc_wname_utf8(b->pipe)))
        rc = AIPC_ENOMEM;
    if (rc == 0 && opts->name && !(b->name = dup_str(opts->name)))
        rc = AIPC_ENOMEM;
    if (rc == 0 && !(b->rbuf = malloc(BUS_READ_SIZE + 1)))
        rc = AIPC_ENOMEM;
    const aipc_engine *eng = b->o.engine == PIPE_OVERLAPPED ? &aipc_engine_iocp : &aipc_engine_apc;
    if (rc == 0 && !(b->loop = eng->loop()))
        rc = aipc__syserr(GetLastError());
    b->refs = 1;
    aipc_bus_queue_init(&b->q, (size_t)(b->o.max_queue_bytes > SIZE_MAX ? SIZE_MAX
                                                                         : b->o.max_queue_bytes));
    aipc_bus_queue_init(&b->ctl, SIZE_MAX);
    if (rc != 0) {
        aipc_bus_unref(b);
        return rc;
    }
    b->o.pipe_name = b->pipe;
    b->o.name = b->name;
    InitializeSRWLock(&b->lock);
    aipc_bus_subs_init(&b->subs);
    aipc_bus_pending_init(&b->pend);
    b->max_payload = AIPC_DEFAULT_MAX_PAYLOAD;
    b->h = INVALID_HANDLE_VALUE;
    b->wake_op.cb = on_wake;
    b->start_op.cb = on_start;
    b->close_op.cb = on_close;
    b->resume_op.cb = on_resume;
    b->st = BS_OPENING;
    b->pub_state = AIPC_BUS_CONNECTING;
    b->rnd = (uint32_t)GetCurrentProcessId() * 2654435761u ^ (uint32_t)(uintptr_t)b ^
             (uint32_t)GetTickCount64();
    aipc_bus_ref(b);
    if (!b->loop->eng->post(b->loop, &b->start_op)) {
        DWORD e = GetLastError();
        b->refs = 1;
        aipc_bus_unref(b);
        return aipc__syserr(e);
    }
    aipc_log(AIPC_LOG_INFO, "bus(%s): connecting as '%s' (%s engine)", b->pipe_utf8,
             b->name ? b->name : "(anonymous)", b->loop->eng->name);
    *out = b;
    return 0;
}

/* Common gate for calls that queue frames: AIPC_ECLOSED / AIPC_EDISCONNECTED. Lock held. */
static int usable_locked(const aipc_bus *b)
{
    if (b->closing)
        return AIPC_ECLOSED;
    if (b->down)
        return AIPC_EDISCONNECTED;
    return 0;
}

/*
 * Builds a frame and queues it (bounded), optionally with a pending entry; posts a wake.
 * `pend` (may be NULL) gets its id set to `id`. Returns 0 or AIPC_E*.
 */
static int enqueue(aipc_bus *b, const aipc_bus_out *o, const void *data, size_t len,
                   aipc_bus_pend *pend, uint64_t tag)
{
    if (len && !data)
        return AIPC_EINVAL;
    size_t ml;
    char *meta = aipc_bus_meta_build(o, &ml);
    if (!meta)
        return AIPC_ENOMEM;
    if (ml > AIPC_MAX_META) {
        free(meta);
        return AIPC_ETOOBIG;
    }
    aipc_bus_qnode *n = aipc_bus_frame_new(meta, ml, data, len, tag);
    free(meta);
    if (!n)
        return AIPC_ENOMEM;
    AcquireSRWLockExclusive(&b->lock);
    int rc = usable_locked(b);
    if (rc == 0 && len > b->max_payload)
        rc = AIPC_ETOOBIG;
    if (rc == 0 && pend)
        rc = aipc_bus_pending_add(&b->pend, pend);
    if (rc == 0) {
        rc = aipc_bus_queue_push(&b->q, n, 1);
        if (rc != 0 && pend) {
            aipc_bus_pend undo;
            if (aipc_bus_pending_take(&b->pend, pend->id, &undo))
                free(undo.desc);
        }
    }
    if (rc == 0) {
        n = NULL;
        if (pend && pend->deadline_ms &&
            (b->new_deadline == 0 || pend->deadline_ms < b->new_deadline))
            b->new_deadline = pend->deadline_ms;
        if (b->ready || (pend && pend->deadline_ms))
            wake_locked(b);
    }
    ReleaseSRWLockExclusive(&b->lock);
    free(n);
    return rc;
}

/* Subscribe/unsubscribe: updates the set; sends the op now only when connected (a reconnect
 * re-sends the whole set). */
static int sub_op(aipc_bus *b, const char *filter, int add)
{
    if (!b || !aipc_bus_filter_valid(filter))
        return AIPC_EINVAL;
    uint64_t id = (uint64_t)InterlockedIncrement64(&b->next_id);
    size_t ml;
    char *meta = aipc_bus_meta_build(&(aipc_bus_out){.op = add ? "sub" : "unsub",
                                                     .topic = filter, .id = id}, &ml);
    aipc_bus_qnode *n = meta ? aipc_bus_frame_new(meta, ml, NULL, 0, 0) : NULL;
    free(meta);
    if (!n)
        return AIPC_ENOMEM;
    char desc[96];
    snprintf(desc, sizeof desc, "%s '%.64s'", add ? "subscribe" : "unsubscribe", filter);
    aipc_bus_pend e = {.id = id, .kind = AIPC_BUS_PEND_ACK, .desc = desc};
    AcquireSRWLockExclusive(&b->lock);
    int rc = usable_locked(b);
    int changed = 0;
    if (rc == 0) {
        changed = add ? aipc_bus_subs_add(&b->subs, filter) : aipc_bus_subs_remove(&b->subs, filter);
        if (changed < 0)
            rc = changed;
    }
    if (rc == 0 && changed && b->ready) {
        /* control traffic: not subject to the queue bound */
        if (aipc_bus_pending_add(&b->pend, &e) == 0) {
            aipc_bus_queue_push(&b->q, n, 0);
            n = NULL;
            wake_locked(b);
        }
    }
    ReleaseSRWLockExclusive(&b->lock);
    free(n);
    return rc;
}

int aipc_bus_subscribe(aipc_bus *bus, const char *filter)
{
    return sub_op(bus, filter, 1);
}

int aipc_bus_unsubscribe(aipc_bus *bus, const char *filter)
{
    return sub_op(bus, filter, 0);
}

int aipc_bus_publish(aipc_bus *bus, const char *topic, const void *data, size_t len, bool retain)
{
    if (!bus || !aipc_bus_topic_valid(topic))
        return AIPC_EINVAL;
    return enqueue(bus, &(aipc_bus_out){.op = "pub", .topic = topic, .retain = retain}, data, len,
                   NULL, 0);
}

/* Validates a send/req target: a client name or a decimal id. */
static int target_valid(const char *to)
{
    return to && (aipc_bus_name_valid(to) || aipc_bus_to_is_id(to, NULL));
}

int aipc_bus_send(aipc_bus *bus, const char *to, const void *data, size_t len)
{
    if (!bus || !target_valid(to))
        return AIPC_EINVAL;
    uint64_t id = (uint64_t)InterlockedIncrement64(&bus->next_id);
    char desc[160];
    snprintf(desc, sizeof desc, "send to '%s'", to);
    aipc_bus_pend e = {.id = id, .kind = AIPC_BUS_PEND_ACK, .desc = desc};
    return enqueue(bus, &(aipc_bus_out){.op = "send", .to = to, .id = id}, data, len, &e, id);
}

/* Shared by request/ping/stats: a pending entry with a deadline and a callback. */
static int64_t call_op(aipc_bus *b, const aipc_bus_out *o, const void *data, size_t len,
                       uint32_t timeout_ms, aipc_bus_pend_kind kind, aipc_bus_reply_fn cb,
                       void *user)
{
    uint64_t id = (uint64_t)InterlockedIncrement64(&b->next_id);
    aipc_bus_out out = *o;
    out.id = id;
    aipc_bus_pend e = {.id = id, .deadline_ms = now_ms() + timeout_ms, .kind = kind, .cb = cb,
                       .user = user};
    int rc = enqueue(b, &out, data, len, &e, id);
    return rc ? rc : (int64_t)id;
}

int64_t aipc_bus_request(aipc_bus *bus, const char *to, const void *data, size_t len,
                         uint32_t timeout_ms, aipc_bus_reply_fn cb, void *user)
{
    if (!bus || !target_valid(to) || !cb)
        return AIPC_EINVAL;
    return call_op(bus, &(aipc_bus_out){.op = "req", .to = to}, data, len,
                   timeout_ms ? timeout_ms : BUS_REQ_TIMEOUT_DEF, AIPC_BUS_PEND_REQ, cb, user);
}

int aipc_bus_reply(aipc_bus *bus, uint64_t to_id, uint64_t req_id, const void *data, size_t len)
{
    if (!bus || !to_id || !req_id)
        return AIPC_EINVAL;
    return enqueue(bus, &(aipc_bus_out){.op = "rep", .to_id = to_id, .re = req_id}, data, len,
                   NULL, 0);
}

int64_t aipc_bus_ping(aipc_bus *bus, uint32_t timeout_ms, aipc_bus_reply_fn cb, void *user)
{
    if (!bus || !cb)
        return AIPC_EINVAL;
    return call_op(bus, &(aipc_bus_out){.op = "ping"}, NULL, 0,
                   timeout_ms ? timeout_ms : BUS_PING_TIMEOUT_DEF, AIPC_BUS_PEND_PING, cb, user);
}

int64_t aipc_bus_stats(aipc_bus *bus, uint32_t timeout_ms, aipc_bus_reply_fn cb, void *user)
{
    if (!bus || !cb)
        return AIPC_EINVAL;
    return call_op(bus, &(aipc_bus_out){.op = "stats"}, NULL, 0,
                   timeout_ms ? timeout_ms : BUS_PING_TIMEOUT_DEF, AIPC_BUS_PEND_STATS, cb, user);
}

aipc_bus_state aipc_bus_get_state(aipc_bus *bus)
{
    return bus ? (aipc_bus_state)InterlockedCompareExchange(&bus->pub_state, 0, 0)
               : AIPC_BUS_CLOSED;
}

int aipc_bus_get_error(aipc_bus *bus, uint32_t *win32)
{
    if (!bus)
        return AIPC_EINVAL;
    if (win32)
        *win32 = (uint32_t)InterlockedCompareExchange(&bus->fail_win32, 0, 0);
    return (int)InterlockedCompareExchange(&bus->fail_code, 0, 0);
}

uint64_t aipc_bus_client_id(aipc_bus *bus)
{
    return bus ? (uint64_t)InterlockedCompareExchange64(&bus->client_id, 0, 0) : 0;
}

void aipc_bus_close(aipc_bus *b)
{
    if (!b)
        return;
    if (aipc_loop_gone(b->loop)) {
        /* Process exit (a static destructor in a DLL): every other thread is gone, perhaps
         * inside one of our locks. Nothing can run a callback any more; leave it all. */
        InterlockedExchange(&b->gate.closed, 1);
        return;
    }
    aipc_bus_ref(b);                     /* a served message may not free it under us */
    AcquireSRWLockExclusive(&b->lock);
    if (b->closing) {
        ReleaseSRWLockExclusive(&b->lock);
        aipc_bus_unref(b);
        return;
    }
    b->closing = 1;
    b->ready = 0;
    ReleaseSRWLockExclusive(&b->lock);
    /* No callback from now on; waits only for one running on another thread. */
    aipc_gate_close(&b->gate);
    aipc_bus_ev_final(b);
    /* The I/O thread closes the connection and drops the user's reference. At process exit
     * the thread may be gone (e.g. a static destructor in a DLL): the client is left as is. */
    aipc_bus_ref(b);
    if (aipc_loop_gone(b->loop) || !b->loop->eng->post(b->loop, &b->close_op)) {
        if (!aipc_loop_gone(b->loop))
            aipc_log(AIPC_LOG_ERROR, "bus(%s): cannot post the close task; leaking the client",
                     b->pipe_utf8);
        InterlockedDecrement(&b->refs);
    }
    aipc_bus_unref(b);
}
