/*
 * attack_mem.c - the broker's memory per attack class, for any broker program: the attacks of
 * the limit suite (test_broker_limits.c) played against BROKER.exe, each against a fresh
 * broker, measuring its memory (broker_mem.h: Linux VmData under Wine, sampled every 5 ms)
 * before, at the peak and after, plus a good client's worst ping round trip meanwhile. Used to
 * compare a broker from before issue 12's limits with today's (tools/soak.sh attacks).
 *
 *   attack_mem BROKER.exe [--legacy] [class...]
 *
 * --legacy: the broker knows none of issue 12's config keys (it refuses unknown keys), so only
 * the common ones are given. Without it, the timeouts are shortened (hello 1.5 s, frame 2 s,
 * linger 1 s) so the attacks end quickly. An attack the broker never ends is capped (a count
 * or a time, printed in "capped"); "after" is then what the broker still holds at the cap.
 * Prints one line per class: MEM {"class":..,"before_kib":..,"peak_kib":..,"after_kib":..,
 * "bound_kib":0,"broker":..,"detail":..,"capped":..,"worst_rtt_ms":..}. Nothing is asserted:
 * the limit suite asserts; this measures.
 */
#include <windows.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_mem.h"
#include "raw_proto.h"

#define W 30000u
#define HOLD_MS 8000u           /* how long an attack's end is waited for before "capped" */

static const char *g_exe;
static int g_legacy;
static raw_broker g_b;
static broker_memwatch g_mw;
static raw_conn *g_good;
static uint64_t g_worst_rtt;
static long long g_ping = 1000;

/* The good client's ping round trip (its worst is reported). Returns 0 or -1. */
static int good_ping(void)
{
    uint64_t t0 = aipc_test_now_ms();
    if (!g_good || raw_sync(g_good, ++g_ping, W) != 0)
        return -1;
    uint64_t rtt = aipc_test_now_ms() - t0;
    if (rtt > g_worst_rtt)
        g_worst_rtt = rtt;
    return 0;
}

static double stat_of(const char *key)
{
    return raw_stat(g_good, key, ++g_ping, W);
}

/* Waits (polling the stats, a measurement's bounded poll) until the broker lists `clients`
 * connections; returns 1, or 0 when HOLD_MS passed first (the broker still holds them). */
static int wait_clients(int clients)
{
    uint64_t until = aipc_test_now_ms() + HOLD_MS;
    while (stat_of("clients") != clients) {
        if (aipc_test_now_ms() >= until)
            return 0;
        Sleep(50);
    }
    return 1;
}

/* Starts a fresh broker with common (+ new-only unless --legacy) config keys, the good client
 * and the memory sampler. */
static int begin(const char *tag, const char *common)
{
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s%s%s", common ? common : "",
             common && !g_legacy ? "," : "",
             g_legacy ? "" : "\"hello_timeout_ms\":1500,\"frame_timeout_ms\":2000,"
                             "\"close_linger_ms\":1000");
    if (raw_broker_start_exe(&g_b, g_exe, tag, cfg[0] ? cfg : NULL) != 0)
        return -1;
    g_good = raw_connect(g_b.pipe, W);
    if (!g_good || raw_hello(g_good, "good", W) <= 0)
        return -1;
    g_worst_rtt = 0;
    good_ping();
    return broker_memwatch_start(&g_mw, &g_b, 5);
}

static void end(const char *cls, const char *detail, const char *capped)
{
    good_ping();
    size_t peak = broker_memwatch_stop(&g_mw);
    size_t after = raw_broker_private_bytes(&g_b);
    char extra[512];
    snprintf(extra, sizeof extra, "\"broker\":\"%s\",\"detail\":\"%s\",\"capped\":\"%s\","
             "\"worst_rtt_ms\":%llu", g_legacy ? "legacy" : "current", detail,
             capped ? capped : "", (unsigned long long)g_worst_rtt);
    broker_mem_line(cls, g_mw.before, peak, after, 0, extra);
    raw_close(g_good);
    g_good = NULL;
    raw_broker_stop(&g_b, 5000);
}

/* ---- the attacks ---------------------------------------------------------------------------- */
static void no_hello(void)
{
    enum { N = 200 };
    if (begin("am-nohello", NULL) != 0)
        return;
    static raw_conn *c[N];
    for (int i = 0; i < N; i++)
        c[i] = raw_connect(g_b.pipe, W);
    good_ping();
    int ended = wait_clients(1);
    end("no_hello", "200 connections that never say hello", ended ? NULL : "held after 8 s");
    for (int i = 0; i < N; i++)
        if (c[i])
            raw_close(c[i]);
}

/* Subscribes filter(i) until one is refused or cap are accepted; returns the number accepted. */
static int sub_flood(raw_conn *c, void (*filter)(char *, size_t, int), int cap)
{
    static char f[1100], meta[1200];
    for (int base = 0; base < cap; base += 200) {
        int n = cap - base < 200 ? cap - base : 200;
        for (int i = base; i < base + n; i++) {
            filter(f, sizeof f, i);
            snprintf(meta, sizeof meta, "{\"op\":\"sub\",\"topic\":\"%s\",\"id\":%d}", f, i);
            raw_queue(c, meta, NULL, 0);
        }
        if (raw_flush(c, W) != 0)
            return base;
        int refused = -1;
        for (int i = base; i < base + n; i++) {
            raw_frame fr;
            if (raw_recv(c, &fr, W) != 1)
                return base;
            if (strcmp(raw_op(&fr), "ok") != 0 && refused < 0)
                refused = i;
            raw_frame_free(&fr);
        }
        good_ping();
        if (refused >= 0)
            return refused;
    }
    return cap;
}

static void sub_class(const char *cls, void (*filter)(char *, size_t, int), int cap)
{
    if (begin(cls, NULL) != 0)
        return;
    raw_conn *c = raw_connect(g_b.pipe, W);
    raw_hello(c, "flood", W);
    int n = sub_flood(c, filter, cap);
    char detail[96], capped[64];
    snprintf(detail, sizeof detail, "%d filters accepted, then the client leaves", n);
    snprintf(capped, sizeof capped, "stopped at %d filters", cap);
    raw_close(c);
    wait_clients(1);
    end(cls, detail, n >= cap ? capped : NULL);
}

static void subscription_flood(void) { sub_class("subscription_flood", raw_flat_filter, 100000); }
static void deep_filters(void) { sub_class("deep_filters", raw_deep_topic, 1000); }

/* The target of the request flood: reads (and forgets) what it is sent until told to stop. */
static volatile LONG g_target_stop;

static DWORD WINAPI target_reader(void *arg)
{
    raw_conn *t = arg;
    while (!g_target_stop) {
        raw_frame f;
        if (raw_recv(t, &f, 200) < 0)
            break;
        if (f.meta_text)
            raw_frame_free(&f);
    }
    return 0;
}

static void request_flood(void)
{
    enum { CAP = 50000, BATCH = 500 };
    if (begin("am-reqflood", NULL) != 0)
        return;
    raw_conn *svc = raw_connect(g_b.pipe, W), *cli = raw_connect(g_b.pipe, W);
    raw_hello(svc, "svc", W);
    raw_hello(cli, "cli", W);
    g_target_stop = 0;
    HANDLE th = CreateThread(NULL, 0, target_reader, svc, 0, NULL);
    int sent = 0, refused = 0;
    char meta[96];
    while (sent < CAP && !refused) {
        for (int i = 0; i < BATCH; i++) {
            snprintf(meta, sizeof meta, "{\"op\":\"req\",\"to\":\"svc\",\"id\":%d}", sent + i + 1);
            raw_queue(cli, meta, "q", 1);
        }
        if (raw_flush(cli, W) != 0)
            break;
        sent += BATCH;
        good_ping();
        refused = stat_of("reqs_refused") > 0;         /* -1 on a broker without the limit */
    }
    double pending = stat_of("pending_requests");
    InterlockedExchange(&g_target_stop, 1);
    WaitForSingleObject(th, W);
    CloseHandle(th);
    raw_close(svc);                                     /* the target leaves */
    int answers = 0;
    raw_frame f;
    while (raw_recv(cli, &f, 2000) == 1) {             /* the requester reads what comes */
        answers++;
        raw_frame_free(&f);
    }
    char detail[200];
    snprintf(detail, sizeof detail, "%d requests sent, %.0f pending (-1: not counted), target "
             "leaves, the requester reads %d answers%s", sent, pending, answers,
             cli->closed ? " and is cut off" : "");
    raw_close(cli);
    wait_clients(1);
    end("request_flood_target_leaves", detail, refused ? NULL : "stopped at 50000 requests");
}

static void slowloris(void)
{
    enum { N = 16, PART = 3 << 20 };
    if (begin("am-slowloris", NULL) != 0)
        return;
    const char *meta = "{\"op\":\"pub\",\"topic\":\"slow\"}";
    size_t ml = strlen(meta);
    uint8_t *part = calloc(1, 8 + ml + PART);
    uint32_t hdr[2] = {(uint32_t)ml, 16u << 20};
    memcpy(part, hdr, 8);
    memcpy(part + 8, meta, ml);
    static raw_conn *c[N];
    for (int i = 0; i < N; i++) {
        c[i] = raw_connect(g_b.pipe, W);
        if (c[i] && raw_hello(c[i], NULL, W) > 0)
            raw_write(c[i], part, 8 + ml + PART, 5000);
        good_ping();
    }
    broker_memwatch_peak(&g_mw);
    int ended = wait_clients(1);
    end("slowloris", "16 clients each send 3 MiB of a 16 MiB frame and stall",
        ended ? NULL : "held after 8 s");
    for (int i = 0; i < N; i++)
        if (c[i])
            raw_close(c[i]);
    free(part);
}

static void non_reader(void)
{
    enum { N = 10 };
    if (begin("am-linger", "\"max_queue_bytes\":1048576,\"max_payload\":65536") != 0)
        return;
    static raw_conn *v[N];
    raw_conn *pub = raw_connect(g_b.pipe, W);
    raw_hello(pub, "pub", W);
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "victim%d", i);
        v[i] = raw_connect(g_b.pipe, W);
        raw_hello(v[i], name, W);
        raw_sub(v[i], "flood", 1, W);
    }
    static uint8_t pl[30000];
    for (int i = 0; i < 60; i++)                        /* ~1.8 MB each: queues full */
        raw_queue(pub, "{\"op\":\"pub\",\"topic\":\"flood\"}", pl, sizeof pl);
    raw_flush(pub, W);
    raw_sync(pub, 3, W);
    uint32_t hdr[2] = {10, 1u << 20};                   /* over max_payload: too_large, close */
    for (int i = 0; i < N; i++)
        raw_write(v[i], hdr, sizeof hdr, W);
    good_ping();
    int ended = wait_clients(2);
    end("non_reader_after_close", "10 clients with full queues sent an oversize frame and "
        "never read again", ended ? NULL : "held after 8 s");
    for (int i = 0; i < N; i++)
        raw_close(v[i]);
    raw_close(pub);
}

static void retained_deep(void)
{
    enum { CAP = 5000 };
    if (begin("am-retdeep", "\"max_retained_bytes\":1048576") != 0)
        return;
    raw_conn *c = raw_connect(g_b.pipe, W);
    raw_hello(c, "flood", W);
    static char topic[1100], meta[1200];
    int stored = 0;
    for (; stored < CAP; stored++) {
        raw_deep_topic(topic, sizeof topic, stored);
        snprintf(meta, sizeof meta, "{\"op\":\"pub\",\"topic\":\"%s\",\"retain\":true,\"id\":%d}",
                 topic, stored);
        raw_frame f;
        if (raw_send(c, meta, "v", 1, W) != 0 || raw_recv(c, &f, W) != 1)
            break;
        int ok = strcmp(raw_op(&f), "ok") == 0;
        raw_frame_free(&f);
        if (!ok)
            break;
        if (stored % 50 == 0)
            good_ping();
    }
    char detail[128];
    snprintf(detail, sizeof detail, "max_retained_bytes 1 MiB; %d 256-level topics stored "
             "(they stay: after = what the store holds)", stored);
    raw_close(c);
    wait_clients(1);
    end("retained_flood_deep", detail, stored >= CAP ? "stopped at 5000 topics" : NULL);
}

static void wildcard_large_store(void)
{
    enum { N = 50000 };
    if (begin("am-retwild", "\"max_queue_bytes\":1048576") != 0)
        return;
    raw_conn *p = raw_connect(g_b.pipe, W), *s = raw_connect(g_b.pipe, W);
    raw_hello(p, "pub", W);
    raw_hello(s, "sub", W);
    char meta[96];
    for (int i = 0; i < N; i++) {
        snprintf(meta, sizeof meta, "{\"op\":\"pub\",\"topic\":\"store/%d\",\"retain\":true}", i);
        raw_queue(p, meta, "0123456789", 10);
        if (i % 1000 == 999) {
            raw_flush(p, W);
            raw_sync(p, i, W);
        }
    }
    broker_memwatch_stop(&g_mw);                        /* "before" = the store is full */
    broker_memwatch_start(&g_mw, &g_b, 5);
    g_worst_rtt = 0;
    raw_send(s, "{\"op\":\"sub\",\"topic\":\"#\",\"id\":1}", NULL, 0, W);
    int got = 0;
    for (int idle = 0; got < N && idle < 3;) {
        good_ping();
        int k = 0;
        raw_frame f;
        for (; k < 2000 && raw_recv(s, &f, k == 0 ? 1000 : 0) == 1; k++) {
            got += strcmp(raw_op(&f), "msg") == 0;
            raw_frame_free(&f);
        }
        idle = k ? 0 : idle + 1;
    }
    double drops = stat_of("drops");
    char detail[128];
    snprintf(detail, sizeof detail, "sub # over 50000 retained, max_queue_bytes 1 MiB: %d "
             "delivered, %.0f dropped", got, drops);
    raw_close(p);
    raw_close(s);
    wait_clients(1);
    end("wildcard_sub_large_store", detail, NULL);
}

static const struct {
    const char *name;
    void (*run)(void);
} classes[] = {
    {"no_hello", no_hello},
    {"subscription_flood", subscription_flood},
    {"deep_filters", deep_filters},
    {"request_flood_target_leaves", request_flood},
    {"slowloris", slowloris},
    {"non_reader_after_close", non_reader},
    {"retained_flood_deep", retained_deep},
    {"wildcard_sub_large_store", wildcard_large_store},
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: attack_mem BROKER.exe [--legacy] [class...]\n");
        return 2;
    }
    g_exe = argv[1];
    int first = 2;
    if (argc > 2 && strcmp(argv[2], "--legacy") == 0) {
        g_legacy = 1;
        first = 3;
    }
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++) {
        int want = first >= argc;
        for (int a = first; a < argc; a++)
            want |= strcmp(argv[a], classes[i].name) == 0;
        if (want)
            classes[i].run();
    }
    return 0;
}
