/*
 * engine_listen.c - the broker engine's listener (engine_internal.h): instances waiting for
 * clients, created and accepted on through the SDK's listener (sdk/src/win/win_listen.c).
 *
 * `backlog` instances (default 2) always wait in ConnectNamedPipe, so clients that connect at
 * the same moment do not see ERROR_PIPE_BUSY. When one connects, the backlog is refilled BEFORE
 * the connected one is handed to the handler. When every instance of ours is gone, the name is
 * free for anyone: the next instance must be a FIRST one, and a name held by another server is
 * never joined (retried until it is free).
 */
#include "engine_internal.h"

#include "asyncipc/asyncipc.h"
#include "win_error.h"
#include "win_listen.h"

#include <stdio.h>
#include <string.h>

#define ENG_BACKLOG     2       /* instances kept pending in ConnectNamedPipe (default) ... */
#define ENG_BACKLOG_MAX 4       /* ... and at most: a burst of connects finds one free */

/* c's accept is over (completed, or about to be cancelled): it no longer counts as pending. */
static void listener_forget(aipc_wconn *c)
{
    if (c->listening) {
        c->listening = false;
        c->e->nlisten--;
    }
}

/* Closes every instance pending in ConnectNamedPipe. */
void eng_close_listeners(broker_engine *e)
{
    for (aipc_wconn *c = e->all, *n; c && e->nlisten; c = n) {
        n = c->next;            /* c stays linked until its cancelled accept completes */
        if (c->listening) {
            listener_forget(c);
            c->dropped = true;
            eng_conn_close_now(c);
        }
    }
}

/* Connect completion of a listening instance (I/O thread). */
static void on_connect(aipc__op *op, DWORD err, DWORD n)
{
    aipc_wconn *c = CONTAINING_RECORD(op, aipc_wconn, cn);
    broker_engine *e = c->e;
    c->inflight--;
    listener_forget(c);
    if (c->st == C_CLOSING) {
        eng_conn_maybe_finish(c);
        return;
    }
    aipc__accept a = aipc__listen_done(err);
    if (a != AIPC__ACCEPT_CONNECTED) {
        /* GONE: the client came and went; anything else: drop this instance. */
        if (a == AIPC__ACCEPT_FAILED && err != ERROR_OPERATION_ABORTED)
            aipc_log(AIPC_LOG_WARN, "broker: ConnectNamedPipe completed with %lu", (unsigned long)err);
        eng_conn_close_now(c);
        if (!e->stopping)
            eng_listen_next(e);
        return;
    }
    /* Post the next listening instance first, then hand this one over. */
    if (!e->stopping)
        eng_listen_next(e);
    eng_conn_accept(c);
}

/* Creates one pipe instance (win_listen.c) bound to the port; first = with
 * FILE_FLAG_FIRST_PIPE_INSTANCE. */
static HANDLE make_instance(broker_engine *e, bool first, DWORD *err)
{
    aipc__listen_cfg lc = {e->pipe_path, e->cfg.sa, PIPE_UNLIMITED_INSTANCES,
                           e->cfg.pipe_buffer ? e->cfg.pipe_buffer : 64u * 1024u};
    HANDLE h = aipc__listen_instance(&lc, first, err);
    if (h == INVALID_HANDLE_VALUE)
        return h;
    *err = aipc__iocp_bind(e->port, h);
    if (*err) {
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
    c->cn.h = c->h;
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
static int have_instance(const broker_engine *e)
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
static HANDLE make_first_again(broker_engine *e, DWORD *er)
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

/* Gives the new instance h to record c and posts its ConnectNamedPipe: pending (a listener
 * more), connected at once (queued on e->ready), or failed (c finished, h closed with it). */
static void listen_on(broker_engine *e, aipc_wconn *c, HANDLE h)
{
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
        eng_conn_finish(c);
    }
}

/* Makes sure one instance is pending in ConnectNamedPipe. Instances that connect at once are
 * queued on e->ready and attached after the new listener is posted. */
void eng_listen_next(broker_engine *e)
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
        aipc_wconn *c = eng_conn_alloc(e);
        if (!c) {
            CloseHandle(h);
            e->need_listener = true;
            return;
        }
        listen_on(e, c, h);
    }
    e->need_listener = e->nlisten < e->backlog;
}

/* Attaches instances that connected synchronously (after a listener is pending again). */
void eng_drain_ready(broker_engine *e)
{
    while (e->ready) {
        aipc_wconn *c = e->ready;
        e->ready = c->dnext;
        c->dnext = NULL;
        eng_conn_accept(c);
    }
}

int broker_engine_listening(const broker_engine *e)
{
    return e->nlisten;
}

unsigned long broker_engine_squat_refusals(const broker_engine *e)
{
    return e->squat_refusals;
}

void broker_engine__test_drop_listener(broker_engine *e)
{
    if (!e->nlisten)
        return;
    eng_close_listeners(e);
    e->need_listener = true;
}

int eng_listen_start(broker_engine *e, char *err, size_t errlen)
{
    e->backlog = e->cfg.listen_backlog ? (int)e->cfg.listen_backlog : ENG_BACKLOG;
    if (e->backlog > ENG_BACKLOG_MAX)
        e->backlog = ENG_BACKLOG_MAX;
    /* Probe: an existing server of this name means "in use" even where the kernel does not
     * enforce FILE_FLAG_FIRST_PIPE_INSTANCE (Wine); other failures are left to creating the
     * instance to report. */
    if (aipc__listen_name_served(e->pipe_path)) {
        snprintf(err, errlen, "pipe name is in use by another server");
        return BROKER_ENGINE_PIPE_BUSY;
    }
    DWORD er;
    HANDLE first = make_instance(e, true, &er);
    if (first == INVALID_HANDLE_VALUE) {
        if (er == ERROR_ACCESS_DENIED || er == ERROR_PIPE_BUSY) {
            snprintf(err, errlen, "pipe name is in use by another server (error %lu)",
                     (unsigned long)er);
            return BROKER_ENGINE_PIPE_BUSY;
        }
        aipc__win_errtext(err, errlen, "CreateNamedPipe", er);
        return BROKER_ENGINE_SYS;
    }
    aipc_wconn *c = eng_conn_alloc(e);
    if (!c) {
        CloseHandle(first);
        aipc__win_errtext(err, errlen, "out of memory", ERROR_NOT_ENOUGH_MEMORY);
        return BROKER_ENGINE_SYS;
    }
    listen_on(e, c, first);
    eng_listen_next(e);                 /* the rest of the backlog */
    return BROKER_ENGINE_OK;
}
