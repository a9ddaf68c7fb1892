/*
 * engine.c - named-pipe listener and connections on one I/O completion port (see engine.h).
 *
 * Op records: every overlapped operation is an eng_op whose first member is its OVERLAPPED and
 * which carries the callback to run when the completion is dequeued; the loop recovers the op
 * from the OVERLAPPED pointer (CONTAINING_RECORD) and calls it.
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
 * Close protocol: conn_close_now marks the connection closing, CancelIoEx's everything in
 * flight and waits; when the last completion arrives conn_finish detaches it from the handler,
 * closes the handle (once) and frees the memory. aipc_wconn_close (graceful) first lets queued
 * output drain, then does the same.
 *
 * Latency (each call below is a wineserver round trip under Wine): connected instances get
 * FILE_SKIP_COMPLETION_PORT_ON_SUCCESS, so a ReadFile/WriteFile that succeeds at once is handled
 * inline instead of through a dequeue; what a read produced is written before the next read is
 * issued; the port is drained one entry per GetQueuedCompletionStatus call.
 *
 * Listening: `backlog` instances (default 2) always wait in ConnectNamedPipe, so clients that
 * connect at the same moment do not see ERROR_PIPE_BUSY. When one connects, the backlog is
 * refilled BEFORE the connected one is handed to the handler.
 */
#include "engine.h"

#include "asyncipc/asyncipc.h"
#include "win_error.h"
#include "win_listen.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define ENG_RBUF      (64u * 1024u)     /* read buffer of a busy connection */
#define ENG_RBUF_MIN  (4u * 1024u)      /* ... and of a new/idle one (grows on a full read) */
#define ENG_WBUF      (256u * 1024u)    /* coalescing buffer: grows up to this */
#define ENG_WBUF_MIN  (16u * 1024u)     /* ... from this; large ones are dropped when idle */
#define ENG_DIRECT    (32u * 1024u)     /* pieces this large are written in place */
#define ENG_RDIRECT   (64u * 1024u)     /* frames missing this much are read in place */
#define ENG_IOV       512
#define ENG_KEY_IO    1
#define ENG_KEY_STOP  2
#define ENG_RETRY_MS  100
#define ENG_BACKLOG   2         /* instances kept pending in ConnectNamedPipe (default) ... */
#define ENG_BACKLOG_MAX 4       /* ... and at most: a burst of connects finds one free */
#define ENG_INLINE    4         /* reads handled inline in a row before yielding to the port
                                 * (more starves write completions: 1 MiB pub/sub measured
                                 * 1.6 s at 4 against 2.4 s at 16) */

typedef struct eng_op eng_op;
typedef void (*eng_cb)(eng_op *op, DWORD err, DWORD bytes);

struct eng_op {
    OVERLAPPED ov;          /* first: the kernel's pointer is the op's pointer */
    eng_cb cb;
    aipc_wconn *c;
};

enum { C_LISTEN, C_OPEN, C_CLOSING };

struct aipc_wconn {
    aipc_engine *e;
    HANDLE h;
    eng_op cn, rd, wr;
    int inflight;           /* ops handed to the kernel whose completion has not been dequeued */
    int st;
    void *user;             /* handler's connection, NULL until attached */
    unsigned long pid;
    uint8_t *rbuf;
    uint32_t rcap;          /* ENG_RBUF_MIN until a read fills it, then ENG_RBUF */
    uint8_t *wbuf;
    size_t wcap;
    bool writing;           /* a write is in flight */
    bool rd_direct;         /* the read in flight targets the handler's frame buffer */
    bool close_flush;       /* close once output is drained */
    bool abort;             /* close now, whatever is queued (aipc_wconn_abort) */
    bool dirty;             /* on the engine's flush list */
    bool skip_port;         /* FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is set: ops that succeed
                             * at once queue no packet and are handled inline */
    bool identified;        /* the handler's identify ran (before the first input) */
    bool listening;         /* counted in e->nlisten: its accept is pending */
    bool dropped;           /* a listener closed on purpose: its handle goes once the
                             * cancelled accept completes and no longer holds the name */
    aipc_wconn *prev, *next;    /* all connections (listener included) */
    aipc_wconn *dnext;          /* flush list */
};

struct aipc_engine {
    HANDLE port;
    aipc_engine_config cfg;
    wchar_t *pipe_path;
    aipc_engine_handler h;
    int nlisten;                /* instances pending in ConnectNamedPipe (c->listening) */
    int backlog;                /* how many we keep pending (cfg.listen_backlog, 1..4) */
    aipc_wconn *all;
    aipc_wconn *dirty;
    aipc_wconn *ready;          /* connected instances waiting to be attached (dnext chain) */
    size_t nopen;
    bool need_listener;         /* creating an instance failed: retry on a timer */
    bool squat_logged;          /* "name taken while we had no instance" was logged */
    unsigned long squat_refusals;   /* retries that found the name held by another server */
    bool stopping, stop_requested;
    LONG stop_posted;
    ULONGLONG stop_deadline;
    bool hard_cancelled;
    DWORD timer_wait;           /* what the handler's timer asked for last (I/O thread) */
};

static void conn_close_now(aipc_wconn *c);
static void listen_next(aipc_engine *e);

/* Formats GetLastError-style text into err. */
static void set_err(char *err, size_t n, const char *what, DWORD code)
{
    aipc__win_errtext(err, n, what, code);
}

/* Allocates a connection record (no handle yet). */
static aipc_wconn *conn_alloc(aipc_engine *e)
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
    c->e = e;
    c->h = INVALID_HANDLE_VALUE;
    c->cn.c = c->rd.c = c->wr.c = c;
    c->next = e->all;
    if (e->all)
        e->all->prev = c;
    e->all = c;
    return c;
}

/* Unlinks and frees a connection whose ops have all completed; closes its handle once. */
static void conn_finish(aipc_wconn *c)
{
    aipc_engine *e = c->e;
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
static void conn_maybe_finish(aipc_wconn *c)
{
    if (c->st == C_CLOSING && c->inflight == 0)
        conn_finish(c);
}

/* Read completion (I/O thread). */
static void on_read(eng_op *op, DWORD err, DWORD n);
static void flush_dirty(aipc_engine *e);

/* Hands n bytes read on c to the handler, then writes what they produced at once (before the
 * next read is issued, so a forwarded request or reply leaves one server round trip earlier).
 * Returns false when c is no longer open (it may then have been finished: do not touch it). */
static bool read_process(aipc_wconn *c, DWORD err, DWORD n)
{
    aipc_engine *e = c->e;
    if (err != 0 && err != ERROR_MORE_DATA) {
        if (!aipc__win_peer_gone(err))
            aipc_log(AIPC_LOG_WARN, "broker: read from client pid %lu failed: %lu", c->pid,
                     (unsigned long)err);
        conn_close_now(c);
        return false;
    }
    int rc = 0;
    if (n > 0 && !c->identified) {
        /* Who the client is, before any of its bytes is processed (impersonation works only
         * once something was read). */
        c->identified = true;
        if (e->h.identify && e->h.identify(e->h.ctx, c->user, c->h, c->pid) < 0) {
            conn_close_now(c);
            return false;
        }
    }
    if (n > 0)
        rc = c->rd_direct ? e->h.read_commit(e->h.ctx, c->user, n)
                          : e->h.input(e->h.ctx, c->user, c->rbuf, n);
    if (rc < 0) {
        conn_close_now(c);
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
    flush_dirty(e);
    c->inflight--;
    if (c->st != C_OPEN) {
        conn_maybe_finish(c);
        return false;
    }
    return true;
}

/* Starts the next read; closes the connection if the pipe is gone. A read that completes at
 * once (skip_port) is processed here, in a loop; after ENG_INLINE of them in a row the next
 * one's result is posted to the port instead, so one busy client cannot starve the others. */
static void conn_post_read(aipc_wconn *c)
{
    aipc_engine *e = c->e;
    for (int round = 0; c->st == C_OPEN; round++) {
        memset(&c->rd.ov, 0, sizeof c->rd.ov);
        c->rd.cb = on_read;
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
                if (PostQueuedCompletionStatus(e->port, got, ENG_KEY_IO, &c->rd.ov)) {
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
        conn_close_now(c);
        return;
    }
}

static void on_read(eng_op *op, DWORD err, DWORD n)
{
    aipc_wconn *c = op->c;
    c->inflight--;
    if (c->st != C_OPEN) {
        conn_maybe_finish(c);
        return;
    }
    /* Zero-byte completions happen on byte pipes only for zero-length writes: keep reading. */
    if (read_process(c, err, n))
        conn_post_read(c);
}

/* Write completion (I/O thread). */
static void on_write(eng_op *op, DWORD err, DWORD n);

/* Starts one write of queued output if none is in flight; graceful close once drained. A
 * write that completes at once (skip_port: no packet) is consumed here and the next one
 * started, until the queue is empty or a write stays pending. */
static void conn_pump_write(aipc_wconn *c)
{
    aipc_engine *e = c->e;
    aipc_wiov iov[ENG_IOV];
again:
    if (c->st == C_OPEN && c->abort) {
        conn_close_now(c);          /* cancels a write that never completes, too */
        return;
    }
    if (c->st != C_OPEN || c->writing)
        return;
    int k = e->h.out_next(e->h.ctx, c->user, iov, ENG_IOV);
    if (k <= 0) {
        if (c->close_flush) {
            conn_close_now(c);
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
                conn_close_now(c);
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
            conn_close_now(c);
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
    conn_close_now(c);
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

static void on_write(eng_op *op, DWORD err, DWORD n)
{
    aipc_wconn *c = op->c;
    aipc_engine *e = c->e;
    c->inflight--;
    c->writing = false;
    if (c->st != C_OPEN) {
        conn_maybe_finish(c);
        return;
    }
    if (err != 0) {
        if (!aipc__win_peer_gone(err))
            aipc_log(AIPC_LOG_WARN, "broker: write to client pid %lu failed: %lu", c->pid,
                     (unsigned long)err);
        conn_close_now(c);
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
    conn_mark_dirty(c);             /* flush_dirty closes it, outside the handler's callback */
}

/* Abortive close: cancel everything in flight; the last completion frees the connection. */
static void conn_close_now(aipc_wconn *c)
{
    if (c->st == C_CLOSING)
        return;
    if (c->st == C_OPEN && c->e->nopen && c->user)
        aipc_log(AIPC_LOG_DEBUG, "broker: closing connection of pid %lu", c->pid);
    c->st = C_CLOSING;
    if (c->inflight > 0 && c->h != INVALID_HANDLE_VALUE)
        CancelIoEx(c->h, NULL);
    conn_maybe_finish(c);
}

/* Attaches a connected instance to the handler and starts reading. */
static void conn_accept(aipc_wconn *c)
{
    aipc_engine *e = c->e;
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
        conn_close_now(c);
        return;
    }
    void *u = e->h.attach(e->h.ctx, c, pid);
    if (!u) {
        aipc_log(AIPC_LOG_WARN, "broker: refused a connection from pid %lu", (unsigned long)pid);
        conn_close_now(c);
        return;
    }
    c->user = u;
    e->nopen++;
    conn_mark_dirty(c);     /* the handler may have queued a greeting */
    conn_post_read(c);      /* last: a failed read may finish (free) c */
}

/* c's accept is over (completed, or about to be cancelled): it no longer counts as pending. */
static void listener_forget(aipc_wconn *c)
{
    if (c->listening) {
        c->listening = false;
        c->e->nlisten--;
    }
}

/* Closes every instance pending in ConnectNamedPipe. */
static void close_listeners(aipc_engine *e)
{
    for (aipc_wconn *c = e->all, *n; c && e->nlisten; c = n) {
        n = c->next;            /* c stays linked until its cancelled accept completes */
        if (c->listening) {
            listener_forget(c);
            c->dropped = true;
            conn_close_now(c);
        }
    }
}

/* Connect completion of a listening instance (I/O thread). */
static void on_connect(eng_op *op, DWORD err, DWORD n)
{
    aipc_wconn *c = op->c;
    aipc_engine *e = c->e;
    c->inflight--;
    listener_forget(c);
    if (c->st == C_CLOSING) {
        conn_maybe_finish(c);
        return;
    }
    aipc__accept a = aipc__listen_done(err);
    if (a != AIPC__ACCEPT_CONNECTED) {
        /* GONE: the client came and went; anything else: drop this instance. */
        if (a == AIPC__ACCEPT_FAILED && err != ERROR_OPERATION_ABORTED)
            aipc_log(AIPC_LOG_WARN, "broker: ConnectNamedPipe completed with %lu", (unsigned long)err);
        conn_close_now(c);
        if (!e->stopping)
            listen_next(e);
        return;
    }
    /* Post the next listening instance first, then hand this one over. */
    if (!e->stopping)
        listen_next(e);
    conn_accept(c);
}

/* Creates one pipe instance (win_listen.c) bound to the port; first = with
 * FILE_FLAG_FIRST_PIPE_INSTANCE. */
static HANDLE make_instance(aipc_engine *e, bool first, DWORD *err)
{
    aipc__listen_cfg lc = {e->pipe_path, e->cfg.sa, PIPE_UNLIMITED_INSTANCES,
                           e->cfg.pipe_buffer ? e->cfg.pipe_buffer : 64u * 1024u};
    HANDLE h = aipc__listen_instance(&lc, first, err);
    if (h == INVALID_HANDLE_VALUE)
        return h;
    if (!CreateIoCompletionPort(h, e->port, ENG_KEY_IO, 0)) {
        *err = GetLastError();
        CloseHandle(h);
        return INVALID_HANDLE_VALUE;
    }
    return h;
}

/* Starts accepting on instance c. Returns 1 pending, 0 connected already, -1 failed. */
static int post_connect(aipc_wconn *c)
{
    memset(&c->cn.ov, 0, sizeof c->cn.ov);
    c->cn.cb = on_connect;
    c->st = C_LISTEN;
    DWORD er;
    switch (aipc__listen_accept(c->h, &c->cn.ov, &er)) {
    case AIPC__ACCEPT_PENDING:      /* a packet comes, also when it finished at once */
        c->inflight++;
        return 1;
    case AIPC__ACCEPT_CONNECTED:    /* a client got in between create and accept: no packet */
        return 0;
    case AIPC__ACCEPT_GONE:
        return -1;
    default:
        aipc_log(AIPC_LOG_WARN, "broker: ConnectNamedPipe failed: %lu", (unsigned long)er);
        return -1;
    }
}

/* Whether any instance of ours still exists: 1 = a handle that is open (listening, connected,
 * or closing with I/O in flight), 0 = none, -1 = only dropped listeners whose cancelled accept
 * has not completed yet (wait for them: a client could still reach them, and they do not hold
 * the name for long). */
static int have_instance(const aipc_engine *e)
{
    int r = 0;
    for (const aipc_wconn *c = e->all; c; c = c->next) {
        if (c->h == INVALID_HANDLE_VALUE)
            continue;
        if (!c->dropped)
            return 1;
        r = -1;
    }
    return r;
}

/* With no instance of ours left, the pipe name is free: whoever creates an instance now owns
 * the pipe. Our next one must be a FIRST instance; if another server holds the name, we do not
 * join it (its instances would receive our clients): retry later, logged once per episode.
 * Returns the new instance or INVALID_HANDLE_VALUE. */
static HANDLE make_first_again(aipc_engine *e, DWORD *er)
{
    /* Wine does not enforce FILE_FLAG_FIRST_PIPE_INSTANCE: probe for a server first. */
    HANDLE h = INVALID_HANDLE_VALUE;
    *er = ERROR_PIPE_BUSY;
    if (!aipc__listen_name_served(e->pipe_path))
        h = make_instance(e, true, er);
    if (h != INVALID_HANDLE_VALUE) {
        if (e->squat_logged)
            aipc_log(AIPC_LOG_WARN, "broker: the pipe name is ours again");
        e->squat_logged = false;
        return h;
    }
    if (*er == ERROR_ACCESS_DENIED || *er == ERROR_PIPE_BUSY) {
        e->squat_refusals++;
        if (!e->squat_logged)
            aipc_log(AIPC_LOG_ERROR, "broker: every instance of the pipe was gone and another "
                     "server now holds its name: not joining it, retrying until it is free");
        e->squat_logged = true;
        *er = 0;                    /* reported above */
    }
    return INVALID_HANDLE_VALUE;
}

/* Makes sure one instance is pending in ConnectNamedPipe. Instances that connect at once are
 * queued on e->ready and attached after the new listener is posted. */
static void listen_next(aipc_engine *e)
{
    for (int tries = 0; e->nlisten < e->backlog && tries < 64; tries++) {
        DWORD er;
        int have = have_instance(e);
        if (have < 0) {
            e->need_listener = true;
            return;
        }
        HANDLE h = have ? make_instance(e, false, &er) : make_first_again(e, &er);
        if (h == INVALID_HANDLE_VALUE) {
            if (er)
                aipc_log(AIPC_LOG_ERROR, "broker: CreateNamedPipe failed: %lu (retrying)",
                         (unsigned long)er);
            e->need_listener = true;
            return;
        }
        aipc_wconn *c = conn_alloc(e);
        if (!c) {
            CloseHandle(h);
            e->need_listener = true;
            return;
        }
        c->h = h;
        int r = post_connect(c);
        if (r == 1) {
            c->listening = true;
            e->nlisten++;
        } else if (r == 0) {
            c->dnext = e->ready;
            e->ready = c;
        } else {
            c->st = C_CLOSING;
            conn_finish(c);
        }
    }
    e->need_listener = e->nlisten < e->backlog;
}

/* Attaches instances that connected synchronously (after a listener is pending again). */
static void drain_ready(aipc_engine *e)
{
    while (e->ready) {
        aipc_wconn *c = e->ready;
        e->ready = c->dnext;
        c->dnext = NULL;
        conn_accept(c);
    }
}

int aipc_engine_create(aipc_engine **out, const aipc_engine_config *cfg,
                       const aipc_engine_handler *h, char *err, size_t errlen)
{
    *out = NULL;
    aipc_engine *e = calloc(1, sizeof *e);
    if (!e) {
        set_err(err, errlen, "out of memory", ERROR_NOT_ENOUGH_MEMORY);
        return AIPC_ENGINE_SYS;
    }
    e->cfg = *cfg;
    e->h = *h;
    e->backlog = cfg->listen_backlog ? (int)cfg->listen_backlog : ENG_BACKLOG;
    if (e->backlog > ENG_BACKLOG_MAX)
        e->backlog = ENG_BACKLOG_MAX;
    e->pipe_path = _wcsdup(cfg->pipe_path);
    e->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    if (!e->pipe_path || !e->port) {
        set_err(err, errlen, "CreateIoCompletionPort", GetLastError());
        aipc_engine_free(e);
        return AIPC_ENGINE_SYS;
    }
    /* Probe: an existing server of this name means "in use" even where the kernel does not
     * enforce FILE_FLAG_FIRST_PIPE_INSTANCE (Wine); other failures are left to creating the
     * instance to report. */
    if (aipc__listen_name_served(e->pipe_path)) {
        snprintf(err, errlen, "pipe name is in use by another server");
        aipc_engine_free(e);
        return AIPC_ENGINE_PIPE_BUSY;
    }
    DWORD er;
    HANDLE first = make_instance(e, true, &er);
    if (first == INVALID_HANDLE_VALUE) {
        if (er == ERROR_ACCESS_DENIED || er == ERROR_PIPE_BUSY) {
            snprintf(err, errlen, "pipe name is in use by another server (error %lu)",
                     (unsigned long)er);
            aipc_engine_free(e);
            return AIPC_ENGINE_PIPE_BUSY;
        }
        set_err(err, errlen, "CreateNamedPipe", er);
        aipc_engine_free(e);
        return AIPC_ENGINE_SYS;
    }
    aipc_wconn *c = conn_alloc(e);
    if (!c) {
        CloseHandle(first);
        set_err(err, errlen, "out of memory", ERROR_NOT_ENOUGH_MEMORY);
        aipc_engine_free(e);
        return AIPC_ENGINE_SYS;
    }
    c->h = first;
    int r = post_connect(c);
    if (r == 1) {
        c->listening = true;
        e->nlisten++;
    } else if (r == 0) {
        c->dnext = e->ready;
        e->ready = c;
    } else {
        c->st = C_CLOSING;
        conn_finish(c);
    }
    listen_next(e);                 /* the rest of the backlog */
    *out = e;
    return AIPC_ENGINE_OK;
}

void aipc_engine_request_stop(aipc_engine *e)
{
    if (InterlockedExchange(&e->stop_posted, 1) == 0)
        PostQueuedCompletionStatus(e->port, 0, ENG_KEY_STOP, NULL);
}

size_t aipc_engine_clients(const aipc_engine *e)
{
    return e->nopen;
}

int aipc_engine_listening(const aipc_engine *e)
{
    return e->nlisten;
}

unsigned long aipc_engine_squat_refusals(const aipc_engine *e)
{
    return e->squat_refusals;
}

void aipc_engine__test_drop_listener(aipc_engine *e)
{
    if (!e->nlisten)
        return;
    close_listeners(e);
    e->need_listener = true;
}

/* Starts stopping: no more listening, goodbyes queued, every client closed once flushed. */
static void begin_stop(aipc_engine *e)
{
    if (e->stopping)
        return;
    e->stopping = true;
    DWORD grace = e->cfg.stop_grace_ms ? e->cfg.stop_grace_ms : 3000;
    e->stop_deadline = GetTickCount64() + grace;
    aipc_log(AIPC_LOG_INFO, "broker: stopping (%lu clients)", (unsigned long)e->nopen);
    close_listeners(e);
    while (e->ready) {
        aipc_wconn *c = e->ready;
        e->ready = c->dnext;
        c->st = C_CLOSING;
        conn_maybe_finish(c);
    }
    e->h.shutdown(e->h.ctx);
    for (aipc_wconn *c = e->all; c; c = c->next)
        if (c->st == C_OPEN)
            aipc_wconn_close(c);
}

/* Flushes every connection that has new output (after a batch of completions). */
static void flush_dirty(aipc_engine *e)
{
    while (e->dirty) {
        aipc_wconn *c = e->dirty;
        e->dirty = c->dnext;
        c->dnext = NULL;
        c->dirty = false;
        conn_pump_write(c);     /* may close (and free) c */
    }
}

int aipc_engine_run(aipc_engine *e)
{
    OVERLAPPED_ENTRY ent[1];
    drain_ready(e);
    e->timer_wait = e->h.timer ? e->h.timer(e->h.ctx) : INFINITE;
    flush_dirty(e);
    for (;;) {
        if (e->stopping) {
            if (!e->all)
                break;
            ULONGLONG now = GetTickCount64();
            if (now >= e->stop_deadline && !e->hard_cancelled) {
                /* Grace over: cancel whatever still waits (slow readers). */
                e->hard_cancelled = true;
                e->stop_deadline = now + 1000;
                for (aipc_wconn *c = e->all, *n; c; c = n) {
                    n = c->next;
                    conn_close_now(c);
                }
                continue;
            } else if (now >= e->stop_deadline) {
                aipc_log(AIPC_LOG_ERROR, "broker: %s", "I/O did not complete after cancel; leaving");
                break;
            }
        }
        DWORD timeout = INFINITE;
        if (e->need_listener && !e->stopping)
            timeout = ENG_RETRY_MS;
        if (e->stopping) {
            ULONGLONG now = GetTickCount64();
            timeout = e->stop_deadline > now ? (DWORD)(e->stop_deadline - now) : 0;
        }
        if (e->h.tick && timeout > 1000)
            timeout = 1000;
        if (timeout > e->timer_wait)
            timeout = e->timer_wait;
        /* One entry per call: under Wine each dequeue is a remove_completion request, and
         * GetQueuedCompletionStatusEx asks once more after the last entry (a request on the
         * critical path of every wake-up); the single-entry call does not. */
        ULONG n = 0;
        DWORD qbytes = 0;
        ULONG_PTR qkey = 0;
        OVERLAPPED *qov = NULL;
        if (GetQueuedCompletionStatus(e->port, &qbytes, &qkey, &qov, timeout) || qov) {
            ent[0].lpCompletionKey = qkey;
            ent[0].lpOverlapped = qov;
            ent[0].dwNumberOfBytesTransferred = qbytes;
            n = 1;
        } else {
            DWORD er = GetLastError();
            if (er != WAIT_TIMEOUT) {
                aipc_log(AIPC_LOG_ERROR, "broker: GetQueuedCompletionStatus failed: %lu",
                         (unsigned long)er);
                Sleep(10);   /* never spin on a broken port */
            }
        }
        for (ULONG i = 0; i < n; i++) {
            if (ent[i].lpCompletionKey == ENG_KEY_STOP) {
                e->stop_requested = true;
                continue;
            }
            if (!ent[i].lpOverlapped)
                continue;
            eng_op *op = CONTAINING_RECORD(ent[i].lpOverlapped, eng_op, ov);
            DWORD bytes = 0, err = 0;
            if (!GetOverlappedResult(op->c->h, &op->ov, &bytes, FALSE))
                err = GetLastError();
            op->cb(op, err, bytes);
        }
        if (e->stop_requested && !e->stopping)
            begin_stop(e);
        if (e->need_listener && !e->stopping)
            listen_next(e);
        drain_ready(e);
        if (e->h.tick)
            e->h.tick(e->h.ctx);
        if (e->h.timer)
            e->timer_wait = e->h.timer(e->h.ctx);
        flush_dirty(e);
    }
    return 0;
}

void aipc_engine_free(aipc_engine *e)
{
    if (!e)
        return;
    /* After run returned every connection is finished; on an early error only listeners or
     * refused instances may remain. Cancel them and drain their completions (bounded). */
    for (aipc_wconn *c = e->all; c; c = c->next) {
        c->st = C_CLOSING;
        if (c->inflight && c->h != INVALID_HANDLE_VALUE)
            CancelIoEx(c->h, NULL);
    }
    ULONGLONG until = GetTickCount64() + 2000;
    while (e->all && e->port) {
        aipc_wconn *c = e->all;
        if (c->inflight == 0) {
            conn_finish(c);
            continue;
        }
        OVERLAPPED_ENTRY ent[16];
        ULONG n = 0;
        ULONGLONG now = GetTickCount64();
        if (now >= until)
            break;
        if (!GetQueuedCompletionStatusEx(e->port, ent, 16, &n, (DWORD)(until - now), FALSE))
            continue;
        for (ULONG i = 0; i < n; i++) {
            if (!ent[i].lpOverlapped)
                continue;
            eng_op *op = CONTAINING_RECORD(ent[i].lpOverlapped, eng_op, ov);
            op->c->inflight--;
        }
    }
    if (e->all)     /* the kernel still owns buffers: leak them rather than free in use */
        aipc_log(AIPC_LOG_ERROR, "broker: %s", "pipe I/O still pending at exit");
    if (e->port)
        CloseHandle(e->port);
    free(e->pipe_path);
    free(e);
}
