/*
 * loop_iocp.c - engine PIPE_OVERLAPPED: one process-wide I/O thread on an I/O completion port.
 *
 *  - Pipe handles are bound to the port; overlapped ReadFile, WriteFile and accepts
 *    (win_listen.c) complete there and win_iocp.c's dispatcher - the broker's too - recovers
 *    each aipc__op with CONTAINING_RECORD and runs its callback.
 *  - Public calls are marshalled as tasks (aipc__iocp_post).
 *  - Timers: the port wait times out at the next timer deadline.
 * The thread is started on first use and lives until the process exits (the module is pinned).
 */
#include "pipe_internal.h"
#include "win_listen.h"

#include <string.h>

static aipc__loop g_loop;
static INIT_ONCE g_once = INIT_ONCE_STATIC_INIT;

/* The I/O thread: run due timers, then wait for completions until the next timer is due and
 * dispatch them (win_iocp.c: one entry per wake-up, see there why). */
static unsigned __stdcall iocp_thread(void *arg)
{
    aipc__loop *l = arg;
    for (;;) {
        DWORD wait = aipc__timers_run(l);
        aipc__iocp_dispatch(l->port, wait, 1, "pipe(iocp)");
    }
    return 0;
}

/* Creates the port and starts the thread once per process. */
static BOOL CALLBACK iocp_init(PINIT_ONCE once, void *param, void **ctx)
{
    g_loop.port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    if (!g_loop.port) {
        aipc_log(AIPC_LOG_ERROR, "pipe(iocp): CreateIoCompletionPort failed (%lu)", GetLastError());
        return FALSE;
    }
    if (aipc__loop_start(&g_loop, &aipc__engine_iocp, iocp_thread, "pipe(iocp)"))
        return TRUE;
    CloseHandle(g_loop.port);
    g_loop.port = NULL;
    return FALSE;
}

static aipc__loop *iocp_loop(void)
{
    return InitOnceExecuteOnce(&g_once, iocp_init, NULL, NULL) ? &g_loop : NULL;
}

static BOOL iocp_post(aipc__loop *l, aipc__op *op)
{
    return aipc__iocp_post(l->port, op, "pipe(iocp)");
}

/* Associates a new pipe handle (server or client) with the port (once per handle). */
static DWORD iocp_attach(aipc__loop *l, HANDLE h, aipc__op *listen)
{
    (void)listen;
    return aipc__iocp_bind(l->port, h);
}

static void iocp_detach(aipc__loop *l, HANDLE h, aipc__op *listen)
{
    (void)l;   /* the association ends with the handle */
    (void)h;
    (void)listen;
}

/* Issue results: success and pending both complete through the port, except a success on a
 * handle that skips the port on success (op->skip_port): AIPC__IO_INLINE, no completion. */
static DWORD issued(const aipc__op *op, BOOL ok)
{
    if (ok)
        return op->skip_port ? AIPC__IO_INLINE : 0;
    DWORD e = GetLastError();
    if (e == ERROR_IO_PENDING || e == ERROR_MORE_DATA)
        return 0;
    return e ? e : ERROR_GEN_FAILURE;
}

static DWORD iocp_read(HANDLE h, aipc__op *op, void *buf, DWORD len)
{
    memset(&op->ov, 0, sizeof op->ov);
    op->h = h;
    return issued(op, ReadFile(h, buf, len, NULL, &op->ov));
}

static DWORD iocp_write(HANDLE h, aipc__op *op, const void *buf, DWORD len)
{
    memset(&op->ov, 0, sizeof op->ov);
    op->h = h;
    return issued(op, WriteFile(h, buf, len, NULL, &op->ov));
}

/* Starts accepting a client (win_listen.c). Pending (also a synchronous success: on a
 * port-bound handle that still queues a completion) returns 0; ERROR_PIPE_CONNECTED and
 * ERROR_NO_DATA (no completion) and failures are returned as such. */
static DWORD iocp_listen(aipc__pipe *p, aipc__op *op)
{
    memset(&op->ov, 0, sizeof op->ov);
    op->h = p->h;
    DWORD e;
    return aipc__listen_accept(p->h, &op->ov, &e) == AIPC__ACCEPT_PENDING ? 0 : e;
}

const aipc__engine aipc__engine_iocp = {
    "iocp", iocp_loop, iocp_post, iocp_attach, iocp_detach, iocp_read, iocp_write, iocp_listen,
};
