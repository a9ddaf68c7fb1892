/*
 * engine_conn.c - one client connection of the broker engine (engine_internal.h): the handler of
 * its pipe connection (c->io, sdk/src/win/win_conn.c - the SDK's one read/write pump): reads
 * handed to the core, the core's queued output as the connection's output source, the flush
 * list, and the close protocol (graceful close once drained, abort, close now).
 *
 * Buffer lifetimes
 *   - The connection's read buffer (4 KiB, replaced by 64 KiB after a read that filled it, only
 *     between reads) and its coalescing buffer (16..256 KiB, sized to what is queued, dropped
 *     when the connection goes idle - never while a write from it is in flight) are freed only
 *     when no op of the connection is in flight. An idle client costs a few KiB.
 *   - Large output pieces are written straight from the core's memory, at most the pipe buffer's
 *     size per WriteFile (the reader starts on one piece while the next is written); the core
 *     keeps them until out_consume, which runs only when the write completed, and the core is
 *     told to forget the connection (detach) only after every completion has come back.
 *   - Reads of a large frame's remainder go straight into the core's assembly buffer
 *     (read_direct); it stays valid until read_commit, which runs on the read's completion,
 *     or until detach, which again waits for every completion. A frame the core assembles in
 *     a recycled block (service/core/blkcache.c) is offered whole: one read of its rest; after
 *     a large frame, the core may offer a recycled block for the whole next one at the frame
 *     boundary (aipc_blk_land: one read per frame of the same size), same lifetime rules.
 *   `inflight` counts the accept and, through the connection's ref/unref, every read and write
 *   in flight and every pump running: the connection is finished when it drops to 0.
 *
 * Close protocol: eng_conn_close_now marks the connection closing, cancels everything in flight
 * and waits; when the last completion arrives eng_conn_finish detaches it from the handler,
 * closes the handle (once) and frees the memory. aipc_wconn_close (graceful) first lets queued
 * output drain, then does the same.
 *
 * Latency (each call below is a wineserver round trip under Wine): connected instances get
 * FILE_SKIP_COMPLETION_PORT_ON_SUCCESS, so a ReadFile/WriteFile that succeeds at once is handled
 * inline instead of through a dequeue (win_conn.c); what a read produced is written before the
 * next read is issued.
 */
#include "engine_internal.h"

#include "asyncipc/asyncipc.h"
#include "win_error.h"

#include <stdlib.h>
#include <string.h>

#define ENG_RBUF      (64u * 1024u)     /* read buffer of a busy connection */
#define ENG_RBUF_MIN  (4u * 1024u)      /* ... and of a new one (grows on a full read) */
#define ENG_WBUF      (256u * 1024u)    /* coalescing buffer: grows up to this */
#define ENG_PIECE     (4u << 20)        /* largest in-place write. NOT the pipe buffer: forwarding
                                         * 1 MiB publications measured 82-92 MB/s with 64 KiB
                                         * pieces vs 102-149 with 1 or 4 MiB (bench_broker, quiet,
                                         * interleaved); the reader here is a subscriber that
                                         * drains whole frames, so fewer writes win */
#define ENG_RDIRECT   (64u * 1024u)     /* frames missing this much are read in place */
#define ENG_RDIRECT_MAX (16u << 20)     /* largest read into a frame */

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

/* ---- the pipe connection's handler (win_conn.c; on the I/O thread) -------------------------- */

static uint8_t *io_read_direct(aipc__conn *io, size_t *want)
{
    aipc_wconn *c = io->ctx;
    broker_engine *e = c->e;
    return e->h.read_direct ? e->h.read_direct(e->h.ctx, c->user, want) : NULL;
}

/* Hands n bytes read on c to the handler, then writes what they produced at once (before the
 * next read is issued, so a forwarded request or reply leaves one server round trip earlier).
 * Zero bytes happen on byte pipes only for zero-length writes: keep reading. */
static int io_input(aipc__conn *io, uint8_t *data, size_t n, int direct)
{
    aipc_wconn *c = io->ctx;
    broker_engine *e = c->e;
    int rc = 0;
    if (n > 0 && !c->identified) {
        /* Who the client is, before any of its bytes is processed (impersonation works only
         * once something was read). */
        c->identified = true;
        if (e->h.identify && e->h.identify(e->h.ctx, c->user, c->h, c->pid) < 0) {
            eng_conn_close_now(c);
            return 1;
        }
    }
    if (n > 0)
        rc = direct ? e->h.read_commit(e->h.ctx, c->user, n)
                    : e->h.input(e->h.ctx, c->user, data, n);
    if (rc < 0) {
        eng_conn_close_now(c);
        return 1;
    }
    if (rc > 0)
        io->yield = 1;      /* heavy input: the next read that completes at once waits its turn */
    eng_flush_dirty(e);     /* c is held: its read is still counted */
    return c->st == C_OPEN ? 0 : 1;
}

/* The core's queued output; a graceful close happens once it is drained, an abort at once. */
static int io_out_next(aipc__conn *io, aipc_iov *iov, int max)
{
    aipc_wconn *c = io->ctx;
    broker_engine *e = c->e;
    if (c->abort) {
        eng_conn_close_now(c);
        return 0;
    }
    int k = e->h.out_next(e->h.ctx, c->user, iov, max);
    if (k <= 0 && c->close_flush)
        eng_conn_close_now(c);
    return k;
}

static void io_out_issued(aipc__conn *io, int pieces)
{
    aipc_wconn *c = io->ctx;
    if (c->e->h.out_issued)
        c->e->h.out_issued(c->e->h.ctx, c->user, pieces);
}

static void io_out_done(aipc__conn *io, size_t n)
{
    aipc_wconn *c = io->ctx;
    c->e->h.out_consume(c->e->h.ctx, c->user, n);
}

/* What was not written goes with the connection (the core drops it at detach). */
static void io_out_drop(aipc__conn *io)
{
    (void)io;
}

static void io_on_error(aipc__conn *io, DWORD err, const char *what)
{
    aipc_wconn *c = io->ctx;
    if (!aipc__win_peer_gone(err))
        aipc_log(AIPC_LOG_WARN, "broker: %s on client pid %lu failed: %lu", what, c->pid,
                 (unsigned long)err);
    eng_conn_close_now(c);
}

static void io_done(aipc__conn *io)
{
    (void)io;               /* the connection finishes in io_unref */
}

static void io_ref(aipc__conn *io)
{
    ((aipc_wconn *)io->ctx)->inflight++;
}

static void io_unref(aipc__conn *io)
{
    aipc_wconn *c = io->ctx;
    c->inflight--;
    eng_conn_maybe_finish(c);   /* may free c */
}

static const aipc__conn_handler g_io = {
    io_read_direct, io_input, io_out_next, io_out_done, io_out_drop, io_on_error, io_done,
    io_ref, io_unref, io_out_issued,
};

/* ---- connection records ---------------------------------------------------------------------- */

/* Allocates a connection record (no handle yet). */
aipc_wconn *eng_conn_alloc(broker_engine *e)
{
    aipc_wconn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    aipc__conn_cfg cfg = {ENG_RBUF_MIN, ENG_RBUF, ENG_PIECE, ENG_WBUF, ENG_RDIRECT,
                          ENG_RDIRECT_MAX};
    if (aipc__conn_init(&c->io, &g_io, c, &cfg) != 0) {   /* idle clients stay small */
        aipc__conn_free(&c->io);
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
    aipc__conn_free(&c->io);
    free(c);
}

/* Called after an op of c completed: finishes a closing connection with nothing in flight. */
void eng_conn_maybe_finish(aipc_wconn *c)
{
    if (c->st == C_CLOSING && c->inflight == 0)
        eng_conn_finish(c);
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
    aipc__conn_cancel(&c->io);          /* its reads and writes */
    if (c->io.h == INVALID_HANDLE_VALUE && c->inflight > 0 && c->h != INVALID_HANDLE_VALUE)
        CancelIoEx(c->h, NULL);         /* not connected yet: the accept */
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
    c->io.rd.skip_port = c->io.wr.skip_port =
        SetFileCompletionNotificationModes(c->h, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS) != FALSE;
    c->io.port = e->port;   /* where an inline read yields to the other connections */
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
    aipc__conn_start(&c->io, &aipc__engine_iocp, NULL, c->h);
    conn_mark_dirty(c);     /* the handler may have queued a greeting */
    aipc__conn_read(&c->io);    /* last: a failed read may finish (free) c */
}

/* Flushes up to ENG_FLUSH_SLICE connections that have new output (engine_internal.h). */
void eng_flush_dirty(broker_engine *e)
{
    for (unsigned n = 0; e->dirty && n < ENG_FLUSH_SLICE; n++) {
        aipc_wconn *c = e->dirty;
        e->dirty = c->dnext;
        c->dnext = NULL;
        c->dirty = false;
        if (c->st != C_OPEN)
            continue;
        if (c->abort)
            eng_conn_close_now(c);  /* cancels a write that never completes, too */
        else
            aipc__conn_kick(&c->io);    /* may close (and free) c */
    }
}
