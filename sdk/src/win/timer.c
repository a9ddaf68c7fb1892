/* timer.c - one-shot timers of an I/O loop, kept in a list sorted by deadline. The loop waits
 * (alertably or on its completion port) no longer than the next deadline, so timers never block
 * the I/O thread. Thread: the loop's I/O thread only. */
#include "pipe_internal.h"

/* Arms `t` to call `cb` on the I/O thread after `ms` milliseconds (re-arms if armed). */
void aipc_timer_start(aipc_loop *l, aipc_timer *t, DWORD ms, aipc_timer_cb cb)
{
    aipc_timer_stop(l, t);
    t->due = GetTickCount64() + ms;
    t->cb = cb;
    t->armed = 1;
    aipc_timer **pp = &l->timers;
    while (*pp && (*pp)->due <= t->due)
        pp = &(*pp)->next;
    t->next = *pp;
    *pp = t;
}

int aipc_timer_stop(aipc_loop *l, aipc_timer *t)
{
    if (!t->armed)
        return 0;
    for (aipc_timer **pp = &l->timers; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    t->armed = 0;
    t->next = NULL;
    return 1;
}

DWORD aipc_timers_run(aipc_loop *l)
{
    for (;;) {
        aipc_timer *t = l->timers;
        if (!t)
            return INFINITE;
        ULONGLONG now = GetTickCount64();
        if (t->due > now) {
            ULONGLONG left = t->due - now;
            return left >= INFINITE ? INFINITE - 1 : (DWORD)left;
        }
        l->timers = t->next;
        t->next = NULL;
        t->armed = 0;
        t->cb(t);   /* may start or stop timers, or free the object holding t */
    }
}
