/*
 * cbgate.c - the callback gate of one SDK object (see cbgate.h).
 *
 * Waiting in aipc__gate_close, in this order of concern:
 *   - the runner is this thread (inside the callback): no wait;
 *   - the runner waits, directly or through a chain, in aipc__gate_close for a gate whose
 *     callback runs on this thread (two objects closing each other from their callbacks):
 *     no wait, or both would wait forever (`g_waits` records who waits for which gate);
 *   - this thread handles a message sent by another thread: it is replied to first
 *     (ReplyMessage(0)), since the sender may be the very callback being waited for;
 *   - then wait for the gate's `idle` event or the runner's exit, serving sent messages.
 */
#include "cbgate.h"

#include "asyncipc/asyncipc.h"

/* ---- callback depth per thread (TlsAlloc: mingw's __thread goes through emutls calls) ------ */

static DWORD g_tls = TLS_OUT_OF_INDEXES;
static INIT_ONCE g_tls_once = INIT_ONCE_STATIC_INIT;

static BOOL CALLBACK tls_init(PINIT_ONCE once, void *param, void **ctx)
{
    (void)once;
    (void)param;
    (void)ctx;
    g_tls = TlsAlloc();
    return g_tls != TLS_OUT_OF_INDEXES;
}

static DWORD tls(void)
{
    if (g_tls == TLS_OUT_OF_INDEXES)
        InitOnceExecuteOnce(&g_tls_once, tls_init, NULL, NULL);
    return g_tls;
}

void aipc__cb_enter(void)
{
    DWORD t = tls();
    if (t != TLS_OUT_OF_INDEXES)
        TlsSetValue(t, (void *)((uintptr_t)TlsGetValue(t) + 1));
}

void aipc__cb_leave(void)
{
    DWORD t = tls();
    if (t != TLS_OUT_OF_INDEXES)
        TlsSetValue(t, (void *)((uintptr_t)TlsGetValue(t) - 1));
}

int aipc__cb_nested(void)
{
    DWORD t = tls();
    return t != TLS_OUT_OF_INDEXES && TlsGetValue(t) != NULL;
}

/* ---- the gate ------------------------------------------------------------------------------- */

void aipc__gate_init(aipc__gate *g)
{
    InitializeSRWLock(&g->lock);
    g->running = 0;
    g->depth = 0;
    g->closed = 0;
    g->waiters = 0;
    g->idle = NULL;
}

int aipc__gate_enter(aipc__gate *g)
{
    DWORD me = GetCurrentThreadId();
    if (*(volatile DWORD *)&g->running == me) {
        /* Nested (a batch holds the gate): only this thread changes running/depth now. */
        if (aipc__gate_is_closed(g))
            return 0;
        g->depth++;
        return 1;
    }
    int ok = 0;
    AcquireSRWLockExclusive(&g->lock);
    if (!g->closed && g->running == 0) {
        g->running = me;
        g->depth = 1;
        ok = 1;
    }
    ReleaseSRWLockExclusive(&g->lock);
    if (ok)
        aipc__cb_enter();
    return ok;
}

void aipc__gate_leave(aipc__gate *g)
{
    if (g->depth > 1) {                 /* nested: this thread still holds the gate */
        g->depth--;
        return;
    }
    aipc__cb_leave();
    AcquireSRWLockExclusive(&g->lock);
    g->depth = 0;
    g->running = 0;
    if (g->waiters)
        SetEvent(g->idle);
    ReleaseSRWLockExclusive(&g->lock);
}

int aipc__gate_is_closed(aipc__gate *g)
{
    return InterlockedCompareExchange(&g->closed, 0, 0) != 0;
}

DWORD aipc__wait_serving_sent(DWORD n, const HANDLE *hs, DWORD ms)
{
    ULONGLONG end = ms == INFINITE ? 0 : GetTickCount64() + ms;
    for (;;) {
        /* Deliver what was sent already (MsgWait only wakes for new arrivals otherwise). */
        MSG m;
        PeekMessageW(&m, NULL, 0, 0, PM_NOREMOVE | PM_QS_SENDMESSAGE);
        DWORD left = INFINITE;
        if (ms != INFINITE) {
            ULONGLONG now = GetTickCount64();
            left = now >= end ? 0 : (DWORD)(end - now);
        }
        DWORD r = MsgWaitForMultipleObjectsEx(n, hs, left, QS_SENDMESSAGE, MWMO_INPUTAVAILABLE);
        if (r != WAIT_OBJECT_0 + n)
            return r;
    }
}

/* Who waits in aipc__gate_close for which gate (nodes live on the waiters' stacks). */
typedef struct wait_node {
    struct wait_node *next;
    DWORD tid;
    aipc__gate *gate;
} wait_node;

static SRWLOCK g_waits_lock = SRWLOCK_INIT;
static wait_node *g_waits;

/* 1 if waiting for `runner` would close a cycle back to `me`. Registry lock held. */
static int would_deadlock(DWORD runner, DWORD me)
{
    for (int hops = 0; runner && hops < 32; hops++) {
        wait_node *n = g_waits;
        while (n && n->tid != runner)
            n = n->next;
        if (!n)
            return 0;
        runner = *(volatile DWORD *)&n->gate->running;   /* whom that thread waits for */
        if (runner == me)
            return 1;
    }
    return 0;
}

void aipc__gate_close(aipc__gate *g)
{
    DWORD me = GetCurrentThreadId();
    wait_node self = {NULL, me, g};
    AcquireSRWLockExclusive(&g->lock);
    InterlockedExchange(&g->closed, 1);
    for (;;) {
        DWORD runner = g->running;
        if (runner == 0 || runner == me)
            break;
        AcquireSRWLockExclusive(&g_waits_lock);
        int cycle = would_deadlock(runner, me);
        if (!cycle) {
            self.next = g_waits;
            g_waits = &self;
        }
        ReleaseSRWLockExclusive(&g_waits_lock);
        if (cycle) {
            aipc_log(AIPC_LOG_WARN, "callback gate: not waiting for thread %lu, which waits for "
                     "a callback on this thread (objects closing each other)", runner);
            break;
        }
        while (!g->idle && !(g->idle = CreateEventW(NULL, TRUE, FALSE, NULL))) {
            ReleaseSRWLockExclusive(&g->lock);
            Sleep(10);                       /* out of handles: momentary, retried */
            AcquireSRWLockExclusive(&g->lock);
        }
        ResetEvent(g->idle);
        g->waiters++;
        HANDLE idle = g->idle;
        ReleaseSRWLockExclusive(&g->lock);

        if ((InSendMessageEx(NULL) & (ISMEX_SEND | ISMEX_REPLIED)) == ISMEX_SEND)
            ReplyMessage(0);                 /* the sender may be the callback we wait for */
        HANDLE th = OpenThread(SYNCHRONIZE, FALSE, runner);
        int gone = !th && GetLastError() == ERROR_INVALID_PARAMETER;   /* no such thread */
        if (!gone) {
            HANDLE hs[2] = {idle, th};
            DWORD r = aipc__wait_serving_sent(th ? 2 : 1, hs, INFINITE);
            gone = th && r == WAIT_OBJECT_0 + 1;
            if (r == WAIT_FAILED)
                Sleep(1);                    /* never spin hard; the loop looks again */
        }
        if (th)
            CloseHandle(th);

        AcquireSRWLockExclusive(&g_waits_lock);
        for (wait_node **pp = &g_waits; *pp; pp = &(*pp)->next)
            if (*pp == &self) {
                *pp = self.next;
                break;
            }
        ReleaseSRWLockExclusive(&g_waits_lock);
        AcquireSRWLockExclusive(&g->lock);
        g->waiters--;
        if (gone && g->running == runner) {
            g->running = 0;                  /* it died inside the callback: nobody will leave */
            g->depth = 0;
        }
    }
    ReleaseSRWLockExclusive(&g->lock);
}

void aipc__gate_free(aipc__gate *g)
{
    if (g->idle)
        CloseHandle(g->idle);
    g->idle = NULL;
}
