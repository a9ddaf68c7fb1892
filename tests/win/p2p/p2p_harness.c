/*
 * p2p_harness.c - the recording delegate (rv_*) and the raw Win32 pipe client (raw_*) of the
 * point-to-point bound, connect and teardown suites; see p2p_harness.h.
 */
#ifndef __USE_MINGW_ANSI_STDIO
#define __USE_MINGW_ANSI_STDIO 1
#endif
#include "check_main.h"
#if defined(__MINGW32__) && defined(__GNUC__)   /* as in p2p_common.h: Check's format check */
#pragma GCC diagnostic ignored "-Wformat"
#pragma GCC diagnostic ignored "-Wformat-extra-args"
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aipc_testutil.h"
#include "p2p_harness.h"

/* Every wait is bounded by this (30 s, or AIPC_TEST_WAIT_MS from the environment). */
#define WAIT_MS ((unsigned)aipc_test_wait_ms())

static void rv_bump(rv *r, long long *field)
{
    EnterCriticalSection(&r->lock);
    (*field)++;
    WakeAllConditionVariable(&r->cv);
    LeaveCriticalSection(&r->lock);
}

int rv_wait(rv *r, long long *field, long long target)
{
    uint64_t deadline = aipc_test_now_ms() + WAIT_MS;
    EnterCriticalSection(&r->lock);
    while (*field < target) {
        uint64_t now = aipc_test_now_ms();
        if (now >= deadline)
            break;
        SleepConditionVariableCS(&r->cv, &r->lock, (DWORD)(deadline - now));
    }
    int ok = *field >= target;
    LeaveCriticalSection(&r->lock);
    return ok;
}

long long rv_get(rv *r, long long *field)
{
    EnterCriticalSection(&r->lock);
    long long v = *field;
    LeaveCriticalSection(&r->lock);
    return v;
}

/* I/O thread: late-callback check, then the configured action for this callback kind. */
static void rv_enter(rv *r)
{
    if (r->gone)
        InterlockedIncrement(&r->late);
}

static void rv_act(rv *r, char kind)
{
    if (r->act_on != kind || r->acted || !r->pipe)
        return;
    if (r->act_release) {
        aipc_pipe_free(r->pipe);
        r->pipe = NULL;
    } else {
        aipc_pipe_exit(r->pipe);
    }
    InterlockedExchange(&r->gone, 1);
    rv_bump(r, &r->acted);
}

static void rv_on_create(aipc_pipe_delegate *d, bool ok)
{
    rv *r = (rv *)d;
    rv_enter(r);
    if (ok)
        rv_bump(r, &r->create_ok);
    if (r->on_create_hook)
        r->on_create_hook(r);
    rv_bump(r, &r->created);
    rv_act(r, 'C');
}

static void rv_on_connected(aipc_pipe_delegate *d, bool ok)
{
    rv *r = (rv *)d;
    rv_enter(r);
    rv_bump(r, ok ? &r->connected : &r->connect_failed);
    rv_act(r, 'O');
}

static void rv_on_send(aipc_pipe_delegate *d, int size)
{
    rv *r = (rv *)d;
    rv_enter(r);
    EnterCriticalSection(&r->lock);
    r->last_sent_size = size;
    LeaveCriticalSection(&r->lock);
    rv_bump(r, &r->sent);
    rv_act(r, 'S');
}

static void rv_on_recv(aipc_pipe_delegate *d, void *data, int size)
{
    rv *r = (rv *)d;
    rv_enter(r);
    EnterCriticalSection(&r->lock);
    r->last_recv_size = size;
    if (r->keep && size >= 0) {
        free(r->keep_data);
        r->keep_data = malloc((size_t)size + 1);
        if (r->keep_data)
            memcpy(r->keep_data, data, (size_t)size + 1);
    }
    LeaveCriticalSection(&r->lock);
    rv_bump(r, &r->recv);
    rv_act(r, 'R');
}

static void rv_on_disconnected(aipc_pipe_delegate *d)
{
    rv *r = (rv *)d;
    rv_enter(r);
    rv_bump(r, &r->disconnected);
    rv_act(r, 'D');
}

rv *rv_new(void)
{
    rv *r = calloc(1, sizeof *r);
    ck_assert_ptr_nonnull(r);
    r->d.OnCreate = rv_on_create;
    r->d.OnConnected = rv_on_connected;
    r->d.OnSend = rv_on_send;
    r->d.OnRecv = rv_on_recv;
    r->d.OnDisconnected = rv_on_disconnected;
    r->raw = INVALID_HANDLE_VALUE;
    InitializeCriticalSection(&r->lock);
    InitializeConditionVariable(&r->cv);
    return r;
}

static void do_free_pipe(void *arg)
{
    aipc_pipe_free((aipc_named_pipe *)arg);
}

/* Releases the pipe (bounded: a deadlock fails the test) and frees the delegate. */
void rv_free(rv *r)
{
    if (r->pipe) {
        ck_assert_msg(aipc_test_call_bounded(do_free_pipe, r->pipe, WAIT_MS),
                      "Release did not return within %u ms", WAIT_MS);
        r->pipe = NULL;
        InterlockedExchange(&r->gone, 1);
    }
    ck_assert_msg(r->late == 0, "%ld callbacks after Exit/Release returned", (long)r->late);
    if (r->raw != INVALID_HANDLE_VALUE)
        CloseHandle(r->raw);
    free(r->keep_data);
    DeleteCriticalSection(&r->lock);
    free(r);
}

/* aipc_pipe_new + options + Create. */
void rv_start(rv *r, PipeImplType engine, PipeType role, const char *name,
              uint32_t connect_timeout_ms, uint64_t max_message, int64_t max_queue)
{
    ck_assert_int_eq(aipc_pipe_new(engine, &r->pipe), AIPC_OK);
    if (connect_timeout_ms)
        ck_assert_int_eq(aipc_pipe_set_option(r->pipe, AIPC_PIPE_OPT_CONNECT_TIMEOUT_MS,
                                              connect_timeout_ms), AIPC_OK);
    if (max_message)
        ck_assert_int_eq(aipc_pipe_set_option(r->pipe, AIPC_PIPE_OPT_MAX_MESSAGE, max_message),
                         AIPC_OK);
    if (max_queue >= 0)
        ck_assert_int_eq(aipc_pipe_set_option(r->pipe, AIPC_PIPE_OPT_MAX_QUEUE,
                                              (uint64_t)max_queue), AIPC_OK);
    wchar_t w[256];
    aipc_test_wname(w, 256, name);
    _snwprintf(r->full, 300, L"\\\\.\\pipe\\%ls", w);
    ck_assert_msg(aipc_pipe_create(r->pipe, w, role, &r->d), "Create failed");
}

/* ---- raw Win32 client ------------------------------------------------------------------------ */

/* Opens `full` as an overlapped client; waits (bounded) while the pipe is busy or absent. */
HANDLE raw_open(const wchar_t *full)
{
    uint64_t deadline = aipc_test_now_ms() + WAIT_MS;
    for (;;) {
        HANDLE h = CreateFileW(full, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                               FILE_FLAG_OVERLAPPED, NULL);
        if (h != INVALID_HANDLE_VALUE)
            return h;
        DWORD e = GetLastError();
        if (aipc_test_now_ms() >= deadline || (e != ERROR_PIPE_BUSY && e != ERROR_FILE_NOT_FOUND))
            return INVALID_HANDLE_VALUE;
        WaitNamedPipeW(full, 200);   /* bounded wait for a free instance */
    }
}

/* One overlapped read/write, bounded. Returns bytes moved, 0 at end of pipe, -1 error/timeout. */
static long raw_io(HANDLE h, int write, void *buf, DWORD len)
{
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    DWORD n = 0;
    long r;
    BOOL ok = write ? WriteFile(h, buf, len, NULL, &ov) : ReadFile(h, buf, len, NULL, &ov);
    if (!ok && GetLastError() != ERROR_IO_PENDING) {
        DWORD e = GetLastError();
        r = (e == ERROR_BROKEN_PIPE || e == ERROR_PIPE_NOT_CONNECTED || e == ERROR_NO_DATA) ? 0 : -1;
    } else if (WaitForSingleObject(ov.hEvent, WAIT_MS) != WAIT_OBJECT_0) {
        CancelIoEx(h, &ov);
        GetOverlappedResult(h, &ov, &n, TRUE);
        r = -1;
    } else if (GetOverlappedResult(h, &ov, &n, FALSE)) {
        r = (long)n;
    } else {
        DWORD e = GetLastError();
        r = (e == ERROR_BROKEN_PIPE || e == ERROR_PIPE_NOT_CONNECTED) ? 0 : -1;
    }
    CloseHandle(ov.hEvent);
    return r;
}

/* Reads exactly n bytes. 1 on success. */
static int raw_read_exact(HANDLE h, void *buf, size_t n)
{
    uint8_t *b = buf;
    while (n > 0) {
        long r = raw_io(h, 0, b, n > 65536 ? 65536 : (DWORD)n);
        if (r <= 0)
            return 0;
        b += r;
        n -= (size_t)r;
    }
    return 1;
}

/* Reads one frame into a new buffer (caller frees); returns the payload size or -1. */
long long raw_read_frame(HANDLE h, uint8_t **out)
{
    uint8_t hdr[8];
    *out = NULL;
    if (!raw_read_exact(h, hdr, 8))
        return -1;
    uint32_t meta = hdr[0] | hdr[1] << 8 | hdr[2] << 16 | (uint32_t)hdr[3] << 24;
    uint32_t len = hdr[4] | hdr[5] << 8 | hdr[6] << 16 | (uint32_t)hdr[7] << 24;
    if (meta != 0)
        return -1;
    *out = malloc((size_t)len + 1);
    if (!*out || !raw_read_exact(h, *out, len))
        return -1;
    return len;
}

int raw_send_frame(HANDLE h, const void *data, uint32_t len)
{
    uint8_t *f = malloc(8 + (size_t)len);
    memset(f, 0, 8);
    f[4] = (uint8_t)len;
    f[5] = (uint8_t)(len >> 8);
    f[6] = (uint8_t)(len >> 16);
    f[7] = (uint8_t)(len >> 24);
    memcpy(f + 8, data, len);
    long r = raw_io(h, 1, f, 8 + len);
    free(f);
    return r == (long)(8 + len);
}

int raw_send_meta(HANDLE h, const char *meta)
{
    uint32_t ml = (uint32_t)strlen(meta);
    uint8_t *f = malloc(8 + (size_t)ml);
    if (!f)
        return 0;
    memset(f, 0, 8);
    for (int i = 0; i < 4; i++)
        f[i] = (uint8_t)(ml >> (8 * i));
    memcpy(f + 8, meta, ml);
    long r = raw_io(h, 1, f, 8 + ml);
    free(f);
    return r == (long)(8 + ml);
}

long long raw_read_meta(HANDLE h, char *meta, size_t cap)
{
    uint8_t hdr[8];
    if (!raw_read_exact(h, hdr, 8))
        return -1;
    uint32_t ml = hdr[0] | hdr[1] << 8 | hdr[2] << 16 | (uint32_t)hdr[3] << 24;
    uint32_t len = hdr[4] | hdr[5] << 8 | hdr[6] << 16 | (uint32_t)hdr[7] << 24;
    if (ml >= cap || !raw_read_exact(h, meta, ml))
        return -1;
    meta[ml] = 0;
    uint8_t skip[4096];
    while (len > 0) {
        uint32_t n = len > sizeof skip ? (uint32_t)sizeof skip : len;
        if (!raw_read_exact(h, skip, n))
            return -1;
        len -= n;
    }
    return ml;
}

/* 1 when the pipe reports end-of-pipe within the wait bound (the SDK closed its end). */
int raw_sees_close(HANDLE h)
{
    uint8_t buf[4096];
    for (;;) {
        long r = raw_io(h, 0, buf, sizeof buf);
        if (r == 0)
            return 1;
        if (r < 0)
            return 0;
    }
}
