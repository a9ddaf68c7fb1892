/* timer.c - one-shot timers of an I/O loop, kept in a list sorted by deadline. The loop waits
 * (alertably or on its completion port) no longer than the next deadline, so timers never block
 * the I/O thread. Thread: the loop's I/O thread only. */
#include "pipe_internal.h"

/* Arms `t` to call `cb` on the I/O thread after `ms` milliseconds (re-arms if armed). */
void aipc__timer_start(aipc__loop *l, aipc__timer *t, DWORD ms, aipc__timer_cb cb)
{
    aipc__timer_stop(l, t);
    t->due = GetTickCount64() + ms;
    t->cb = cb;
    t->armed = 1;
    aipc__timer **pp = &l->timers;
    while (*pp && (*pp)->due <= t->due)
        pp = &(*pp)->next;
    t->next = *pp;
    *pp = t;
}

int aipc__timer_stop(aipc__loop *l, aipc__timer *t)
{
    if (!t->armed)
        return 0;
    for (aipc__timer **pp = &l->timers; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    t->armed = 0;
    t->next = NULL;
    return 1;
}

DWORD aipc__timers_run(aipc__loop *l)
{
    for (;;) {
        aipc__timer *t = l->timers;
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
