/*
 * p2p_harness.h - shared by the point-to-point bound, connect and teardown suites
 * (test_p2p_bounds.c, test_p2p_connect.c, test_p2p_teardown.c):
 *   rv     a recording delegate (counts every callback under a lock; waits bounded on a
 *          condition variable) with an optional Exit/Release inside one kind of callback;
 *   raw_*  a plain Win32 pipe client in this process (overlapped handle, every wait bounded),
 *          for a test that needs a peer that does not read, or exact control over when a
 *          client comes and goes.
 * The delegate's callbacks run on the SDK's I/O thread; everything else on the test's thread.
 */
#ifndef P2P_HARNESS_H
#define P2P_HARNESS_H

#include <windows.h>

#include <stdint.h>

#include "asyncipc/asyncipc.h"

/* ---- a recording delegate with an optional action inside one kind of callback --------------- */

typedef struct rv rv;
struct rv {
    aipc_pipe_delegate d;         /* first member */
    aipc_named_pipe *pipe;
    CRITICAL_SECTION lock;
    CONDITION_VARIABLE cv;
    long long created, create_ok, connected, connect_failed, disconnected, recv, sent;
    long long last_recv_size, last_sent_size;
    char act_on;                  /* 'C','O','S','R','D': act in that callback (first time) */
    int act_release;              /* the action: 1 Release, 0 Exit */
    long long acted;              /* the action returned (set inside the callback) */
    volatile LONG gone;           /* any callback after this is late */
    volatile LONG late;
    void (*on_create_hook)(rv *r);
    HANDLE raw;                   /* used by on_create_hook */
    int raw_keep;
    wchar_t full[300];
    uint8_t *keep_data;           /* copy of the last message when keep */
    int keep;
};

/* A new recorder (fails the test if out of memory). */
rv *rv_new(void);
/* Waits (bounded) until *field >= target. 1 if it got there. */
int rv_wait(rv *r, long long *field, long long target);
/* *field, read under the lock. */
long long rv_get(rv *r, long long *field);
/* Releases the pipe (bounded: a deadlock fails the test), checks that no callback came after
 * Exit/Release returned, and frees the recorder. */
void rv_free(rv *r);
/* aipc_pipe_new + options (0, 0, -1: not set) + Create; sets r->full, the full pipe name. */
void rv_start(rv *r, PipeImplType engine, PipeType role, const char *name,
              uint32_t connect_timeout_ms, uint64_t max_message, int64_t max_queue);

/* ---- raw Win32 client ------------------------------------------------------------------------ */

/* Opens `full` as an overlapped client; waits (bounded) while the pipe is busy or absent. */
HANDLE raw_open(const wchar_t *full);
/* Reads one frame into a new buffer (caller frees); returns the payload size or -1. */
long long raw_read_frame(HANDLE h, uint8_t **out);
/* Writes one frame (meta length 0) carrying data. 1 on success. */
int raw_send_frame(HANDLE h, const void *data, uint32_t len);
/* Writes one frame of a meta (a NUL-terminated string) and no payload. 1 on success. */
int raw_send_meta(HANDLE h, const char *meta);
/* Reads one frame: its meta into meta (NUL-terminated, cap bytes), its payload skipped.
 * Returns the meta's length, or -1 (error, end of pipe, a meta of cap bytes or more). */
long long raw_read_meta(HANDLE h, char *meta, size_t cap);
/* 1 when the pipe reports end-of-pipe within the wait bound (the SDK closed its end). */
int raw_sees_close(HANDLE h);

#endif
