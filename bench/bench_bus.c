/*
 * bench_bus.c - the SDK's bus client (aipc_bus_*) through the broker (asyncipc-broker.exe run
 * --pipe <unique>, its own process): one publisher client and the subscriber clients of
 * "bench/t" in this process, all on the engine named by the first argument ("apc" =
 * PIPE_ASYNC, the default; "iocp" = PIPE_OVERLAPPED), so they share that engine's I/O thread
 * (every callback below runs on it).
 *
 *   bus.pubsub.1to1.64B.<engine>.msgs: the publisher calls aipc_bus_publish (64 B payloads) keeping at
 *   most WINDOW publications ahead of the subscriber's on_message count (well below the
 *   broker's 8 MiB per-client queue bound, so nothing may be dropped); timed from the first
 *   publish to the last delivery; figure = messages delivered/s. A drop, a lost or malformed
 *   message or a timeout fails the run (exit code 2).
 *   bus.pubsub.1to{1,16}.1MiB.<engine>[.inline].mbs: 1 MiB publications to 1 or 16 subscriber
 *   clients, at most BIG_WINDOW publications ahead of the slowest subscriber (3 MiB: with the
 *   releases in flight below the broker's 8 MiB queue bound, nothing may be dropped); figure =
 *   payload bytes delivered (summed over the subscribers) / time, in MB/s; each rep lasts about
 *   0.4 s and at least 8 publications (bench_bus_large.c, which has these rows). The default rows let the
 *   clients use shared memory (AIPC_SHM_AUTO: it is used when the broker offers it); the
 *   ".inline" rows are the same runs with shm = AIPC_SHM_OFF on every client; the ".zc" rows the
 *   same runs through the zero-copy API: the publisher takes each payload from aipc_bus_alloc
 *   (a slot of its shared segment), writes only its sequence number at both ends (as
 *   bench_p2p's zc rows write only a header) and hands it over with aipc_bus_publish_buf; the
 *   subscribers get on_message_buf buffers (the broker's slot, no copy), check them and release
 *   them at once. Each subscriber
 *   checks the length and the sequence number at both ends of every payload. The broker's
 *   stats after the warm-up and at the end give "shm_publications" (-1: no such counter) so
 *   the report can tell which path a row took.
 *
 * Profiling aid (bench_bus_large.c): "bench_bus count apc|iocp pub1|pub16 N [window]" does one run of N shared
 * 1 MiB publications (window: publications ahead of the slowest subscriber, default
 * BIG_WINDOW) and prints its QPC breakdown (the publish call, publish -> the last subscriber's
 * callback, the publisher's wait); run it twice with WINEDEBUG=+server to count wineserver
 * requests per publication (docs/performance.md "Profiling aids").
 * The broker is ended however the program ends (bench_util.h bench_own_child).
 *
 * Built with -DBENCH_NO_ENGINE it compiles against an SDK without aipc_bus_options.engine
 * and without the zero-copy API (no ".zc" rows)
 * (the APC engine only), to compare with an older build.
 * Output: RESULT lines (bench_util.h).
 */
#include "bench_bus.h"

#define PLEN     64u
#define WINDOW   20000

static wchar_t g_pipe[200];
HANDLE g_broker;
static volatile LONG64 g_got;        /* messages delivered in this rep */
static volatile LONG64 g_wake_at;    /* on_message sets g_progress once g_got reaches it */
static volatile LONG64 g_bad;        /* malformed or dropped */
static volatile LONG g_connected;
HANDLE g_progress, g_state;

static void broker_start(void)
{
    wchar_t exe[MAX_PATH], ev[120], cmd[600];
    GetModuleFileNameW(NULL, exe, MAX_PATH);
    wchar_t *slash = wcsrchr(exe, L'\\');
    if (!slash)
        bench_fail("cannot locate asyncipc-broker.exe");
    wcscpy(slash + 1, L"asyncipc-broker.exe");
    bench_pipe_name(g_pipe, 200, L"bus");
    _snwprintf(ev, 120, L"aipc-bench-bus-ready-%lu", (unsigned long)GetCurrentProcessId());
    ev[119] = 0;
    HANDLE ready = CreateEventW(NULL, TRUE, FALSE, ev);
    _snwprintf(cmd, 600, L"\"%ls\" run --pipe %ls --ready-event %ls", exe, g_pipe, ev);
    cmd[599] = 0;
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    if (!CreateProcessW(NULL, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi))
        bench_fail("cannot start %ls (%lu)", exe, GetLastError());
    CloseHandle(pi.hThread);
    g_broker = pi.hProcess;
    bench_own_child(g_broker);          /* a failed run ends it too */
    HANDLE w[2] = {ready, g_broker};
    if (WaitForMultipleObjects(2, w, FALSE, 20000) != WAIT_OBJECT_0)
        bench_fail("the broker did not become ready");
    CloseHandle(ready);
}

/* Subscriber (I/O thread): counts 64 B messages, wakes the publisher at g_wake_at. */
static void on_message(aipc_bus *bus, void *user, const char *topic, const aipc_bus_peer *from,
                       bool retained, const void *data, size_t len)
{
    (void)bus, (void)user, (void)topic, (void)from, (void)retained;
    if (len != PLEN || ((const uint8_t *)data)[0] != 'B') {
        InterlockedIncrement64(&g_bad);
        SetEvent(g_progress);
        return;
    }
    LONG64 n = InterlockedIncrement64(&g_got);
    if (n >= g_wake_at)
        SetEvent(g_progress);
}

static void on_dropped(aipc_bus *bus, void *user, uint64_t count)
{
    (void)bus, (void)user, (void)count;
    InterlockedIncrement64(&g_bad);
    SetEvent(g_progress);
}

static void on_state(aipc_bus *bus, void *user, aipc_bus_state s, int err)
{
    (void)bus, (void)user, (void)err;
    if (s == AIPC_BUS_CONNECTED)
        InterlockedIncrement(&g_connected);
    SetEvent(g_state);
}

static void on_pong(aipc_bus *bus, void *user, int status, const aipc_bus_peer *from,
                    const void *data, size_t len)
{
    (void)bus, (void)from, (void)data, (void)len;
    *(volatile LONG *)user = status == 0 ? 1 : -1;
    SetEvent(g_state);
}

aipc_bus *bench_bus_connect(aipc_bus_options *o, PipeImplType engine)
{
#ifndef BENCH_NO_ENGINE
    o->engine = engine;
#else
    (void)engine;
#endif
    o->pipe_name = g_pipe;
    o->on_state = on_state;
    LONG before = g_connected;
    aipc_bus *b = NULL;
    int rc = aipc_bus_connect(o, &b);
    if (rc != 0)
        bench_fail("aipc_bus_connect: %d", rc);
    WAIT_FOR(g_connected > before, "the bus client to connect");
    return b;
}

static aipc_bus *client(PipeImplType engine, int subscriber)
{
    aipc_bus_options o;
    aipc_bus_options_init(&o);
    if (subscriber) {
        o.on_message = on_message;
        o.on_dropped = on_dropped;
    }
    return bench_bus_connect(&o, engine);
}

void bench_bus_sync(aipc_bus *b)
{
    volatile LONG done = 0;
    if (aipc_bus_ping(b, WAIT_MS, on_pong, (void *)&done) <= 0)
        bench_fail("aipc_bus_ping");
    WAIT_FOR(done != 0, "a pong");
    if (done < 0)
        bench_fail("ping failed");
}

/* One rep: `count` publications, timed until the last delivery. Returns seconds. */
static double run(aipc_bus *pub, uint32_t count)
{
    uint8_t payload[PLEN];
    memset(payload, 'b', sizeof payload);
    payload[0] = 'B';
    InterlockedExchange64(&g_got, 0);
    double t0 = bench_now();
    for (uint32_t sent = 0; sent < count;) {
        if ((LONG64)sent - g_got >= WINDOW) {
            InterlockedExchange64(&g_wake_at, (LONG64)sent - WINDOW / 2);
            ResetEvent(g_progress);
            if ((LONG64)sent - g_got >= WINDOW / 2 && !g_bad &&
                WaitForSingleObject(g_progress, WAIT_MS) != WAIT_OBJECT_0)
                bench_fail("no progress: %lld of %u delivered", (long long)g_got, sent);
            if (g_bad)
                bench_fail("dropped or malformed messages");
            continue;
        }
        int rc = aipc_bus_publish(pub, TOPIC, payload, sizeof payload, false);
        if (rc == AIPC_EQUEUEFULL) {
            Sleep(1);
            continue;
        }
        if (rc != 0)
            bench_fail("aipc_bus_publish: %d", rc);
        sent++;
    }
    InterlockedExchange64(&g_wake_at, count);
    ResetEvent(g_progress);
    while (g_got < (LONG64)count && !g_bad)
        if (WaitForSingleObject(g_progress, WAIT_MS) != WAIT_OBJECT_0)
            bench_fail("timed out: %lld of %u delivered", (long long)g_got, count);
    double dt = bench_now() - t0;
    if (g_bad)
        bench_fail("dropped or malformed messages");
    return dt;
}

int wmain(int argc, wchar_t **argv)
{
    PipeImplType engine = PIPE_ASYNC;
    const char *ename = "apc";
    if (argc >= 2 && wcscmp(argv[1], L"count") == 0) {
        if (argc < 5) {
            fprintf(stderr, "usage: bench_bus count apc|iocp pub1|pub16 N [window]\n");
            return 1;
        }
    } else if (argc >= 2 && wcscmp(argv[1], L"iocp") == 0) {
        engine = PIPE_OVERLAPPED;
        ename = "iocp";
    } else if (argc >= 2 && wcscmp(argv[1], L"apc") != 0) {
        fprintf(stderr, "usage: bench_bus [apc|iocp]\n");
        return 1;
    }
#ifdef BENCH_NO_ENGINE
    if (engine != PIPE_ASYNC)
        bench_fail("built without aipc_bus_options.engine: apc only");
#endif
    g_progress = CreateEventW(NULL, TRUE, FALSE, NULL);
    g_state = CreateEventW(NULL, FALSE, FALSE, NULL);
    if (argc >= 5 && wcscmp(argv[1], L"count") == 0) {
        PipeImplType eng = wcscmp(argv[2], L"iocp") == 0 ? PIPE_OVERLAPPED : PIPE_ASYNC;
        int nsubs = wcscmp(argv[3], L"pub16") == 0 ? 16 : 1;
        uint32_t n = (uint32_t)wcstoul(argv[4], NULL, 10);
        LONG64 window = argc >= 6 ? (LONG64)wcstoul(argv[5], NULL, 10) : 0;
        broker_start();
        bench_bus_count(eng, nsubs, n, argc >= 6 && window < 1 ? 1 : window);
        TerminateProcess(g_broker, 0);
        WaitForSingleObject(g_broker, 10000);
        bench_disown_child(g_broker);
        CloseHandle(g_broker);
        return 0;
    }
    broker_start();
    aipc_bus *sub = client(engine, 1);
    aipc_bus *pub = client(engine, 0);
    if (aipc_bus_subscribe(sub, TOPIC) != 0)
        bench_fail("aipc_bus_subscribe");
    bench_bus_sync(sub);

    double warm = run(pub, 20000);
    uint32_t count = bench_calibrate(warm / 20000, 1.5, 20000, 2000000);
    double v[REPS];
    for (int r = 0; r < REPS; r++)
        v[r] = count / run(pub, count);
    char name[64];
    snprintf(name, sizeof name, "bus.pubsub.1to1.64B.%s.msgs", ename);
    bench_report(name, "msg/s", v, REPS, "\"count\":%u", count);
    aipc_bus_close(pub);
    aipc_bus_close(sub);

    for (int mode = 0; mode < 3; mode++) {        /* shared (copying), zero-copy, inline */
        bench_bus_large(engine, ename, 1, mode);
        bench_bus_large(engine, ename, 16, mode);
    }
    TerminateProcess(g_broker, 0);
    WaitForSingleObject(g_broker, 10000);
    bench_disown_child(g_broker);
    CloseHandle(g_broker);
    return 0;
}
