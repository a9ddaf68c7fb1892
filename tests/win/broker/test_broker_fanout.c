/*
 * test_broker_fanout.c - fairness of large fan-outs against the real asyncipc-broker.exe under
 * Wine: one publication matched by the most subscribers the defaults allow (max_clients 1024:
 * 1000 subscriber connections, all of this process, so the per-process and per-user bounds are
 * lifted), published again and again while another client does ping round trips on its own
 * thread. The worst round trip during the fan-outs is measured and bounded; every subscriber
 * must then have every publication, in order.
 * Also the bound on all outbound queues together (max_total_queue_bytes): slow subscribers
 * that do not read fill it, lose publications (reported with `dropped`, the rest in order),
 * and a well-behaved client keeps getting everything in order.
 */
#include "check_main.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_good.h"

#define W GOOD_WAIT_MS
#define NSUB 1000
#define NPUB 40
/* The issue's bound on another client's round trip is ~50 ms; measured here with the
 * engine's flush slices: worst ~45 ms (mean ~10 ms) against ~2 s without them. The assertion
 * allows twice that plus the worst the same pinger sees with no publications at all (the
 * machine's own noise: two cores shared by parallel suites). */
#define RTT_BOUND_US 100000.0

static raw_broker *g_broker;

static void teardown(void)
{
    if (g_broker && g_broker->process)
        raw_broker_stop(g_broker, 0);
    g_broker = NULL;
}

static double now_us(void)
{
    static LARGE_INTEGER f;
    LARGE_INTEGER t;
    if (!f.QuadPart)
        QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&t);
    return (double)t.QuadPart * 1e6 / (double)f.QuadPart;
}

/* The pinger: round trips on its own connection until stop; worst and count recorded. */
typedef struct pinger {
    raw_conn *c;
    volatile LONG stop;
    double worst_us, total_us;
    long n;
    int failed;
} pinger;

static DWORD WINAPI pinger_main(void *arg)
{
    pinger *p = arg;
    long long id = 1;
    while (!p->stop) {
        double t0 = now_us();
        if (raw_sync(p->c, ++id, W) != 0) {
            p->failed = 1;
            return 1;
        }
        double rtt = now_us() - t0;
        if (rtt > p->worst_us)
            p->worst_us = rtt;
        p->total_us += rtt;
        p->n++;
    }
    return 0;
}

/* Runs the pinger while `work` runs on this thread; returns its worst round trip (us). */
static double ping_during(pinger *p, void (*work)(void *), void *arg, const char *what)
{
    p->stop = 0;
    p->worst_us = p->total_us = 0;
    p->n = 0;
    HANDLE th = CreateThread(NULL, 0, pinger_main, p, 0, NULL);
    ck_assert(th != NULL);
    work(arg);
    InterlockedExchange(&p->stop, 1);
    ck_assert(aipc_test_wait(th, 60000));
    CloseHandle(th);
    ck_assert_int_eq(p->failed, 0);
    ck_assert_int_gt(p->n, 0);
    fprintf(stderr, "fanout: %s: %ld round trips, mean %.2f ms, worst %.2f ms\n", what, p->n,
            p->total_us / p->n / 1000.0, p->worst_us / 1000.0);
    return p->worst_us;
}

typedef struct pubwork {
    raw_conn *pub;
    unsigned n;                 /* publications (0: idle for the same time as a fan-out run) */
    DWORD idle_ms;
    double took_us;
} pubwork;

/* Publishes n publications to fan/x one by one, each followed by a ping of the publisher, so
 * every fan-out is done before the next starts. */
static void publish_all(void *arg)
{
    pubwork *w = arg;
    double t0 = now_us();
    if (!w->n)
        Sleep(w->idle_ms);      /* the baseline: the pinger alone, nothing to wait for */
    for (unsigned i = 0; i < w->n; i++) {
        char pl[16];
        int len = snprintf(pl, sizeof pl, "%u", i);
        ck_assert_int_eq(raw_send(w->pub, "{\"op\":\"pub\",\"topic\":\"fan/x\"}", pl,
                                  (uint32_t)len, W), 0);
        ck_assert_int_eq(raw_sync(w->pub, 100 + i, W), 0);
    }
    w->took_us = now_us() - t0;
}

START_TEST(largest_fanout_round_trip)
{
    static raw_broker b;
    ck_assert_int_eq(raw_broker_start(&b, "fanout", "\"max_connections_per_process\":0,"
                                                    "\"max_connections_per_user\":0"), 0);
    g_broker = &b;
    static raw_conn *sub[NSUB];
    for (int i = 0; i < NSUB; i++) {            /* hello + sub batched per connection */
        sub[i] = raw_connect(b.pipe, W);
        ck_assert_ptr_nonnull(sub[i]);
        ck_assert_int_eq(raw_queue(sub[i], "{\"op\":\"hello\",\"proto\":1}", NULL, 0), 0);
        ck_assert_int_eq(raw_queue(sub[i], "{\"op\":\"sub\",\"id\":1,\"topic\":\"fan/x\"}",
                                   NULL, 0), 0);
        ck_assert_int_eq(raw_flush(sub[i], W), 0);
    }
    for (int i = 0; i < NSUB; i++) {
        raw_frame f;
        ck_assert_int_eq(raw_expect(sub[i], &f, "welcome", -1, W), 1);
        raw_frame_free(&f);
        ck_assert_int_eq(raw_expect(sub[i], &f, "ok", 1, W), 1);
        raw_frame_free(&f);
    }
    pinger p = {0};
    p.c = raw_connect(b.pipe, W);
    ck_assert(p.c && raw_hello(p.c, "pinger", W) > 0);
    raw_conn *pub = raw_connect(b.pipe, W);
    ck_assert(pub && raw_hello(pub, "pub", W) > 0);
    ck_assert_int_eq((int)good_stat(pub, "clients"), NSUB + 2);
    size_t mem0 = raw_broker_private_bytes(&b);
    pubwork fan = {pub, NPUB, 0, 0};
    double worst = ping_during(&p, publish_all, &fan, "1000-subscriber fan-outs");
    size_t peak = raw_broker_private_bytes(&b);
    fprintf(stderr, "fanout: %d publications x %d subscribers took %.1f ms (%.2f ms each)\n",
            NPUB, NSUB, fan.took_us / 1000.0, fan.took_us / 1000.0 / NPUB);
    pubwork idle = {pub, 0, (DWORD)(fan.took_us / 1000.0) + 1, 0};
    double base = ping_during(&p, publish_all, &idle, "baseline (no publications)");
    /* Every subscriber has every publication, in order. */
    for (int i = 0; i < NSUB; i++) {
        for (unsigned k = 0; k < NPUB; k++) {
            raw_frame f;
            ck_assert_int_eq(raw_expect(sub[i], &f, "msg", -1, W), 1);
            ck_assert_uint_eq(strtoul((const char *)f.payload, NULL, 10), k);
            raw_frame_free(&f);
        }
    }
    ck_assert_int_eq((int)good_stat(pub, "drops"), 0);
    for (int i = 0; i < NSUB; i++)
        raw_close(sub[i]);
    ck_assert_int_eq(raw_sync(pub, 9999, W), 0);
    size_t after = raw_broker_private_bytes(&b);
    fprintf(stderr, "fanout: broker private bytes before %zu KiB, peak %zu KiB, after %zu KiB "
            "(1000 subscribers attached before, gone after)\n", mem0 / 1024, peak / 1024,
            after / 1024);
    /* The bound holds beyond what the machine adds anyway (the baseline's own worst). */
    ck_assert_msg(worst <= RTT_BOUND_US + base, "worst round trip %.1f ms during the fan-outs "
                  "(baseline worst %.1f ms)", worst / 1000.0, base / 1000.0);
    raw_close(p.c);
    raw_close(pub);
    ck_assert_int_eq(raw_broker_stop(&b, 5000), 0);
    g_broker = NULL;
}
END_TEST

/* Reads c until the answer to a ping: publications in increasing order, `dropped` reports
 * summed. Returns how many publications arrived. */
static unsigned drain_slow(raw_conn *c, unsigned *dropped)
{
    ck_assert_int_eq(raw_send(c, "{\"op\":\"ping\",\"id\":77}", NULL, 0, W), 0);
    unsigned got = 0;
    long last = -1;
    *dropped = 0;
    for (;;) {
        raw_frame f;
        ck_assert_int_eq(raw_recv(c, &f, W), 1);
        const char *op = raw_op(&f);
        if (strcmp(op, "pong") == 0) {
            raw_frame_free(&f);
            return got;
        }
        if (strcmp(op, "dropped") == 0) {
            *dropped += (unsigned)raw_num(&f, "count");
        } else {
            ck_assert_str_eq(op, "msg");
            long seq = strtol((const char *)f.payload, NULL, 10);
            ck_assert_msg(seq > last, "out of order: %ld after %ld", seq, last);
            last = seq;
            got++;
        }
        raw_frame_free(&f);
    }
}

START_TEST(total_queue_bound)
{
    enum { SLOW = 4, N = 1500, PL = 4096, TOTAL = 2 * 1024 * 1024 };
    static raw_broker b;
    ck_assert_int_eq(raw_broker_start(&b, "qtotal", "\"max_queue_bytes\":1048576,"
                                                    "\"max_total_queue_bytes\":2097152"), 0);
    g_broker = &b;
    good_client g;
    good_start(&g, &b, "qt");
    raw_conn *slow[SLOW];
    for (int i = 0; i < SLOW; i++) {          /* subscribed, never reading until the end */
        slow[i] = raw_connect(b.pipe, W);
        ck_assert(slow[i] && raw_hello(slow[i], NULL, W) > 0);
        ck_assert_int_eq(raw_sub(slow[i], "load/#", 1, W), 0);
    }
    raw_conn *pub = raw_connect(b.pipe, W);
    ck_assert(pub && raw_hello(pub, "loader", W) > 0);
    size_t mem0 = raw_broker_private_bytes(&b), peak = mem0;
    static char pl[PL];
    memset(pl, '.', sizeof pl);
    double most = 0;
    for (unsigned i = 0; i < N; i++) {
        int n = snprintf(pl, sizeof pl, "%u", i);
        pl[n] = ' ';
        ck_assert_int_eq(raw_queue(pub, "{\"op\":\"pub\",\"topic\":\"load/x\"}", pl, PL), 0);
        if (i % 100 == 99) {
            ck_assert_int_eq(raw_flush(pub, W), 0);
            ck_assert_int_eq(raw_sync(pub, i, W), 0);
            good_round(&g, 10);
            double q = good_stat(g.c, "queue_bytes");
            ck_assert_msg(q <= TOTAL, "queues hold %.0f bytes", q);
            most = q > most ? q : most;
            size_t m = raw_broker_private_bytes(&b);
            peak = m > peak ? m : peak;
        }
    }
    double evicted = good_stat(g.c, "queue_total_drops");
    ck_assert_msg(evicted > 0, "the total bound never acted");
    for (int i = 0; i < SLOW; i++) {
        unsigned dropped, got = drain_slow(slow[i], &dropped);
        ck_assert_uint_gt(dropped, 0);
        ck_assert_uint_eq(got + dropped, N);
    }
    good_round(&g, 100);
    ck_assert_int_eq((int)good_stat(g.c, "queue_bytes"), 0);
    size_t after = raw_broker_private_bytes(&b);
    fprintf(stderr, "qtotal: queues peaked at %.0f KiB of %d KiB, %.0f publications dropped by "
            "the total bound; broker private bytes before %zu KiB, peak %zu KiB, after %zu KiB\n",
            most / 1024, TOTAL / 1024, evicted, mem0 / 1024, peak / 1024, after / 1024);
    for (int i = 0; i < SLOW; i++)
        raw_close(slow[i]);
    raw_close(pub);
    good_stop(&g);
    ck_assert_int_eq(raw_broker_stop(&b, 5000), 0);
    g_broker = NULL;
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_fanout");
    TCase *tc = tcase_create("fanout");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, largest_fanout_round_trip);
    tcase_add_test(tc, total_queue_bound);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
