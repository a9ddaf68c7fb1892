/*
 * bench_core.c - native (Linux) benchmark of the portable broker core, no I/O.
 *
 * Fake connections (aipc_conn) stand in for the Windows engine: a publisher's bytes go through
 * aipc_broker_input() in chunks of 1,024 pre-encoded pub frames (like one large pipe read), and
 * after every chunk each subscriber that was handed output is drained with out_next/out_consume
 * (as the engine does after a write completes; the bytes are not copied anywhere). So a figure
 * covers frame decoding, meta parsing (cJSON), topic matching, frame building and queueing.
 *
 * Scenarios (64-byte payloads; every publication matches exactly one subscription, except the
 * fan-out ones): exact filters ("bench/e/N") and wildcard filters ("bench/+/wN", "bench/wN/#")
 * with 10 and 100,000 subscriptions (100,000 = 1,000 clients x 100 filters); fan-out of one topic
 * to 1 and to 16 subscribers.
 *
 * Heap allocations are counted by defining malloc/calloc/realloc here (they forward to glibc's
 * __libc_* functions): every allocation of the process goes through them, cJSON's included,
 * without LD_PRELOAD. allocs/msg = allocations during the timed loop / publications.
 *
 * Output: RESULT lines like the Windows benches. Exit code 2 if a delivery count is wrong.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "proto/frame.h"

/* ---- allocation counting ------------------------------------------------------------------ */
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);

static unsigned long long g_allocs;

void *malloc(size_t n)
{
    g_allocs++;
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
    g_allocs++;
    return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
    g_allocs++;
    return __libc_realloc(p, n);
}

/* ---- helpers ------------------------------------------------------------------------------ */
#define REPS      7
#define CHUNK     1024
#define PAYLOAD   64
#define MAX_SUBS  1000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_core: FAILED: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *name, const char *unit, const double *v, int n, const char *extra)
{
    double s[REPS];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double med = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    printf("RESULT {\"name\":\"%s\",\"unit\":\"%s\",\"median\":%.6g,\"min\":%.6g,\"max\":%.6g,"
           "\"reps\":%d%s%s}\n", name, unit, med, s[0], s[n - 1], n, extra ? "," : "",
           extra ? extra : "");
    fflush(stdout);
}

/* ---- fake connections ----------------------------------------------------------------------- */
typedef struct fconn {
    aipc_conn conn;               /* first, as engines do */
    aipc_client *cl;
    struct fconn *dnext;
    int dirty, closed;
    uint64_t frames, bytes;       /* frames/bytes "written" */
} fconn;

static fconn *g_dirty;

static void f_want_write(aipc_conn *c)
{
    fconn *f = (fconn *)c;
    if (!f->dirty) {
        f->dirty = 1;
        f->dnext = g_dirty;
        g_dirty = f;
    }
}

static void f_close(aipc_conn *c)
{
    ((fconn *)c)->closed = 1;
}

static const aipc_conn_ops g_ops = {f_want_write, f_close};

/* Writes everything queued for f (out_next / out_consume until empty). */
static void drain(fconn *f)
{
    aipc_iov iov[64];
    int n;
    while ((n = aipc_client_out_next(f->cl, iov, 64)) > 0) {
        size_t total = 0;
        for (int i = 0; i < n; i++)
            total += iov[i].len;
        f->bytes += total;
        aipc_client_out_consume(f->cl, total);
    }
}

static void drain_dirty(void)
{
    while (g_dirty) {
        fconn *f = g_dirty;
        g_dirty = f->dnext;
        f->dirty = 0;
        drain(f);
    }
}

/* Appends one frame to a growable buffer. */
typedef struct buf {
    uint8_t *p;
    size_t len, cap;
} buf;

static void put_frame(buf *b, const char *meta, const uint8_t *pl, uint32_t pn)
{
    size_t ml = strlen(meta), need = b->len + AIPC_HDR_SIZE + ml + pn;
    if (need > b->cap) {
        b->cap = need * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            fail("out of memory");
    }
    aipc_frame_put_header(b->p + b->len, (uint32_t)ml, pn);
    memcpy(b->p + b->len + AIPC_HDR_SIZE, meta, ml);
    if (pn)
        memcpy(b->p + b->len + AIPC_HDR_SIZE + ml, pl, pn);
    b->len = need;
}

static void feed(aipc_broker *b, fconn *f, const char *meta)
{
    buf x = {0};
    put_frame(&x, meta, NULL, 0);
    if (aipc_broker_input(b, f->cl, x.p, x.len) != 0 || f->closed)
        fail("input rejected: %s", meta);
    free(x.p);
    drain_dirty();
}

static fconn *client(aipc_broker *b, int i)
{
    fconn *f = calloc(1, sizeof *f);
    if (!f)
        fail("out of memory");
    f->conn.ops = &g_ops;
    f->cl = aipc_broker_attach(b, &f->conn, 1000u + (uint32_t)i);
    if (!f->cl)
        fail("attach refused");
    char meta[100];
    snprintf(meta, sizeof meta, "{\"op\":\"hello\",\"proto\":1,\"name\":\"c%d\"}", i);
    feed(b, f, meta);
    return f;
}

/* ---- scenarios ---------------------------------------------------------------------------- */
enum { EXACT, WILD, FAN };

typedef struct scenario {
    const char *name;
    int kind;
    int nsubs;                    /* subscriptions (EXACT/WILD) or subscribers (FAN) */
} scenario;

/* Filter number i of a scenario, and a topic that matches only filter i. */
static void filter_of(int kind, int i, char *out, size_t n)
{
    if (kind == EXACT)
        snprintf(out, n, "bench/e/%d", i);
    else if (i % 2 == 0)
        snprintf(out, n, "bench/+/w%d", i);
    else
        snprintf(out, n, "bench/w%d/#", i);
}

static void topic_of(int kind, int i, char *out, size_t n)
{
    if (kind == EXACT)
        snprintf(out, n, "bench/e/%d", i);
    else if (kind == FAN)
        snprintf(out, n, "bench/fan");
    else if (i % 2 == 0)
        snprintf(out, n, "bench/x/w%d", i);
    else
        snprintf(out, n, "bench/w%d/x", i);
}

static void run(const scenario *sc)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.max_clients = 65536;
    /* Routing speed with up to 100k filters from up to 65536 fake clients of one process: the
     * totals and per-process/user bounds (which would refuse part of them) are off here. */
    cfg.max_total_subscription_bytes = 0;
    cfg.max_total_queue_bytes = 0;
    cfg.max_connections_per_process = 0;
    cfg.max_connections_per_user = 0;
    aipc_broker *b = aipc_broker_new(&cfg, NULL);
    if (!b)
        fail("broker_new");
    int nclients = sc->kind == FAN ? sc->nsubs : (sc->nsubs < MAX_SUBS ? sc->nsubs : MAX_SUBS);
    fconn **subs = calloc((size_t)nclients, sizeof *subs);
    for (int i = 0; i < nclients; i++)
        subs[i] = client(b, i);
    char f[64], meta[160];
    if (sc->kind == FAN) {
        for (int i = 0; i < nclients; i++)
            feed(b, subs[i], "{\"op\":\"sub\",\"topic\":\"bench/fan\"}");
    } else {
        for (int i = 0; i < sc->nsubs; i++) {
            filter_of(sc->kind, i, f, sizeof f);
            snprintf(meta, sizeof meta, "{\"op\":\"sub\",\"topic\":\"%s\"}", f);
            feed(b, subs[i % nclients], meta);
        }
    }
    fconn *pub = client(b, 999999);

    /* One chunk of CHUNK publications, topics spread over all the filters. */
    uint8_t payload[PAYLOAD];
    memset(payload, 0x5a, sizeof payload);
    buf chunk = {0};
    unsigned rng = 12345;
    for (int k = 0; k < CHUNK; k++) {
        rng = rng * 1103515245u + 12345u;
        int i = (int)((rng >> 8) % (unsigned)(sc->kind == FAN ? 1 : sc->nsubs));
        char t[64];
        topic_of(sc->kind, i, t, sizeof t);
        snprintf(meta, sizeof meta, "{\"op\":\"pub\",\"topic\":\"%s\"}", t);
        put_frame(&chunk, meta, payload, sizeof payload);
    }
    uint64_t per_pub = sc->kind == FAN ? (uint64_t)sc->nsubs : 1;

    /* Warm-up (queue rings reach their working size), then calibrate ~0.3 s per repetition. */
    aipc_broker_stats st0, st1;
    double t0 = now_s();
    int warm = 20;
    for (int r = 0; r < warm; r++) {
        if (aipc_broker_input(b, pub->cl, chunk.p, chunk.len) != 0)
            fail("input");
        drain_dirty();
    }
    double per_chunk = (now_s() - t0) / warm;
    int chunks = (int)(0.3 / per_chunk);
    if (chunks < 10)
        chunks = 10;
    if (chunks > 20000)
        chunks = 20000;
    double rate[REPS], alloc_per[REPS], deliv[REPS];
    for (int r = 0; r < REPS; r++) {
        aipc_broker_get_stats(b, &st0);
        unsigned long long a0 = g_allocs;
        double t = now_s();
        for (int c = 0; c < chunks; c++) {
            if (aipc_broker_input(b, pub->cl, chunk.p, chunk.len) != 0)
                fail("input");
            drain_dirty();
        }
        double dt = now_s() - t;
        unsigned long long na = g_allocs - a0;
        aipc_broker_get_stats(b, &st1);
        uint64_t pubs = (uint64_t)chunks * CHUNK;
        uint64_t got = st1.deliveries - st0.deliveries;
        if (got != pubs * per_pub || st1.drops != st0.drops)
            fail("%s: %llu deliveries for %llu publications (%llu drops)", sc->name,
                 (unsigned long long)got, (unsigned long long)pubs,
                 (unsigned long long)(st1.drops - st0.drops));
        rate[r] = pubs / dt;
        deliv[r] = got / dt;
        alloc_per[r] = (double)na / pubs;
    }
    char nm[128], extra[160];
    snprintf(extra, sizeof extra, "\"subscriptions\":%d,\"clients\":%d,\"publications\":%d",
             sc->kind == FAN ? sc->nsubs : sc->nsubs, nclients, chunks * CHUNK);
    snprintf(nm, sizeof nm, "core.%s.pubs", sc->name);
    report(nm, "pub/s", rate, REPS, extra);
    if (sc->kind == FAN) {
        snprintf(nm, sizeof nm, "core.%s.deliveries", sc->name);
        report(nm, "msg/s", deliv, REPS, extra);
    }
    snprintf(nm, sizeof nm, "core.%s.allocs_per_pub", sc->name);
    report(nm, "allocs", alloc_per, REPS, extra);

    aipc_broker_free(b);
    for (int i = 0; i < nclients; i++)
        free(subs[i]);
    free(subs);
    free(pub);
    free(chunk.p);
}

int main(int argc, char **argv)
{
    static const scenario all[] = {
        {"exact.10", EXACT, 10},       {"exact.100k", EXACT, 100000},
        {"wildcard.10", WILD, 10},     {"wildcard.100k", WILD, 100000},
        {"fanout.1", FAN, 1},          {"fanout.16", FAN, 16},
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (argc < 2 || strstr(all[i].name, argv[1]))
            run(&all[i]);
    return 0;
}
