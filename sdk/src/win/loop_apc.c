/*
 * loop_apc.c - engine PIPE_ASYNC: one process-wide I/O thread that sleeps alertably.
 *
 *  - Reads and writes use ReadFileEx/WriteFileEx; their completion routines run on this thread
 *    (the thread that issued them) during its alertable wait.
 *  - Public calls are marshalled here with QueueUserAPC.
 *  - A server's overlapped accept (win_listen.c) signals an event. The I/O thread itself waits for
 *    up to MAXIMUM_WAIT_OBJECTS such events in its alertable WaitForMultipleObjectsEx (no extra
 *    thread, deterministic handle use); beyond that, RegisterWaitForSingleObject watches the
 *    event on a thread-pool thread whose callback only QueueUserAPCs the completion here.
 *    Either way the I/O thread never blocks on a connect.
 *  - Timers: the thread sleeps no longer than the next timer deadline.
 * The thread is started on first use and lives until the process exits (the module is pinned,
 * so FreeLibrary cannot unmap code it runs).
 */
#include "pipe_internal.h"
#include "win_listen.h"

#include <string.h>

static aipc__loop g_loop;
static INIT_ONCE g_once = INIT_ONCE_STATIC_INIT;

/* Listen events the I/O thread waits on itself, and their ops. [io] */
static HANDLE g_events[MAXIMUM_WAIT_OBJECTS];
static aipc__op *g_waiters[MAXIMUM_WAIT_OBJECTS];
static DWORD g_nwait;

/* Completions and tasks that arrived while a user callback ran on this thread (an alertable
 * wait inside a callback): run after it returns, in arrival order. [io] */
static aipc__op *g_def_head, *g_def_tail;

static void listen_done(aipc__op *op);

/* Every completion and task of this engine enters here. */
static void apc_run(aipc__op *op, DWORD err, DWORD bytes)
{
    if (aipc__cb_nested()) {
        op->derr = err;
        op->dbytes = bytes;
        op->dnext = NULL;
        if (g_def_tail)
            g_def_tail->dnext = op;
        else
            g_def_head = op;
        g_def_tail = op;
        return;
    }
    op->cb(op, err, bytes);
}

static void run_deferred(void)
{
    while (g_def_head) {
        aipc__op *op = g_def_head;
        g_def_head = op->dnext;
        if (!g_def_head)
            g_def_tail = NULL;
        op->cb(op, op->derr, op->dbytes);
    }
}

/* The I/O thread: run due timers, then wait alertably (APCs and completion routines run) on
 * the listen events, if any. */
static unsigned __stdcall apc_thread(void *arg)
{
    aipc__loop *l = arg;
    for (;;) {
        run_deferred();
        DWORD wait = aipc__timers_run(l);
        if (g_def_head)
            continue;                       /* a timer callback waited alertably */
        if (g_nwait == 0) {
            SleepEx(wait, TRUE);
            continue;
        }
        DWORD r = WaitForMultipleObjectsEx(g_nwait, g_events, FALSE, wait, TRUE);
        if (r < WAIT_OBJECT_0 + g_nwait) {
            DWORD i = r - WAIT_OBJECT_0;
            aipc__op *op = g_waiters[i];
            g_nwait--;                      /* keep the arrays dense: move the last one here */
            g_events[i] = g_events[g_nwait];
            g_waiters[i] = g_waiters[g_nwait];
            listen_done(op);
        } else if (r == WAIT_FAILED) {
            aipc_log(AIPC_LOG_ERROR, "pipe(apc): WaitForMultipleObjectsEx failed (%lu)",
                     GetLastError());
            SleepEx(10, TRUE);
        }
    }
    return 0;
}

/* Starts the thread once per process. */
static BOOL CALLBACK apc_init(PINIT_ONCE once, void *param, void **ctx)
{
    return aipc__loop_start(&g_loop, &aipc__engine_apc, apc_thread, "pipe(apc)");
}

static aipc__loop *apc_loop(void)
{
    return InitOnceExecuteOnce(&g_once, apc_init, NULL, NULL) ? &g_loop : NULL;
}

/* APC entry for marshalled tasks. */
static void CALLBACK apc_task(ULONG_PTR arg)
{
    apc_run((aipc__op *)arg, 0, 0);
}

static BOOL apc_post(aipc__loop *l, aipc__op *op)
{
    if (QueueUserAPC(apc_task, l->thread, (ULONG_PTR)op))
        return TRUE;
    aipc_log(AIPC_LOG_ERROR, "pipe(apc): QueueUserAPC failed (%lu)", GetLastError());
    return FALSE;
}

/* Completion routine of ReadFileEx/WriteFileEx (I/O thread). */
static void CALLBACK apc_io_done(DWORD err, DWORD bytes, LPOVERLAPPED ov)
{
    apc_run(CONTAINING_RECORD(ov, aipc__op, ov), err, bytes);
}

/* A server handle's listen op gets a manual-reset event for its overlapped ConnectNamedPipe;
 * a client handle needs nothing (completion routines run on the issuing thread). */
static DWORD apc_attach(aipc__loop *l, HANDLE h, aipc__op *listen)
{
    (void)l;
    (void)h;
    if (!listen || listen->event)
        return 0;
    listen->event = CreateEventW(NULL, TRUE, FALSE, NULL);
    return listen->event ? 0 : GetLastError();
}

static void apc_detach(aipc__loop *l, HANDLE h, aipc__op *listen)
{
    (void)l;
    (void)h;
    if (listen && listen->event) {
        CloseHandle(listen->event);
        listen->event = NULL;
    }
}

static DWORD apc_read(HANDLE h, aipc__op *op, void *buf, DWORD len)
{
    memset(&op->ov, 0, sizeof op->ov);
    op->h = h;
    if (ReadFileEx(h, buf, len, &op->ov, apc_io_done))
        return 0;
    DWORD e = GetLastError();
    if (e == ERROR_MORE_DATA)   /* partial read (message mode): the routine is still queued */
        return 0;
    return e ? e : ERROR_GEN_FAILURE;
}

static DWORD apc_write(HANDLE h, aipc__op *op, const void *buf, DWORD len)
{
    memset(&op->ov, 0, sizeof op->ov);
    op->h = h;
    if (WriteFileEx(h, buf, len, &op->ov, apc_io_done))
        return 0;
    DWORD e = GetLastError();
    return e ? e : ERROR_GEN_FAILURE;
}

/* I/O thread: the listen event fired: read the ConnectNamedPipe result. */
static void listen_done(aipc__op *op)
{
    DWORD bytes = 0, err = 0;
    if (!GetOverlappedResult(op->h, &op->ov, &bytes, FALSE))
        err = GetLastError();
    apc_run(op, err, bytes);
}

static void CALLBACK apc_listen_done(ULONG_PTR arg)
{
    aipc__op *op = (aipc__op *)arg;
    if (op->wait) {
        UnregisterWaitEx(op->wait, INVALID_HANDLE_VALUE);
        op->wait = NULL;
    }
    listen_done(op);
}

/* Thread-pool thread: only hands the event over to the I/O thread. */
static void CALLBACK apc_listen_signaled(void *ctx, BOOLEAN timed_out)
{
    if (!QueueUserAPC(apc_listen_done, g_loop.thread, (ULONG_PTR)ctx))
        aipc_log(AIPC_LOG_ERROR, "pipe(apc): QueueUserAPC for a connect failed (%lu)",
                 GetLastError());
}

static DWORD apc_listen(aipc__pipe *p, aipc__op *op)
{
    memset(&op->ov, 0, sizeof op->ov);
    op->h = p->h;
    op->ov.hEvent = op->event;
    ResetEvent(op->event);
    DWORD e;
    if (aipc__listen_accept(p->h, &op->ov, &e) != AIPC__ACCEPT_PENDING)
        return e;   /* ERROR_PIPE_CONNECTED / ERROR_NO_DATA (no completion) or a failure */
    /* Pending, or completed at once (the event is then signalled): the wait delivers both. */
    op->wait = NULL;
    if (g_nwait < MAXIMUM_WAIT_OBJECTS) {
        g_events[g_nwait] = op->event;
        g_waiters[g_nwait] = op;
        g_nwait++;
        return 0;
    }
    if (!RegisterWaitForSingleObject(&op->wait, op->event, apc_listen_signaled, op, INFINITE,
                                     WT_EXECUTEONLYONCE)) {
        DWORD bytes;
        e = GetLastError();
        op->wait = NULL;
        CancelIoEx(p->h, &op->ov);
        GetOverlappedResult(p->h, &op->ov, &bytes, TRUE);   /* the event must not fire later */
        return e ? e : ERROR_GEN_FAILURE;
    }
    return 0;
}

const aipc__engine aipc__engine_apc = {
    "apc", apc_loop, apc_post, apc_attach, apc_detach, apc_read, apc_write, apc_listen,
};
