/*
 * broker_soak.c - the real broker (asyncipc-broker.exe) under a sustained mix of traffic, to
 * show whether its memory stays flat once its queues are full (issue 12). Run by tools/soak.sh
 * (not a ctest suite: it lasts minutes). Raw protocol clients (raw_proto.c), one thread each:
 *   - NPUB publishers on soak/p<k>, payloads 64 B .. 256 KiB (64 << k), paced at --rate KiB/s
 *     each and never more than WINDOW bytes ahead of the slowest fast subscriber;
 *   - NFAST fast subscribers of soak/#: every message, in order, intact (checked);
 *   - one slow subscriber of soak/# (reads a message every --slow-ms): order checked, its
 *     `dropped` reports summed: arrived + dropped == published at the end of every epoch;
 *   - a requester and a replier (req/rep round trips, payload echoed and checked);
 *   - connection churn: short-lived clients that subscribe, publish, and leave, every third
 *     one without reading what it was sent.
 * --no-slow, --no-req, --no-churn leave a part out, --size fixes the payload size (to tell
 * which part costs memory, and whether varied sizes do); --broker EXE runs another broker
 * program (a build to compare).
 * The run is --epochs broker lifetimes (a clean stop and a fresh broker between them). Every
 * --sample-ms the broker's VmData, threads and handle count and its stats are sampled (a
 * "SAMPLE {...}" line each, and --csv FILE); at the end the least-squares slope of VmData
 * (KiB/min) over each epoch's part after --fill-s seconds (its queues full), pooled over the
 * epochs, is printed as "SLOPE {...}", and per epoch in --window-s windows (default 120 s;
 * 0 = none) as "WINDOWS {...}". Exit code 0 when every check held (and the slope is within
 * --max-slope KiB/min when given).
 */
#include <windows.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raw_proto.h"

#define NPUB 3
#define NFAST 2
#define MAXSZ (256u * 1024u)
#define WINDOW (1u << 20)       /* bytes a publisher may be ahead of a fast subscriber */
#define W 30000u                /* bound of single protocol waits */
#define MAXSAMPLES 4096

static struct {
    double seconds, fill_s, max_slope, window_s;
    int epochs, rate_kib, slow_ms, sample_ms;
    const char *csv;
    int no_slow, no_req, no_churn;   /* parts left out (to tell where memory goes) */
    unsigned size;                   /* every payload this size (0: 64 B .. 256 KiB) */
    const char *broker;              /* broker program (NULL: the one next to this program) */
} opt = { 600, 20, -1, 120, 4, 1024, 40, 2000, NULL, 0, 0, 0, 0, NULL };

static raw_broker g_b;
static volatile LONG g_stop;    /* publishers, requester and churn stop */
static volatile LONG g_quit;    /* every client thread stops */
static SRWLOCK g_lock = SRWLOCK_INIT;
static CONDITION_VARIABLE g_cv = CONDITION_VARIABLE_INIT;
static uint64_t g_pub_count[NPUB], g_pub_bytes[NPUB];        /* under g_lock */
static uint64_t g_fast_count[NFAST][NPUB], g_fast_bytes[NFAST][NPUB];
static uint64_t g_slow_arrived, g_slow_dropped;
static volatile LONG g_ready;   /* subscribers subscribed */
static volatile LONG64 g_rtts, g_rtt_max_ms, g_churns;
static volatile LONG g_failures;
static char g_fail_msg[512];

static void fail(const char *fmt, ...)
{
    if (InterlockedIncrement(&g_failures) == 1) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g_fail_msg, sizeof g_fail_msg, fmt, ap);
        va_end(ap);
        fprintf(stderr, "soak: FAILED: %s\n", g_fail_msg);
    }
    InterlockedExchange(&g_stop, 1);
    InterlockedExchange(&g_quit, 1);
    WakeAllConditionVariable(&g_cv);
}

static raw_conn *client(const char *name)
{
    raw_conn *c = raw_connect(g_b.pipe, W);
    if (!c || raw_hello(c, name, W) <= 0) {
        fail("%s: cannot connect and say hello", name ? name : "(anonymous)");
        if (c)
            raw_close(c);
        return NULL;
    }
    return c;
}

/* ---- publications: 16-byte header (publisher, sequence, size), then a filler byte ---------- */
static uint32_t pub_size(unsigned p, uint64_t seq)
{
    if (opt.size)
        return opt.size;
    return 64u << (unsigned)((seq * 5 + p) % 13);             /* 64 B .. 256 KiB */
}

static uint8_t pub_fill(unsigned p, uint64_t seq)
{
    return (uint8_t)(seq * 31 + p);
}

/* Checks a soak/p<k> payload; returns its publisher (or -1) and sets *seq. */
static int pub_parse(const raw_frame *f, uint64_t *seq)
{
    if (f->payload_len < 16)
        return -1;
    uint32_t p, sz;
    memcpy(&p, f->payload, 4);
    memcpy(seq, f->payload + 4, 8);
    memcpy(&sz, f->payload + 12, 4);
    if (p >= NPUB || sz != f->payload_len || sz != pub_size(p, *seq) ||
        f->payload[sz - 1] != pub_fill(p, *seq) || f->payload[sz / 2] != pub_fill(p, *seq))
        return -1;
    return (int)p;
}

static uint64_t slowest_fast(unsigned p)                      /* under g_lock */
{
    uint64_t m = UINT64_MAX;
    for (int f = 0; f < NFAST; f++)
        if (g_fast_bytes[f][p] < m)
            m = g_fast_bytes[f][p];
    return m;
}

static DWORD WINAPI publisher(void *arg)
{
    unsigned p = (unsigned)(uintptr_t)arg;
    char name[32], meta[64];
    snprintf(name, sizeof name, "soak-pub%u", p);
    snprintf(meta, sizeof meta, "{\"op\":\"pub\",\"topic\":\"soak/p%u\"}", p);
    raw_conn *c = client(name);
    uint8_t *buf = malloc(MAXSZ);
    uint64_t t0 = aipc_test_now_ms(), sent = 0;
    for (uint64_t seq = 0; c && !g_stop; seq++) {
        uint32_t sz = pub_size(p, seq);
        AcquireSRWLockExclusive(&g_lock);
        while (!g_stop && g_pub_bytes[p] - slowest_fast(p) > WINDOW)
            SleepConditionVariableSRW(&g_cv, &g_lock, 1000, 0);
        ReleaseSRWLockExclusive(&g_lock);
        if (g_stop)
            break;
        memcpy(buf, &p, 4);
        memcpy(buf + 4, &seq, 8);
        memcpy(buf + 12, &sz, 4);
        memset(buf + 16, pub_fill(p, seq), sz - 16);
        if (raw_send(c, meta, buf, sz, W) != 0) {
            fail("%s: send failed", name);
            break;
        }
        AcquireSRWLockExclusive(&g_lock);
        g_pub_count[p]++;
        g_pub_bytes[p] += sz;
        ReleaseSRWLockExclusive(&g_lock);
        sent += sz;
        /* Pacing: a rate, not a wait for an event (nothing to wait for). */
        uint64_t due = t0 + sent * 1000 / ((uint64_t)opt.rate_kib * 1024);
        uint64_t now = aipc_test_now_ms();
        if (due > now)
            Sleep((DWORD)(due - now));
    }
    if (c && !g_failures && raw_sync(c, 1, W) != 0)              /* every pub was routed */
        fail("%s: no pong", name);
    free(buf);
    if (c)
        raw_close(c);
    return 0;
}

/* A subscriber of soak/#: the fast ones (0..NFAST-1) must get every message, in order; the slow
 * one (NFAST) reads one per --slow-ms while the publishers run, keeps the order of what
 * arrives, and sums its `dropped` reports. */
static DWORD WINAPI subscriber(void *arg)
{
    int s = (int)(uintptr_t)arg, slow = s == NFAST;
    if (slow && opt.no_slow)
        return 0;
    char name[32];
    snprintf(name, sizeof name, slow ? "soak-slow" : "soak-fast%d", s);
    raw_conn *c = client(name);
    if (c && raw_sub(c, "soak/#", 1, W) != 0)
        fail("%s: sub failed", name);
    InterlockedIncrement(&g_ready);
    uint64_t next[NPUB] = {0};
    while (c && !g_quit) {
        raw_frame f;
        int r = raw_recv(c, &f, 200);
        if (r == 0)
            continue;
        if (r < 0) {
            fail("%s: the broker closed the connection", name);
            break;
        }
        uint64_t seq = 0;
        int p = strcmp(raw_op(&f), "msg") == 0 ? pub_parse(&f, &seq) : -1;
        if (slow && strcmp(raw_op(&f), "dropped") == 0) {
            AcquireSRWLockExclusive(&g_lock);
            g_slow_dropped += (uint64_t)raw_num(&f, "count");
            ReleaseSRWLockExclusive(&g_lock);
        } else if (p < 0 || seq < next[p] || (!slow && seq != next[p])) {
            fail("%s: unexpected %s (%u bytes; #%llu, expected #%llu or later)", name,
                 f.meta_text, f.payload_len, (unsigned long long)seq,
                 (unsigned long long)(p < 0 ? 0 : next[p]));
        } else {
            next[p] = seq + 1;
            AcquireSRWLockExclusive(&g_lock);
            if (slow) {
                g_slow_arrived++;
            } else {
                g_fast_count[s][p]++;
                g_fast_bytes[s][p] += f.payload_len;
            }
            ReleaseSRWLockExclusive(&g_lock);
            if (!slow)
                WakeAllConditionVariable(&g_cv);
            else if (!g_stop)
                Sleep((DWORD)opt.slow_ms);           /* the slow reader's pace */
        }
        raw_frame_free(&f);
    }
    if (c)
        raw_close(c);
    return 0;
}

static DWORD WINAPI replier(void *arg)
{
    (void)arg;
    if (opt.no_req)
        return 0;
    raw_conn *c = client("soak-svc");
    InterlockedIncrement(&g_ready);
    while (c && !g_quit) {
        raw_frame f;
        int r = raw_recv(c, &f, 200);
        if (r == 0)
            continue;
        if (r < 0) {
            fail("soak-svc: the broker closed the connection");
            break;
        }
        if (strcmp(raw_op(&f), "req") != 0) {
            fail("soak-svc: unexpected %s", f.meta_text);
        } else {
            char meta[128];
            const cJSON *from = cJSON_GetObjectItemCaseSensitive(f.meta, "from");
            snprintf(meta, sizeof meta, "{\"op\":\"rep\",\"to\":%.0f,\"re\":%.0f}",
                     cJSON_GetObjectItemCaseSensitive(from, "id")->valuedouble,
                     raw_num(&f, "id"));
            if (raw_send(c, meta, f.payload, f.payload_len, W) != 0)
                fail("soak-svc: send failed");
        }
        raw_frame_free(&f);
    }
    if (c)
        raw_close(c);
    return 0;
}

static DWORD WINAPI requester(void *arg)
{
    (void)arg;
    raw_conn *c = client("soak-cli");
    static uint8_t pl[4096];
    for (long long id = 1; c && !g_stop; id++) {
        uint32_t n = 16 + (uint32_t)(id * 97 % 4000);
        memset(pl, (int)(id & 0xff), n);
        char meta[96];
        snprintf(meta, sizeof meta, "{\"op\":\"req\",\"to\":\"soak-svc\",\"id\":%lld}", id);
        uint64_t t0 = aipc_test_now_ms();
        raw_frame f;
        if (raw_send(c, meta, pl, n, W) != 0 || raw_expect(c, &f, "rep", id, W) != 1) {
            fail("soak-cli: request %lld got no reply", id);
            break;
        }
        if (f.payload_len != n || memcmp(f.payload, pl, n) != 0)
            fail("soak-cli: reply %lld differs", id);
        raw_frame_free(&f);
        LONG64 rtt = (LONG64)(aipc_test_now_ms() - t0);
        if (rtt > g_rtt_max_ms)
            g_rtt_max_ms = rtt;
        InterlockedIncrement64(&g_rtts);
    }
    if (c)
        raw_close(c);
    return 0;
}

static DWORD WINAPI churn(void *arg)
{
    (void)arg;
    for (unsigned n = 0; !g_stop; n++) {
        char name[48], topic[48], meta[96];
        snprintf(name, sizeof name, "soak-churn-%lu-%u", (unsigned long)GetTickCount(), n);
        raw_conn *c = client(name);
        if (!c)
            break;
        snprintf(topic, sizeof topic, "churn/%u", n % 50);
        int bad = raw_sub(c, n % 3 == 0 ? "soak/#" : topic, 1, W) != 0;
        snprintf(meta, sizeof meta, "{\"op\":\"pub\",\"topic\":\"%s\"}", topic);
        for (int i = 0; i < 5 && !bad; i++)
            bad = raw_queue(c, meta, "churn", 5) != 0;
        if (!bad && n % 3 != 0)
            bad = raw_flush(c, W) != 0 || raw_sync(c, 2, W) != 0;
        else if (!bad)
            bad = raw_flush(c, W) != 0;                     /* leaves without reading */
        raw_close(c);
        if (bad) {
            fail("%s: churn client failed", name);
            break;
        }
        InterlockedIncrement64(&g_churns);
    }
    return 0;
}

/* ---- samples and the slope --------------------------------------------------------------- */
typedef struct sample {
    int epoch;
    double t_s, epoch_t_s;      /* since the start; since its epoch's start */
    double vmdata_kib;
    int threads, handles;
    double drops, clients;
} sample;

static sample g_samples[MAXSAMPLES];
static int g_nsamples;

static void take_sample(raw_conn *mon, int epoch, uint64_t t_run0, uint64_t t_epoch0, FILE *csv)
{
    static long long id = 100;
    if (g_nsamples >= MAXSAMPLES)
        return;
    sample *s = &g_samples[g_nsamples++];
    uint64_t now = aipc_test_now_ms();
    s->epoch = epoch;
    s->t_s = (double)(now - t_run0) / 1000.0;
    s->epoch_t_s = (double)(now - t_epoch0) / 1000.0;
    s->vmdata_kib = (double)raw_broker_private_bytes(&g_b) / 1024.0;
    s->threads = raw_broker_threads(&g_b);
    DWORD h = 0;
    s->handles = GetProcessHandleCount(g_b.process, &h) && h ? (int)h : -1;  /* Wine: 0 */
    s->drops = raw_stat(mon, "drops", ++id, W);
    s->clients = raw_stat(mon, "clients", ++id, W);
    fprintf(stderr, "SAMPLE {\"t_s\":%.1f,\"epoch\":%d,\"epoch_t_s\":%.1f,\"vmdata_kib\":%.0f,"
            "\"threads\":%d,\"handles\":%d,\"drops\":%.0f,\"clients\":%.0f,\"rtts\":%lld,"
            "\"churns\":%lld}\n", s->t_s, epoch, s->epoch_t_s, s->vmdata_kib, s->threads,
            s->handles, s->drops, s->clients, (long long)g_rtts, (long long)g_churns);
    if (csv) {
        fprintf(csv, "%.1f,%d,%.1f,%.0f,%d,%d,%.0f,%.0f\n", s->t_s, epoch, s->epoch_t_s,
                s->vmdata_kib, s->threads, s->handles, s->drops, s->clients);
        fflush(csv);
    }
}

/* Least-squares slope per minute of field(sample) over the samples in [from_s, to_s) of each
 * epoch's time, within epochs (each epoch its own intercept: a restart resets the broker's
 * memory). */
static double range_slope(int epoch, double from_s, double to_s, double (*field)(const sample *))
{
    double num = 0, den = 0;
    for (int e = 0; e < opt.epochs; e++) {
        if (epoch >= 0 && e != epoch)
            continue;
        double st = 0, sm = 0;
        int n = 0;
        for (int i = 0; i < g_nsamples; i++)
            if (g_samples[i].epoch == e && g_samples[i].epoch_t_s >= from_s &&
                g_samples[i].epoch_t_s < to_s) {
                st += g_samples[i].epoch_t_s / 60.0;
                sm += field(&g_samples[i]);
                n++;
            }
        if (n < 2)
            continue;
        st /= n;
        sm /= n;
        for (int i = 0; i < g_nsamples; i++)
            if (g_samples[i].epoch == e && g_samples[i].epoch_t_s >= from_s &&
                g_samples[i].epoch_t_s < to_s) {
                double dt = g_samples[i].epoch_t_s / 60.0 - st;
                num += dt * (field(&g_samples[i]) - sm);
                den += dt * dt;
            }
    }
    return den > 0 ? num / den : 0;
}

/* The slope after the queues filled (fill_s) to the end of each epoch. */
static double pooled_slope(int epoch, double (*field)(const sample *))
{
    return range_slope(epoch, opt.fill_s, 1e300, field);
}

static double f_vmdata(const sample *s) { return s->vmdata_kib; }
static double f_threads(const sample *s) { return s->threads; }
static double f_handles(const sample *s) { return s->handles; }

/* ---- one epoch: a broker lifetime --------------------------------------------------------- */
static int all_delivered(void)
{
    AcquireSRWLockExclusive(&g_lock);
    uint64_t total = 0;
    int ok = 1;
    for (int p = 0; p < NPUB; p++) {
        total += g_pub_count[p];
        for (int f = 0; f < NFAST; f++)
            ok &= g_fast_count[f][p] == g_pub_count[p];
    }
    ok &= opt.no_slow || g_slow_arrived + g_slow_dropped == total;
    ReleaseSRWLockExclusive(&g_lock);
    return ok;
}

static void run_epoch(int epoch, uint64_t t_run0, double seconds, FILE *csv)
{
    memset(g_pub_count, 0, sizeof g_pub_count);
    memset(g_pub_bytes, 0, sizeof g_pub_bytes);
    memset(g_fast_count, 0, sizeof g_fast_count);
    memset(g_fast_bytes, 0, sizeof g_fast_bytes);
    g_slow_arrived = g_slow_dropped = 0;
    g_stop = g_quit = g_ready = 0;
    char tag[32];
    snprintf(tag, sizeof tag, "soak%d", epoch);
    if (raw_broker_start_exe(&g_b, opt.broker, tag, NULL) != 0) {
        fail("epoch %d: the broker did not start", epoch);
        return;
    }
    uint64_t t0 = aipc_test_now_ms();
    raw_conn *mon = client("soak-mon");
    HANDLE th[NPUB + NFAST + 4];
    int n = 0;
    for (int s = 0; s <= NFAST; s++)                  /* NFAST: the slow one */
        th[n++] = CreateThread(NULL, 0, subscriber, (void *)(uintptr_t)s, 0, NULL);
    th[n++] = CreateThread(NULL, 0, replier, NULL, 0, NULL);
    while (g_ready < NFAST + 2 - opt.no_slow - opt.no_req && !g_failures)
        Sleep(10);                        /* short start-up poll of the ready counter */
    for (int p = 0; p < NPUB; p++)
        th[n++] = CreateThread(NULL, 0, publisher, (void *)(uintptr_t)p, 0, NULL);
    if (!opt.no_req)
        th[n++] = CreateThread(NULL, 0, requester, NULL, 0, NULL);
    if (!opt.no_churn)
        th[n++] = CreateThread(NULL, 0, churn, NULL, 0, NULL);
    uint64_t end = t0 + (uint64_t)(seconds * 1000);
    while (mon && !g_failures && aipc_test_now_ms() < end) {
        take_sample(mon, epoch, t_run0, t0, csv);
        uint64_t now = aipc_test_now_ms();
        if (now < end)
            Sleep((DWORD)(end - now < (uint64_t)opt.sample_ms ? end - now : (uint64_t)opt.sample_ms));
    }
    InterlockedExchange(&g_stop, 1);
    WakeAllConditionVariable(&g_cv);
    WaitForMultipleObjects(NPUB, th + NFAST + 2, TRUE, 60000);   /* publishers: all routed */
    uint64_t drain_until = aipc_test_now_ms() + 120000;
    while (!g_failures && !all_delivered() && aipc_test_now_ms() < drain_until)
        Sleep(50);                        /* the subscribers read the rest */
    if (!g_failures && !all_delivered())
        fail("epoch %d: not everything arrived (slow: %llu arrived + %llu dropped)", epoch,
             (unsigned long long)g_slow_arrived, (unsigned long long)g_slow_dropped);
    uint64_t total = 0, fast = 0;
    for (int p = 0; p < NPUB; p++) {
        total += g_pub_count[p];
        fast += g_fast_count[0][p];
    }
    fprintf(stderr, "EPOCH {\"epoch\":%d,\"published\":%llu,\"fast_received\":%llu,"
            "\"slow_arrived\":%llu,\"slow_dropped\":%llu,\"rtts\":%lld,\"rtt_max_ms\":%lld,"
            "\"churns\":%lld,\"ok\":%s}\n", epoch, (unsigned long long)total,
            (unsigned long long)fast,
            (unsigned long long)g_slow_arrived, (unsigned long long)g_slow_dropped,
            (long long)g_rtts, (long long)g_rtt_max_ms, (long long)g_churns,
            g_failures ? "false" : "true");
    if (!g_failures && !opt.no_slow && g_slow_dropped == 0)
        fail("epoch %d: the slow subscriber had nothing dropped (not the load asked for)", epoch);
    InterlockedExchange(&g_quit, 1);
    WaitForMultipleObjects(n, th, TRUE, 60000);
    for (int i = 0; i < n; i++)
        CloseHandle(th[i]);
    if (mon)
        raw_close(mon);
    int rc = raw_broker_stop(&g_b, 10000);
    if (rc != 0)
        fail("epoch %d: the broker's clean stop returned %d", epoch, rc);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i += 2) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(k, "--no-slow")) opt.no_slow = 1, i--;
        else if (!strcmp(k, "--no-req")) opt.no_req = 1, i--;
        else if (!strcmp(k, "--no-churn")) opt.no_churn = 1, i--;
        else if (!strcmp(k, "--seconds")) opt.seconds = atof(v);
        else if (!strcmp(k, "--size")) opt.size = (unsigned)atoi(v);
        else if (!strcmp(k, "--broker")) opt.broker = v;
        else if (!strcmp(k, "--epochs")) opt.epochs = atoi(v);
        else if (!strcmp(k, "--fill-s")) opt.fill_s = atof(v);
        else if (!strcmp(k, "--rate")) opt.rate_kib = atoi(v);
        else if (!strcmp(k, "--slow-ms")) opt.slow_ms = atoi(v);
        else if (!strcmp(k, "--sample-ms")) opt.sample_ms = atoi(v);
        else if (!strcmp(k, "--max-slope")) opt.max_slope = atof(v);
        else if (!strcmp(k, "--window-s")) opt.window_s = atof(v);
        else if (!strcmp(k, "--csv")) opt.csv = v;
        else {
            fprintf(stderr, "usage: broker_soak [--seconds S] [--epochs K] [--fill-s S] "
                    "[--rate KiB/s] [--slow-ms MS] [--sample-ms MS] [--max-slope KiB/min] "
                    "[--csv FILE] [--no-slow] [--no-req] [--no-churn] [--size BYTES] "
                    "[--broker EXE] [--window-s S]\n");
            return 2;
        }
    }
    if (opt.epochs < 1 || opt.seconds <= 0 || opt.rate_kib <= 0 || opt.sample_ms <= 0 ||
        (opt.size && (opt.size < 16 || opt.size > MAXSZ)))
        return 2;
    FILE *csv = opt.csv ? fopen(opt.csv, "w") : NULL;
    if (csv)
        fprintf(csv, "t_s,epoch,epoch_t_s,vmdata_kib,threads,handles,drops,clients\n");
    uint64_t t_run0 = aipc_test_now_ms();
    for (int e = 0; e < opt.epochs && !g_failures; e++)
        run_epoch(e, t_run0, opt.seconds / opt.epochs, csv);
    if (csv)
        fclose(csv);
    double slope = pooled_slope(-1, f_vmdata);
    fprintf(stderr, "SLOPE {\"vmdata_kib_per_min\":%.1f,\"threads_per_min\":%.2f,"
            "\"handles_per_min\":%.2f,\"fill_s\":%.0f,\"epochs\":[", slope,
            pooled_slope(-1, f_threads), pooled_slope(-1, f_handles), opt.fill_s);
    for (int e = 0; e < opt.epochs; e++)
        fprintf(stderr, "%s%.1f", e ? "," : "", pooled_slope(e, f_vmdata));
    fprintf(stderr, "],\"samples\":%d,\"failures\":%ld}\n", g_nsamples, (long)g_failures);
    /* The same in --window-s windows after fill_s (its noise, and whether it slows down). */
    for (int e = 0; opt.window_s > 0 && e < opt.epochs; e++) {
        fprintf(stderr, "WINDOWS {\"epoch\":%d,\"window_s\":%.0f,\"vmdata_kib_per_min\":[", e,
                opt.window_s);
        double len = opt.seconds / opt.epochs;
        for (double a = opt.fill_s; a + opt.window_s <= len + 1; a += opt.window_s)
            fprintf(stderr, "%s%.1f", a > opt.fill_s ? "," : "",
                    range_slope(e, a, a + opt.window_s, f_vmdata));
        fprintf(stderr, "]}\n");
    }
    if (g_failures)
        return 1;
    if (opt.max_slope >= 0 && slope > opt.max_slope) {
        fprintf(stderr, "soak: FAILED: VmData grows %.1f KiB/min (bound %.1f)\n", slope,
                opt.max_slope);
        return 1;
    }
    return 0;
}
