/*
 * dispatcher.c - aipc_dispatcher: callbacks on the application's thread.
 *
 *   AIPC_DISPATCH_WINDOW  a message-only window of the creating thread. The first push into an
 *                         empty, un-woken queue posts WM_AIPC_WAKE; the window procedure runs
 *                         items for at most SLICE_MS, then, if more are queued, continues on a
 *                         zero-delay WM_TIMER (timers come after input and painting, so a flood
 *                         cannot freeze the UI). Inside a callback (nested modal loop) it runs
 *                         nothing and retries on a NESTED_RETRY_MS timer.
 *   AIPC_DISPATCH_MANUAL  a manual-reset event, set while items are queued; aipc_dispatcher_run.
 * Threads: push from any thread; run on one thread at a time (`busy`); fields marked [lock] are
 * guarded by `lock`. References: the user's, the window's (until WM_NCDESTROY) and one per
 * attached object; memory goes with the last one.
 */
#include "dispatcher.h"

#include <stdlib.h>

#include "cbgate.h"
#include "errors.h"

#define WM_AIPC_WAKE    (WM_APP + 0x3A1)
#define TIMER_SLICE     1
#define SLICE_MS        20u
#define NESTED_RETRY_MS 50u

struct aipc_dispatcher {
    volatile LONG refs;
    int mode;
    HWND hwnd;               /* AIPC_DISPATCH_WINDOW */
    DWORD owner;             /* creating thread */
    HANDLE event;            /* AIPC_DISPATCH_MANUAL */
    SRWLOCK lock;
    aipc__dq_item *head, *tail;   /* [lock] */
    uint64_t count, bytes;       /* [lock] */
    int woken;               /* [lock] window: a wake message or timer is pending */
    int dead;                /* [lock] aipc_dispatcher_free ran: pushes drop */
    volatile LONG busy;      /* a thread is inside run_items */
};

/* ---- references ----------------------------------------------------------------------------- */

void aipc__dispatcher_ref(aipc_dispatcher *d)
{
    InterlockedIncrement(&d->refs);
}

void aipc__dispatcher_unref(aipc_dispatcher *d)
{
    if (InterlockedDecrement(&d->refs) != 0)
        return;
    if (d->event)
        CloseHandle(d->event);
    free(d);
}

/* ---- queue ---------------------------------------------------------------------------------- */

int aipc__dispatcher_push(aipc_dispatcher *d, aipc__dq_item *it)
{
    it->next = NULL;
    AcquireSRWLockExclusive(&d->lock);
    if (d->dead) {
        ReleaseSRWLockExclusive(&d->lock);
        it->fn(it, 0);
        return AIPC_ECLOSED;
    }
    int was_empty = d->head == NULL;
    if (d->tail)
        d->tail->next = it;
    else
        d->head = it;
    d->tail = it;
    d->count++;
    d->bytes += it->charge;
    int wake = d->hwnd && !d->woken;
    if (wake)
        d->woken = 1;
    if (was_empty && d->event)
        SetEvent(d->event);
    HWND hwnd = d->hwnd;
    ReleaseSRWLockExclusive(&d->lock);
    /* A full posted-message queue (10000) refuses PostMessage; a notification is a sent
     * message, not subject to that quota, and is handled at the window thread's next wait. */
    if (wake && !PostMessageW(hwnd, WM_AIPC_WAKE, 0, 0) &&
        !SendNotifyMessageW(hwnd, WM_AIPC_WAKE, 0, 0)) {
        aipc_log(AIPC_LOG_ERROR, "dispatcher: cannot wake the window thread (%lu); retrying on "
                 "the next event", GetLastError());
        AcquireSRWLockExclusive(&d->lock);
        d->woken = 0;
        ReleaseSRWLockExclusive(&d->lock);
    }
    return 0;
}

static aipc__dq_item *pop(aipc_dispatcher *d)
{
    AcquireSRWLockExclusive(&d->lock);
    aipc__dq_item *it = d->head;
    if (it) {
        d->head = it->next;
        if (!d->head)
            d->tail = NULL;
        d->count--;
        d->bytes -= it->charge;
    }
    if (!d->head && d->event)
        ResetEvent(d->event);
    ReleaseSRWLockExclusive(&d->lock);
    return it;
}

/* Runs up to `max` items (0 = as many as were queued at the start), for at most `ms`
 * milliseconds (INFINITE = no limit). Returns how many ran. */
static int run_items(aipc_dispatcher *d, uint32_t max, DWORD ms)
{
    if (aipc__cb_nested() || InterlockedCompareExchange(&d->busy, 1, 0) != 0)
        return 0;
    aipc__dispatcher_ref(d);       /* a callback may free it and release its last object */
    if (max == 0) {
        AcquireSRWLockShared(&d->lock);
        max = d->count > UINT32_MAX ? UINT32_MAX : (uint32_t)d->count;
        ReleaseSRWLockShared(&d->lock);
    }
    ULONGLONG end = ms == INFINITE ? 0 : GetTickCount64() + ms;
    uint32_t ran = 0;
    while (ran < max) {
        aipc__dq_item *it = pop(d);
        if (!it)
            break;
        it->fn(it, 1);
        ran++;
        if (ms != INFINITE && (ran & 15) == 0 && GetTickCount64() >= end)
            break;
    }
    InterlockedExchange(&d->busy, 0);
    aipc__dispatcher_unref(d);
    return (int)(ran > INT32_MAX ? INT32_MAX : ran);
}

/* ---- window mode ---------------------------------------------------------------------------- */

static const wchar_t k_class[] = L"AsyncIPC.Dispatcher";
static INIT_ONCE g_class_once = INIT_ONCE_STATIC_INIT;
static HINSTANCE g_module;

/* Window thread: a wake or a slice timer. */
/* Continues after `ms` on the window's timer; if no timer can be had, on a posted wake. */
static void window_later(HWND hwnd, UINT ms)
{
    if (!SetTimer(hwnd, TIMER_SLICE, ms, NULL))
        PostMessageW(hwnd, WM_AIPC_WAKE, 0, 0);
}

static void window_slice(aipc_dispatcher *d, HWND hwnd)
{
    KillTimer(hwnd, TIMER_SLICE);
    if (aipc__cb_nested()) {                 /* inside a callback's modal loop: later */
        window_later(hwnd, NESTED_RETRY_MS);
        return;
    }
    aipc__dispatcher_ref(d);                 /* a callback may free it */
    AcquireSRWLockExclusive(&d->lock);
    d->woken = 0;
    ReleaseSRWLockExclusive(&d->lock);
    run_items(d, UINT32_MAX, SLICE_MS);
    AcquireSRWLockExclusive(&d->lock);
    int more = d->head != NULL && !d->woken && !d->dead && d->hwnd == hwnd;
    if (more)
        d->woken = 1;
    ReleaseSRWLockExclusive(&d->lock);
    if (more)
        window_later(hwnd, USER_TIMER_MINIMUM);
    aipc__dispatcher_unref(d);
}

static LRESULT CALLBACK window_proc(HWND hwnd, UINT msg, WPARAM wp, LPARAM lp)
{
    aipc_dispatcher *d = (aipc_dispatcher *)GetWindowLongPtrW(hwnd, GWLP_USERDATA);
    switch (msg) {
    case WM_NCCREATE:
        d = ((CREATESTRUCTW *)lp)->lpCreateParams;
        SetWindowLongPtrW(hwnd, GWLP_USERDATA, (LONG_PTR)d);
        break;
    case WM_AIPC_WAKE:
        if (d)
            window_slice(d, hwnd);
        return 0;
    case WM_TIMER:
        if (d && wp == TIMER_SLICE) {
            window_slice(d, hwnd);
            return 0;
        }
        break;
    case WM_CLOSE:                          /* from aipc_dispatcher_free on another thread */
        DestroyWindow(hwnd);
        return 0;
    case WM_NCDESTROY:
        if (d) {
            SetWindowLongPtrW(hwnd, GWLP_USERDATA, 0);
            AcquireSRWLockExclusive(&d->lock);
            d->hwnd = NULL;
            ReleaseSRWLockExclusive(&d->lock);
            aipc__dispatcher_unref(d);       /* the window's reference */
        }
        break;
    default:
        break;
    }
    return DefWindowProcW(hwnd, msg, wp, lp);
}

static BOOL CALLBACK register_class(PINIT_ONCE once, void *param, void **ctx)
{
    (void)once;
    (void)param;
    (void)ctx;
    GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                       GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                       (LPCWSTR)(void *)&window_proc, &g_module);
    WNDCLASSEXW wc = {0};
    wc.cbSize = sizeof wc;
    wc.lpfnWndProc = window_proc;
    wc.hInstance = g_module;
    wc.lpszClassName = k_class;
    if (!RegisterClassExW(&wc) && GetLastError() != ERROR_CLASS_ALREADY_EXISTS) {
        aipc_log(AIPC_LOG_ERROR, "dispatcher: RegisterClassEx failed (%lu)", GetLastError());
        return FALSE;
    }
    return TRUE;
}

/* ---- public API ----------------------------------------------------------------------------- */

int aipc_dispatcher_new(int mode, aipc_dispatcher **out)
{
    if (!out)
        return AIPC_EINVAL;
    *out = NULL;
    if (mode != AIPC_DISPATCH_WINDOW && mode != AIPC_DISPATCH_MANUAL)
        return AIPC_EINVAL;
    aipc_dispatcher *d = calloc(1, sizeof *d);
    if (!d)
        return AIPC_ENOMEM;
    d->refs = 1;
    d->mode = mode;
    d->owner = GetCurrentThreadId();
    InitializeSRWLock(&d->lock);
    if (mode == AIPC_DISPATCH_MANUAL) {
        d->event = CreateEventW(NULL, TRUE, FALSE, NULL);
        if (!d->event) {
            DWORD e = GetLastError();
            free(d);
            return aipc__syserr(e);
        }
    } else {
        if (!InitOnceExecuteOnce(&g_class_once, register_class, NULL, NULL)) {
            DWORD e = GetLastError();
            free(d);
            return aipc__syserr(e);
        }
        d->refs = 2;                        /* the window's reference */
        d->hwnd = CreateWindowExW(0, k_class, L"", 0, 0, 0, 0, 0, HWND_MESSAGE, NULL, g_module, d);
        if (!d->hwnd) {
            DWORD e = GetLastError();
            aipc_log(AIPC_LOG_ERROR, "dispatcher: CreateWindowEx failed (%lu)", e);
            free(d);
            return aipc__syserr(e);
        }
    }
    *out = d;
    return 0;
}

void *aipc_dispatcher_event(aipc_dispatcher *d)
{
    return d ? d->event : NULL;
}

int aipc_dispatcher_run(aipc_dispatcher *d, uint32_t max)
{
    if (!d)
        return AIPC_EINVAL;
    return run_items(d, max, INFINITE);
}

int aipc_dispatcher_queued(aipc_dispatcher *d, uint64_t *count, uint64_t *bytes)
{
    if (!d)
        return AIPC_EINVAL;
    AcquireSRWLockShared(&d->lock);
    if (count)
        *count = d->count;
    if (bytes)
        *bytes = d->bytes;
    ReleaseSRWLockShared(&d->lock);
    return 0;
}

void aipc_dispatcher_free(aipc_dispatcher *d)
{
    if (!d)
        return;
    AcquireSRWLockExclusive(&d->lock);
    d->dead = 1;
    aipc__dq_item *it = d->head;
    d->head = d->tail = NULL;
    d->count = d->bytes = 0;
    HWND hwnd = d->hwnd;
    if (d->event)
        ResetEvent(d->event);
    ReleaseSRWLockExclusive(&d->lock);
    while (it) {
        aipc__dq_item *next = it->next;
        it->fn(it, 0);
        it = next;
    }
    if (hwnd) {
        if (GetCurrentThreadId() == d->owner)
            DestroyWindow(hwnd);             /* WM_NCDESTROY drops the window's reference */
        else
            PostMessageW(hwnd, WM_CLOSE, 0, 0);
    }
    aipc__dispatcher_unref(d);
}
