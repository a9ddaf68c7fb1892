/*
 * bench_raw.c - baselines: raw Win32 named pipes between two processes, no SDK.
 *
 *   ping-pong: blocking WriteFile of one message, the peer reads it whole and writes it back,
 *              blocking reads until the whole echo is here (one message per call).
 *   streaming: one blocking WriteFile per message; the peer reads with a 1 MiB buffer and
 *              answers with the byte count once everything arrived (timed end to end).
 *   relay:     the same stream through a third party: the driver writes into pipe 1, a relay
 *              process forwards pipe 1 to pipe 2 on ONE thread (overlapped, two 1 MiB buffers:
 *              the read of the next bytes runs while the last ones are written), a second
 *              thread of the driver reads pipe 2 with a 1 MiB buffer. The floor for a broker
 *              with one I/O thread: every byte crosses two pipes (64 KiB and 1 MiB).
 * Sizes 64 B, 1 KiB, 64 KiB, 1 MiB. Byte-mode pipe, 256 KiB buffers each way (the SDK's
 * AIPC_PIPE_BUFSIZE, so the comparison isolates software overhead).
 * The driver is the pipe server and does the timing; "bench_raw peer NAME" is the spawned peer.
 * Output: RESULT lines (bench_util.h). Exit code 2 if a measurement could not be made.
 */
#include "bench_util.h"

#include <process.h>

#define RAW_BUF   (256u * 1024u)
#define PEER_RBUF (1024u * 1024u)
#define REPS      7
#define RELAY_BUF (1024u * 1024u)

enum { CMD_PING = 1, CMD_STREAM = 2, CMD_QUIT = 3 };
typedef struct raw_cmd {
    uint32_t mode, size, count;
} raw_cmd;

static const uint32_t g_sizes[] = {64, 1024, 64 * 1024, 1024 * 1024};
static const char *g_size_names[] = {"64B", "1KiB", "64KiB", "1MiB"};
static const uint32_t g_ping_iters[] = {1500, 1500, 600, 60};
static const uint32_t g_stream_count[] = {6000, 6000, 3000, 200};

/* The peer: executes commands until QUIT or the pipe breaks. */
static int peer(const wchar_t *name)
{
    HANDLE h = bench_open_pipe(name, 0, 10000);
    uint8_t *buf = malloc(PEER_RBUF);
    if (!buf)
        return 1;
    for (;;) {
        raw_cmd c;
        if (bench_read_full(h, &c, sizeof c) != 0)
            return 1;
        if (c.mode == CMD_QUIT)
            break;
        if (c.mode == CMD_PING) {
            for (uint32_t i = 0; i < c.count; i++)
                if (bench_read_full(h, buf, c.size) != 0 || bench_write_full(h, buf, c.size) != 0)
                    return 1;
        } else if (c.mode == CMD_STREAM) {
            uint64_t want = (uint64_t)c.size * c.count, got = 0;
            while (got < want) {
                DWORD n = 0;
                if (!ReadFile(h, buf, PEER_RBUF, &n, NULL) && GetLastError() != ERROR_MORE_DATA)
                    return 1;
                got += n;
            }
            if (bench_write_full(h, &got, sizeof got) != 0)
                return 1;
        }
    }
    CloseHandle(h);
    return 0;
}

/* ---- relay ------------------------------------------------------------------------------------ */

/* The relay process: forwards every byte of pipe `in` to pipe `out` until `in` breaks, on one
 * thread, with at most one read and one write in flight (two buffers: a read fills one while
 * the other is written). Operations that complete at once are handled without a wait. */
static int relay(const wchar_t *in, const wchar_t *out)
{
    HANDLE hi = bench_open_pipe(in, FILE_FLAG_OVERLAPPED, 10000);
    HANDLE ho = bench_open_pipe(out, FILE_FLAG_OVERLAPPED, 10000);
    uint8_t *b[2] = {malloc(RELAY_BUF), malloc(RELAY_BUF)};
    OVERLAPPED ro, wo;
    memset(&ro, 0, sizeof ro);
    memset(&wo, 0, sizeof wo);
    ro.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    wo.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!b[0] || !b[1] || !ro.hEvent || !wo.hEvent)
        return 1;
    DWORD len[2] = {0, 0}, n;
    int ri = 0, wi = 0, reading = 0, writing = 0, eof = 0;
    for (;;) {
        if (!reading && !eof && len[ri] == 0) {
            n = 0;
            if (ReadFile(hi, b[ri], RELAY_BUF, &n, &ro) || GetLastError() == ERROR_MORE_DATA) {
                len[ri] = n;            /* at once (a zero-byte read is no data: read again) */
                if (n)
                    ri ^= 1;
                continue;
            }
            if (GetLastError() == ERROR_IO_PENDING)
                reading = 1;
            else
                eof = 1;                /* the driver closed pipe 1: flush, then end */
        }
        if (!writing && len[wi] > 0) {
            n = 0;
            if (WriteFile(ho, b[wi], len[wi], &n, &wo)) {
                len[wi] = 0;
                wi ^= 1;
                continue;
            }
            if (GetLastError() != ERROR_IO_PENDING)
                return 1;
            writing = 1;
        }
        if (!reading && !writing)
            break;                      /* eof and everything written */
        HANDLE ev[2];
        int k = 0;
        if (reading)
            ev[k++] = ro.hEvent;
        if (writing)
            ev[k++] = wo.hEvent;
        WaitForMultipleObjects((DWORD)k, ev, FALSE, INFINITE);
        if (reading && HasOverlappedIoCompleted(&ro)) {
            reading = 0;
            n = 0;
            if (GetOverlappedResult(hi, &ro, &n, FALSE) || GetLastError() == ERROR_MORE_DATA) {
                len[ri] = n;
                if (n)
                    ri ^= 1;
            } else {
                eof = 1;
            }
        }
        if (writing && HasOverlappedIoCompleted(&wo)) {
            writing = 0;
            if (!GetOverlappedResult(ho, &wo, &n, FALSE))
                return 1;
            len[wi] = 0;
            wi ^= 1;
        }
    }
    CloseHandle(ho);
    CloseHandle(hi);
    return 0;
}

/* The driver's reader of pipe 2 (its own thread): counts bytes, signals when `target` is in. */
typedef struct relay_sink {
    HANDLE h, ev;
    volatile LONG64 got, target;
} relay_sink;

static unsigned __stdcall relay_sink_main(void *arg)
{
    relay_sink *s = arg;
    uint8_t *buf = malloc(PEER_RBUF);
    DWORD n = 0;
    while (buf && (ReadFile(s->h, buf, PEER_RBUF, &n, NULL) || GetLastError() == ERROR_MORE_DATA)) {
        if (InterlockedAdd64(&s->got, n) >= s->target)
            SetEvent(s->ev);
    }
    free(buf);
    return 0;
}

/* Creates a byte pipe instance with `bufsz` buffers each way. */
static HANDLE relay_pipe(const wchar_t *name, DWORD bufsz)
{
    HANDLE h = CreateNamedPipeW(name, PIPE_ACCESS_DUPLEX, PIPE_TYPE_BYTE | PIPE_READMODE_BYTE |
                                PIPE_WAIT, 1, bufsz, bufsz, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
        bench_fail("CreateNamedPipe: %lu", GetLastError());
    return h;
}

typedef struct relay_run {
    HANDLE h1, h2, child, sink_thread;
    relay_sink sink;
} relay_run;

/* Starts the relay process and the sink thread (pipe buffers of bufsz bytes). */
static void relay_start(relay_run *r, DWORD bufsz)
{
    wchar_t n1[200], n2[200], args[440];
    bench_pipe_name(n1, 200, L"relay1");
    bench_pipe_name(n2, 200, L"relay2");
    r->h1 = relay_pipe(n1, bufsz);
    r->h2 = relay_pipe(n2, bufsz);
    _snwprintf(args, 440, L"relay %ls %ls", n1, n2);
    args[439] = 0;
    r->child = bench_spawn_self(args);
    if ((!ConnectNamedPipe(r->h1, NULL) && GetLastError() != ERROR_PIPE_CONNECTED) ||
        (!ConnectNamedPipe(r->h2, NULL) && GetLastError() != ERROR_PIPE_CONNECTED))
        bench_fail("relay: ConnectNamedPipe: %lu", GetLastError());
    memset(&r->sink, 0, sizeof r->sink);
    r->sink.h = r->h2;
    r->sink.ev = CreateEventW(NULL, FALSE, FALSE, NULL);
    r->sink.target = INT64_MAX;
    r->sink_thread = (HANDLE)_beginthreadex(NULL, 0, relay_sink_main, &r->sink, 0, NULL);
    if (!r->sink.ev || !r->sink_thread)
        bench_fail("relay: no event or thread");
}

/* One relay repetition: seconds for `count` messages (one WriteFile each) to reach the sink. */
static double run_relay(relay_run *r, const uint8_t *msg, uint32_t size, uint32_t count)
{
    r->sink.target = r->sink.got + (LONG64)size * count;
    double t0 = bench_now();
    for (uint32_t i = 0; i < count; i++) {
        DWORD put = 0;
        if (!WriteFile(r->h1, msg, size, &put, NULL) || put != size)
            bench_fail("raw relay: WriteFile failed (%lu)", GetLastError());
    }
    while (r->sink.got < r->sink.target)
        if (WaitForSingleObject(r->sink.ev, 60000) != WAIT_OBJECT_0)
            bench_fail("raw relay: the sink got %lld of %lld bytes", (long long)r->sink.got,
                       (long long)r->sink.target);
    return bench_now() - t0;
}

/* Ends the relay (closing pipe 1 ends it, which ends the sink). */
static void relay_stop(relay_run *r)
{
    CloseHandle(r->h1);
    DWORD code = bench_wait_child(r->child, 10000, "raw relay");
    if (WaitForSingleObject(r->sink_thread, 10000) != WAIT_OBJECT_0)
        bench_fail("relay: the sink thread did not end");
    CloseHandle(r->sink_thread);
    CloseHandle(r->sink.ev);
    CloseHandle(r->h2);
    if (code != 0)
        bench_fail("raw relay exited with %lu", (unsigned long)code);
}

/* One ping-pong repetition: seconds per round trip. */
static double run_ping(HANDLE h, uint8_t *msg, uint8_t *echo, uint32_t size, uint32_t iters)
{
    raw_cmd c = {CMD_PING, size, iters};
    if (bench_write_full(h, &c, sizeof c) != 0)
        bench_fail("raw ping: pipe broke");
    double t0 = bench_now();
    for (uint32_t i = 0; i < iters; i++) {
        msg[0] = (uint8_t)i;
        if (bench_write_full(h, msg, size) != 0 || bench_read_full(h, echo, size) != 0)
            bench_fail("raw ping: pipe broke");
        if (echo[0] != (uint8_t)i)
            bench_fail("raw ping: wrong echo");
    }
    return (bench_now() - t0) / iters;
}

/* One streaming repetition: seconds for `count` messages, one WriteFile each. */
static double run_stream(HANDLE h, const uint8_t *msg, uint32_t size, uint32_t count)
{
    raw_cmd c = {CMD_STREAM, size, count};
    if (bench_write_full(h, &c, sizeof c) != 0)
        bench_fail("raw stream: pipe broke");
    double t0 = bench_now();
    for (uint32_t i = 0; i < count; i++) {
        DWORD put = 0;
        if (!WriteFile(h, msg, size, &put, NULL) || put != size)
            bench_fail("raw stream: WriteFile failed (%lu)", GetLastError());
    }
    uint64_t got = 0;
    if (bench_read_full(h, &got, sizeof got) != 0)
        bench_fail("raw stream: pipe broke");
    double dt = bench_now() - t0;
    if (got != (uint64_t)size * count)
        bench_fail("raw stream: peer got %llu bytes, sent %llu", (unsigned long long)got,
                   (unsigned long long)size * count);
    return dt;
}

int wmain(int argc, wchar_t **argv)
{
    if (argc >= 3 && wcscmp(argv[1], L"peer") == 0)
        return peer(argv[2]);
    if (argc >= 4 && wcscmp(argv[1], L"relay") == 0)
        return relay(argv[2], argv[3]);
    wchar_t name[200], args[260];
    bench_pipe_name(name, 200, L"raw");
    HANDLE h = CreateNamedPipeW(name, PIPE_ACCESS_DUPLEX, PIPE_TYPE_BYTE | PIPE_READMODE_BYTE |
                                PIPE_WAIT, 1, RAW_BUF, RAW_BUF, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
        bench_fail("CreateNamedPipe: %lu", GetLastError());
    _snwprintf(args, 260, L"peer %ls", name);
    args[259] = 0;
    HANDLE child = bench_spawn_self(args);
    if (!ConnectNamedPipe(h, NULL) && GetLastError() != ERROR_PIPE_CONNECTED)
        bench_fail("ConnectNamedPipe: %lu", GetLastError());
    uint8_t *msg = malloc(1u << 20), *echo = malloc(1u << 20);
    if (!msg || !echo)
        bench_fail("out of memory");
    memset(msg, 0x5a, 1u << 20);
    if (argc >= 5 && wcscmp(argv[1], L"count") == 0) {
        /* Profiling aid: one run of one kind (no warm-up), e.g. "count ping 64 1000", so that
         * wineserver requests can be counted per message (WINEDEBUG=+server). */
        uint32_t size = (uint32_t)_wtoi(argv[3]), n = (uint32_t)_wtoi(argv[4]);
        double dt;
        if (wcscmp(argv[2], L"relay") == 0) {   /* "count relay SIZE N [PIPE_BUFFER]" */
            relay_run r;
            relay_start(&r, argc >= 6 ? (DWORD)_wtoi(argv[5]) : RAW_BUF);
            dt = run_relay(&r, msg, size, n);
            relay_stop(&r);
        } else {
            dt = wcscmp(argv[2], L"ping") == 0 ? run_ping(h, msg, echo, size, n) * n
                                               : run_stream(h, msg, size, n);
        }
        printf("count: %ls %u x %u B: %.6f s\n", argv[2], n, size, dt);
        raw_cmd q = {CMD_QUIT, 0, 0};
        bench_write_full(h, &q, sizeof q);
        bench_wait_child(child, 10000, "raw peer");
        return 0;
    }

    for (int s = 0; s < 4; s++) {
        double v[REPS];
        uint32_t size = g_sizes[s];
        run_ping(h, msg, echo, size, g_ping_iters[s] / 10 + 1);          /* warm-up */
        for (int r = 0; r < REPS; r++)
            v[r] = run_ping(h, msg, echo, size, g_ping_iters[s]) * 1e6;
        char nm[64];
        snprintf(nm, sizeof nm, "raw.pingpong.%s.rtt", g_size_names[s]);
        bench_report(nm, "us", v, REPS, "\"iters\":%u", g_ping_iters[s]);
    }
    for (int s = 0; s < 4; s++) {
        double msgs[REPS], mbs[REPS];
        uint32_t size = g_sizes[s], count = g_stream_count[s];
        run_stream(h, msg, size, count / 10 + 1);
        for (int r = 0; r < REPS; r++) {
            double dt = run_stream(h, msg, size, count);
            msgs[r] = count / dt;
            mbs[r] = (double)size * count / dt / 1e6;
        }
        char nm[64];
        snprintf(nm, sizeof nm, "raw.stream.%s.msgs", g_size_names[s]);
        bench_report(nm, "msg/s", msgs, REPS, "\"count\":%u", count);
        snprintf(nm, sizeof nm, "raw.stream.%s.mbs", g_size_names[s]);
        bench_report(nm, "MB/s", mbs, REPS, "\"count\":%u", count);
    }
    relay_run rr;
    relay_start(&rr, RAW_BUF);
    for (int s = 2; s < 4; s++) {       /* 64 KiB and 1 MiB */
        double msgs[REPS], mbs[REPS];
        uint32_t size = g_sizes[s], count = g_stream_count[s];
        run_relay(&rr, msg, size, count / 10 + 1);
        for (int r = 0; r < REPS; r++) {
            double dt = run_relay(&rr, msg, size, count);
            msgs[r] = count / dt;
            mbs[r] = (double)size * count / dt / 1e6;
        }
        char nm[64];
        snprintf(nm, sizeof nm, "raw.relay.%s.msgs", g_size_names[s]);
        bench_report(nm, "msg/s", msgs, REPS, "\"count\":%u", count);
        snprintf(nm, sizeof nm, "raw.relay.%s.mbs", g_size_names[s]);
        bench_report(nm, "MB/s", mbs, REPS, "\"count\":%u", count);
    }
    relay_stop(&rr);
    raw_cmd q = {CMD_QUIT, 0, 0};
    bench_write_full(h, &q, sizeof q);
    DWORD code = bench_wait_child(child, 10000, "raw peer");
    CloseHandle(h);
    if (code != 0)
        bench_fail("raw peer exited with %lu", (unsigned long)code);
    return 0;
}
