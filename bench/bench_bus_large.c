/*
 * bench_bus_large.c - bench_bus.exe's 1 MiB rows and its "count" profiling mode (bench_bus.c
 * has the overview, the broker and main): bus.pubsub.1to{1,16}.1MiB.<engine>[.zc|.inline].mbs.
 * One publisher and 1 or 16 subscriber clients of TOPIC on fresh connections per scenario, at
 * most BIG_WINDOW publications ahead of the slowest subscriber; every subscriber checks the
 * length and the sequence number at both ends of every payload (a drop or a bad payload fails
 * the run). Each rep lasts about BIG_REP_S (calibrated after a first-use warm-up of 4 and a
 * timed one of 8 publications), at least BIG_MIN publications: a rep of a handful of 1->16
 * publications spanned 4272..5970 MB/s within one run.
 */
#include "bench_bus.h"

#define BIG_REP_S 0.4                 /* seconds per rep (calibrated) ... */
#define BIG_MIN   8                   /* ... but at least this many publications */
#define BIG_MAX   4000

#define BIG        (1u << 20)
#define NBIG       16
/* Publications ahead of the slowest subscriber's callbacks: 3 MiB. A shared delivery stays
 * charged to the subscriber until its release (written as soon as its callback returned) has
 * reached the broker, so a few released-but-not-yet-processed slots may be held on top of the
 * window: 3 leaves room for 4 of them below the broker's 8 MiB queue bound. */
#define BIG_WINDOW 3
static LONG64 g_window = BIG_WINDOW;  /* "count" mode may set another (profiling) */

/* Profiling ("count" mode): QPC stamps of each publication of one run, by sequence number. */
#define STAMPS 4096
static double g_t_pub0[STAMPS], g_t_pub1[STAMPS], g_t_cb[STAMPS];
static volatile LONG g_stamping;

typedef struct bigsub {
    aipc_bus *bus;
    volatile LONG64 got;      /* publications received (cumulative over the reps) */
    volatile LONG64 bad;      /* wrong length or sequence, or a drop */
    volatile LONG64 drops;    /* broker drops reported (on_dropped count sum) */
    volatile LONG64 badlen;   /* publications of the wrong length */
    volatile LONG64 badseq;   /* right length, wrong sequence number at head or tail */
    LONG64 first_at;          /* the first bad one: expected sequence, head, tail, length */
    uint32_t first_head, first_tail;
    size_t first_len;
} bigsub;

static bigsub g_big[NBIG];
static int g_zc;                      /* the zero-copy rows: aipc_bus_alloc / publish_buf */
#ifdef BENCH_NO_ENGINE
#define BENCH_ZC 0                    /* an older SDK: no zero-copy API */
#else
#define BENCH_ZC 1
#endif
static volatile LONG64 g_queue_full;  /* publishes refused with AIPC_EQUEUEFULL (retried) */
static int g_nbig;
static volatile LONG g_big_waiting;   /* the publisher waits on g_progress ... */
static volatile LONG64 g_big_target;  /* ... until every subscriber has this many */

/* The fewest publications any subscriber has (no check). */
static LONG64 min_got_now(void)
{
    LONG64 m = INT64_MAX;
    for (int i = 0; i < g_nbig; i++)
        if (g_big[i].got < m)
            m = g_big[i].got;
    return m;
}

/* I/O thread: checks a 1 MiB payload (length, the sequence number at both ends). */
static void on_big(aipc_bus *bus, void *user, const char *topic, const aipc_bus_peer *from,
                   bool retained, const void *data, size_t len)
{
    (void)bus, (void)topic, (void)from, (void)retained;
    bigsub *s = user;
    uint32_t head = 0, tail = 0;
    if (len == BIG) {
        memcpy(&head, data, 4);
        memcpy(&tail, (const uint8_t *)data + len - 4, 4);
    }
    if (len != BIG || head != (uint32_t)s->got || tail != head) {
        if (!s->badlen && !s->badseq) {
            s->first_at = s->got;
            s->first_head = head;
            s->first_tail = tail;
            s->first_len = len;
        }
        InterlockedIncrement64(len != BIG ? &s->badlen : &s->badseq);
        InterlockedIncrement64(&s->bad);
    }
    if (g_stamping && s == &g_big[g_nbig - 1] && head < STAMPS)
        g_t_cb[head] = bench_now();      /* the last subscriber's callback */
    LONG64 got = InterlockedIncrement64(&s->got);
    /* The publisher is woken once the slowest subscriber reached its target, not by each of
     * the 16 callbacks (a SetEvent is a wineserver request on this I/O thread: it cost the
     * 1->16 row 26 requests per publication). */
    if (g_big_waiting && (s->bad || (got >= g_big_target && min_got_now() >= g_big_target)))
        SetEvent(g_progress);
}

/* I/O thread: the zero-copy rows' subscriber: the same checks on the broker's slot, released
 * at once. */
#if BENCH_ZC
static void on_big_buf(aipc_bus *bus, void *user, const char *topic, const aipc_bus_peer *from,
                       bool retained, aipc_buf *buf)
{
    on_big(bus, user, topic, from, retained, buf->data, buf->size);
    aipc_buf_release(buf);
}
#endif

/* One 1 MiB publication with sequence number s at both ends: a copy of `payload`, or (g_zc)
 * a buffer of our pool with only those 8 bytes written. 0 or the AIPC_E* error. */
static int big_publish(aipc_bus *pub, uint8_t *payload, uint32_t s)
{
    uint8_t *p = payload;
#if BENCH_ZC
    aipc_buf *b = NULL;
    int rc = g_zc ? aipc_bus_alloc(pub, BIG, &b) : 0;
    if (rc != 0)
        return rc;
    if (g_zc)
        p = b->data;
#endif
    memcpy(p, &s, 4);
    memcpy(p + BIG - 4, &s, 4);
#if BENCH_ZC
    if (g_zc) {
        if ((rc = aipc_bus_publish_buf(pub, TOPIC, b, BIG)) != 0)
            aipc_buf_release(b);
        return rc;
    }
#endif
    return aipc_bus_publish(pub, TOPIC, payload, BIG, false);
}

static void on_big_dropped(aipc_bus *bus, void *user, uint64_t count)
{
    (void)bus;
    InterlockedAdd64(&((bigsub *)user)->drops, (LONG64)count);
    InterlockedIncrement64(&((bigsub *)user)->bad);
    SetEvent(g_progress);
}

/* I/O thread: one counter of a stats answer, -1 when the broker has no such counter. */
typedef struct statq {
    const char *key;
    volatile LONG done;
    long long val;
} statq;

static void on_stats(aipc_bus *bus, void *user, int status, const aipc_bus_peer *from,
                     const void *data, size_t len)
{
    (void)bus, (void)from;
    statq *q = user;
    q->val = -1;
    if (status == 0) {
        char *text = malloc(len + 1), k[64];
        if (text) {
            memcpy(text, data, len);
            text[len] = 0;
            snprintf(k, sizeof k, "\"%s\":", q->key);
            const char *at = strstr(text, k);
            if (at)
                q->val = strtoll(at + strlen(k), NULL, 10);
            free(text);
        }
    }
    InterlockedExchange(&q->done, status == 0 ? 1 : -1);
    SetEvent(g_state);
}

static long long broker_stat(aipc_bus *b, const char *key)
{
    statq q = {key, 0, -1};
    if (aipc_bus_stats(b, WAIT_MS, on_stats, &q) <= 0)
        bench_fail("aipc_bus_stats");
    WAIT_FOR(q.done != 0, "the broker's stats");
    if (q.done < 0)
        bench_fail("stats failed");
    return q.val;
}

/* The fewest publications any subscriber has; fails the run at the first bad one or drop. */
static LONG64 big_min_got(void)
{
    LONG64 m = INT64_MAX;
    for (int i = 0; i < g_nbig; i++) {
        if (g_big[i].bad)
            bench_fail("subscriber %d: a wrong payload or a drop (drops %lld, wrong length %lld, "
                       "wrong sequence %lld; first bad: expected %lld, head %u, tail %u, "
                       "length %zu; got %lld)", i, (long long)g_big[i].drops,
                       (long long)g_big[i].badlen, (long long)g_big[i].badseq,
                       (long long)g_big[i].first_at, g_big[i].first_head, g_big[i].first_tail,
                       g_big[i].first_len, (long long)g_big[i].got);
        if (g_big[i].got < m)
            m = g_big[i].got;
    }
    return m;
}

/* One rep: `count` 1 MiB publications after `*seq` earlier ones, timed until every subscriber
 * has the last one. Returns seconds. */
static double run_big(aipc_bus *pub, uint8_t *payload, uint32_t count, LONG64 *seq)
{
    LONG64 end = *seq + count;
    double t0 = bench_now();
    for (LONG64 n = *seq; n < end;) {
        if (n - big_min_got() >= g_window) {
            ResetEvent(g_progress);
            InterlockedExchange64(&g_big_target, n - g_window + 1);
            InterlockedExchange(&g_big_waiting, 1);
            if (n - big_min_got() >= g_window &&
                WaitForSingleObject(g_progress, WAIT_MS) != WAIT_OBJECT_0)
                bench_fail("no progress: %lld of %lld delivered", (long long)big_min_got(),
                           (long long)n);
            InterlockedExchange(&g_big_waiting, 0);
            continue;
        }
        double tp = g_stamping ? bench_now() : 0;
        int rc = big_publish(pub, payload, (uint32_t)n);
        if (rc == AIPC_EQUEUEFULL) {
            InterlockedIncrement64(&g_queue_full);
            Sleep(1);
            continue;
        }
        if (rc != 0)
            bench_fail("%s: %d", g_zc ? "aipc_bus_alloc/publish_buf" : "aipc_bus_publish", rc);
        if (g_stamping && n < STAMPS) {
            g_t_pub0[n] = tp;
            g_t_pub1[n] = bench_now();
        }
        n++;
    }
    InterlockedExchange64(&g_big_target, end);
    InterlockedExchange(&g_big_waiting, 1);
    for (;;) {
        ResetEvent(g_progress);
        if (big_min_got() >= end)
            break;
        if (WaitForSingleObject(g_progress, WAIT_MS) != WAIT_OBJECT_0)
            bench_fail("timed out: %lld of %lld delivered", (long long)big_min_got(),
                       (long long)end);
    }
    InterlockedExchange(&g_big_waiting, 0);
    double dt = bench_now() - t0;
    for (int i = 0; i < g_nbig; i++)
        if (g_big[i].got != end)
            bench_fail("subscriber %d: %lld of %lld received", i, (long long)g_big[i].got,
                       (long long)end);
    *seq = end;
    return dt;
}

/* nsubs subscriber clients of TOPIC and a publisher, shared memory allowed or off. */
static aipc_bus *big_open(PipeImplType engine, int nsubs, int shm_off)
{
    aipc_bus_options o;
    memset(g_big, 0, sizeof g_big);
    g_nbig = nsubs;
    for (int i = 0; i < nsubs; i++) {
        aipc_bus_options_init(&o);
        if (shm_off)
            o.shm = AIPC_SHM_OFF;
        o.user = &g_big[i];
        o.on_message = on_big;
#if BENCH_ZC
        o.on_message_buf = g_zc ? on_big_buf : NULL;
#endif
        o.on_dropped = on_big_dropped;
        g_big[i].bus = bench_bus_connect(&o, engine);
        if (aipc_bus_subscribe(g_big[i].bus, TOPIC) != 0)
            bench_fail("aipc_bus_subscribe");
        bench_bus_sync(g_big[i].bus);
    }
    aipc_bus_options_init(&o);
    if (shm_off)
        o.shm = AIPC_SHM_OFF;
    return bench_bus_connect(&o, engine);
}

static void big_close(aipc_bus *pub)
{
    aipc_bus_close(pub);
    for (int i = 0; i < g_nbig; i++)
        aipc_bus_close(g_big[i].bus);
}

static uint8_t *big_payload(void)
{
    uint8_t *payload = malloc(BIG);
    if (!payload)
        bench_fail("out of memory");
    memset(payload, 0x5a, BIG);
    return payload;
}

/* A 1 MiB scenario on fresh clients: nsubs subscribers; mode 0 shared memory allowed, 1 the
 * zero-copy API, 2 shared memory off (inline). */
void bench_bus_large(PipeImplType engine, const char *ename, int nsubs, int mode)
{
    if (mode == 1 && !BENCH_ZC)
        return;
    int shm_off = mode == 2;
    g_zc = mode == 1;
    aipc_bus *pub = big_open(engine, nsubs, shm_off);
    uint8_t *payload = big_payload();
    LONG64 seq = 0;
    run_big(pub, payload, 4, &seq);       /* first use: connections, mappings, blocks */
    double per = run_big(pub, payload, 8, &seq) / 8;
    uint32_t count = bench_calibrate(per, BIG_REP_S, BIG_MIN, BIG_MAX);
    long long shm0 = broker_stat(pub, "shm_publications");   /* after the warm-up */
    double v[REPS];
    for (int r = 0; r < REPS; r++)
        v[r] = (double)count * nsubs * BIG / run_big(pub, payload, count, &seq) / 1e6;
    long long shm1 = broker_stat(pub, "shm_publications");
    char name[80];
    snprintf(name, sizeof name, "bus.pubsub.1to%d.1MiB.%s%s.mbs", nsubs, ename,
             shm_off ? ".inline" : g_zc ? ".zc" : "");
    bench_report(name, "MB/s", v, REPS, "\"count\":%u,\"subscribers\":%d,\"publications\":%lld,"
                 "\"shm_publications\":%lld", count, nsubs, (long long)count * REPS,
                 shm0 < 0 || shm1 < 0 ? -1LL : shm1 - shm0);
    free(payload);
    big_close(pub);
    g_zc = 0;
}

static int cmp_dbl(const void *a, const void *b)
{
    return bench_cmp_double(a, b);
}

/* Median and 90th percentile of v[0..n) in microseconds (sorts v). */
static void pct_us(const char *what, double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    printf("  %-34s median %8.1f us   p90 %8.1f us\n", what, v[n / 2] * 1e6, v[n * 9 / 10] * 1e6);
}

/* Profiling aid: "count apc|iocp pub1|pub16 N [window]": one run of N shared 1 MiB
 * publications (after a warm-up of 4) to 1 or 16 subscribers, then exit, so that wineserver
 * requests can be counted per publication (WINEDEBUG=+server, two values of N); prints the
 * QPC breakdown of the run: the publish call (the copy into our slot, under the client's
 * lock), publish -> the last subscriber's callback, the publisher waiting for the window. */
void bench_bus_count(PipeImplType engine, int nsubs, uint32_t n, LONG64 window)
{
    if (window <= 0)
        window = BIG_WINDOW;
    if (n < 1 || n > STAMPS - 8)
        bench_fail("count: N must be 1..%d", STAMPS - 8);
    g_window = window;
    aipc_bus *pub = big_open(engine, nsubs, 0);
    uint8_t *payload = big_payload();
    LONG64 seq = 0;
    run_big(pub, payload, 4, &seq);
    long long shm0 = broker_stat(pub, "shm_publications");
    long long drops0 = broker_stat(pub, "drops");
    g_queue_full = 0;
    g_stamping = 1;
    LONG64 first = seq;
    double dt = run_big(pub, payload, n, &seq);
    g_stamping = 0;
    long long shm1 = broker_stat(pub, "shm_publications");
    long long drops1 = broker_stat(pub, "drops");
    double *call = malloc(n * sizeof *call), *lat = malloc(n * sizeof *lat);
    double *gap = malloc(n * sizeof *gap);
    if (!call || !lat || !gap)
        bench_fail("out of memory");
    for (uint32_t i = 0; i < n; i++) {
        LONG64 k = first + i;
        call[i] = g_t_pub1[k] - g_t_pub0[k];
        lat[i] = g_t_cb[k] - g_t_pub0[k];
        gap[i] = i ? g_t_pub0[k] - g_t_pub1[k - 1] : 0;
    }
    printf("count: %u x 1 MiB to %d subscribers, window %lld: %.3f s, %.0f MB/s aggregate, "
           "%.0f publications/s; shared %lld, broker drops %lld, EQUEUEFULL retries %lld\n",
           n, nsubs, (long long)window, dt, (double)n * nsubs * BIG / dt / 1e6, n / dt,
           shm1 - shm0, drops1 - drops0, (long long)g_queue_full);
    pct_us("publish call (copy, lock)", call, (int)n);
    pct_us("publish -> last callback", lat, (int)n);
    pct_us("between publishes (window wait)", gap, (int)n);
    fflush(stdout);
    free(call);
    free(lat);
    free(gap);
    free(payload);
    big_close(pub);
}
