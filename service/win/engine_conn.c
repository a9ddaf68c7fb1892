/*
 * engine_conn.c - one client connection of the broker engine (engine_internal.h): reads handed
 * to the handler, coalesced writes of its queued output, the flush list, and the close protocol.
 *
 * Buffer lifetimes
 *   - A connection's read buffer (4 KiB, replaced by 64 KiB after the first full read, only
 *     between reads) and its write buffer (16..256 KiB, sized to what is queued, dropped when
 *     the connection goes idle - never while a write from it is in flight) belong to the
 *     connection and are freed only when no op of it is in flight. An idle client costs a few
 *     KiB of broker memory.
 *   - Large output pieces are written straight from the handler's memory; the handler keeps them
 *     until out_consume, which runs only on the write's completion, and the handler is told to
 *     forget the connection (detach) only after every completion has come back.
 *   - Reads of a large frame's remainder go straight into the handler's assembly buffer
 *     (read_direct); it stays valid until read_commit, which runs on the read's completion,
 *     or until detach, which again waits for every completion.
 *
 * Close protocol: eng_conn_close_now marks the connection closing, CancelIoEx's everything in
 * flight and waits; when the last completion arrives eng_conn_finish detaches it from the
 * handler, closes the handle (once) and frees the memory. aipc_wconn_close (graceful) first lets
 * queued output drain, then does the same.
 *
 * Latency (each call below is a wineserver round trip under Wine): connected instances get
 * FILE_SKIP_COMPLETION_PORT_ON_SUCCESS, so a ReadFile/WriteFile that succeeds at once is handled
 * inline instead of through a dequeue; what a read produced is written before the next read is
 * issued.
 */
#include "engine_internal.h"

#include "asyncipc/asyncipc.h"
#include "win_error.h"

#include <stdlib.h>
#include <string.h>

#define ENG_RBUF      (64u * 1024u)     /* read buffer of a busy connection */
#define ENG_RBUF_MIN  (4u * 1024u)      /* ... and of a new/idle one (grows on a full read) */
#define ENG_WBUF      (256u * 1024u)    /* coalescing buffer: grows up to this */
#define ENG_WBUF_MIN  (16u * 1024u)     /* ... from this; large ones are dropped when idle */
#define ENG_DIRECT    (32u * 1024u)     /* pieces this large are written in place */
#define ENG_RDIRECT   (64u * 1024u)     /* frames missing this much are read in place */
#define ENG_IOV       512
#define ENG_INLINE    4         /* reads handled inline in a row before yielding to the port
                                 * (more starves write completions: 1 MiB pub/sub measured
                                 * 1.6 s at 4 against 2.4 s at 16) */

static void on_read(aipc__op *op, DWORD err, DWORD n);
static void on_write(aipc__op *op, DWORD err, DWORD n);

/* The core's connection interface, implemented by the engine (the connection begins with it). */
static void conn_ops_want_write(aipc_conn *c)
{
    aipc_wconn_want_write((aipc_wconn *)c);
}

static void conn_ops_close(aipc_conn *c)
{
    aipc_wconn_close((aipc_wconn *)c);
}

static void conn_ops_abort(aipc_conn *c)
{
    aipc_wconn_abort((aipc_wconn *)c);
}

static const aipc_conn_ops g_conn_ops = { conn_ops_want_write, conn_ops_close, conn_ops_abort };

/* Allocates a connection record (no handle yet). */
aipc_wconn *eng_conn_alloc(broker_engine *e)
{
    aipc_wconn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->rbuf = malloc(ENG_RBUF_MIN);     /* idle clients stay small: see on_read */
    c->rcap = ENG_RBUF_MIN;
    if (!c->rbuf) {
        free(c);
        return NULL;
    }
    c->conn.ops = &g_conn_ops;
    c->e = e;
    c->h = INVALID_HANDLE_VALUE;
    c->next = e->all;
    if (e->all)
        e->all->prev = c;
    e->all = c;
    return c;
}

/* Unlinks and frees a connection whose ops have all completed; closes its handle once. */
void eng_conn_finish(aipc_wconn *c)
{
    broker_engine *e = c->e;
    if (c->user) {
        void *u = c->user;
        c->user = NULL;
        e->nopen--;
        e->h.detach(e->h.ctx, u);
    }
    if (c->h != INVALID_HANDLE_VALUE) {
        CloseHandle(c->h);
        c->h = INVALID_HANDLE_VALUE;
    }
    if (c->dirty) {                 /* drop from the flush list */
        aipc_wconn **pp = &e->dirty;
        while (*pp && *pp != c)
            pp = &(*pp)->dnext;
        if (*pp)
            *pp = c->dnext;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        e->all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->rbuf);
    free(c->wbuf);
    free(c);
}

/* Called after an op of c completed: finishes a closing connection with nothing in flight. */
void eng_conn_maybe_finish(aipc_wconn *c)
{
    if (c->st == C_CLOSING && c->inflight == 0)
        eng_conn_finish(c);
}

/* Hands n bytes read on c to the handler, then writes what they produced at once (before the
 * next read is issued, so a forwarded request or reply leaves one server round trip earlier).
 * Returns false when c is no longer open (it may then have been finished: do not touch it). */
static bool read_process(aipc_wconn *c, DWORD err, DWORD n)
{
    broker_engine *e = c->e;
    if (err != 0 && err != ERROR_MORE_DATA) {
        if (!aipc__win_peer_gone(err))
            aipc_log(AIPC_LOG_WARN, "broker: read from client pid %lu failed: %lu", c->pid,
                     (unsigned long)err);
        eng_conn_close_now(c);
        return false;
    }
    int rc = 0;
    if (n > 0 && !c->identified) {
        /* Who the client is, before any of its bytes is processed (impersonation works only
         * once something was read). */
        c->identified = true;
        if (e->h.identify && e->h.identify(e->h.ctx, c->user, c->h, c->pid) < 0) {
            eng_conn_close_now(c);
            return false;
        }
    }
    if (n > 0)
        rc = c->rd_direct ? e->h.read_commit(e->h.ctx, c->user, n)
                          : e->h.input(e->h.ctx, c->user, c->rbuf, n);
    if (rc < 0) {
        eng_conn_close_now(c);
        return false;
    }
    if (!c->rd_direct && n == c->rcap && c->rcap < ENG_RBUF) {
        /* A full read: this client is busy, give it the large buffer (no read is in flight). */
        uint8_t *nb = malloc(ENG_RBUF);
        if (nb) {
            free(c->rbuf);
            c->rbuf = nb;
            c->rcap = ENG_RBUF;
        }
    }
    /* Flush now. The hold keeps c alive if a failed write closes it (or itself). */
    c->inflight++;
    eng_flush_dirty(e);
    c->inflight--;
    if (c->st != C_OPEN) {
        eng_conn_maybe_finish(c);
        return false;
    }
    return true;
}

/* Starts the next read; closes the connection if the pipe is gone. A read that completes at
 * once (skip_port) is processed here, in a loop; after ENG_INLINE of them in a row the next
 * one's result is posted to the port instead, so one busy client cannot starve the others. */
static void conn_post_read(aipc_wconn *c)
{
    broker_engine *e = c->e;
    for (int round = 0; c->st == C_OPEN; round++) {
        memset(&c->rd.ov, 0, sizeof c->rd.ov);
        c->rd.cb = on_read;
        c->rd.h = c->h;
        uint8_t *buf = c->rbuf;
        DWORD len = c->rcap;
        size_t want = 0;
        uint8_t *direct = e->h.read_direct ? e->h.read_direct(e->h.ctx, c->user, &want) : NULL;
        c->rd_direct = direct && want >= ENG_RDIRECT;
        if (c->rd_direct) {
            /* Large frame: read straight into it (the handler keeps it until commit/detach). */
            buf = direct;
            len = (DWORD)(want > (16u << 20) ? (16u << 20) : want);
        }
        if (ReadFile(c->h, buf, len, NULL, &c->rd.ov)) {
            if (!c->skip_port) {        /* the packet is queued as well */
                c->inflight++;
                return;
            }
            DWORD got = 0;
            DWORD er = GetOverlappedResult(c->h, &c->rd.ov, &got, FALSE) ? 0 : GetLastError();
            if (round + 1 >= ENG_INLINE && er == 0) {
                /* Yield: the completed read goes through the port like any other. */
                if (PostQueuedCompletionStatus(e->port, got, AIPC__KEY_IO, &c->rd.ov)) {
                    c->inflight++;
                    return;
                }
            }
            if (!read_process(c, er, got))
                return;
            continue;
        }
        DWORD er = GetLastError();
        if (er == ERROR_IO_PENDING) {
            c->inflight++;
            return;
        }
        if (!aipc__win_peer_gone(er))
            aipc_log(AIPC_LOG_WARN, "broker: ReadFile on client pid %lu failed: %lu", c->pid,
                     (unsigned long)er);
        eng_conn_close_now(c);
        return;
    }
}

static void on_read(aipc__op *op, DWORD err, DWORD n)
{
    aipc_wconn *c = CONTAINING_RECORD(op, aipc_wconn, rd);
    c->inflight--;
    if (c->st != C_OPEN) {
        eng_conn_maybe_finish(c);
        return;
    }
    /* Zero-byte completions happen on byte pipes only for zero-length writes: keep reading. */
    if (read_process(c, err, n))
        conn_post_read(c);
}

/* Starts one write of queued output if none is in flight; graceful close once drained. A
 * write that completes at once (skip_port: no packet) is consumed here and the next one
 * started, until the queue is empty or a write stays pending. */
static void conn_pump_write(aipc_wconn *c)
{
    broker_engine *e = c->e;
    aipc_iov iov[ENG_IOV];
again:
    if (c->st == C_OPEN && c->abort) {
        eng_conn_close_now(c);          /* cancels a write that never completes, too */
        return;
    }
    if (c->st != C_OPEN || c->writing)
        return;
    int k = e->h.out_next(e->h.ctx, c->user, iov, ENG_IOV);
    if (k <= 0) {
        if (c->close_flush) {
            eng_conn_close_now(c);
        } else if (c->wbuf) {
            free(c->wbuf);          /* idle: a quiet client keeps no write buffer */
            c->wbuf = NULL;
            c->wcap = 0;
        }
        return;
    }
    const void *buf;
    DWORD len;
    if (iov[0].len >= ENG_DIRECT) {
        /* Large piece: write it in place (capped so one write never exceeds 4 MiB). */
        buf = iov[0].base;
        len = (DWORD)(iov[0].len > (4u << 20) ? (4u << 20) : iov[0].len);
    } else {
        /* Size the buffer to what is queued (small clients keep a small buffer). */
        size_t queued = 0;
        for (int i = 0; i < k && queued < ENG_WBUF && (i == 0 || iov[i].len < ENG_DIRECT); i++)
            queued += iov[i].len;
        size_t need = ENG_WBUF_MIN;
        while (need < queued && need < ENG_WBUF)
            need *= 2;
        if (need > c->wcap) {
            uint8_t *nb = realloc(c->wbuf, need);
            if (!nb) {
                aipc_log(AIPC_LOG_ERROR, "broker: out of memory for a write buffer");
                eng_conn_close_now(c);
                return;
            }
            c->wbuf = nb;
            c->wcap = need;
        }
        size_t used = 0;
        for (int i = 0; i < k && used < c->wcap; i++) {
            if (iov[i].len >= ENG_DIRECT && used > 0)
                break;              /* the large piece goes in place with the next write */
            size_t take = iov[i].len;
            if (take > c->wcap - used)
                take = c->wcap - used;
            memcpy(c->wbuf + used, iov[i].base, take);
            used += take;
            if (take < iov[i].len)
                break;
        }
        buf = c->wbuf;
        len = (DWORD)used;
    }
    memset(&c->wr.ov, 0, sizeof c->wr.ov);
    c->wr.cb = on_write;
    c->wr.h = c->h;
    if (WriteFile(c->h, buf, len, NULL, &c->wr.ov)) {
        if (c->skip_port) {
            DWORD done = 0;
            if (GetOverlappedResult(c->h, &c->wr.ov, &done, FALSE)) {
                e->h.out_consume(e->h.ctx, c->user, done);
                goto again;
            }
            DWORD er = GetLastError();
            if (!aipc__win_peer_gone(er))
                aipc_log(AIPC_LOG_WARN, "broker: write to client pid %lu failed: %lu", c->pid,
                         (unsigned long)er);
            eng_conn_close_now(c);
            return;
        }
        c->inflight++;              /* the packet is queued as well */
        c->writing = true;
        return;
    }
    DWORD er = GetLastError();
    if (er == ERROR_IO_PENDING) {
        c->inflight++;
        c->writing = true;
        return;
    }
    if (!aipc__win_peer_gone(er))
        aipc_log(AIPC_LOG_WARN, "broker: WriteFile to client pid %lu failed: %lu", c->pid,
                 (unsigned long)er);
    eng_conn_close_now(c);
}

/* Puts c on the list of connections to flush after the current batch. */
static void conn_mark_dirty(aipc_wconn *c)
{
    if (c->dirty || c->st != C_OPEN)
        return;
    c->dirty = true;
    c->dnext = c->e->dirty;
    c->e->dirty = c;
}

static void on_write(aipc__op *op, DWORD err, DWORD n)
{
    aipc_wconn *c = CONTAINING_RECORD(op, aipc_wconn, wr);
    broker_engine *e = c->e;
    c->inflight--;
    c->writing = false;
    if (c->st != C_OPEN) {
        eng_conn_maybe_finish(c);
        return;
    }
    if (err != 0) {
        if (!aipc__win_peer_gone(err))
            aipc_log(AIPC_LOG_WARN, "broker: write to client pid %lu failed: %lu", c->pid,
                     (unsigned long)err);
        eng_conn_close_now(c);
        return;
    }
    e->h.out_consume(e->h.ctx, c->user, n);
    conn_mark_dirty(c);
}

void aipc_wconn_want_write(aipc_wconn *c)
{
    conn_mark_dirty(c);
}

void aipc_wconn_close(aipc_wconn *c)
{
    if (c->st != C_OPEN)
        return;
    c->close_flush = true;
    conn_mark_dirty(c);
}

void aipc_wconn_abort(aipc_wconn *c)
{
    if (c->st != C_OPEN)
        return;
    c->abort = true;
    conn_mark_dirty(c);             /* eng_flush_dirty closes it, outside the handler's callback */
}

/* Abortive close: cancel everything in flight; the last completion frees the connection. */
void eng_conn_close_now(aipc_wconn *c)
{
    if (c->st == C_CLOSING)
        return;
    if (c->st == C_OPEN && c->e->nopen && c->user)
        aipc_log(AIPC_LOG_DEBUG, "broker: closing connection of pid %lu", c->pid);
    c->st = C_CLOSING;
    if (c->inflight > 0 && c->h != INVALID_HANDLE_VALUE)
        CancelIoEx(c->h, NULL);
    eng_conn_maybe_finish(c);
}

/* Attaches a connected instance to the handler and starts reading. */
void eng_conn_accept(aipc_wconn *c)
{
    broker_engine *e = c->e;
    ULONG pid = 0;
    if (!GetNamedPipeClientProcessId(c->h, &pid))
        pid = 0;
    c->pid = pid;
    c->st = C_OPEN;
    /* Set once connected (not on the listening instance, whose connect may complete at once):
     * reads and writes that succeed at once are then handled inline, without a dequeue. */
    c->skip_port = SetFileCompletionNotificationModes(c->h, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS)
                       != FALSE;
    if (e->stopping) {
        eng_conn_close_now(c);
        return;
    }
    void *u = e->h.attach(e->h.ctx, c, pid);
    if (!u) {
        aipc_log(AIPC_LOG_WARN, "broker: refused a connection from pid %lu", (unsigned long)pid);
        eng_conn_close_now(c);
        return;
    }
    c->user = u;
    e->nopen++;
    conn_mark_dirty(c);     /* the handler may have queued a greeting */
    conn_post_read(c);      /* last: a failed read may finish (free) c */
}

/* Flushes up to ENG_FLUSH_SLICE connections that have new output (engine_internal.h). */
void eng_flush_dirty(broker_engine *e)
{
    for (unsigned n = 0; e->dirty && n < ENG_FLUSH_SLICE; n++) {
        aipc_wconn *c = e->dirty;
        e->dirty = c->dnext;
        c->dnext = NULL;
        c->dirty = false;
        conn_pump_write(c);     /* may close (and free) c */
    }
}
