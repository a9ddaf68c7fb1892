/*
 * broker_mem.c - sampling the broker's memory (see broker_mem.h).
 */
#include "broker_mem.h"

#include <stdio.h>

static void sample(broker_memwatch *w)
{
    LONG64 m = (LONG64)raw_broker_private_bytes(w->b);
    LONG64 p = w->peak;
    while (m > p) {
        LONG64 seen = InterlockedCompareExchange64(&w->peak, m, p);
        if (seen == p)
            break;
        p = seen;
    }
}

/* Sampler thread: a sample each period until the stop event is set. */
static DWORD WINAPI sampler(void *arg)
{
    broker_memwatch *w = arg;
    while (WaitForSingleObject(w->stop, w->period_ms) == WAIT_TIMEOUT)
        sample(w);
    return 0;
}

int broker_memwatch_start(broker_memwatch *w, const raw_broker *b, DWORD period_ms)
{
    w->b = b;
    w->period_ms = period_ms ? period_ms : 10;
    w->before = raw_broker_private_bytes(b);
    w->peak = (LONG64)w->before;
    w->stop = CreateEventA(NULL, TRUE, FALSE, NULL);
    w->thread = w->stop ? CreateThread(NULL, 0, sampler, w, 0, NULL) : NULL;
    return w->thread ? 0 : -1;
}

size_t broker_memwatch_peak(broker_memwatch *w)
{
    sample(w);
    return (size_t)w->peak;
}

size_t broker_memwatch_stop(broker_memwatch *w)
{
    if (w->thread) {
        SetEvent(w->stop);
        WaitForSingleObject(w->thread, INFINITE);
        CloseHandle(w->thread);
        w->thread = NULL;
    }
    if (w->stop) {
        CloseHandle(w->stop);
        w->stop = NULL;
    }
    sample(w);
    return (size_t)w->peak;
}

void broker_mem_line(const char *cls, size_t before, size_t peak, size_t after, size_t bound,
                     const char *extra)
{
    fprintf(stderr, "MEM {\"class\":\"%s\",\"before_kib\":%llu,\"peak_kib\":%llu,"
            "\"after_kib\":%llu,\"bound_kib\":%llu%s%s}\n", cls,
            (unsigned long long)(before / 1024), (unsigned long long)(peak / 1024),
            (unsigned long long)(after / 1024), (unsigned long long)(bound / 1024),
            extra ? "," : "", extra ? extra : "");
    fflush(stderr);
}
