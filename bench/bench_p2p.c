/*
 * bench_p2p.c - the SDK's point-to-point pipes (asyncipc.dll) between two processes, for both
 * engines (PIPE_ASYNC, PIPE_OVERLAPPED; both ends use the same engine).
 *
 *   round trip: the driver (server) sends one message, the peer (client) echoes it from OnRecv,
 *               the driver sends the next one from its OnRecv (callback-driven, the way the
 *               SDK is meant to be used); median seconds per round trip.
 *   one-way:    the driver's main thread calls SendData as fast as it can (at most 4 MiB not yet
 *               reported by OnSend, so memory stays bounded), then an end marker; the peer
 *               counts and checks the sequence numbers and answers with the count. Timed from
 *               the first SendData to the answer: messages/s and MB/s.
 * Shared memory: both ends use the default AIPC_SHM_AUTO, so messages of 64 KiB and more go
 * through shared memory (the p2p.* rows); "inline" runs the same 1 MiB round trip and stream
 * with AIPC_PIPE_OPT_SHM = AIPC_SHM_OFF on both ends (p2p.<engine>.inline.* rows), in the same
 * process run, for the shared/inline/raw ratios.
 * Zero-copy ("zc", p2p.<engine>.zc.rtt.* rows): the same round trip with the zero-copy API
 * (aipc_pipe_alloc / aipc_pipe_send_buf, receive with aipc_pipe_set_recv_ref) on both ends:
 * the driver writes only the 1-byte header into each buffer it allocates (as an application
 * rendering in place would), reads the echo where it lies and releases it; the peer allocates a
 * buffer, copies the received bytes into it once and sends it. At 1 MiB both buffers are slots
 * of shared segments (one copy per round trip, against four with Send/OnRecv); at 64 B they are
 * heap buffers (the inline path, plus the buffers' allocations).
 * Output: RESULT lines (bench_util.h). Exit code 2 if a message was lost, reordered or a
 * wait timed out.
 */
#include "bench_util.h"

#include "asyncipc/asyncipc.h"

#define REPS      7
#define WINDOW    (4u * 1024u * 1024u)
#define WAIT_MS   60000u

static int only_rtt;   /* "bench_p2p.exe rtt": the round-trip rows only (a measuring aid) */

static const uint32_t g_sizes[] = {64, 1024, 64 * 1024, 1024 * 1024};
static const char *g_size_names[] = {"64B", "1KiB", "64KiB", "1MiB"};

/* ---- peer (client): echo 'P', count 'S', answer 'E' with 'A', stop on 'Q' ------------------ */
typedef struct peer_ctx {
    IPipeDelegate d;                 /* first */
    INamedPipe *pipe;
    HANDLE quit;
    uint64_t count, bytes, bad;
    uint32_t next_seq;
} peer_ctx;

static void peer_connected(IPipeDelegate *self, bool ok)
{
    peer_ctx *x = (peer_ctx *)self;
    if (!ok)
        SetEvent(x->quit);
}

static void peer_disconnected(IPipeDelegate *self)
{
    SetEvent(((peer_ctx *)self)->quit);
}

static void peer_recv(IPipeDelegate *self, void *data, int size)
{
    peer_ctx *x = (peer_ctx *)self;
    uint8_t *m = data;
    if (size < 1) {
        x->bad++;
        return;
    }
    switch (m[0]) {
    case 'P':
        x->pipe->SendData(x->pipe, data, (size_t)size);
        break;
    case 'S': {
        uint32_t seq = 0;
        if (size >= 5)
            memcpy(&seq, m + 1, 4);
        if (size >= 5 && seq != x->next_seq)
            x->bad++;
        x->next_seq = seq + 1;
        x->count++;
        x->bytes += (uint64_t)size;
        break;
    }
    case 'E': {
        uint8_t ack[25];
        ack[0] = 'A';
        memcpy(ack + 1, &x->count, 8);
        memcpy(ack + 9, &x->bytes, 8);
        memcpy(ack + 17, &x->bad, 8);
        x->count = x->bytes = x->bad = 0;
        x->next_seq = 0;
        x->pipe->SendData(x->pipe, ack, sizeof ack);
        break;
    }
    case 'Q':
        SetEvent(x->quit);
        break;
    default:
        x->bad++;
    }
}

/* Zero-copy peer: echoes 'P' by copying it once into a buffer of its own; the rest as above. */
static void peer_recv_ref(aipc_named_pipe *pipe, void *user, aipc_buf *buf)
{
    peer_ctx *x = user;
    const uint8_t *m = buf->data;
    if (buf->size >= 1 && m[0] == 'P') {
        aipc_buf *out;
        if (aipc_pipe_alloc(pipe, buf->size, &out) == 0) {
            memcpy(out->data, buf->data, buf->size);
            if (aipc_pipe_send_buf(pipe, out, buf->size) != 0) {
                aipc_buf_release(out);
                x->bad++;
            }
        } else {
            x->bad++;
        }
    } else {
        peer_recv(&x->d, buf->data, (int)buf->size);   /* reads only */
    }
    aipc_buf_release(buf);
}

/* mode: 0 shared (default options), 1 inline (AIPC_SHM_OFF), 2 zero-copy (recv_ref). */
static int peer(int engine, const wchar_t *name, int mode)
{
    int shm_off = mode == 1;
    peer_ctx x;
    memset(&x, 0, sizeof x);
    x.d.OnConnected = peer_connected;
    x.d.OnRecv = peer_recv;
    x.d.OnDisconnected = peer_disconnected;
    x.quit = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (CreateInstance((PipeImplType)engine, &x.pipe) != 0)
        return 1;
    aipc_pipe_set_option(x.pipe, AIPC_PIPE_OPT_CONNECT_TIMEOUT_MS, 10000);
    if (shm_off)
        aipc_pipe_set_option(x.pipe, AIPC_PIPE_OPT_SHM, AIPC_SHM_OFF);
    if (mode == 2 && aipc_pipe_set_recv_ref(x.pipe, peer_recv_ref, &x) != 0)
        return 1;
    if (!x.pipe->Create(x.pipe, name, PIPE_CLIENT, &x.d))
        return 1;
    WaitForSingleObject(x.quit, 600000);
    x.pipe->Release(x.pipe);
    return 0;
}

/* ---- driver (server) ---------------------------------------------------------------------- */
typedef struct drv_ctx {
    IPipeDelegate d;                 /* first */
    INamedPipe *pipe;
    HANDLE created, connected, done, window;
    volatile LONG create_ok, connect_ok, lost;
    /* round trip */
    uint8_t *msg;
    uint32_t size;
    volatile LONG remaining;
    volatile LONG bad;
    /* one-way */
    volatile LONG64 acked;           /* bytes reported by OnSend */
    volatile LONG waiting;
    uint64_t ack_count, ack_bytes, ack_bad;
    int zc;                          /* zero-copy API (recv_ref, alloc/send_buf) */
} drv_ctx;

static void drv_create(IPipeDelegate *self, bool ok)
{
    drv_ctx *x = (drv_ctx *)self;
    x->create_ok = ok;
    SetEvent(x->created);
}

static void drv_connected(IPipeDelegate *self, bool ok)
{
    drv_ctx *x = (drv_ctx *)self;
    x->connect_ok = ok;
    SetEvent(x->connected);
}

static void drv_disconnected(IPipeDelegate *self)
{
    drv_ctx *x = (drv_ctx *)self;
    x->lost = 1;
    SetEvent(x->done);
    SetEvent(x->window);
}

static void drv_send(IPipeDelegate *self, int size)
{
    drv_ctx *x = (drv_ctx *)self;
    InterlockedAdd64(&x->acked, size);
    if (x->waiting)
        SetEvent(x->window);
}

static void drv_recv(IPipeDelegate *self, void *data, int size)
{
    drv_ctx *x = (drv_ctx *)self;
    uint8_t *m = data;
    if (size >= 1 && m[0] == 'P') {
        if ((uint32_t)size != x->size)
            x->bad++;
        if (InterlockedDecrement(&x->remaining) > 0)
            x->pipe->SendData(x->pipe, x->msg, x->size);
        else
            SetEvent(x->done);
    } else if (size == 25 && m[0] == 'A') {
        memcpy(&x->ack_count, m + 1, 8);
        memcpy(&x->ack_bytes, m + 9, 8);
        memcpy(&x->ack_bad, m + 17, 8);
        SetEvent(x->done);
    } else {
        x->bad++;
    }
}

/* Zero-copy driver: the next message is a buffer with only its header written. */
static int zc_send(drv_ctx *x)
{
    aipc_buf *b;
    int rc = aipc_pipe_alloc(x->pipe, x->size, &b);
    if (rc != 0)
        return rc;
    ((uint8_t *)b->data)[0] = 'P';
    rc = aipc_pipe_send_buf(x->pipe, b, x->size);
    if (rc != 0)
        aipc_buf_release(b);
    return rc;
}

static void drv_recv_ref(aipc_named_pipe *pipe, void *user, aipc_buf *buf)
{
    drv_ctx *x = user;
    const uint8_t *m = buf->data;
    (void)pipe;
    if (buf->size >= 1 && m[0] == 'P') {
        if (buf->size != x->size)
            x->bad++;
        aipc_buf_release(buf);   /* before the next send: its slot goes back with that write */
        if (InterlockedDecrement(&x->remaining) > 0) {
            if (zc_send(x) != 0) {
                x->bad++;
                SetEvent(x->done);
            }
        } else {
            SetEvent(x->done);
        }
        return;
    }
    drv_recv(&x->d, buf->data, (int)buf->size);   /* 'A' and the rest: reads only */
    aipc_buf_release(buf);
}

static void wait_done(drv_ctx *x, const char *what)
{
    if (WaitForSingleObject(x->done, WAIT_MS) != WAIT_OBJECT_0)
        bench_fail("%s: timed out", what);
    if (x->lost)
        bench_fail("%s: peer disconnected", what);
}

/* One round-trip repetition: seconds per round trip. */
static double run_rtt(drv_ctx *x, uint32_t size, uint32_t iters)
{
    x->size = size;
    x->msg[0] = 'P';
    x->remaining = (LONG)iters;
    ResetEvent(x->done);
    double t0 = bench_now();
    if ((x->zc ? zc_send(x) : x->pipe->SendData(x->pipe, x->msg, size)) != 0)
        bench_fail("rtt: SendData failed");
    wait_done(x, "rtt");
    double dt = bench_now() - t0;
    if (x->bad)
        bench_fail("rtt: %ld wrong echoes", x->bad);
    return dt / iters;
}

/* One one-way repetition: seconds for `count` messages of `size`. */
static double run_stream(drv_ctx *x, uint32_t size, uint32_t count)
{
    ResetEvent(x->done);
    x->msg[0] = 'S';
    uint64_t sent = 0, base = (uint64_t)x->acked;
    double t0 = bench_now();
    for (uint32_t i = 0; i < count; i++) {
        while (sent - ((uint64_t)x->acked - base) > WINDOW) {
            x->waiting = 1;
            if (sent - ((uint64_t)x->acked - base) > WINDOW)
                WaitForSingleObject(x->window, 1000);
            x->waiting = 0;
            if (x->lost)
                bench_fail("stream: peer disconnected");
        }
        memcpy(x->msg + 1, &i, 4);
        if (x->pipe->SendData(x->pipe, x->msg, size) != 0)
            bench_fail("stream: SendData failed");
        sent += size;
    }
    uint8_t end = 'E';
    x->pipe->SendData(x->pipe, &end, 1);
    wait_done(x, "stream");
    double dt = bench_now() - t0;
    if (x->ack_count != count || x->ack_bytes != (uint64_t)size * count || x->ack_bad)
        bench_fail("stream: peer got %llu messages / %llu bytes (%llu out of order), sent %u",
                   (unsigned long long)x->ack_count, (unsigned long long)x->ack_bytes,
                   (unsigned long long)x->ack_bad, count);
    /* Let the end marker's OnSend land so the next window starts from a settled count. */
    ULONGLONG until = GetTickCount64() + 10000;
    while ((uint64_t)x->acked - base < sent + 1) {
        if (x->lost || GetTickCount64() > until)
            bench_fail("stream: the end marker was never reported written");
        Sleep(0);
    }
    return dt;
}

/* Full benchmark of one engine; with kind != NULL only one run of that kind (profiling aid:
 * "count async rtt 64 1000" lets wineserver requests be counted per message). */
static void bench_engine(int engine, const char *ename, const wchar_t *kind, uint32_t csize,
                         uint32_t cn, int mode)
{
    int shm_off = mode == 1;
    static const char *const variant[] = {"", ".inline", ".zc"};
    drv_ctx x;
    memset(&x, 0, sizeof x);
    x.d.OnCreate = drv_create;
    x.d.OnConnected = drv_connected;
    x.d.OnSend = drv_send;
    x.d.OnRecv = drv_recv;
    x.d.OnDisconnected = drv_disconnected;
    x.created = CreateEventW(NULL, FALSE, FALSE, NULL);
    x.connected = CreateEventW(NULL, FALSE, FALSE, NULL);
    x.done = CreateEventW(NULL, FALSE, FALSE, NULL);
    x.window = CreateEventW(NULL, FALSE, FALSE, NULL);
    x.msg = calloc(1, 1u << 20);
    if (!x.msg)
        bench_fail("out of memory");
    wchar_t name[200], args[300];
    bench_pipe_name(name, 200, engine == PIPE_ASYNC ? L"p2p-apc" : L"p2p-iocp");
    if (CreateInstance((PipeImplType)engine, &x.pipe) != 0)
        bench_fail("CreateInstance");
    if (shm_off && aipc_pipe_set_option(x.pipe, AIPC_PIPE_OPT_SHM, AIPC_SHM_OFF) != 0)
        bench_fail("AIPC_PIPE_OPT_SHM");
    x.zc = mode == 2;
    if (x.zc && aipc_pipe_set_recv_ref(x.pipe, drv_recv_ref, &x) != 0)
        bench_fail("aipc_pipe_set_recv_ref");
    if (!x.pipe->Create(x.pipe, name, PIPE_SERVER, &x.d))
        bench_fail("Create(server)");
    if (WaitForSingleObject(x.created, WAIT_MS) != WAIT_OBJECT_0 || !x.create_ok)
        bench_fail("server did not start");
    _snwprintf(args, 300, L"peer %d %ls%ls", engine, name,
               mode == 1 ? L" off" : mode == 2 ? L" zc" : L"");
    args[299] = 0;
    HANDLE child = bench_spawn_self(args);
    if (WaitForSingleObject(x.connected, WAIT_MS) != WAIT_OBJECT_0 || !x.connect_ok)
        bench_fail("peer did not connect");

    if (kind) {
        double dt = wcscmp(kind, L"rtt") == 0 ? run_rtt(&x, csize, cn) * cn
                                              : run_stream(&x, csize, cn);
        aipc_pipe_stats st = {sizeof st};
        aipc_pipe_get_stats(x.pipe, &st);
        printf("count: %s %ls %u x %u B: %.6f s (shared sent %llu, received %llu, inline "
               "fallbacks %llu)\n", ename, kind, cn, csize, dt,
               (unsigned long long)st.shm_sent, (unsigned long long)st.shm_received,
               (unsigned long long)st.shm_inline_fallbacks);
        goto out;
    }
    /* Round trips: every size calibrated first, then the repetitions interleaved (one of each
     * size per round), so the 1 MiB / 64 B ratios compare neighbouring moments of a loaded
     * machine. */
    double v[4][REPS];
    uint32_t iters[4] = {0};
    for (int s = shm_off ? 3 : 0; s < 4; s++)     /* inline: the 1 MiB rows only */
        if (mode != 2 || s == 0 || s == 3)          /* zero-copy: 64 B and 1 MiB */
            iters[s] = bench_calibrate(run_rtt(&x, g_sizes[s], 20), 0.3, 20, 5000);
    for (int r = 0; r < REPS; r++)
        for (int s = 0; s < 4; s++)
            if (iters[s])
                v[s][r] = run_rtt(&x, g_sizes[s], iters[s]) * 1e6;
    for (int s = 0; s < 4; s++) {
        if (!iters[s])
            continue;
        char nm[96];
        snprintf(nm, sizeof nm, "p2p.%s%s.rtt.%s", ename, variant[mode], g_size_names[s]);
        bench_report(nm, "us", v[s], REPS, "\"iters\":%u", iters[s]);
    }
    if (only_rtt)
        goto out;
    for (int s = shm_off ? 3 : mode == 2 ? 4 : 0; s < 4; s++) {   /* zero-copy: no stream */
        uint32_t size = g_sizes[s];
        double msgs[REPS], mbs[REPS];
        uint32_t warm = size >= 65536 ? 32 : 20000;
        double t = run_stream(&x, size, warm) / warm;
        uint32_t count = bench_calibrate(t, 0.3, 32, 400000);
        for (int r = 0; r < REPS; r++) {
            double dt = run_stream(&x, size, count);
            msgs[r] = count / dt;
            mbs[r] = (double)size * count / dt / 1e6;
        }
        char nm[96];
        snprintf(nm, sizeof nm, "p2p.%s%s.stream.%s.msgs", ename, shm_off ? ".inline" : "",
                 g_size_names[s]);
        bench_report(nm, "msg/s", msgs, REPS, "\"count\":%u", count);
        snprintf(nm, sizeof nm, "p2p.%s%s.stream.%s.mbs", ename, shm_off ? ".inline" : "",
                 g_size_names[s]);
        bench_report(nm, "MB/s", mbs, REPS, "\"count\":%u", count);
    }
out:;
    uint8_t q = 'Q';
    x.pipe->SendData(x.pipe, &q, 1);
    DWORD code = bench_wait_child(child, 15000, "p2p peer");
    x.pipe->Release(x.pipe);
    if (code != 0)
        bench_fail("p2p peer exited with %lu", (unsigned long)code);
    free(x.msg);
}

int wmain(int argc, wchar_t **argv)
{
    if (argc >= 4 && wcscmp(argv[1], L"peer") == 0)
        return peer(_wtoi(argv[2]), argv[3],
                    argc < 5 ? 0 : wcscmp(argv[4], L"off") == 0 ? 1
                                 : wcscmp(argv[4], L"zc") == 0 ? 2 : 0);
    if (argc >= 6 && wcscmp(argv[1], L"count") == 0) {   /* [off|zc]: inline / zero-copy */
        int e = wcscmp(argv[2], L"async") == 0 ? PIPE_ASYNC : PIPE_OVERLAPPED;
        bench_engine(e, e == PIPE_ASYNC ? "async" : "overlapped", argv[3],
                     (uint32_t)_wtoi(argv[4]), (uint32_t)_wtoi(argv[5]),
                     argc < 7 ? 0 : wcscmp(argv[6], L"off") == 0 ? 1
                                  : wcscmp(argv[6], L"zc") == 0 ? 2 : 0);
        return 0;
    }
    int only = -1;
    if (argc >= 2 && wcscmp(argv[1], L"rtt") == 0) {
        only_rtt = 1;
        argc--;
        argv++;
    }
    if (argc >= 2)
        only = wcscmp(argv[1], L"async") == 0 ? PIPE_ASYNC
               : wcscmp(argv[1], L"overlapped") == 0 ? PIPE_OVERLAPPED : -1;
    if (only != PIPE_OVERLAPPED)
        bench_engine(PIPE_ASYNC, "async", NULL, 0, 0, 0);
    if (only != PIPE_ASYNC)
        bench_engine(PIPE_OVERLAPPED, "overlapped", NULL, 0, 0, 0);
    if (only != PIPE_OVERLAPPED)
        bench_engine(PIPE_ASYNC, "async", NULL, 0, 0, 1);
    if (only != PIPE_ASYNC)
        bench_engine(PIPE_OVERLAPPED, "overlapped", NULL, 0, 0, 1);
    if (only != PIPE_OVERLAPPED)
        bench_engine(PIPE_ASYNC, "async", NULL, 0, 0, 2);
    if (only != PIPE_ASYNC)
        bench_engine(PIPE_OVERLAPPED, "overlapped", NULL, 0, 0, 2);
    return 0;
}
