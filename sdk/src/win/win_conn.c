/*
 * win_conn.c - one connected pipe's data path (win_conn.h): the pending read, the write pump
 * over the user's output source, cancel. Everything runs on the I/O thread of the connection's
 * engine; each operation goes through the engine table (loop_apc.c, loop_iocp.c), so the same
 * code runs on both.
 */
#include "win_conn.h"

#include "pipe_internal.h"   /* the engine table */

#include <stdlib.h>
#include <string.h>

#define CONN_IOV        512              /* pieces asked of out_next at once (the broker core
                                          * gives one per queued frame: 512 small frames fill
                                          * one coalesced write, as before the shared pump) */
#define CONN_INPLACE    (32u * 1024u)    /* a piece this large is written in place */
#define CONN_WBUF_MIN   (16u * 1024u)    /* coalescing buffer: from this, doubling, to gather_max */
#define CONN_INLINE     4   /* reads (and writes) handled inline in a row before yielding to
                             * the port (more starves write completions: broker 1 MiB pub/sub
                             * measured 1.6 s at 4 against 2.4 s at 16) */

static void on_read(aipc__op *op, DWORD err, DWORD bytes);
static void on_write(aipc__op *op, DWORD err, DWORD bytes);

int aipc__conn_init(aipc__conn *c, const aipc__conn_handler *hd, void *ctx,
                    const aipc__conn_cfg *cfg)
{
    memset(c, 0, sizeof *c);
    c->hd = hd;
    c->ctx = ctx;
    c->h = INVALID_HANDLE_VALUE;
    c->cfg = *cfg;
    c->rcap = cfg->rfirst;
    c->rd.cb = on_read;
    c->wr.cb = on_write;
    c->rbuf = malloc(c->rcap + 1);
    return c->rbuf ? 0 : AIPC_ENOMEM;
}

void aipc__conn_free(aipc__conn *c)
{
    free(c->rbuf);
    free(c->wbuf);
    c->rbuf = c->wbuf = NULL;
    c->wcap = 0;
}

/* An operation failed or could not be issued: tell the user once, then cancel the rest. */
static void fail(aipc__conn *c, DWORD err, const char *what)
{
    if (c->open)
        c->hd->on_error(c, err, what);
    aipc__conn_cancel(c);
}

/* ---- read side ------------------------------------------------------------------------------- */

/* Where the next read goes: the rest of a large frame in place, else the read buffer. */
static DWORD read_target(aipc__conn *c)
{
    size_t want = 0;
    uint8_t *dst = c->hd->read_direct ? c->hd->read_direct(c, &want) : NULL;
    if (dst && want >= c->cfg.direct_min) {
        c->rdirect = 1;
        c->rdst = dst;
        return want > c->cfg.direct_max ? c->cfg.direct_max : (DWORD)want;
    }
    c->rdirect = 0;
    c->rdst = c->rbuf;
    return (DWORD)c->rcap;
}

/* n bytes were read: to the user; a read that filled a small read buffer grows it (no read is
 * in flight). Returns 1 to read on. */
static int read_done(aipc__conn *c, DWORD n)
{
    int again = c->hd->input(c, c->rdst, n, c->rdirect) == 0;
    if (!c->rdirect && n == c->rcap && c->rcap < c->cfg.rmax) {
        uint8_t *nb = malloc(c->cfg.rmax + 1);
        if (nb) {
            free(c->rbuf);
            c->rbuf = nb;
            c->rcap = c->cfg.rmax;
        }
    }
    return again;
}

/* Issues the next read (the caller holds a reference). A read that succeeds at once (inline)
 * is handled here, in a loop; after CONN_INLINE of them in a row the next one's result is
 * posted to the port instead. */
static void issue_read(aipc__conn *c)
{
    for (int round = 0; c->open && !c->reading; round++) {
        DWORD len = read_target(c);
        c->rd.cb = on_read;
        DWORD e = c->eng->read(c->h, &c->rd, c->rdst, len);
        int yield = c->yield;
        c->yield = 0;
        if (e == 0) {
            c->ops++;
            c->reading = 1;
            c->hd->ref(c);
            return;
        }
        if (e != AIPC__IO_INLINE) {
            fail(c, e, "read");
            return;
        }
        DWORD got = 0;
        DWORD er = GetOverlappedResult(c->h, &c->rd.ov, &got, FALSE) ? 0 : GetLastError();
        if (er == ERROR_MORE_DATA)
            er = 0;
        if (er) {
            fail(c, er, "read");
            return;
        }
        if ((round + 1 >= CONN_INLINE || yield) && c->port &&
            PostQueuedCompletionStatus(c->port, got, AIPC__KEY_IO, &c->rd.ov)) {
            c->ops++;               /* yield: it comes back through the port like any other */
            c->reading = 1;
            c->hd->ref(c);
            return;
        }
        c->ops++;                   /* counted while the user handles it, like a completion */
        int again = read_done(c, got);
        c->ops--;
        if (!again)
            return;
    }
}

/* Read completion. ERROR_MORE_DATA is a partial read, not an error. */
static void on_read(aipc__op *op, DWORD err, DWORD bytes)
{
    aipc__conn *c = CONTAINING_RECORD(op, aipc__conn, rd);
    int again = 0;
    c->reading = 0;
    if (err == ERROR_MORE_DATA)
        err = 0;
    if (c->open) {
        if (err)
            fail(c, err, "read");
        else
            again = read_done(c, bytes);
    }
    c->ops--;
    if (again)
        issue_read(c);
    c->hd->done(c);
    c->hd->unref(c);
}

void aipc__conn_read(aipc__conn *c)
{
    if (!c->open || c->reading)
        return;
    c->hd->ref(c);
    issue_read(c);
    c->hd->unref(c);
}

/* ---- write side ------------------------------------------------------------------------------ */

/* Gathers the small pieces at the head of iov[0..k) into the coalescing buffer; 0 when it
 * cannot grow (the first piece is then written in place). *pieces = the pieces it took (the
 * last perhaps partly). */
static size_t gather(aipc__conn *c, const aipc_iov *iov, int k, int *pieces)
{
    size_t queued = 0;
    for (int i = 0; i < k && queued < c->cfg.gather_max && (i == 0 || iov[i].len < CONN_INPLACE);
         i++)
        queued += iov[i].len;
    size_t need = CONN_WBUF_MIN;
    while (need < queued && need < c->cfg.gather_max)
        need *= 2;
    if (need > c->wcap) {
        uint8_t *nb = realloc(c->wbuf, need);
        if (!nb)
            return 0;
        c->wbuf = nb;
        c->wcap = need;
    }
    size_t used = 0;
    *pieces = 0;
    for (int i = 0; i < k && used < c->wcap; i++) {
        if (i > 0 && iov[i].len >= CONN_INPLACE)
            break;                  /* the large piece goes in place with the next write */
        size_t take = iov[i].len;
        if (take > c->wcap - used)
            take = c->wcap - used;
        memcpy(c->wbuf + used, iov[i].base, take);
        used += take;
        *pieces = i + 1;
        if (take < iov[i].len)
            break;
    }
    return used;
}

/* Writes what the output source offers, one write at a time (the caller holds a reference).
 * A write that succeeds at once (inline) is reported here and the next one started, until
 * nothing is queued or a write stays pending; after CONN_INLINE of them in a row the next
 * one's result is posted to the port instead (as for reads: a writer that keeps the pipe busy
 * cannot hold the I/O thread from the other connections, its own read and the timers). */
static void pump(aipc__conn *c)
{
    for (int round = 0; c->open && !c->writing; round++) {
        aipc_iov iov[CONN_IOV];
        int k = c->hd->out_next(c, iov, CONN_IOV);
        if (k <= 0 || !c->open) {
            if (c->wbuf) {          /* idle: a quiet connection keeps no coalescing buffer */
                free(c->wbuf);
                c->wbuf = NULL;
                c->wcap = 0;
            }
            return;
        }
        const uint8_t *buf = iov[0].base;
        /* In place, at most `piece` bytes - but a remainder that would be left below
         * CONN_INPLACE goes with this write (a 1 MiB frame's header-and-meta tail, or a frame
         * just over `piece`, is not written alone or copied into the coalescing buffer). */
        size_t len = iov[0].len > (size_t)c->cfg.piece + CONN_INPLACE ? c->cfg.piece : iov[0].len;
        int pieces = 1;
        if (k > 1 && iov[0].len < CONN_INPLACE) {
            int took = 0;
            size_t used = gather(c, iov, k, &took);
            if (used) {
                buf = c->wbuf;
                len = used;
                pieces = took;
            }
        }
        if (c->hd->out_issued)
            c->hd->out_issued(c, pieces);
        c->wr.cb = on_write;
        DWORD e = c->eng->write(c->h, &c->wr, buf, (DWORD)len);
        if (e == 0) {
            c->ops++;
            c->writing = 1;
            c->hd->ref(c);
            return;
        }
        DWORD got = 0;
        if (e == AIPC__IO_INLINE)
            e = GetOverlappedResult(c->h, &c->wr.ov, &got, FALSE) ? 0 : GetLastError();
        DWORD e0 = e;               /* the real error (ERROR_NO_DATA: the pipe is closing) */
        if (e == 0 && got == 0)
            e = ERROR_NO_DATA;
        if (e) {
            fail(c, e, got == 0 && e == ERROR_NO_DATA && e0 == 0 ? "write made no progress"
                                                                 : "write");
            c->hd->out_drop(c);
            return;
        }
        if (round + 1 >= CONN_INLINE && c->port &&
            PostQueuedCompletionStatus(c->port, got, AIPC__KEY_IO, &c->wr.ov)) {
            c->ops++;               /* yield: on_write reports it like any other completion */
            c->writing = 1;
            c->hd->ref(c);
            return;
        }
        c->hd->out_done(c, got);
        if (!c->open) {
            c->hd->out_drop(c);
            return;
        }
    }
}

/* Write completion: report what was written, then the next write. A write that moved no byte
 * would never end: the connection fails. */
static void on_write(aipc__op *op, DWORD err, DWORD bytes)
{
    aipc__conn *c = CONTAINING_RECORD(op, aipc__conn, wr);
    c->writing = 0;
    if (c->open) {
        if (err)
            fail(c, err, "write");
        else if (bytes == 0)
            fail(c, ERROR_NO_DATA, "write made no progress");
        else
            c->hd->out_done(c, bytes);
    }
    c->ops--;
    if (!c->open)
        c->hd->out_drop(c);
    else
        pump(c);
    c->hd->done(c);
    c->hd->unref(c);
}

void aipc__conn_kick(aipc__conn *c)
{
    if (!c->open || c->writing)
        return;
    c->hd->ref(c);
    pump(c);
    c->hd->unref(c);
}

/* ---- start, cancel, close -------------------------------------------------------------------- */

void aipc__conn_start(aipc__conn *c, const aipc__engine *eng, aipc__loop *loop, HANDLE h)
{
    c->eng = eng;
    c->loop = loop;
    c->h = h;
    c->open = 1;
    c->rdirect = 0;
    c->yield = 0;
}

void aipc__conn_cancel(aipc__conn *c)
{
    c->open = 0;
    if ((c->reading || c->writing) && c->h != INVALID_HANDLE_VALUE)
        CancelIoEx(c->h, NULL);
}

int aipc__conn_pending(const aipc__conn *c)
{
    return c->ops;
}

void aipc__conn_reset(aipc__conn *c)
{
    c->open = 0;
    c->rdirect = 0;
    c->rdst = NULL;
    c->h = INVALID_HANDLE_VALUE;
}

void aipc__conn_close_handle(aipc__conn *c, aipc__op *listen)
{
    if (c->h == INVALID_HANDLE_VALUE)
        return;
    c->eng->detach(c->loop, c->h, listen);
    CloseHandle(c->h);
    aipc__conn_reset(c);
}
