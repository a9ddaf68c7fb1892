/*
 * p2p_peer.c - the other end of the point-to-point suites: a real process started by the suites
 * with CreateProcess.
 *
 *   p2p_peer --mode MODE --pipe NAME [--role server|client] [--engine async|overlapped]
 *            [--count N] [--size S] [--connect-timeout MS] [--timeout MS] [--once] [--greet]
 *            [--ready EVENT] [--max N] [--shm-off] [--stall N]
 *
 * SDK modes (role/engine apply):
 *   echo     send every message back; --greet: first send "greet:<pid>" on connect; the
 *            message "?shm" is answered "shm:<n>", n = aipc_pipe_stats.shm now
 *            "go" starts the mixed sequence: --count messages of 10 B, threshold - 1, threshold
 *            and 256 KiB in turn (pattern seed = index), about 32 in flight (one per OnSend);
 *            --stall N: the Nth message of more than 64 bytes is never echoed: its callback
 *            sleeps until the process is killed (it holds that message's shared slot)
 * --shm-off: AIPC_PIPE_OPT_SHM = AIPC_SHM_OFF (inline only). The suites' test hook
 * AIPC_TEST_SHM_GRANT_SID is removed from this process's environment at start (it is meant
 * for the suite's own process only).
 *   send     on connect send N messages of S bytes (aipc_pattern seed = index), then stay
 *   stream   on connect send S-byte pattern messages forever, keeping 32 in flight (OnSend
 *            paces it), ignoring what arrives
 * Raw modes (client only, plain Win32 pipe I/O, no SDK), for protocol-violation tests:
 *   raw-oversize       header with payload_len = --max + 1, then wait for the server to close
 *   raw-oversize-meta  header with meta_len = 65537, then wait for the server to close
 *   raw-truncated      header announcing 1000 payload bytes, 10 bytes, then disconnect
 *   raw-frames         5 valid frames (3 in one write, 1 split over 3 writes, then an empty
 *                      one whose header is split over 2 writes); expect 5 echo frames with
 *                      meta_len 0 and the same payloads
 * Logger modes (for test_sdk_log.c; the level comes from AIPC_LOG_LEVEL in the environment):
 *   log         aipc_log_open_file(--log PATH), then one line per level "peer-<level>"
 *   log-stderr  stderr redirected to --log PATH, no log file opened, then one line per level
 *
 * The process ends: client roles when the peer disconnects; server roles with --once after
 * the first client leaves; every mode after --timeout (default 60 s) at the latest.
 * --ready EVENT: a named event set once OnCreate(true) ran (SDK modes) or once connected (raw).
 * Exit codes: 0 ok, 2 usage, 3 callback order/threading broken, 4 create/connect failed,
 * 5 timed out, 6 data mismatch, 7 raw protocol expectation failed.
 */
#ifndef __USE_MINGW_ANSI_STDIO
#define __USE_MINGW_ANSI_STDIO 1
#endif
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aipc_testutil.h"

enum { EXIT_OK = 0, EXIT_USAGE = 2, EXIT_ORDER = 3, EXIT_CONNECT = 4, EXIT_TIMEOUT = 5,
       EXIT_DATA = 6, EXIT_RAW = 7 };

typedef struct opts {
    const char *mode, *pipe, *ready, *log;
    PipeType role;
    PipeImplType engine;
    long count;
    long size;
    DWORD connect_timeout, timeout;
    int once, greet, shm_off;
    long stall;
    unsigned long long max;
} opts;

typedef struct peer {
    aipc_pipe_delegate d;          /* first member */
    aipc_named_pipe *pipe;
    opts o;
    HANDLE done;                   /* set when the process should end */
    HANDLE ready;
    volatile LONG code;            /* exit code (first failure wins) */
    int created;                   /* I/O thread only */
    long long echoed;
    long large;                    /* echo: messages of more than 64 bytes seen (--stall) */
    uint8_t *mixbuf;               /* echo after "go": the mixed sequence's buffer */
    long mix_next;
    uint8_t *chunk;                /* stream mode: the message it keeps sending */
} peer;

/* Records a failure code (the first one wins) and ends the process's wait. */
static void fail(peer *p, LONG code, const char *why)
{
    fprintf(stderr, "p2p_peer[%lu]: %s\n", (unsigned long)GetCurrentProcessId(), why);
    InterlockedCompareExchange(&p->code, code, EXIT_OK);
    SetEvent(p->done);
}

/* Sends message `i` of the send/stream scenarios. */
static int send_pattern(peer *p, uint32_t seed)
{
    aipc_pattern_fill(p->chunk, (size_t)p->o.size, seed);
    return aipc_pipe_send(p->pipe, p->chunk, (size_t)p->o.size);
}

/* I/O thread. */
static void on_create(aipc_pipe_delegate *d, bool ok)
{
    peer *p = (peer *)d;
    p->created = 1;
    if (!ok) {
        fail(p, EXIT_CONNECT, "OnCreate(false)");
        return;
    }
    if (p->ready)
        SetEvent(p->ready);
}

static volatile LONG g_stream_seq;

/* I/O thread: starts the scenario. */
static void on_connected(aipc_pipe_delegate *d, bool ok)
{
    peer *p = (peer *)d;
    if (!p->created) {
        fail(p, EXIT_ORDER, "OnConnected before OnCreate");
        return;
    }
    if (!ok) {
        fail(p, EXIT_CONNECT, "OnConnected(false)");
        return;
    }
    if (p->o.greet) {
        char g[64];
        int n = snprintf(g, sizeof g, "greet:%lu", (unsigned long)GetCurrentProcessId());
        aipc_pipe_send(p->pipe, g, (size_t)n);
    }
    if (!strcmp(p->o.mode, "send")) {
        for (long i = 0; i < p->o.count; i++)
            if (send_pattern(p, (uint32_t)i) != AIPC_OK) {
                fail(p, EXIT_DATA, "send: aipc_pipe_send failed");
                return;
            }
    } else if (!strcmp(p->o.mode, "stream")) {
        for (int i = 0; i < 32; i++)
            send_pattern(p, (uint32_t)InterlockedIncrement(&g_stream_seq));
    }
}

/* I/O thread: stream mode keeps the pipe full. */
/* Echo mode after "go": message i of the mixed sequence (sizes around the shared-memory
 * threshold, pattern seed i). */
static const uint32_t g_mix[4] = {10, AIPC_DEFAULT_SHM_THRESHOLD - 1, AIPC_DEFAULT_SHM_THRESHOLD,
                                  256 * 1024};

static void send_mix(peer *p)
{
    if (p->mix_next >= p->o.count)
        return;
    uint32_t i = (uint32_t)p->mix_next++;
    aipc_pattern_fill(p->mixbuf, g_mix[i % 4], i);
    if (aipc_pipe_send(p->pipe, p->mixbuf, g_mix[i % 4]) != AIPC_OK)
        fail(p, EXIT_DATA, "go: aipc_pipe_send failed");
}

static void on_send(aipc_pipe_delegate *d, int size)
{
    peer *p = (peer *)d;
    if (!strcmp(p->o.mode, "stream"))
        send_pattern(p, (uint32_t)InterlockedIncrement(&g_stream_seq));
    else if (p->mixbuf)
        send_mix(p);             /* one more for each one done: about 32 in flight */
}

/* I/O thread. */
static void on_recv(aipc_pipe_delegate *d, void *data, int size)
{
    peer *p = (peer *)d;
    if (!strcmp(p->o.mode, "echo")) {
        char shm[16];
        if (size > 64 && p->o.stall && ++p->large == p->o.stall) {
            Sleep(INFINITE);   /* holds this message's slot (and the I/O thread) until killed */
        }
        if (size == 2 && !memcmp(data, "go", 2) && !p->mixbuf) {
            p->mixbuf = malloc(1024 * 1024);
            for (int i = 0; i < 32 && p->mixbuf; i++)
                send_mix(p);
            return;
        }
        if (size == 4 && !memcmp(data, "?shm", 4)) {   /* the shm suites ask what we negotiated */
            aipc_pipe_stats st = {sizeof st};
            aipc_pipe_get_stats(p->pipe, &st);
            size = snprintf(shm, sizeof shm, "shm:%u", (unsigned)st.shm);
            data = shm;
        }
        int rc = aipc_pipe_send(p->pipe, data, (size_t)size);
        if (rc != AIPC_OK) {
            char why[96];
            snprintf(why, sizeof why, "echo of %d bytes failed: %s", size, aipc_strerror(rc));
            fail(p, EXIT_DATA, why);
        }
        p->echoed++;
    }
}

/* I/O thread. */
static void on_disconnected(aipc_pipe_delegate *d)
{
    peer *p = (peer *)d;
    if (p->o.role == PIPE_CLIENT || p->o.once)
        SetEvent(p->done);
}

/* ---- raw Win32 client (no SDK) ------------------------------------------------------------ */

/* Opens the pipe as a plain overlapped client, waiting for a free instance (bounded). */
static HANDLE raw_connect(const opts *o)
{
    wchar_t name[300], shortname[256];
    aipc_test_wname(shortname, 256, o->pipe);
    if (!wcsncmp(shortname, L"\\\\.\\pipe\\", 9))
        _snwprintf(name, 300, L"%ls", shortname);
    else
        _snwprintf(name, 300, L"\\\\.\\pipe\\%ls", shortname);
    uint64_t deadline = aipc_test_now_ms() + o->timeout;
    for (;;) {
        HANDLE h = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                               FILE_FLAG_OVERLAPPED, NULL);
        if (h != INVALID_HANDLE_VALUE)
            return h;
        DWORD err = GetLastError();
        if (aipc_test_now_ms() >= deadline)
            return INVALID_HANDLE_VALUE;
        if (err == ERROR_PIPE_BUSY || err == ERROR_FILE_NOT_FOUND)
            WaitNamedPipeW(name, 500);   /* bounded: waits for an instance to be free */
        else
            return INVALID_HANDLE_VALUE;
    }
}

/* One overlapped read or write with a deadline. Returns bytes moved, 0 on end of pipe, -1 on
 * error, -2 on timeout. */
static long raw_io(HANDLE h, int write, void *buf, DWORD len, DWORD ms)
{
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    DWORD n = 0;
    BOOL ok = write ? WriteFile(h, buf, len, NULL, &ov) : ReadFile(h, buf, len, NULL, &ov);
    long r;
    if (!ok && GetLastError() != ERROR_IO_PENDING) {
        DWORD e = GetLastError();
        r = (e == ERROR_BROKEN_PIPE || e == ERROR_PIPE_NOT_CONNECTED || e == ERROR_NO_DATA) ? 0 : -1;
    } else if (WaitForSingleObject(ov.hEvent, ms) != WAIT_OBJECT_0) {
        CancelIoEx(h, &ov);
        GetOverlappedResult(h, &ov, &n, TRUE);   /* the buffer is ours again after this */
        r = -2;
    } else if (!GetOverlappedResult(h, &ov, &n, FALSE)) {
        DWORD e = GetLastError();
        r = (e == ERROR_BROKEN_PIPE || e == ERROR_PIPE_NOT_CONNECTED || e == ERROR_NO_DATA) ? 0 : -1;
    } else {
        r = (long)n;
    }
    CloseHandle(ov.hEvent);
    return r;
}

/* Writes all bytes (bounded). 0 or -1. */
static int raw_write_all(HANDLE h, const void *buf, size_t len, DWORD ms)
{
    const uint8_t *b = buf;
    while (len > 0) {
        long n = raw_io(h, 1, (void *)b, (DWORD)len, ms);
        if (n <= 0)
            return -1;
        b += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads exactly len bytes (bounded). 0, or -1 on end/error/timeout. */
static int raw_read_all(HANDLE h, void *buf, size_t len, DWORD ms)
{
    uint8_t *b = buf;
    while (len > 0) {
        long n = raw_io(h, 0, b, (DWORD)len, ms);
        if (n <= 0)
            return -1;
        b += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Little-endian u32 store. */
static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Waits until the server closes the connection: reads (discarding) until end of pipe.
 * 0 if closed within `ms`, EXIT_RAW otherwise. */
static int raw_expect_close(HANDLE h, DWORD ms)
{
    uint8_t buf[4096];
    uint64_t deadline = aipc_test_now_ms() + ms;
    for (;;) {
        uint64_t now = aipc_test_now_ms();
        if (now >= deadline)
            break;
        long n = raw_io(h, 0, buf, sizeof buf, (DWORD)(deadline - now));
        if (n == 0 || n == -1)
            return EXIT_OK;
        if (n == -2)
            break;
    }
    fprintf(stderr, "p2p_peer: the server did not close the connection\n");
    return EXIT_RAW;
}

/* The raw modes. */
static int run_raw(const opts *o, HANDLE ready)
{
    HANDLE h = raw_connect(o);
    if (h == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "p2p_peer: raw connect to %s failed: %lu\n", o->pipe,
                (unsigned long)GetLastError());
        return EXIT_CONNECT;
    }
    if (ready)
        SetEvent(ready);
    int rc = EXIT_OK;
    uint8_t hdr[8];
    if (!strcmp(o->mode, "raw-oversize") || !strcmp(o->mode, "raw-oversize-meta")) {
        if (!strcmp(o->mode, "raw-oversize")) {
            put_u32(hdr, 0);
            put_u32(hdr + 4, (uint32_t)(o->max + 1));
        } else {
            put_u32(hdr, 65537);
            put_u32(hdr + 4, 0);
        }
        if (raw_write_all(h, hdr, 8, o->timeout) != 0)
            rc = EXIT_RAW;
        else
            rc = raw_expect_close(h, o->timeout);
    } else if (!strcmp(o->mode, "raw-truncated")) {
        uint8_t buf[18];
        put_u32(buf, 0);
        put_u32(buf + 4, 1000);
        memset(buf + 8, 'x', 10);
        if (raw_write_all(h, buf, sizeof buf, o->timeout) != 0)
            rc = EXIT_RAW;
        FlushFileBuffers(h);   /* returns once the server has read the bytes */
    } else if (!strcmp(o->mode, "raw-frames")) {
        static const char *const payloads[5] = {"raw-one", "", "raw-three\0with-nul", "raw-split",
                                                ""};
        static const uint32_t lens[5] = {7, 0, 18, 9, 0};
        uint8_t buf[256], empty_hdr[8] = {0};
        size_t n = 0;
        for (int i = 0; i < 3; i++) {   /* three frames coalesced into one write */
            put_u32(buf + n, 0);
            put_u32(buf + n + 4, lens[i]);
            memcpy(buf + n + 8, payloads[i], lens[i]);
            n += 8 + lens[i];
        }
        put_u32(buf + n, 0);            /* the fourth split over three writes */
        put_u32(buf + n + 4, lens[3]);
        memcpy(buf + n + 8, payloads[3], lens[3]);
        if (raw_write_all(h, buf, n, o->timeout) != 0 || raw_write_all(h, buf + n, 5, o->timeout) != 0 ||
            raw_write_all(h, buf + n + 5, 6, o->timeout) != 0 ||
            raw_write_all(h, buf + n + 11, 8 + lens[3] - 11, o->timeout) != 0 ||
            raw_write_all(h, empty_hdr, 3, o->timeout) != 0 ||   /* an empty frame, header split */
            raw_write_all(h, empty_hdr + 3, 5, o->timeout) != 0) {
            rc = EXIT_RAW;
        } else {
            for (int i = 0; i < 5 && rc == EXIT_OK; i++) {
                uint8_t in[8 + 64];
                if (raw_read_all(h, in, 8, o->timeout) != 0) {
                    fprintf(stderr, "p2p_peer: raw-frames: no echo header %d\n", i);
                    rc = EXIT_RAW;
                    break;
                }
                uint32_t ml = in[0] | in[1] << 8 | in[2] << 16 | (uint32_t)in[3] << 24;
                uint32_t pl = in[4] | in[5] << 8 | in[6] << 16 | (uint32_t)in[7] << 24;
                if (ml != 0 || pl != lens[i] ||
                    (pl && raw_read_all(h, in + 8, pl, o->timeout) != 0) ||
                    memcmp(in + 8, payloads[i], pl) != 0) {
                    fprintf(stderr, "p2p_peer: raw-frames: echo %d wrong (meta %u, payload %u)\n", i,
                            ml, pl);
                    rc = EXIT_RAW;
                }
            }
        }
    } else {
        rc = EXIT_USAGE;
    }
    CloseHandle(h);
    return rc;
}

/* ---- logger modes ------------------------------------------------------------------------- */
/* One line per level, to a log file or (log-stderr) to a redirected stderr. */
static int run_log(const opts *o)
{
    if (!strcmp(o->mode, "log")) {
        if (aipc_log_open_file(o->log) != AIPC_OK)
            return EXIT_USAGE;
    } else {
        HANDLE h = CreateFileA(o->log, GENERIC_WRITE, FILE_SHARE_READ, NULL, CREATE_ALWAYS,
                               FILE_ATTRIBUTE_NORMAL, NULL);
        if (h == INVALID_HANDLE_VALUE)
            return EXIT_USAGE;
        SetStdHandle(STD_ERROR_HANDLE, h);
    }
    static const char *const names[] = {"error", "warn", "info", "debug", "trace"};
    for (int l = AIPC_LOG_ERROR; l <= AIPC_LOG_TRACE; l++)
        aipc_log((aipc_log_level)l, "peer-%s", names[l]);
    return EXIT_OK;
}

/* ---- main --------------------------------------------------------------------------------- */
static int parse(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->role = PIPE_CLIENT;
    o->engine = PIPE_ASYNC;
    o->count = 1;
    o->size = 64;
    o->timeout = 60000;
    o->max = AIPC_DEFAULT_MAX_PAYLOAD;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--once")) {
            o->once = 1;
            continue;
        }
        if (!strcmp(a, "--greet")) {
            o->greet = 1;
            continue;
        }
        if (!strcmp(a, "--shm-off")) {
            o->shm_off = 1;
            continue;
        }
        if (!v)
            return -1;
        i++;
        if (!strcmp(a, "--mode"))
            o->mode = v;
        else if (!strcmp(a, "--pipe"))
            o->pipe = v;
        else if (!strcmp(a, "--ready"))
            o->ready = v;
        else if (!strcmp(a, "--log"))
            o->log = v;
        else if (!strcmp(a, "--role"))
            o->role = !strcmp(v, "server") ? PIPE_SERVER : PIPE_CLIENT;
        else if (!strcmp(a, "--engine"))
            o->engine = !strcmp(v, "overlapped") ? PIPE_OVERLAPPED : PIPE_ASYNC;
        else if (!strcmp(a, "--count"))
            o->count = strtol(v, NULL, 10);
        else if (!strcmp(a, "--size"))
            o->size = strtol(v, NULL, 10);
        else if (!strcmp(a, "--connect-timeout"))
            o->connect_timeout = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--timeout"))
            o->timeout = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--stall"))
            o->stall = strtol(v, NULL, 10);
        else if (!strcmp(a, "--max"))
            o->max = strtoull(v, NULL, 10);
        else
            return -1;
    }
    if (o->mode && !strncmp(o->mode, "log", 3))
        return o->log ? 0 : -1;
    return o->mode && o->pipe && o->size >= 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    static peer p;
    if (parse(argc, argv, &p.o) != 0) {
        fprintf(stderr, "p2p_peer: bad arguments (see p2p_peer.c)\n");
        return EXIT_USAGE;
    }
    if (p.o.ready) {
        wchar_t w[256];
        aipc_test_wname(w, 256, p.o.ready);
        p.ready = OpenEventW(EVENT_MODIFY_STATE, FALSE, w);
    }
    SetEnvironmentVariableA("AIPC_TEST_SHM_GRANT_SID", NULL);
    if (!strncmp(p.o.mode, "raw-", 4))
        return run_raw(&p.o, p.ready);
    if (!strncmp(p.o.mode, "log", 3))
        return run_log(&p.o);

    InitEasyLog("p2p_peer");
    p.d.OnCreate = on_create;
    p.d.OnConnected = on_connected;
    p.d.OnSend = on_send;
    p.d.OnRecv = on_recv;
    p.d.OnDisconnected = on_disconnected;
    p.done = CreateEventW(NULL, TRUE, FALSE, NULL);
    p.chunk = malloc((size_t)p.o.size + 1);
    if (!p.done || !p.chunk || aipc_pipe_new(p.o.engine, &p.pipe) != AIPC_OK)
        return EXIT_CONNECT;
    if (p.o.shm_off)
        aipc_pipe_set_option(p.pipe, AIPC_PIPE_OPT_SHM, AIPC_SHM_OFF);
    if (p.o.connect_timeout)
        aipc_pipe_set_option(p.pipe, AIPC_PIPE_OPT_CONNECT_TIMEOUT_MS, p.o.connect_timeout);
    wchar_t wname[256];
    aipc_test_wname(wname, 256, p.o.pipe);
    if (!aipc_pipe_create(p.pipe, wname, p.o.role, &p.d)) {
        fprintf(stderr, "p2p_peer: aipc_pipe_create failed\n");
        return EXIT_CONNECT;
    }
    if (WaitForSingleObject(p.done, p.o.timeout) != WAIT_OBJECT_0) {
        fail(&p, EXIT_TIMEOUT, "timed out");
    }
    aipc_pipe_free(p.pipe);
    return (int)p.code;
}
