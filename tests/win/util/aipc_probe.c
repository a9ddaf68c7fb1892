/* aipc_probe.c - test-side pipe delegate that records callbacks (see aipc_probe.h). */
#ifndef __USE_MINGW_ANSI_STDIO
#define __USE_MINGW_ANSI_STDIO 1
#endif
#include "aipc_probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Records the first broken promise. Caller holds p->lock. */
static void note_error(aipc_probe *p, const char *what)
{
    if (!p->error[0])
        snprintf(p->error, sizeof p->error, "%s", what);
}

/* Appends an event letter. Caller holds p->lock. */
static void note_event(aipc_probe *p, char c)
{
    if (p->nevents < (int)sizeof p->events - 1)
        p->events[p->nevents++] = c;
}

/* Common entry of every callback (I/O thread): threading checks, then takes the lock. */
static void enter(aipc_probe *p)
{
    LONG inside = InterlockedIncrement(&p->inside);
    EnterCriticalSection(&p->lock);
    if (inside != 1)
        note_error(p, "two callbacks of one pipe ran at the same time");
    if (p->exited)
        InterlockedIncrement(&p->late_callbacks);
    DWORD tid = GetCurrentThreadId();
    if (!p->io_thread)
        p->io_thread = tid;
    else if (p->io_thread != tid)
        note_error(p, "callbacks of one pipe ran on different threads");
}

/* Common exit of every callback: wakes waiting tests, drops the lock. */
static void leave(aipc_probe *p)
{
    if (p->waiters)
        WakeAllConditionVariable(&p->changed);
    LeaveCriticalSection(&p->lock);
    InterlockedDecrement(&p->inside);
}

/* I/O thread. */
static void on_create(aipc_pipe_delegate *d, bool ok)
{
    aipc_probe *p = (aipc_probe *)d;
    enter(p);
    note_event(p, ok ? 'C' : 'c');
    if (p->created)
        note_error(p, "OnCreate called twice");
    p->created++;
    if (ok)
        p->create_ok++;
    else
        p->create_failed++;
    leave(p);
}

/* I/O thread. */
static void on_connected(aipc_pipe_delegate *d, bool ok)
{
    aipc_probe *p = (aipc_probe *)d;
    enter(p);
    note_event(p, ok ? 'O' : 'o');
    if (!p->created)
        note_error(p, "OnConnected before OnCreate");
    if (ok)
        p->connected++;
    else
        p->connect_failed++;
    leave(p);
}

/* I/O thread. */
static void on_send(aipc_pipe_delegate *d, int size)
{
    aipc_probe *p = (aipc_probe *)d;
    enter(p);
    if (size < 0)
        note_error(p, "OnSend with a negative size");
    p->sent_count++;
    p->sent_bytes += size;
    leave(p);
}

/* I/O thread: records (and optionally keeps/echoes) one message, then runs the hook. */
static void on_recv(aipc_pipe_delegate *d, void *data, int size)
{
    aipc_probe *p = (aipc_probe *)d;
    enter(p);
    if (p->nevents == 0 || p->events[p->nevents - 1] == 'O')
        note_event(p, 'R');
    if (p->connected <= p->disconnected)
        note_error(p, "OnRecv while not connected");
    if (size < 0 || (size > 0 && !data))
        note_error(p, "OnRecv with a bad buffer");
    else if (data && ((const uint8_t *)data)[size] != 0)
        note_error(p, "OnRecv data not NUL-terminated (data[size] != 0)");
    if (p->keep && size >= 0) {
        if (p->nmsgs == p->capmsgs) {
            size_t cap = p->capmsgs ? p->capmsgs * 2 : 64;
            aipc_probe_msg *m = realloc(p->msgs, cap * sizeof *m);
            if (m) {
                p->msgs = m;
                p->capmsgs = cap;
            }
        }
        if (p->nmsgs < p->capmsgs) {
            uint8_t *copy = malloc((size_t)size + 1);
            if (copy) {
                memcpy(copy, data, (size_t)size);
                copy[size] = 0;
                p->msgs[p->nmsgs].data = copy;
                p->msgs[p->nmsgs].size = size;
                p->nmsgs++;
            } else {
                note_error(p, "out of memory keeping a message");
            }
        }
    }
    p->recv_count++;
    p->recv_bytes += size;
    leave(p);
    /* Outside the lock: a hook may Exit/Release the pipe (the SDK then waits for nothing of
     * ours) and the echo may run into the SDK's own locks. */
    if (p->echo && p->pipe) {
        int rc = aipc_pipe_send(p->pipe, data, (size_t)size);
        if (rc != AIPC_OK) {
            EnterCriticalSection(&p->lock);
            note_error(p, "echo: aipc_pipe_send failed");
            LeaveCriticalSection(&p->lock);
        }
    }
    if (p->hook) {
        InterlockedIncrement(&p->inside);   /* the hook is part of this callback */
        p->hook(p, data, size);
        InterlockedDecrement(&p->inside);
    }
    if (p->scribble && data && size >= 0)
        memset(data, 0xA5, (size_t)size + 1);   /* OnRecv may write into data, its NUL included */
}

/* I/O thread. */
static void on_disconnected(aipc_pipe_delegate *d)
{
    aipc_probe *p = (aipc_probe *)d;
    enter(p);
    note_event(p, 'D');
    if (p->connected <= p->disconnected)
        note_error(p, "OnDisconnected without a connection");
    p->disconnected++;
    leave(p);
}

aipc_probe *aipc_probe_new(void)
{
    aipc_probe *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->d.OnCreate = on_create;
    p->d.OnConnected = on_connected;
    p->d.OnSend = on_send;
    p->d.OnRecv = on_recv;
    p->d.OnDisconnected = on_disconnected;
    InitializeCriticalSection(&p->lock);
    InitializeConditionVariable(&p->changed);
    return p;
}

int aipc_probe_start(aipc_probe *p, PipeImplType engine, PipeType role, const char *name,
                     uint32_t connect_timeout_ms, uint64_t max_message)
{
    aipc_named_pipe *pipe = NULL;
    int rc = aipc_pipe_new(engine, &pipe);
    if (rc != AIPC_OK)
        return rc;
    if (connect_timeout_ms && (rc = aipc_pipe_set_option(pipe, AIPC_PIPE_OPT_CONNECT_TIMEOUT_MS,
                                                         connect_timeout_ms)) != AIPC_OK) {
        aipc_pipe_free(pipe);
        return rc;
    }
    if (max_message &&
        (rc = aipc_pipe_set_option(pipe, AIPC_PIPE_OPT_MAX_MESSAGE, max_message)) != AIPC_OK) {
        aipc_pipe_free(pipe);
        return rc;
    }
    p->pipe = pipe;
    wchar_t wname[256];
    aipc_test_wname(wname, 256, name);
    if (!aipc_pipe_create(pipe, wname, role, &p->d))
        return AIPC_ESYS;
    return AIPC_OK;
}

int aipc_probe_wait(aipc_probe *p, volatile long long *field, long long target, DWORD ms)
{
    uint64_t deadline = aipc_test_now_ms() + ms;
    int ok;
    EnterCriticalSection(&p->lock);
    p->waiters++;
    for (;;) {
        ok = *field >= target;
        if (ok)
            break;
        uint64_t now = aipc_test_now_ms();
        if (now >= deadline)
            break;
        SleepConditionVariableCS(&p->changed, &p->lock, (DWORD)(deadline - now));
    }
    p->waiters--;
    LeaveCriticalSection(&p->lock);
    return ok;
}

int aipc_probe_wait_progress(aipc_probe *p, volatile long long *field, long long target,
                             DWORD stall_ms, DWORD max_ms)
{
    uint64_t start = aipc_test_now_ms();
    int ok;
    EnterCriticalSection(&p->lock);
    p->waiters++;
    long long last = *field;
    uint64_t last_change = start;
    for (;;) {
        ok = *field >= target;
        if (ok)
            break;
        uint64_t now = aipc_test_now_ms();
        if (*field != last) {
            last = *field;
            last_change = now;
        }
        if (now - last_change >= stall_ms || now - start >= max_ms)
            break;
        uint64_t until = last_change + stall_ms;
        if (until > start + max_ms)
            until = start + max_ms;
        SleepConditionVariableCS(&p->changed, &p->lock, (DWORD)(until - now));
    }
    p->waiters--;
    LeaveCriticalSection(&p->lock);
    return ok;
}

long long aipc_probe_get(aipc_probe *p, volatile long long *field)
{
    EnterCriticalSection(&p->lock);
    long long v = *field;
    LeaveCriticalSection(&p->lock);
    return v;
}

int aipc_probe_send(aipc_probe *p, const void *data, size_t size)
{
    if (!p->pipe)
        return AIPC_ECLOSED;
    return aipc_pipe_send(p->pipe, data, size);
}

/* Thread bodies for the bounded Exit/Release. */
static void do_exit(void *arg)
{
    aipc_pipe_exit((aipc_named_pipe *)arg);
}
static void do_free(void *arg)
{
    aipc_pipe_free((aipc_named_pipe *)arg);
}

int aipc_probe_exit(aipc_probe *p, DWORD ms)
{
    if (!p->pipe)
        return 1;
    int ok = aipc_test_call_bounded(do_exit, p->pipe, ms);
    if (ok)
        InterlockedExchange(&p->exited, 1);
    return ok;
}

void aipc_probe_clear_msgs(aipc_probe *p)
{
    EnterCriticalSection(&p->lock);
    for (size_t i = 0; i < p->nmsgs; i++)
        free(p->msgs[i].data);
    p->nmsgs = 0;
    LeaveCriticalSection(&p->lock);
}

int aipc_probe_free(aipc_probe *p, DWORD ms)
{
    if (!p)
        return 1;
    if (p->pipe) {
        if (!aipc_test_call_bounded(do_free, p->pipe, ms))
            return 0;   /* deadlocked: leave the probe to the SDK rather than free it under it */
        p->pipe = NULL;
    }
    aipc_probe_clear_msgs(p);
    free(p->msgs);
    DeleteCriticalSection(&p->lock);
    free(p);
    return 1;
}

int aipc_probe_event_pos(aipc_probe *p, char c)
{
    EnterCriticalSection(&p->lock);
    int pos = -1;
    for (int i = 0; i < p->nevents; i++)
        if (p->events[i] == c) {
            pos = i;
            break;
        }
    LeaveCriticalSection(&p->lock);
    return pos;
}
