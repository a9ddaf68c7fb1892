/*
 * bench_nng.c - the same figures measured with nng 1.5.2 (cross-built by tools/setup-nng.sh)
 * over ipc:// (a Windows named pipe), two processes, for the ours/nng ratios in
 * docs/performance.md:
 *   pair (pair1):  round trip (echo) and one-way stream (nng_send per message; pair1 blocks
 *                  when its queues are full, so nothing is lost), timed until the peer's count.
 *   req/rep:       round trip, the rep peer sends each request back as the reply.
 *   pub/sub 1->1:  the driver publishes, the peer subscribes to everything; nng pub/sub drops
 *                  when a queue is full, so the subscriber returns credit over a pair socket
 *                  and at most `window` publications are in flight (below the queue sizes):
 *                  lossless, checked by sequence number, like the broker bench.
 * Sizes 64 B, 1 KiB, 64 KiB, 1 MiB; median of 7 repetitions, each calibrated to ~0.3 s.
 * "bench_nng pair|reqrep|pubsub" runs one kind; "bench_nng peer KIND URL [CTRL_URL]" is the
 * spawned peer. Output: RESULT lines (bench_util.h). Exit code 2 if a measurement failed.
 */
#include "bench_util.h"

#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#define REPS     7
#define TIMEO_MS 20000
#define QLEN     8192                  /* nng's maximum send/receive queue length */

enum { K_ECHO = 1, K_DATA = 2, K_END = 3 };   /* first 4 bytes of every message */

static const uint32_t g_sizes[] = {64, 1024, 64 * 1024, 1024 * 1024};
static const char *g_size_names[] = {"64B", "1KiB", "64KiB", "1MiB"};

static void check(int rv, const char *what)
{
    if (rv != 0)
        bench_fail("nng %s: %s", what, nng_strerror(rv));
}

static void set_timeouts(nng_socket s)
{
    check(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, TIMEO_MS), "recvtimeo");
    check(nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, TIMEO_MS), "sendtimeo");
    nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 0);     /* no limit (default 1 MiB + epsilon) */
}

/* Dials until the driver's listener is there (bounded). */
static void dial(nng_socket s, const char *url)
{
    ULONGLONG until = GetTickCount64() + 10000;
    int rv;
    while ((rv = nng_dial(s, url, NULL, 0)) != 0) {
        if (GetTickCount64() >= until)
            check(rv, "dial");
        Sleep(5);
    }
}

static uint32_t get32(const void *p, size_t off)
{
    uint32_t v;
    memcpy(&v, (const uint8_t *)p + off, 4);
    return v;
}

/* ---- the peer ---------------------------------------------------------------------------- */
static int peer(const char *kind, const char *url, const char *ctrl_url)
{
    nng_socket s, ctrl = NNG_SOCKET_INITIALIZER;
    int sub = strcmp(kind, "pubsub") == 0;
    if (strcmp(kind, "pair") == 0)
        check(nng_pair1_open(&s), "pair1_open");
    else if (strcmp(kind, "reqrep") == 0)
        check(nng_rep0_open(&s), "rep0_open");
    else {
        check(nng_sub0_open(&s), "sub0_open");
        check(nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, "", 0), "subscribe");
        check(nng_socket_set_int(s, NNG_OPT_RECVBUF, QLEN), "recvbuf");
        check(nng_pair1_open(&ctrl), "pair1_open");
        set_timeouts(ctrl);
    }
    set_timeouts(s);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 120000);   /* idle between runs */
    if (sub)
        dial(ctrl, ctrl_url);
    dial(s, url);
    uint64_t got = 0, bytes = 0;
    uint32_t want = 0, bad = 0, every = 1;
    for (;;) {
        nng_msg *m;
        int rv = nng_recvmsg(s, &m, 0);
        if (rv == NNG_ECLOSED || rv == NNG_ETIMEDOUT)
            break;
        check(rv, "peer recv");
        size_t len = nng_msg_len(m);
        uint32_t k = len >= 8 ? get32(nng_msg_body(m), 0) : 0;
        if (k == K_ECHO) {
            check(nng_sendmsg(s, m, 0), "peer echo");
            continue;
        }
        if (k == K_DATA) {
            if (sub && get32(nng_msg_body(m), 4) != want)
                bad++;
            want++;
            got++;
            bytes += len;
            if (sub && got % every == 0) {
                uint32_t ack[3] = {(uint32_t)got, bad, 0};
                check(nng_send(ctrl, ack, sizeof ack, 0), "peer ack");
            }
        } else if (k == K_END) {
            /* end of a run: second word = the ack interval for the next run (pub/sub) */
            uint64_t r[3] = {got, bytes, bad};
            if (sub) {
                uint32_t ack[3] = {(uint32_t)got, bad, 1};      /* 1: final */
                check(nng_send(ctrl, ack, sizeof ack, 0), "peer final ack");
            } else {
                check(nng_send(s, r, sizeof r, 0), "peer end");
            }
            every = get32(nng_msg_body(m), 4);
            if (!every)
                every = 1;
            got = bytes = 0;
            want = 0;
            bad = 0;
        } else {
            nng_msg_free(m);
            break;                      /* anything else: quit */
        }
        nng_msg_free(m);
    }
    nng_close(s);
    if (sub)
        nng_close(ctrl);
    return 0;
}

/* ---- driver side ------------------------------------------------------------------------- */
typedef struct drv {
    nng_socket s, ctrl;
    HANDLE child;
    uint8_t *buf;
} drv;

static void drv_open(drv *d, const char *kind)
{
    char url[128], ctrl_url[128] = "";
    unsigned long pid = GetCurrentProcessId();
    snprintf(url, sizeof url, "ipc://aipc-bench-nng-%s-%lu-%llu", kind, pid,
             (unsigned long long)GetTickCount64());
    int sub = strcmp(kind, "pubsub") == 0;
    if (strcmp(kind, "pair") == 0)
        check(nng_pair1_open(&d->s), "pair1_open");
    else if (strcmp(kind, "reqrep") == 0)
        check(nng_req0_open(&d->s), "req0_open");
    else {
        check(nng_pub0_open(&d->s), "pub0_open");
        check(nng_socket_set_int(d->s, NNG_OPT_SENDBUF, QLEN), "sendbuf");
        snprintf(ctrl_url, sizeof ctrl_url, "%s-ctrl", url);
        check(nng_pair1_open(&d->ctrl), "pair1_open");
        set_timeouts(d->ctrl);
        check(nng_listen(d->ctrl, ctrl_url, NULL, 0), "listen ctrl");
    }
    set_timeouts(d->s);
    check(nng_listen(d->s, url, NULL, 0), "listen");
    wchar_t args[400];
    _snwprintf(args, 400, L"peer %hs %hs %hs", kind, url, ctrl_url);
    args[399] = 0;
    d->child = bench_spawn_self(args);
    if (sub) {
        /* pub/sub: wait until the subscription is through (probe until an ack comes back). */
        uint32_t probe[2] = {K_END, 1}, ack[3];
        size_t n = sizeof ack;
        nng_socket_set_ms(d->ctrl, NNG_OPT_RECVTIMEO, 20);
        ULONGLONG until = GetTickCount64() + 15000;
        for (;;) {
            nng_send(d->s, probe, sizeof probe, 0);
            n = sizeof ack;
            if (nng_recv(d->ctrl, ack, &n, 0) == 0)
                break;
            if (GetTickCount64() >= until)
                bench_fail("nng sub peer never subscribed");
        }
        Sleep(50);
        while (n = sizeof ack, nng_recv(d->ctrl, ack, &n, NNG_FLAG_NONBLOCK) == 0)
            ;                           /* answers to extra probes */
        nng_socket_set_ms(d->ctrl, NNG_OPT_RECVTIMEO, TIMEO_MS);
    }
    d->buf = malloc(1u << 20);
    if (!d->buf)
        bench_fail("out of memory");
    memset(d->buf, 0x5a, 1u << 20);
}

static void drv_close(drv *d, const char *kind)
{
    /* Any message that is not ECHO/DATA/END makes the peer quit; resent until it has (a
     * publication sent just before nng_close could be lost). */
    uint32_t quit[2] = {0xffffffffu, 0};
    for (int i = 0; i < 50; i++) {
        nng_send(d->s, quit, sizeof quit, NNG_FLAG_NONBLOCK);
        if (WaitForSingleObject(d->child, 200) == WAIT_OBJECT_0)
            break;
    }
    nng_close(d->s);
    if (strcmp(kind, "pubsub") == 0)
        nng_close(d->ctrl);
    DWORD code = bench_wait_child(d->child, 150000, "nng peer");
    if (code != 0)
        bench_fail("nng peer exited with %lu", (unsigned long)code);
    free(d->buf);
}

/* Seconds per round trip (pair or req/rep). */
static double run_rtt(drv *d, uint32_t size, uint32_t iters)
{
    uint32_t hdr[2] = {K_ECHO, 0};
    double t0 = bench_now();
    for (uint32_t i = 0; i < iters; i++) {
        hdr[1] = i;
        memcpy(d->buf, hdr, sizeof hdr);
        check(nng_send(d->s, d->buf, size, 0), "send");
        nng_msg *m;
        check(nng_recvmsg(d->s, &m, 0), "recv echo");
        if (nng_msg_len(m) != size || get32(nng_msg_body(m), 4) != i)
            bench_fail("nng: wrong echo");
        nng_msg_free(m);
    }
    return (bench_now() - t0) / iters;
}

/* pair: seconds for `count` one-way messages until the peer reports them all. */
static double run_stream(drv *d, uint32_t size, uint32_t count)
{
    uint32_t hdr[2] = {K_DATA, 0};
    memcpy(d->buf, hdr, sizeof hdr);
    double t0 = bench_now();
    for (uint32_t i = 0; i < count; i++)
        check(nng_send(d->s, d->buf, size, 0), "stream send");
    uint32_t end[2] = {K_END, 1};
    check(nng_send(d->s, end, sizeof end, 0), "stream end");
    uint64_t r[3];
    size_t n = sizeof r;
    check(nng_recv(d->s, r, &n, 0), "stream count");
    double dt = bench_now() - t0;
    if (n != sizeof r || r[0] != count || r[1] != (uint64_t)size * count)
        bench_fail("nng pair stream: peer got %llu of %u", (unsigned long long)r[0], count);
    return dt;
}

static uint32_t pub_window(uint32_t size)
{
    uint32_t w = (2u << 20) / (size + 160u);
    return w < 6 ? 6 : w > QLEN / 2 ? QLEN / 2 : w;
}

/* pub/sub: seconds for `count` publications, at most `window` ahead of the subscriber. */
static double run_pub(drv *d, uint32_t size, uint32_t count)
{
    uint32_t window = pub_window(size), every = window / 4 ? window / 4 : 1;
    uint32_t hdr[2] = {K_DATA, 0}, ack[3] = {0, 0, 0};
    uint64_t acked = 0;
    double t0 = bench_now();
    for (uint32_t i = 0; i < count; i++) {
        for (;;) {
            size_t n = sizeof ack;
            int fl = (uint64_t)i - acked >= window ? 0 : NNG_FLAG_NONBLOCK;
            int rv = nng_recv(d->ctrl, ack, &n, fl);
            if (rv == NNG_EAGAIN)
                break;
            check(rv, "pub credit");
            acked = ack[0];
        }
        hdr[1] = i;
        memcpy(d->buf, hdr, sizeof hdr);
        check(nng_send(d->s, d->buf, size, 0), "publish");
    }
    uint32_t end[2] = {K_END, every};
    check(nng_send(d->s, end, sizeof end, 0), "publish end");
    do {                                /* the peer's last word for this run is marked final */
        size_t n = sizeof ack;
        check(nng_recv(d->ctrl, ack, &n, 0), "final credit");
    } while (!ack[2]);
    double dt = bench_now() - t0;
    if (ack[0] != count || ack[1] != 0)
        bench_fail("nng pub/sub: subscriber got %u of %u, %u out of sequence", ack[0], count,
                   ack[1]);
    return dt;
}

static void bench_kind(const char *kind)
{
    drv d;
    drv_open(&d, kind);
    int pair = strcmp(kind, "pair") == 0, pubsub = strcmp(kind, "pubsub") == 0;
    char nm[96];
    for (int s = 0; s < 4 && !pubsub; s++) {
        uint32_t size = g_sizes[s];
        double t = run_rtt(&d, size, size >= 65536 ? 5 : 50);
        uint32_t iters = bench_calibrate(t, 0.3, 10, 5000);
        double v[REPS];
        for (int r = 0; r < REPS; r++)
            v[r] = run_rtt(&d, size, iters) * 1e6;
        snprintf(nm, sizeof nm, "nng.%s.rtt.%s", kind, g_size_names[s]);
        bench_report(nm, "us", v, REPS, "\"iters\":%u", iters);
    }
    for (int s = 0; s < 4 && (pair || pubsub); s++) {
        uint32_t size = g_sizes[s];
        if (pubsub) {
            uint32_t end[2] = {K_END, pub_window(size) / 4}, ack[3];
            size_t n = sizeof ack;         /* tell the peer the ack interval, take its answer */
            check(nng_send(d.s, end, sizeof end, 0), "publish end");
            check(nng_recv(d.ctrl, ack, &n, 0), "credit");
        }
        uint32_t warm = size >= 65536 ? 8 : 2000;
        double t = (pubsub ? run_pub(&d, size, warm) : run_stream(&d, size, warm)) / warm;
        uint32_t count = bench_calibrate(t, 0.3, 8, 2000000);
        double msgs[REPS], mbs[REPS];
        for (int r = 0; r < REPS; r++) {
            double dt = pubsub ? run_pub(&d, size, count) : run_stream(&d, size, count);
            msgs[r] = count / dt;
            mbs[r] = (double)size * count / dt / 1e6;
        }
        const char *what = pubsub ? "pubsub.1to1" : "pair.stream";
        snprintf(nm, sizeof nm, "nng.%s.%s.msgs", what, g_size_names[s]);
        bench_report(nm, "msg/s", msgs, REPS, "\"count\":%u", count);
        snprintf(nm, sizeof nm, "nng.%s.%s.mbs", what, g_size_names[s]);
        bench_report(nm, "MB/s", mbs, REPS, "\"count\":%u", count);
    }
    drv_close(&d, kind);
}

int wmain(int argc, wchar_t **argv)
{
    if (argc >= 4 && wcscmp(argv[1], L"peer") == 0) {
        char kind[16], url[160], ctrl[160] = "";
        snprintf(kind, sizeof kind, "%ls", argv[2]);
        snprintf(url, sizeof url, "%ls", argv[3]);
        if (argc >= 5)
            snprintf(ctrl, sizeof ctrl, "%ls", argv[4]);
        return peer(kind, url, ctrl);
    }
    static const char *kinds[] = {"pair", "reqrep", "pubsub"};
    for (int k = 0; k < 3; k++) {
        char only[16] = "";
        if (argc >= 2)
            snprintf(only, sizeof only, "%ls", argv[1]);
        if (!only[0] || strcmp(only, kinds[k]) == 0)
            bench_kind(kinds[k]);
    }
    return 0;
}
