/*
 * pipe.c - engine-neutral connection state machine of a point-to-point pipe.
 *
 * Server: CreateNamedPipe (one instance, byte mode - message type when it offers shared memory,
 *         local clients only) -> OnCreate -> listen
 *         (ConnectNamedPipe) -> OnConnected(true) -> data -> peer leaves -> drain -> OnDisconnected
 *         -> DisconnectNamedPipe -> listen again.
 * Client: OnCreate(true) -> open (win_dial.c), retried on a loop timer while the pipe is missing or busy
 *         -> OnConnected(true) or, after the connect timeout, OnConnected(false).
 * "Drain": when a connection breaks or Exit runs, all I/O on the handle is cancelled
 * (CancelIoEx) and the next step (relisten, close) waits until every completion has arrived,
 * so no buffer or handle is released while the kernel may still use it.
 * Thread: everything here runs on the engine's I/O thread.
 */
#include "pipe_internal.h"
#include "win_dial.h"
#include "win_error.h"
#include "win_listen.h"

#define RETRY_FIRST_MS 10u
#define RETRY_MAX_MS   200u

static void client_try(aipc__pipe *p);

static const char *role_name(const aipc__pipe *p)
{
    return p->role == PIPE_SERVER ? "server" : "client";
}

static const char *pname(const aipc__pipe *p)
{
    return p->name_utf8 ? p->name_utf8 : "?";
}

/* Closes the pipe handle exactly once; only called when no operation is pending on it. */
static void release_handle(aipc__pipe *p)
{
    if (p->h == INVALID_HANDLE_VALUE)
        return;
    p->eng->detach(p->loop, p->h, p->role == PIPE_SERVER ? &p->cn : NULL);
    CloseHandle(p->h);
    p->h = INVALID_HANDLE_VALUE;
}

/* Rejects further Sends and drops what is queued (the client never reconnects). */
void aipc__pipe_close_send_side(aipc__pipe *p)
{
    AcquireSRWLockExclusive(&p->lock);
    p->send_closed = 1;
    p->sendable = 0;
    aipc__batch_clear(&p->q[p->qi]);
    ReleaseSRWLockExclusive(&p->lock);
}

/* A peer is connected (either role). */
static void connected(aipc__pipe *p)
{
    p->state = AIPC_ST_CONNECTED;
    p->was_connected = 1;
    aipc_log(AIPC_LOG_INFO, "pipe(%s) %s %s: connected", p->eng->name, role_name(p), pname(p));
    aipc__pipe_ev_connected(p, true);
    if (p->state == AIPC_ST_CONNECTED)
        aipc__pipe_io_begin(p);
}

/* ---- drain / teardown ------------------------------------------------------------------------ */

/* The drain is over (nothing pending): close, or report the disconnect and listen again. */
static void finish_drain(aipc__pipe *p)
{
    int had_peer = p->was_connected;
    p->was_connected = 0;
    aipc__pipe_io_reset(p);
    if (p->closed) {
        release_handle(p);
        p->state = AIPC_ST_CLOSED;
        aipc_log(AIPC_LOG_DEBUG, "pipe(%s) %s %s: closed", p->eng->name, role_name(p), pname(p));
        return;
    }
    if (p->role == PIPE_CLIENT) {
        release_handle(p);
        p->state = AIPC_ST_CLOSED;
        aipc__pipe_close_send_side(p);
        if (had_peer)
            aipc__pipe_ev_disconnected(p);
        return;
    }
    if (!DisconnectNamedPipe(p->h))
        aipc_log(AIPC_LOG_DEBUG, "pipe(%s) server %s: DisconnectNamedPipe (%lu)", p->eng->name,
                 pname(p), GetLastError());
    p->state = AIPC_ST_IDLE;
    if (had_peer)
        aipc__pipe_ev_disconnected(p);
    if (p->state != AIPC_ST_IDLE)      /* closed from inside OnDisconnected */
        return;
    if (aipc__pipe_ev_should_pause(p))
        p->listen_due = 1;             /* the application is behind: the resume task listens */
    else
        aipc__pipe_server_listen(p);
}

void aipc__pipe_maybe_finish(aipc__pipe *p)
{
    while (p->state == AIPC_ST_DRAINING && p->ops == 0 && aipc__conn_pending(&p->io) == 0)
        finish_drain(p);
}

void aipc__pipe_conn_lost(aipc__pipe *p, DWORD err, const char *what)
{
    if (p->state != AIPC_ST_CONNECTED)
        return;
    if (what) {
        int gone = aipc__win_peer_gone(err);
        aipc__pipe_set_error(p, aipc__win_err(err), err);
        aipc_log(gone ? AIPC_LOG_INFO : AIPC_LOG_WARN, "pipe(%s) %s %s: %s (%s, error %lu)",
                 p->eng->name, role_name(p), pname(p),
                 gone ? "peer disconnected" : "connection failed", what, err);
        if (aipc_decoder_partial(&p->dec))     /* the stream ended inside a frame */
            aipc_log(AIPC_LOG_ERROR, "pipe(%s) %s %s: connection ended inside a message "
                     "(truncated frame); the partial message is dropped", p->eng->name,
                     role_name(p), pname(p));
    }
    p->state = AIPC_ST_DRAINING;
    AcquireSRWLockExclusive(&p->lock);
    p->sendable = 0;
    ReleaseSRWLockExclusive(&p->lock);
    aipc__conn_cancel(&p->io);
}

/* Exit, on the I/O thread: cancels I/O; the handle closes when the drain is over. */
static void close_io(aipc__pipe *p)
{
    if (p->closed)
        return;
    p->closed = 1;
    aipc__pipe_close_send_side(p);
    if (aipc__timer_stop(p->loop, &p->retry))
        aipc__pipe_unref(p);            /* the caller holds another reference */
    if (p->state == AIPC_ST_NEW || p->state == AIPC_ST_CLOSED)
        return;
    p->state = AIPC_ST_DRAINING;
    aipc__conn_cancel(&p->io);
    if (p->ops > 0)
        CancelIoEx(p->h, NULL);      /* the pending listen */
    aipc__pipe_maybe_finish(p);
}

void aipc__pipe_on_exit(aipc__op *op, DWORD err, DWORD bytes)
{
    aipc__pipe *p = op->pipe;
    (void)err;
    (void)bytes;
    close_io(p);
    aipc__pipe_unref(p);                /* the task's reference */
}

/* ---- server --------------------------------------------------------------------------------- */

/* Completion of ConnectNamedPipe. */
static void on_listen(aipc__op *op, DWORD err, DWORD bytes)
{
    aipc__pipe *p = op->pipe;
    p->ops--;
    if (p->state == AIPC_ST_LISTENING) {
        aipc__accept a = aipc__listen_done(err);
        if (a == AIPC__ACCEPT_CONNECTED) {
            connected(p);
        } else if (a == AIPC__ACCEPT_GONE) {  /* the client came and went already */
            DisconnectNamedPipe(p->h);
            aipc__pipe_server_listen(p);
        } else {
            aipc_log(AIPC_LOG_ERROR, "pipe(%s) server %s: ConnectNamedPipe failed (%lu)",
                     p->eng->name, pname(p), err);
            aipc__pipe_set_error(p, AIPC_ESYS, err);
            p->state = AIPC_ST_FAILED;
            aipc__pipe_close_send_side(p);
            aipc__pipe_ev_connected(p, false);
        }
    }
    aipc__pipe_maybe_finish(p);
    aipc__pipe_unref(p);
}

/* Starts waiting for the next client (all three ConnectNamedPipe outcomes are handled). */
void aipc__pipe_server_listen(aipc__pipe *p)
{
    for (int tries = 0;; tries++) {
        p->state = AIPC_ST_LISTENING;
        p->cn.cb = on_listen;
        DWORD e = p->eng->listen(p, &p->cn);
        if (e == 0) {                          /* pending: on_listen follows */
            p->ops++;
            aipc__pipe_ref(p);
            return;
        }
        aipc__accept a = aipc__listen_done(e);
        if (a == AIPC__ACCEPT_CONNECTED) {     /* a client connected in between: no completion */
            connected(p);
            return;
        }
        if (a == AIPC__ACCEPT_GONE && tries < 3) { /* a client connected and already left */
            DisconnectNamedPipe(p->h);
            continue;
        }
        aipc_log(AIPC_LOG_ERROR, "pipe(%s) server %s: ConnectNamedPipe failed (%lu)",
                 p->eng->name, pname(p), e);
        aipc__pipe_set_error(p, AIPC_ESYS, e);
        p->state = AIPC_ST_FAILED;
        aipc__pipe_close_send_side(p);
        aipc__pipe_ev_connected(p, false);
        return;
    }
}

/* The instance Create made: report it and start listening. */
static void server_start(aipc__pipe *p)
{
    if (p->create_err || p->h == INVALID_HANDLE_VALUE) {
        aipc_log(AIPC_LOG_ERROR, "pipe(%s) server %s: cannot create the pipe (%lu)", p->eng->name,
                 pname(p), p->create_err);
        p->state = AIPC_ST_FAILED;
        aipc__pipe_close_send_side(p);
        aipc__pipe_ev_create(p, false);
        return;
    }
    aipc_log(AIPC_LOG_INFO, "pipe(%s) server %s: listening", p->eng->name, pname(p));
    p->state = AIPC_ST_IDLE;
    aipc__pipe_ev_create(p, true);
    if (p->state == AIPC_ST_IDLE)
        aipc__pipe_server_listen(p);
}

/* ---- client --------------------------------------------------------------------------------- */

static void client_fail(aipc__pipe *p)
{
    p->state = AIPC_ST_FAILED;
    aipc__pipe_close_send_side(p);
    aipc__pipe_ev_connected(p, false);
}

/* Retry timer fired. */
static void on_retry(aipc__timer *t)
{
    aipc__pipe *p = CONTAINING_RECORD(t, aipc__pipe, retry);
    if (p->state == AIPC_ST_OPENING)
        client_try(p);
    aipc__pipe_maybe_finish(p);
    aipc__pipe_unref(p);                   /* the timer's reference */
}

/* One connect attempt (win_dial.c); a missing or busy pipe is retried until the deadline. */
static void client_try(aipc__pipe *p)
{
    aipc__dial_result r;
    aipc__dial_verdict v = aipc__dial(p->name, &p->owners, pname(p), &r);
    if (v == AIPC__DIAL_OK) {
        p->h = r.h;
        p->peer_msg = r.message;          /* a server that offers shared memory (pipe_ctl.c) */
        DWORD e = p->eng->attach(p->loop, p->h, p->role == PIPE_SERVER ? &p->cn : NULL);
        if (e) {
            aipc_log(AIPC_LOG_ERROR, "pipe(%s) client %s: cannot attach the handle (%lu)",
                     p->eng->name, pname(p), e);
            release_handle(p);
            aipc__pipe_set_error(p, AIPC_ESYS, e);
            client_fail(p);
            return;
        }
        connected(p);
        return;
    }
    if (v == AIPC__DIAL_FAILED && r.win32 == 0) {   /* the server's owner check (logged) */
        aipc__pipe_set_error(p, r.code, 0);
        client_fail(p);
        return;
    }
    DWORD e = r.win32;
    ULONGLONG now = GetTickCount64();
    if (v == AIPC__DIAL_RETRY && now < p->deadline) {
        ULONGLONG left = p->deadline - now;
        DWORD delay = p->backoff < left ? p->backoff : (DWORD)left;
        p->backoff = p->backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : p->backoff * 2;
        aipc__pipe_ref(p);
        aipc__timer_start(p->loop, &p->retry, delay, on_retry);
        return;
    }
    if (v == AIPC__DIAL_RETRY)
        aipc_log(AIPC_LOG_WARN, "pipe(%s) client %s: no server within %u ms (%s)", p->eng->name,
                 pname(p), p->connect_timeout_ms, e == ERROR_PIPE_BUSY ? "busy" : "not found");
    else if (e == ERROR_ACCESS_DENIED)
        aipc_log(AIPC_LOG_WARN, "pipe(%s) client %s: access denied by the server's pipe "
                 "descriptor", p->eng->name, pname(p));
    else
        aipc_log(AIPC_LOG_ERROR, "pipe(%s) client %s: cannot open the pipe (%lu)", p->eng->name,
                 pname(p), e);
    aipc__pipe_set_error(p, r.code, e);
    client_fail(p);
}

/* ---- start ---------------------------------------------------------------------------------- */

void aipc__pipe_on_start(aipc__op *op, DWORD err, DWORD bytes)
{
    aipc__pipe *p = op->pipe;           /* the task's reference keeps it alive */
    (void)err;
    (void)bytes;
    if (p->closed || p->state != AIPC_ST_NEW) {
        release_handle(p);             /* Exit came first: the server instance goes */
        p->state = AIPC_ST_CLOSED;
        aipc__pipe_unref(p);
        return;
    }
    if (p->role == PIPE_SERVER) {
        server_start(p);
    } else {
        p->state = AIPC_ST_OPENING;
        p->deadline = GetTickCount64() + p->connect_timeout_ms;
        p->backoff = RETRY_FIRST_MS;
        aipc_log(AIPC_LOG_INFO, "pipe(%s) client %s: connecting", p->eng->name, pname(p));
        aipc__pipe_ev_create(p, true);
        if (p->state == AIPC_ST_OPENING)
            client_try(p);
    }
    aipc__pipe_maybe_finish(p);
    aipc__pipe_unref(p);
}
