/*
 * cbgate.c - the callback gate of one SDK object (see cbgate.h).
 */
#include "cbgate.h"

static _Thread_local int t_cb_depth;   /* callbacks running on this thread (0 or 1) */

void aipc_cb_enter(void) { t_cb_depth++; }
void aipc_cb_leave(void) { t_cb_depth--; }
int  aipc_cb_nested(void) { return t_cb_depth > 0; }

void aipc_gate_init(aipc_gate *g)
{
    InitializeSRWLock(&g->lock);
    g->running = 0;
    g->depth = 0;
    g->closed = 0;
    g->waiters = 0;
    g->idle = NULL;
}

int aipc_gate_enter(aipc_gate *g)
{
    DWORD me = GetCurrentThreadId();
    int ok = 0;
    AcquireSRWLockExclusive(&g->lock);
    if (!g->closed && (g->running == 0 || g->running == me)) {
        g->running = me;
        g->depth++;
        ok = 1;
    }
    ReleaseSRWLockExclusive(&g->lock);
    if (ok)
        aipc_cb_enter();
    return ok;
}

void aipc_gate_leave(aipc_gate *g)
{
    aipc_cb_leave();
    AcquireSRWLockExclusive(&g->lock);
    if (--g->depth == 0) {
        g->running = 0;
        if (g->waiters)
            SetEvent(g->idle);
    }
    ReleaseSRWLockExclusive(&g->lock);
}

int aipc_gate_is_closed(aipc_gate *g)
{
    AcquireSRWLockShared(&g->lock);
    int c = g->closed;
    ReleaseSRWLockShared(&g->lock);
    return c;
}

DWORD aipc_wait_serving_sent(DWORD n, const HANDLE *hs, DWORD ms)
{
    ULONGLONG end = ms == INFINITE ? 0 : GetTickCount64() + ms;
    for (;;) {
        DWORD left = INFINITE;
        if (ms != INFINITE) {
            ULONGLONG now = GetTickCount64();
            left = now >= end ? 0 : (DWORD)(end - now);
        }
        DWORD r = MsgWaitForMultipleObjectsEx(n, hs, left, QS_SENDMESSAGE, 0);
        if (r != WAIT_OBJECT_0 + n)
            return r;
        /* Delivers the sent messages (only those: PM_QS_SENDMESSAGE, nothing is removed). */
        MSG m;
        PeekMessageW(&m, NULL, 0, 0, PM_NOREMOVE | PM_QS_SENDMESSAGE);
    }
}

void aipc_gate_close(aipc_gate *g)
{
    DWORD me = GetCurrentThreadId();
    AcquireSRWLockExclusive(&g->lock);
    g->closed = 1;
    for (;;) {
        DWORD runner = g->running;
        if (runner == 0 || runner == me)
            break;
        if (!g->idle && !(g->idle = CreateEventW(NULL, TRUE, FALSE, NULL)))
            break;   /* cannot wait at all: out of handles (logged by nobody: rare) */
        ResetEvent(g->idle);
        g->waiters++;
        ReleaseSRWLockExclusive(&g->lock);
        HANDLE th = OpenThread(SYNCHRONIZE, FALSE, runner);
        int gone = 0;
        if (th) {
            HANDLE hs[2] = {g->idle, th};
            DWORD r = aipc_wait_serving_sent(2, hs, INFINITE);
            gone = r == WAIT_OBJECT_0 + 1 || r == WAIT_FAILED;
            CloseHandle(th);
        } else {
            gone = 1;        /* the thread no longer exists (process exit) */
        }
        AcquireSRWLockExclusive(&g->lock);
        g->waiters--;
        if (gone && g->running == runner) {
            g->running = 0;  /* it died inside the callback: nobody will leave */
            g->depth = 0;
        }
    }
    ReleaseSRWLockExclusive(&g->lock);
}

void aipc_gate_free(aipc_gate *g)
{
    if (g->idle)
        CloseHandle(g->idle);
    g->idle = NULL;
}
