/*
 * bench_raw.c - baselines: raw Win32 named pipes between two processes, no SDK.
 *
 *   ping-pong: blocking WriteFile of one message, the peer reads it whole and writes it back,
 *              blocking reads until the whole echo is here (one message per call).
 *   streaming: one blocking WriteFile per message; the peer reads with a 1 MiB buffer and
 *              answers with the byte count once everything arrived (timed end to end).
 * Sizes 64 B, 1 KiB, 64 KiB, 1 MiB. Byte-mode pipe, 256 KiB buffers each way (the SDK's
 * AIPC_PIPE_BUFSIZE, so the comparison isolates software overhead).
 * The driver is the pipe server and does the timing; "bench_raw peer NAME" is the spawned peer.
 * Output: RESULT lines (bench_util.h). Exit code 2 if a measurement could not be made.
 */
#include "bench_util.h"

#define RAW_BUF   (256u * 1024u)
#define PEER_RBUF (1024u * 1024u)
#define REPS      7

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
        double dt = wcscmp(argv[2], L"ping") == 0 ? run_ping(h, msg, echo, size, n) * n
                                                  : run_stream(h, msg, size, n);
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
    raw_cmd q = {CMD_QUIT, 0, 0};
    bench_write_full(h, &q, sizeof q);
    DWORD code = bench_wait_child(child, 10000, "raw peer");
    CloseHandle(h);
    if (code != 0)
        bench_fail("raw peer exited with %lu", (unsigned long)code);
    return 0;
}
