/*
 * bench_broker.c - the broker (asyncipc-broker.exe run --pipe <unique>, its own process) driven
 * by raw-protocol clients (wire protocol v1 written by hand, frames decoded with the SDK's
 * portable codec). Raw clients were chosen over the bus client because they add no I/O thread
 * hop of their own, and they are honest: they coalesce frames into large writes exactly like
 * the SPEC asks of every sender (the bus client does the same), and every delivered message
 * is decoded and checked (sequence numbers) by its subscriber.
 *
 * Clients live in this (driver) process, one thread each, one pipe connection each (synchronous
 * handles: every thread only ever does one thing at a time on its handle).
 *
 *   idle clients: 1,000 clients connect + hello + welcome; time to connect them all, broker
 *                 PrivateUsage (GetProcessMemoryInfo) delta per client.
 *   req/rep:      requester -> broker -> replier -> broker -> requester, 64 B payload.
 *   pub/sub:      one publisher, 1 or 16 subscribers of "bench/t" (64 B), 1 subscriber (1 MiB);
 *                 a fast subscriber's reads are as large as a whole frame (like the raw relay's
 *                 sink, bench_raw.c), so a frame the broker writes at once arrives in one read
 *                 and is decoded in place; after a large frame, exactly that frame's size (the
 *                 relay's sink reads exactly each 1 MiB write: under Wine only such a read
 *                 takes the writer's buffer, any other size is copied by the wineserver); a frame that still arrives in parts has its rest
 *                 read straight into the block its decoder kept from the previous one
 *                 (aipc_decoder_direct, keep_max), as the SDK's bus client does (bus_conn.c);
 *                 the publisher writes 64 KiB batches of pub frames and keeps at most a window
 *                 of publications ahead of the slowest FAST subscriber (below the broker's
 *                 8 MiB queue bound, so nothing may be dropped for a fast subscriber); when the
 *                 window is full it sleeps until there is room for its next write, and the
 *                 subscriber that makes it wakes it (one SetEvent per wait, not per read). Timed
 *                 from the first write to the last delivery; figure = messages delivered/s
 *                 (summed over subscribers) and payload MB/s.
 *   slow:         1->16 again with a 17th subscriber that reads 4 KiB every 10 ms (it gets
 *                 `dropped` reports; the 16 fast ones must still get everything).
 * Output: RESULT lines (bench_util.h). Exit code 2 on any loss, protocol error or timeout.
 */
#include "bench_util.h"

#include <process.h>
#include <psapi.h>

#include "proto/frame.h"
#include "wine_procmem.h"

#define REPS        7
#define WAIT_MS     60000u
#define NIDLE       1000
#define NFAST       16
#define RBUF        (256u * 1024u)
#define BATCH_BYTES (64u * 1024u)
#define SUB_DIRECT  (64u * 1024u)      /* a fast subscriber reads frames missing this in place */
#define SUB_KEEP    ((4u << 20) + 64u) /* ... into the block kept from the last frame */
#define SUB_SLACK   (4u * 1024u)       /* a fast subscriber's reads: payload + this (header,
                                        * meta) at least, so a large frame comes in one read */
#define TOPIC       "bench/t"

static uint32_t g_fixed;      /* profiling aid ("count ..."): one run of this many, no reps */
static wchar_t g_pipe[200];
static HANDLE g_broker;
static char g_proc_dir[64];   /* Z:\proc\N of the broker's Unix process, "" if unknown */

/* ---- a raw protocol client ---------------------------------------------------------------- */
typedef struct rclient {
    HANDLE h;
    aipc_decoder dec;
    uint8_t *rbuf;
    uint64_t id;
    /* frame handling */
    int (*on_frame)(struct rclient *c, const char *meta, uint32_t ml, const uint8_t *pl,
                    uint32_t pn);
    void *user;
    int stop;                 /* set by on_frame to return from rc_pump */
} rclient;

/* Writes one frame (meta text + payload) with one WriteFile; fails the bench if the pipe broke. */
static void rc_send(rclient *c, const char *meta, const void *pl, uint32_t pn)
{
    size_t ml = strlen(meta), n = AIPC_HDR_SIZE + ml + pn;
    uint8_t stackbuf[1024], *b = n <= sizeof stackbuf ? stackbuf : malloc(n);
    if (!b)
        bench_fail("out of memory");
    aipc_frame_put_header(b, (uint32_t)ml, pn);
    memcpy(b + AIPC_HDR_SIZE, meta, ml);
    if (pn)
        memcpy(b + AIPC_HDR_SIZE + ml, pl, pn);
    if (bench_write_full(c->h, b, n) != 0)
        bench_fail("write to broker failed (%lu)", GetLastError());
    if (b != stackbuf)
        free(b);
}

static int rc_frame_cb(void *ctx, const uint8_t *meta, uint32_t ml, const uint8_t *pl,
                       uint32_t pn)
{
    rclient *c = ctx;
    return c->on_frame(c, (const char *)meta, ml, pl, pn);
}

/* Reads and decodes until on_frame sets c->stop (returns 0) or the pipe breaks (-1). */
static int rc_pump(rclient *c, DWORD rlen)
{
    c->stop = 0;
    while (!c->stop) {
        DWORD n = 0;
        if (!ReadFile(c->h, c->rbuf, rlen, &n, NULL) && GetLastError() != ERROR_MORE_DATA)
            return -1;
        size_t used = 0;
        int rc = aipc_decoder_feed(&c->dec, c->rbuf, n, rc_frame_cb, c, &used);
        if (rc < 0)
            bench_fail("bad frame from the broker (%d)", rc);
        if (rc > 0 && used < n) {
            /* on_frame stopped early: feed the rest (the callback just returns 0 now). */
            rc = aipc_decoder_feed(&c->dec, c->rbuf + used, n - used, rc_frame_cb, c, NULL);
            if (rc < 0)
                bench_fail("bad frame from the broker (%d)", rc);
        }
    }
    return 0;
}

/* Looks up "key": followed by an unsigned number in a meta (the broker writes compact JSON). */
static int meta_u64(const char *m, uint32_t ml, const char *key, uint64_t *out)
{
    size_t kl = strlen(key);
    for (uint32_t i = 0; i + kl < ml; i++) {
        if (memcmp(m + i, key, kl) == 0) {
            uint64_t v = 0;
            uint32_t j = i + (uint32_t)kl;
            if (j >= ml || m[j] < '0' || m[j] > '9')
                continue;
            while (j < ml && m[j] >= '0' && m[j] <= '9')
                v = v * 10 + (uint64_t)(m[j++] - '0');
            *out = v;
            return 1;
        }
    }
    return 0;
}

static int meta_is(const char *m, uint32_t ml, const char *op)
{
    char pre[40];
    int n = snprintf(pre, sizeof pre, "{\"op\":\"%s\"", op);
    return ml >= (uint32_t)n && memcmp(m, pre, (size_t)n) == 0;
}

/* Waits for one answer frame during set-up: welcome (records the id) or ok. */
static int setup_frame(rclient *c, const char *m, uint32_t ml, const uint8_t *pl, uint32_t pn)
{
    if (meta_is(m, ml, "welcome")) {
        meta_u64(m, ml, "\"id\":", &c->id);
        c->stop = 1;
        return 1;
    }
    if (meta_is(m, ml, "ok")) {
        c->stop = 1;
        return 1;
    }
    if (meta_is(m, ml, "error"))
        bench_fail("broker error during set-up: %.*s", (int)ml, m);
    return 0;
}

/* Connects, says hello (name may be NULL) and waits for the welcome. */
static void rc_connect(rclient *c, const char *name)
{
    memset(c, 0, sizeof c[0]);
    c->h = bench_open_pipe(g_pipe, 0, 10000);
    aipc_decoder_init(&c->dec, 0, 0);
    c->rbuf = malloc(RBUF);
    if (!c->rbuf)
        bench_fail("out of memory");
    char meta[200];
    if (name)
        snprintf(meta, sizeof meta, "{\"op\":\"hello\",\"proto\":1,\"name\":\"%s\"}", name);
    else
        snprintf(meta, sizeof meta, "{\"op\":\"hello\",\"proto\":1}");
    rc_send(c, meta, NULL, 0);
    c->on_frame = setup_frame;
    if (rc_pump(c, RBUF) != 0)
        bench_fail("broker closed during hello");
}

/* Subscribes with an id and waits for the ok (so the filter is active before publishing). */
static void rc_subscribe(rclient *c, const char *filter)
{
    char meta[200];
    snprintf(meta, sizeof meta, "{\"op\":\"sub\",\"topic\":\"%s\",\"id\":1}", filter);
    rc_send(c, meta, NULL, 0);
    c->on_frame = setup_frame;
    if (rc_pump(c, RBUF) != 0)
        bench_fail("broker closed during sub");
}

static void rc_close(rclient *c)
{
    CloseHandle(c->h);
    aipc_decoder_free(&c->dec);
    free(c->rbuf);
    c->h = NULL;
    c->rbuf = NULL;
}

/* ---- broker process ----------------------------------------------------------------------- */
static void broker_start(void)
{
    wchar_t exe[MAX_PATH], ev[120], cmd[600];
    GetModuleFileNameW(NULL, exe, MAX_PATH);
    wchar_t *slash = wcsrchr(exe, L'\\');
    if (!slash)
        bench_fail("cannot locate asyncipc-broker.exe");
    wcscpy(slash + 1, L"asyncipc-broker.exe");
    static int starts;
    wchar_t tag[40];
    _snwprintf(tag, 40, L"broker%d", ++starts);
    tag[39] = 0;
    bench_pipe_name(g_pipe, 200, tag);
    g_proc_dir[0] = 0;
    _snwprintf(ev, 120, L"aipc-bench-ready-%lu", (unsigned long)GetCurrentProcessId());
    ev[119] = 0;
    HANDLE ready = CreateEventW(NULL, TRUE, FALSE, ev);
    /* The defaults, except the per-process and per-user connection bounds: this one process
     * plays every client (1000 idle connections). */
    wchar_t cfg[MAX_PATH + 40];
    DWORD tn = GetTempPathW(MAX_PATH, cfg);
    if (!tn || tn > MAX_PATH)
        bench_fail("no temp folder");
    _snwprintf(cfg + tn, 40, L"aipc-bench-%lu.json", (unsigned long)GetCurrentProcessId());
    cfg[MAX_PATH + 39] = 0;
    FILE *cf = _wfopen(cfg, L"wb");
    if (!cf)
        bench_fail("cannot write %ls", cfg);
    fputs("{\"max_connections_per_process\":0,\"max_connections_per_user\":0}", cf);
    fclose(cf);
    _snwprintf(cmd, 600, L"\"%ls\" run --config \"%ls\" --pipe %ls --ready-event %ls", exe, cfg,
               g_pipe, ev);
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

static void broker_stop(void)
{
    TerminateProcess(g_broker, 0);
    WaitForSingleObject(g_broker, 10000);
    bench_disown_child(g_broker);
    CloseHandle(g_broker);
    g_broker = NULL;
}

/* The broker's Unix process (wine_procmem.h says why): the one whose command line holds our
 * unique pipe name. */
static void find_broker_unix_proc(void)
{
    char pipe_a[200];
    WideCharToMultiByte(CP_UTF8, 0, wcsrchr(g_pipe, L'\\') + 1, -1, pipe_a, sizeof pipe_a, NULL,
                        NULL);
    aipc_procmem_find(g_proc_dir, sizeof g_proc_dir, pipe_a, "asyncipc-broker");
}

typedef struct memsnap {
    double private_usage, vmdata, rssanon;
} memsnap;

static memsnap broker_mem(void)
{
    memsnap m;
    PROCESS_MEMORY_COUNTERS_EX pm;
    memset(&pm, 0, sizeof pm);
    pm.cb = sizeof pm;
    if (!GetProcessMemoryInfo(g_broker, (PROCESS_MEMORY_COUNTERS *)&pm, sizeof pm))
        bench_fail("GetProcessMemoryInfo: %lu", GetLastError());
    m.private_usage = (double)pm.PrivateUsage;
    m.vmdata = aipc_procmem_vmdata(g_proc_dir);
    m.rssanon = aipc_procmem_status(g_proc_dir, "RssAnon:");
    return m;
}

/* A ping round trip through c: the broker has processed everything c sent before. */
static int pong_frame(rclient *c, const char *m, uint32_t ml, const uint8_t *pl, uint32_t pn)
{
    if (meta_is(m, ml, "pong")) {
        c->stop = 1;
        return 1;
    }
    return 0;
}

static void rc_ping(rclient *c)
{
    rc_send(c, "{\"op\":\"ping\",\"id\":9}", NULL, 0);
    c->on_frame = pong_frame;
    if (rc_pump(c, RBUF) != 0)
        bench_fail("broker closed during ping");
}

/* One counter of the broker's stats answer (key without quotes). */
typedef struct statq {
    const char *key;
    uint64_t val;
} statq;

static int stats_frame(rclient *c, const char *m, uint32_t ml, const uint8_t *pl, uint32_t pn)
{
    if (meta_is(m, ml, "stats")) {
        statq *q = c->user;
        char k[64];
        snprintf(k, sizeof k, "\"%s\":", q->key);
        if (!meta_u64((const char *)pl, pn, k, &q->val))
            bench_fail("stats without %s: %.*s", q->key, (int)pn, (const char *)pl);
        c->stop = 1;
        return 1;
    }
    return 0;
}

static uint64_t rc_stats_u64(rclient *c, const char *key)
{
    statq q = {key, 0};
    rc_send(c, "{\"op\":\"stats\",\"id\":8}", NULL, 0);
    void *saved = c->user;
    c->user = &q;
    c->on_frame = stats_frame;
    if (rc_pump(c, RBUF) != 0)
        bench_fail("broker closed during stats");
    c->user = saved;
    return q.val;
}

/* ---- idle clients ------------------------------------------------------------------------- */
/* Each repetition uses a fresh broker process, so heap memory freed by an earlier repetition
 * cannot hide what the clients cost. */
static void bench_idle(void)
{
    static rclient cl[NIDLE];
    double pu[REPS], vd[REPS], ra[REPS], connect_s[REPS];
    for (int r = 0; r < REPS; r++) {
        broker_start();
        find_broker_unix_proc();
        rclient probe;
        rc_connect(&probe, "bench-probe");
        rc_ping(&probe);
        memsnap before = broker_mem();
        double t0 = bench_now();
        for (int i = 0; i < NIDLE; i++) {
            rc_connect(&cl[i], NULL);
            free(cl[i].rbuf);      /* idle: this side never reads again */
            cl[i].rbuf = NULL;
        }
        connect_s[r] = bench_now() - t0;
        rc_ping(&probe);
        if (rc_stats_u64(&probe, "clients") != NIDLE + 1)
            bench_fail("the broker does not list %d idle clients", NIDLE);
        memsnap after = broker_mem();
        pu[r] = (after.private_usage - before.private_usage) / NIDLE / 1024.0;
        vd[r] = (after.vmdata - before.vmdata) / NIDLE / 1024.0;
        ra[r] = (after.rssanon - before.rssanon) / NIDLE / 1024.0;
        for (int i = 0; i < NIDLE; i++) {
            CloseHandle(cl[i].h);
            aipc_decoder_free(&cl[i].dec);
        }
        rc_close(&probe);
        broker_stop();
    }
    int have_pu = pu[0] != 0 || pu[REPS - 1] != 0;
    bench_report("broker.idle.mem_per_client", "KiB", have_pu ? pu : vd, REPS,
                 "\"clients\":%d,\"source\":\"%s\"", NIDLE,
                 have_pu ? "GetProcessMemoryInfo PrivateUsage"
                         : "Linux VmData of the broker (Wine does not report PrivateUsage)");
    if (g_proc_dir[0])
        bench_report("broker.idle.rss_per_client", "KiB", ra, REPS,
                     "\"clients\":%d,\"source\":\"Linux RssAnon of the broker\"", NIDLE);
    else if (!have_pu)
        bench_fail("cannot measure the broker's memory");
    bench_report("broker.idle.connect_time", "s", connect_s, REPS, "\"clients\":%d", NIDLE);
}

/* ---- request / reply ---------------------------------------------------------------------- */
typedef struct replier {
    rclient c;
    HANDLE thread;
} replier;

static int replier_frame(rclient *c, const char *m, uint32_t ml, const uint8_t *pl, uint32_t pn)
{
    if (meta_is(m, ml, "bye")) {
        c->stop = 1;
        return 0;
    }
    if (!meta_is(m, ml, "req"))
        return 0;
    uint64_t from = 0, rid = 0;
    /* {"op":"req","from":{"id":N,...},"id":R} */
    if (!meta_u64(m, ml, "\"from\":{\"id\":", &from) || !meta_u64(m, ml, "},\"id\":", &rid))
        bench_fail("unexpected req meta %.*s", (int)ml, m);
    char meta[120];
    snprintf(meta, sizeof meta, "{\"op\":\"rep\",\"to\":%llu,\"re\":%llu}",
             (unsigned long long)from, (unsigned long long)rid);
    rc_send(c, meta, pl, pn);
    return 0;
}

static unsigned __stdcall replier_main(void *arg)
{
    replier *r = arg;
    r->c.on_frame = replier_frame;
    rc_pump(&r->c, RBUF);
    return 0;
}

typedef struct reqstate {
    uint64_t want;
    uint32_t plen;
} reqstate;

static int requester_frame(rclient *c, const char *m, uint32_t ml, const uint8_t *pl, uint32_t pn)
{
    reqstate *s = c->user;
    if (meta_is(m, ml, "rep")) {
        uint64_t re = 0;
        if (!meta_u64(m, ml, "\"re\":", &re) || re != s->want || pn != s->plen)
            bench_fail("wrong reply %.*s", (int)ml, m);
        c->stop = 1;
        return 1;
    }
    if (meta_is(m, ml, "error"))
        bench_fail("request failed: %.*s", (int)ml, m);
    return 0;
}

static double run_reqrep(rclient *q, uint32_t iters, uint32_t plen)
{
    reqstate s;
    uint8_t *payload = malloc(plen);
    if (!payload)
        bench_fail("out of memory");
    memset(payload, 0x33, plen);
    s.plen = plen;
    q->user = &s;
    q->on_frame = requester_frame;
    double t0 = bench_now();
    for (uint32_t i = 1; i <= iters; i++) {
        char meta[100];
        snprintf(meta, sizeof meta, "{\"op\":\"req\",\"to\":\"bench-rep\",\"id\":%u}", i);
        s.want = i;
        rc_send(q, meta, payload, plen);
        if (rc_pump(q, RBUF) != 0)
            bench_fail("broker closed during req/rep");
    }
    double dt = (bench_now() - t0) / iters;
    free(payload);
    return dt;
}

static void bench_reqrep(void)
{
    static replier rp;
    rclient q;
    rc_connect(&rp.c, "bench-rep");
    rc_connect(&q, "bench-req");
    rp.thread = (HANDLE)_beginthreadex(NULL, 0, replier_main, &rp, 0, NULL);
    if (g_fixed) {
        printf("count: reqrep %u: %.6f s\n", g_fixed, run_reqrep(&q, g_fixed, 64) * g_fixed);
        fflush(stdout);
        broker_stop();
        ExitProcess(0);
    }
    /* 64 B .. 1 MiB request and reply payloads (the same sizes as bench_nng's req/rep). */
    static const uint32_t sizes[] = {64, 1024, 64 * 1024, 1024 * 1024};
    static const char *names[] = {"64B", "1KiB", "64KiB", "1MiB"};
    for (int z = 0; z < 4; z++) {
        double t = run_reqrep(&q, sizes[z] >= 65536 ? 5 : 30, sizes[z]);
        uint32_t iters = bench_calibrate(t, 0.3, sizes[z] >= 65536 ? 10 : 30, 5000);
        double v[REPS];
        for (int r = 0; r < REPS; r++)
            v[r] = run_reqrep(&q, iters, sizes[z]) * 1e6;
        char nm[64];
        snprintf(nm, sizeof nm, "broker.reqrep.rtt.%s", names[z]);
        bench_report(nm, "us", v, REPS, "\"iters\":%u", iters);
    }
    rc_close(&q);
    CloseHandle(rp.c.h);          /* the replier's read fails: its thread ends */
    WaitForSingleObject(rp.thread, 10000);
    CloseHandle(rp.thread);
}

/* ---- publish / subscribe ------------------------------------------------------------------ */
typedef struct sub {
    rclient c;
    HANDLE thread;
    int slow;
    volatile LONG64 got;          /* publications received (cumulative) */
    volatile LONG64 drops;        /* reported by `dropped` */
    volatile LONG64 bad;          /* out of sequence (fast subscribers: must stay 0) */
    uint64_t target;              /* stop reading after this many (fast) */
    uint32_t plen;
    DWORD rcap;                   /* read size of a fast subscriber (rbuf's size) */
    DWORD next_wire;              /* the last frame's wire size when it was large, else 0 */
} sub;

typedef struct pubsub {
    sub *subs[NFAST + 1];
    int nfast, nsubs;
    HANDLE win, done;
    volatile LONG waiting;
    volatile LONG64 wake_at;      /* the publisher waits until every fast subscriber has this */
    volatile LONG remaining;      /* fast subscribers not yet at their target */
    volatile LONG stop_slow;
} pubsub;

static pubsub g_ps;

static uint64_t min_fast_got(void)
{
    uint64_t m = UINT64_MAX;
    for (int i = 0; i < g_ps.nfast; i++)
        if ((uint64_t)g_ps.subs[i]->got < m)
            m = (uint64_t)g_ps.subs[i]->got;
    return m;
}

static int sub_frame(rclient *c, const char *m, uint32_t ml, const uint8_t *pl, uint32_t pn)
{
    sub *s = c->user;
    uint64_t wire = AIPC_HDR_SIZE + (uint64_t)ml + pn;
    s->next_wire = wire >= SUB_DIRECT && wire <= s->rcap ? (DWORD)wire : 0;
    if (meta_is(m, ml, "msg")) {
        uint32_t seq = 0;
        if (pn >= 4)
            memcpy(&seq, pl, 4);
        if (!s->slow && (pn != s->plen || seq != (uint32_t)s->got))
            s->bad++;
        LONG64 g = InterlockedIncrement64(&s->got);
        if (!s->slow && (uint64_t)g == s->target) {
            if (InterlockedDecrement(&g_ps.remaining) == 0)
                SetEvent(g_ps.done);
        }
    } else if (meta_is(m, ml, "dropped")) {
        uint64_t n = 0;
        meta_u64(m, ml, "\"count\":", &n);
        InterlockedAdd64(&s->drops, (LONG64)n);
    } else if (meta_is(m, ml, "bye")) {
        c->stop = 1;
    }
    return 0;
}

static unsigned __stdcall sub_main(void *arg)
{
    sub *s = arg;
    s->c.user = s;
    s->c.on_frame = sub_frame;
    for (;;) {
        DWORD rlen = s->slow ? 4096 : s->rcap, n = 0;
        /* At a frame boundary after a large frame: exactly that frame's size, so a frame of
         * the same size is read whole and alone, as the raw relay's sink reads exactly each
         * 1 MiB write. Under Wine only a read of exactly one whole queued write is handed
         * the writer's buffer; any other size has the wineserver allocate and copy it. */
        if (!s->slow && s->next_wire && !aipc_decoder_partial(&s->c.dec))
            rlen = s->next_wire;
        if (s->slow && g_ps.stop_slow)
            break;
        /* A fast subscriber reads the rest of a large frame straight into the block the
         * decoder kept from the previous one, like the bus client (bus_conn.c). */
        size_t want = 0;
        uint8_t *dst = s->slow ? NULL : aipc_decoder_direct(&s->c.dec, &want);
        if (dst && want < SUB_DIRECT)
            dst = NULL;
        if (!ReadFile(s->c.h, dst ? dst : s->c.rbuf, dst ? (DWORD)want : rlen, &n, NULL) &&
            GetLastError() != ERROR_MORE_DATA)
            break;
        if ((dst ? aipc_decoder_commit(&s->c.dec, n, rc_frame_cb, &s->c)
                 : aipc_decoder_feed(&s->c.dec, s->c.rbuf, n, rc_frame_cb, &s->c, NULL)) < 0)
            bench_fail("subscriber: bad frame");
        /* The publisher waits for the slowest fast subscriber to reach wake_at: one SetEvent
         * (a wineserver request) when it is reached, not one per read. */
        if (g_ps.waiting && !s->slow && (uint64_t)s->got >= (uint64_t)g_ps.wake_at &&
            min_fast_got() >= (uint64_t)g_ps.wake_at)
            SetEvent(g_ps.win);
        if (s->slow)
            Sleep(10);
    }
    return 0;
}

/* Publishes `count` messages of plen bytes on the publisher connection (batches of frames per
 * WriteFile, window-limited), waits until every fast subscriber has them all. Seconds. */
static double run_pub(rclient *pub, uint32_t plen, uint32_t count, uint64_t *base_seq,
                      uint32_t window)
{
    static const char meta[] = "{\"op\":\"pub\",\"topic\":\"" TOPIC "\"}";
    size_t ml = sizeof meta - 1, fl = AIPC_HDR_SIZE + ml + plen;
    size_t per = fl >= BATCH_BYTES ? 1 : BATCH_BYTES / fl;
    uint8_t *batch = malloc(per * fl);
    if (!batch)
        bench_fail("out of memory");
    for (size_t i = 0; i < per; i++) {
        uint8_t *f = batch + i * fl;
        aipc_frame_put_header(f, (uint32_t)ml, plen);
        memcpy(f + AIPC_HDR_SIZE, meta, ml);
        memset(f + AIPC_HDR_SIZE + ml, 0x44, plen);
    }
    uint64_t seq0 = *base_seq;
    for (int i = 0; i < g_ps.nfast; i++)
        g_ps.subs[i]->target = seq0 + count;
    g_ps.remaining = g_ps.nfast;
    ResetEvent(g_ps.done);
    double t0 = bench_now();
    uint64_t sent = 0;
    while (sent < count) {
        size_t k = per;
        if (k > count - sent)
            k = (size_t)(count - sent);
        while (seq0 + sent + k - min_fast_got() > window) {
            InterlockedExchange64(&g_ps.wake_at, (LONG64)(seq0 + sent + k - window));
            InterlockedExchange(&g_ps.waiting, 1);  /* a barrier before the re-check */
            DWORD w = WAIT_OBJECT_0;
            if (seq0 + sent + k - min_fast_got() > window)
                w = WaitForSingleObject(g_ps.win, 1000);
            g_ps.waiting = 0;
            if (w != WAIT_OBJECT_0 && WaitForSingleObject(g_broker, 0) == WAIT_OBJECT_0)
                bench_fail("the broker exited");    /* checked when no progress came */
        }
        for (size_t i = 0; i < k; i++) {
            uint32_t seq = (uint32_t)(seq0 + sent + i);
            memcpy(batch + i * fl + AIPC_HDR_SIZE + ml, &seq, 4);
        }
        if (bench_write_full(pub->h, batch, k * fl) != 0)
            bench_fail("publisher: write failed (%lu)", GetLastError());
        sent += k;
    }
    if (WaitForSingleObject(g_ps.done, WAIT_MS) != WAIT_OBJECT_0)
        bench_fail("pub/sub: subscribers got %llu of %llu", (unsigned long long)min_fast_got(),
                   (unsigned long long)(seq0 + count));
    double dt = bench_now() - t0;
    *base_seq = seq0 + count;
    for (int i = 0; i < g_ps.nfast; i++)
        if (g_ps.subs[i]->bad)
            bench_fail("pub/sub: subscriber %d saw %lld messages out of sequence or damaged", i,
                       (long long)g_ps.subs[i]->bad);
    free(batch);
    return dt;
}

/* One pub/sub scenario: nfast checked subscribers (+ one slow one), payload plen. */
static void bench_pubsub(const char *name, int nfast, int with_slow, uint32_t plen)
{
    memset(&g_ps, 0, sizeof g_ps);
    g_ps.win = CreateEventW(NULL, FALSE, FALSE, NULL);
    g_ps.done = CreateEventW(NULL, TRUE, FALSE, NULL);
    g_ps.nfast = nfast;
    g_ps.nsubs = nfast + (with_slow ? 1 : 0);
    for (int i = 0; i < g_ps.nsubs; i++) {
        sub *s = calloc(1, sizeof *s);
        if (!s)
            bench_fail("out of memory");
        char nm[40];
        snprintf(nm, sizeof nm, "bench-sub-%d", i);
        rc_connect(&s->c, nm);
        rc_subscribe(&s->c, TOPIC);
        s->slow = i >= nfast;
        s->plen = plen;
        s->rcap = RBUF;
        if (!s->slow) {
            s->c.dec.keep_max = SUB_KEEP;   /* the decoder outlives its callbacks */
            /* Reads as large as a whole frame, like the relay's sink (bench_raw.c): one read
             * takes what the broker's write of a frame offers, and the frame is decoded in
             * place. */
            if (plen + SUB_SLACK > RBUF) {
                s->rcap = plen + SUB_SLACK;
                free(s->c.rbuf);
                s->c.rbuf = malloc(s->rcap);
                if (!s->c.rbuf)
                    bench_fail("out of memory");
            }
        }
        g_ps.subs[i] = s;
    }
    for (int i = 0; i < g_ps.nsubs; i++)
        g_ps.subs[i]->thread = (HANDLE)_beginthreadex(NULL, 0, sub_main, g_ps.subs[i], 0, NULL);
    rclient pub;
    rc_connect(&pub, "bench-pub");
    uint64_t drops0 = rc_stats_u64(&pub, "drops");
    /* Window: publications in flight ahead of the slowest fast subscriber: ~2 MiB of small
     * frames, 6 large ones (6 MiB: still below the broker's 8 MiB queue bound). */
    uint32_t window = (uint32_t)((2u << 20) / (plen + 160u));
    if (window < 6)
        window = 6;
    uint64_t seq = 0;
    if (g_fixed) {
        printf("count: %s %u: %.6f s\n", name, g_fixed, run_pub(&pub, plen, g_fixed, &seq, window));
        fflush(stdout);
        broker_stop();
        ExitProcess(0);
    }
    uint32_t warm = plen >= 65536 ? 8 : 5000;
    double t = run_pub(&pub, plen, warm, &seq, window) / warm;
    uint32_t count = bench_calibrate(t, 0.4, 8, 2000000);
    double msgs[REPS], mbs[REPS];
    for (int r = 0; r < REPS; r++) {
        double dt = run_pub(&pub, plen, count, &seq, window);
        msgs[r] = (double)count * nfast / dt;
        mbs[r] = (double)count * nfast * plen / dt / 1e6;
    }
    char nm[96];
    long long slow_drops = (long long)(rc_stats_u64(&pub, "drops") - drops0);
    long long slow_got = with_slow ? (long long)g_ps.subs[nfast]->got : 0;
    snprintf(nm, sizeof nm, "broker.%s.msgs", name);
    bench_report(nm, "msg/s", msgs, REPS, "\"count\":%u,\"subscribers\":%d,\"slow\":%d,"
                 "\"slow_received\":%lld,\"slow_dropped\":%lld", count, nfast, with_slow,
                 slow_got, slow_drops);
    snprintf(nm, sizeof nm, "broker.%s.mbs", name);
    bench_report(nm, "MB/s", mbs, REPS, "\"count\":%u,\"subscribers\":%d", count, nfast);
    if (!with_slow && slow_drops != 0)
        bench_fail("%s: the broker dropped %lld publications with only fast subscribers", name,
                   slow_drops);
    /* Tear down: the slow reader stops at its next read; closing the pipes ends the others. */
    g_ps.stop_slow = 1;
    rc_close(&pub);
    for (int i = 0; i < g_ps.nsubs; i++) {
        sub *s = g_ps.subs[i];
        if (!s->slow) {
            CancelSynchronousIo(s->thread);
            CloseHandle(s->c.h);
        }
        if (WaitForSingleObject(s->thread, 10000) != WAIT_OBJECT_0)
            bench_fail("subscriber thread did not end");
        CloseHandle(s->thread);
        if (s->slow)
            CloseHandle(s->c.h);
        aipc_decoder_free(&s->c.dec);
        free(s->c.rbuf);
        free(s);
    }
    CloseHandle(g_ps.win);
    CloseHandle(g_ps.done);
}

int wmain(int argc, wchar_t **argv)
{
    const wchar_t *only = argc >= 2 ? argv[1] : NULL;
    if (argc >= 4 && wcscmp(argv[1], L"count") == 0) {
        /* Profiling aid: "count reqrep|pub1|pub16|pub1MiB N" - one run of N, then exit, so
         * wineserver requests can be counted per message (WINEDEBUG=+server). */
        g_fixed = (uint32_t)_wtoi(argv[3]);
        broker_start();
        if (wcscmp(argv[2], L"reqrep") == 0)
            bench_reqrep();
        else if (wcscmp(argv[2], L"pub1") == 0)
            bench_pubsub("pubsub.1to1.64B", 1, 0, 64);
        else if (wcscmp(argv[2], L"pub16") == 0)
            bench_pubsub("pubsub.1to16.64B", NFAST, 0, 64);
        else
            bench_pubsub("pubsub.1to1.1MiB", 1, 0, 1u << 20);
        return 1;
    }
    if (!only || wcscmp(only, L"idle") == 0)
        bench_idle();
    broker_start();
    if (!only || wcscmp(only, L"reqrep") == 0)
        bench_reqrep();
    if (!only || wcscmp(only, L"pubsub") == 0) {
        bench_pubsub("pubsub.1to1.64B", 1, 0, 64);
        bench_pubsub("pubsub.1to16.64B", NFAST, 0, 64);
        bench_pubsub("pubsub.1to16.64B.slow", NFAST, 1, 64);
        bench_pubsub("pubsub.1to1.1KiB", 1, 0, 1024);      /* for the nng comparison */
        bench_pubsub("pubsub.1to1.64KiB", 1, 0, 64u << 10);
        bench_pubsub("pubsub.1to1.1MiB", 1, 0, 1u << 20);
    }
    broker_stop();
    return 0;
}
