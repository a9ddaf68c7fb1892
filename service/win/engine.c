/*
 * engine.c - the broker engine's loop (see engine.h, engine_internal.h): create, run on the
 * caller's thread until a requested stop has finished, free.
 *
 * The completion port is dispatched by aipc__iocp_dispatch (sdk/src/win/win_iocp.c), the same
 * code that runs the SDK's PIPE_OVERLAPPED I/O thread; after each dispatch the loop refills the
 * listener backlog, attaches instances that connected at once, runs the handler's tick and
 * timers, and flushes every connection with new output (many deliveries, one write).
 */
#include "engine_internal.h"

#include "asyncipc/asyncipc.h"
#include "win_error.h"

#include <stdlib.h>
#include <string.h>

#define ENG_RETRY_MS  100       /* retry of a failed instance creation */
/* Completions taken per dequeue: 1 = GetQueuedCompletionStatus, more = one batched
 * GetQueuedCompletionStatusEx. A compile-time choice (README.md: measured under Wine). */
#ifndef ENG_IOCP_BATCH
#define ENG_IOCP_BATCH 1
#endif

/* Task posted by broker_engine_request_stop (I/O thread). */
static void on_stop(aipc__op *op, DWORD err, DWORD n)
{
    broker_engine *e = CONTAINING_RECORD(op, broker_engine, stop_op);
    (void)err;
    (void)n;
    e->stop_requested = true;
}

/* Formats GetLastError-style text into err. */
static void set_err(char *err, size_t n, const char *what, DWORD code)
{
    aipc__win_errtext(err, n, what, code);
}

int broker_engine_create(broker_engine **out, const broker_engine_config *cfg,
                         const broker_engine_handler *h, char *err, size_t errlen)
{
    *out = NULL;
    broker_engine *e = calloc(1, sizeof *e);
    if (!e) {
        set_err(err, errlen, "out of memory", ERROR_NOT_ENOUGH_MEMORY);
        return BROKER_ENGINE_SYS;
    }
    e->cfg = *cfg;
    e->h = *h;
    e->stop_op.cb = on_stop;
    e->pipe_path = _wcsdup(cfg->pipe_path);
    e->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    if (!e->pipe_path || !e->port) {
        set_err(err, errlen, "CreateIoCompletionPort", GetLastError());
        broker_engine_free(e);
        return BROKER_ENGINE_SYS;
    }
    int rc = eng_listen_start(e, err, errlen);
    if (rc != BROKER_ENGINE_OK) {
        broker_engine_free(e);
        return rc;
    }
    *out = e;
    return BROKER_ENGINE_OK;
}

void broker_engine_request_stop(broker_engine *e)
{
    if (InterlockedExchange(&e->stop_posted, 1) == 0)
        aipc__iocp_post(e->port, &e->stop_op, "broker");
}

size_t broker_engine_clients(const broker_engine *e)
{
    return e->nopen;
}

/* Starts stopping: no more listening, goodbyes queued, every client closed once flushed. */
static void begin_stop(broker_engine *e)
{
    if (e->stopping)
        return;
    e->stopping = true;
    DWORD grace = e->cfg.stop_grace_ms ? e->cfg.stop_grace_ms : 3000;
    e->stop_deadline = GetTickCount64() + grace;
    aipc_log(AIPC_LOG_INFO, "broker: stopping (%lu clients)", (unsigned long)e->nopen);
    eng_close_listeners(e);
    while (e->ready) {
        aipc_wconn *c = e->ready;
        e->ready = c->dnext;
        c->st = C_CLOSING;
        eng_conn_maybe_finish(c);
    }
    e->h.shutdown(e->h.ctx);
    for (aipc_wconn *c = e->all; c; c = c->next)
        if (c->st == C_OPEN)
            aipc_wconn_close(c);
}

int broker_engine_run(broker_engine *e)
{
    eng_drain_ready(e);
    e->timer_wait = e->h.timer ? e->h.timer(e->h.ctx) : INFINITE;
    eng_flush_dirty(e);
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
                    eng_conn_close_now(c);
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
        if (e->dirty)
            timeout = 0;        /* flushes left over from a slice: poll, then go on */
        /* One entry per dequeue by default (win_iocp.c, README.md: measured under Wine). */
        aipc__iocp_dispatch(e->port, timeout, ENG_IOCP_BATCH, "broker");
        if (e->stop_requested && !e->stopping)
            begin_stop(e);
        if (e->need_listener && !e->stopping)
            eng_listen_next(e);
        eng_drain_ready(e);
        if (e->h.tick)
            e->h.tick(e->h.ctx);
        if (e->h.timer)
            e->timer_wait = e->h.timer(e->h.ctx);
        eng_flush_dirty(e);
    }
    return 0;
}

void broker_engine_free(broker_engine *e)
{
    if (!e)
        return;
    /* After run returned every connection is finished; on an early error only listeners or
     * refused instances may remain. Cancel them and drain their completions (bounded). */
    for (aipc_wconn *c = e->all; c; c = c->next) {
        c->st = C_CLOSING;
        aipc__conn_cancel(&c->io);  /* not open: a cancelled read is no failure to log */
        if (c->inflight && c->h != INVALID_HANDLE_VALUE)
            CancelIoEx(c->h, NULL);
    }
    ULONGLONG until = GetTickCount64() + 2000;
    while (e->all && e->port) {
        aipc_wconn *c = e->all;
        if (c->inflight == 0) {
            eng_conn_finish(c);
            continue;
        }
        ULONGLONG now = GetTickCount64();
        if (now >= until)
            break;
        /* the ops' callbacks see closing connections: they count down and finish them */
        aipc__iocp_dispatch(e->port, (DWORD)(until - now), 16, "broker");
    }
    if (e->all)     /* the kernel still owns buffers: leak them rather than free in use */
        aipc_log(AIPC_LOG_ERROR, "broker: %s", "pipe I/O still pending at exit");
    if (e->port)
        CloseHandle(e->port);
    free(e->pipe_path);
    free(e);
}
