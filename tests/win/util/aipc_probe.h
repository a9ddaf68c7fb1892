/*
 * aipc_probe.h - a test-side pipe: an aipc_pipe_delegate that records every callback so a test
 * (on its main thread) can wait for "n messages received", "connected", ... with a bound, and
 * then check what happened. It also checks the SDK's threading promises as it goes: callbacks
 * of one pipe never overlap, all run on one thread, and none runs after Exit/Release returned.
 *
 * Callbacks run on the SDK's I/O thread; the probe never asserts there (Check's ck_assert must
 * run on the test thread): problems are recorded in `error` and checked by the test.
 */
#ifndef AIPC_PROBE_H
#define AIPC_PROBE_H

#include "aipc_testutil.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aipc_probe aipc_probe;
/* Called inside OnRecv (I/O thread) after the message was recorded. May call Send, Exit or
 * Release on probe->pipe; after a Release it must set probe->pipe = NULL. */
typedef void (*aipc_probe_hook)(aipc_probe *probe, const uint8_t *data, int size);

typedef struct aipc_probe_msg {
    uint8_t *data;
    int size;
} aipc_probe_msg;

struct aipc_probe {
    aipc_pipe_delegate d;             /* first member: the SDK's `self` is the probe */
    aipc_named_pipe *pipe;            /* NULL after aipc_probe_free or a Release in a hook */

    /* options, set before aipc_probe_start */
    int keep;                         /* keep a copy of every message received (msgs) */
    int echo;                         /* send every received message back from OnRecv */
    int scribble;                     /* overwrite every received message (and its NUL) at the
                                         end of OnRecv, as the contract allows */
    aipc_probe_hook hook;
    void *user;

    /* counters: updated on the I/O thread under `lock`; read them after a wait, or under lock */
    CRITICAL_SECTION lock;
    CONDITION_VARIABLE changed;
    volatile long long created, create_ok, create_failed;
    volatile long long connected, connect_failed, disconnected;
    volatile long long recv_count, recv_bytes, sent_count, sent_bytes;
    volatile long long hook_done;     /* free for hooks to count what they did */
    char events[128];                 /* C/c created ok/failed, O/o connected ok/failed,
                                         D disconnected, R first message after a connect */
    int nevents;
    aipc_probe_msg *msgs;             /* when keep */
    size_t nmsgs, capmsgs;
    char error[256];                  /* first broken promise seen on the I/O thread */

    /* internals */
    volatile LONG inside;             /* callbacks running now (must never exceed 1) */
    volatile LONG exited;             /* set once Exit/Release returned */
    volatile LONG late_callbacks;     /* callbacks seen after that */
    DWORD io_thread;                  /* thread of the first callback */
    int waiters;
};

/* Allocates a probe (delegate members set, everything zero). */
aipc_probe *aipc_probe_new(void);
/* aipc_pipe_new(engine) + options + aipc_pipe_create(role, name). connect_timeout_ms 0 = the
 * SDK default; max_message 0 = the SDK default. Returns 0 or AIPC_E*. */
int aipc_probe_start(aipc_probe *p, PipeImplType engine, PipeType role, const char *name,
                     uint32_t connect_timeout_ms, uint64_t max_message);
/* Waits until *field >= target (field: a counter of this probe), at most `ms`. 1 if reached. */
int aipc_probe_wait(aipc_probe *p, volatile long long *field, long long target, DWORD ms);
/* Like aipc_probe_wait, but for long transfers: gives up only when *field has not moved for
 * `stall_ms` (or after `max_ms` in all). 1 if the target was reached. */
int aipc_probe_wait_progress(aipc_probe *p, volatile long long *field, long long target,
                             DWORD stall_ms, DWORD max_ms);
/* Reads a counter under the lock. */
long long aipc_probe_get(aipc_probe *p, volatile long long *field);
/* Queues one message (aipc_pipe_send). */
int aipc_probe_send(aipc_probe *p, const void *data, size_t size);
/* aipc_pipe_exit with a deadline; 1 if it returned in time (0 = deadlock). */
int aipc_probe_exit(aipc_probe *p, DWORD ms);
/* Releases the pipe (bounded) and frees the probe and its messages. Returns 1 if the release
 * returned in time; on a deadlock the probe is leaked on purpose (the SDK may still use it). */
int aipc_probe_free(aipc_probe *p, DWORD ms);
/* Drops the kept messages (to keep memory flat in long tests). */
void aipc_probe_clear_msgs(aipc_probe *p);
/* Position of the first event `c` in p->events, or -1. */
int aipc_probe_event_pos(aipc_probe *p, char c);

#ifdef __cplusplus
}
#endif
#endif
