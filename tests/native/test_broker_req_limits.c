/* test_broker_req_limits.c - pending requests are bounded per requester (max_pending_requests,
 * too_many_requests) and in time (request_timeout_ms, error timeout), and every pending request
 * ends with one answer that no queue bound can lose: no_reply and timeout errors reach a
 * requester that is not reading even when they pile up far beyond the control-frame cut-off. */
#include "check_main.h"
#include "test_broker_fake.h"
#include "test_heap.h"

typedef struct {
    aipc_broker *b;
    fake *cli, *svc;
    uint64_t cli_id;
} pair;

static void pair_up(pair *p, uint32_t max_pending, uint32_t timeout_ms, uint64_t max_queue)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.max_pending_requests = max_pending;
    cfg.request_timeout_ms = timeout_ms;
    if (max_queue)
        cfg.max_queue_bytes = max_queue;
    p->b = aipc_broker_new(&cfg, fake_now);
    ck_assert_ptr_nonnull(p->b);
    p->cli = fake_new(p->b, 100);
    p->svc = fake_new(p->b, 200);
    p->cli_id = fake_hello(p->cli, "cli");
    fake_hello(p->svc, "svc");
    fake_skip_all(p->cli);
    fake_skip_all(p->svc);
}

static void pair_down(pair *p)
{
    if (p->cli)
        fake_free(p->cli);
    if (p->svc)
        fake_free(p->svc);
    aipc_broker_free(p->b);
}

static void req(fake *f, long long id)
{
    char meta[96];
    snprintf(meta, sizeof meta, "{\"op\":\"req\",\"to\":\"svc\",\"id\":%lld}", id);
    ck_assert_int_eq(fake_sendt(f, meta, "q"), 0);
}

static void rep(pair *p, long long re, long long id)
{
    char meta[128];
    snprintf(meta, sizeof meta, "{\"op\":\"rep\",\"to\":%llu,\"re\":%lld,\"id\":%lld}",
             (unsigned long long)p->cli_id, re, id);
    ck_assert_int_eq(fake_sendt(p->svc, meta, "a"), 0);
}

/* Exactly max_pending_requests may wait; one more is refused (re = its id, nothing forwarded);
 * an answer frees a slot. Per requester: another client has its own. */
START_TEST(pending_bound_exact)
{
    enum { MAX = 5 };
    pair p;
    pair_up(&p, MAX, 60000, 0);
    for (int i = 1; i <= MAX; i++)
        req(p.cli, i);
    ck_assert_uint_eq(fake_pending(p.svc), MAX);
    ck_assert_uint_eq(fake_pending(p.cli), 0);
    ck_assert_uint_eq(fake_stats(p.b).pending_requests, MAX);
    req(p.cli, 6);
    rx_frame *e = fake_expect_error(p.cli, "too_many_requests");
    ck_assert_int_eq((int)rx_num(e, "re"), 6);
    ck_assert_uint_eq(fake_pending(p.svc), MAX);              /* not forwarded */
    ck_assert_uint_eq(fake_stats(p.b).reqs_refused, 1);
    fake *other = fake_new(p.b, 300);
    fake_hello(other, "other");
    req(other, 1);
    ck_assert_uint_eq(fake_pending(other), 0);
    ck_assert_uint_eq(fake_stats(p.b).pending_requests, MAX + 1);
    fake_skip_all(p.svc);
    rep(&p, 3, 50);
    fake_expect(p.svc, "ok");
    ck_assert_int_eq((int)rx_num(fake_expect(p.cli, "rep"), "re"), 3);
    req(p.cli, 7);                                            /* room again */
    ck_assert_uint_eq(fake_pending(p.cli), 0);
    ck_assert_str_eq(rx_str(fake_expect(p.svc, "req"), "op"), "req");
    req(p.cli, 8);
    fake_expect_error(p.cli, "too_many_requests");
    ck_assert_uint_eq(fake_stats(p.b).reqs_refused, 2);
    fake_free(other);
    pair_down(&p);
}
END_TEST

/* Timeout exactly at request_timeout_ms: error timeout with re, the pending slot freed, the
 * target's late rep is no_such_request. Requests expire in forwarding order. */
START_TEST(timeout_exact)
{
    fake_clock_ms = 10000;
    pair p;
    pair_up(&p, 100, 1000, 0);
    req(p.cli, 1);
    fake_clock_ms += 400;
    req(p.cli, 2);
    ck_assert_uint_eq(aipc_broker_tick(p.b), 600);
    fake_clock_ms += 599;
    ck_assert_uint_eq(aipc_broker_tick(p.b), 1);
    ck_assert_uint_eq(fake_pending(p.cli), 0);
    fake_clock_ms += 1;
    ck_assert_uint_eq(aipc_broker_tick(p.b), 400);
    rx_frame *e = fake_expect_error(p.cli, "timeout");
    ck_assert_int_eq((int)rx_num(e, "re"), 1);
    ck_assert_uint_eq(fake_pending(p.cli), 0);
    ck_assert_uint_eq(fake_stats(p.b).request_timeouts, 1);
    ck_assert_uint_eq(fake_stats(p.b).pending_requests, 1);
    fake_skip_all(p.svc);
    rep(&p, 1, 9);
    ck_assert_int_eq((int)rx_num(fake_expect_error(p.svc, "no_such_request"), "re"), 9);
    fake_clock_ms += 400;
    ck_assert_uint_eq(aipc_broker_tick(p.b), UINT64_MAX);
    ck_assert_int_eq((int)rx_num(fake_expect_error(p.cli, "timeout"), "re"), 2);
    ck_assert_uint_eq(fake_stats(p.b).request_timeouts, 2);
    ck_assert_uint_eq(fake_stats(p.b).pending_requests, 0);
    /* An answered request does not time out. */
    req(p.cli, 3);
    rep(&p, 3, 10);
    fake_expect(p.cli, "rep");
    fake_clock_ms += 5000;
    aipc_broker_tick(p.b);
    ck_assert_uint_eq(fake_pending(p.cli), 0);
    ck_assert_uint_eq(fake_stats(p.b).request_timeouts, 2);
    pair_down(&p);
}
END_TEST

/* Counts the error answers with `code` among what f received; each re in 1..n exactly once. */
static void expect_all_answers(fake *f, const char *code, int n)
{
    char *seen = calloc((size_t)n + 1, 1);
    int got = 0;
    for (rx_frame *r; (r = fake_next(f));) {
        ck_assert_str_eq(rx_str(r, "op"), "error");
        ck_assert_str_eq(rx_str(r, "code"), code);
        int re = (int)rx_num(r, "re");
        ck_assert(re >= 1 && re <= n && !seen[re]);
        seen[re] = 1;
        got++;
    }
    ck_assert_int_eq(got, n);
    free(seen);
}

/* A target with N pending requests leaves while its requester does not read: N no_reply
 * answers (~2 MB, beyond max_queue_bytes + the 1 MiB control cut-off) all queue, the requester
 * is not cut off, and it reads every one; meanwhile it cannot start new requests. */
START_TEST(no_reply_never_lost)
{
    enum { N = 20000 };
    pair p;
    pair_up(&p, N, 60000, 65536);
    for (int i = 1; i <= N; i++)
        req(p.cli, i);
    ck_assert_uint_eq(fake_stats(p.b).pending_requests, N);
    p.cli->stalled = true;
    fake_free(p.svc);
    p.svc = NULL;
    ck_assert_int_eq(p.cli->close_calls, 0);
    ck_assert_uint_gt(aipc_client_out_pending(p.cli->cl), 65536u + 1024u * 1024u);
    ck_assert_uint_eq(fake_stats(p.b).pending_requests, 0);
    /* The queued answers hold the slots: no new request until they are read. */
    fake *svc2 = fake_new(p.b, 400);
    fake_hello(svc2, "svc");
    req(p.cli, N + 1);
    ck_assert_uint_eq(fake_pending(svc2), 0);
    p.cli->stalled = false;
    int got = 0;
    for (rx_frame *r; (r = fake_next(p.cli));) {
        if (strcmp(rx_str(r, "code"), "too_many_requests") == 0) {
            ck_assert_int_eq((int)rx_num(r, "re"), N + 1);
            continue;
        }
        ck_assert_str_eq(rx_str(r, "code"), "no_reply");
        got++;
    }
    ck_assert_int_eq(got, N);
    ck_assert_int_eq(p.cli->close_calls, 0);
    req(p.cli, N + 2);
    ck_assert_uint_eq(fake_pending(svc2), 1);
    fake_free(svc2);
    pair_down(&p);
}
END_TEST

/* The same for N requests timing out at once. */
START_TEST(timeouts_never_lost)
{
    enum { N = 20000 };
    fake_clock_ms = 1000;
    pair p;
    pair_up(&p, N, 500, 65536);
    for (int i = 1; i <= N; i++)
        req(p.cli, i);
    p.cli->stalled = true;
    fake_clock_ms += 500;
    aipc_broker_tick(p.b);
    ck_assert_int_eq(p.cli->close_calls, 0);
    ck_assert_uint_eq(fake_stats(p.b).request_timeouts, N);
    p.cli->stalled = false;
    expect_all_answers(p.cli, "timeout", N);
    ck_assert_int_eq(p.cli->close_calls, 0);
    pair_down(&p);
}
END_TEST

/* Ordinary control frames are still cut off (a client that only asks and never reads). */
START_TEST(pings_still_cut_off)
{
    pair p;
    pair_up(&p, 10, 60000, 65536);
    p.cli->stalled = true;
    int i = 0;
    while (p.cli->close_calls == 0 && i < 100000)
        fake_sendt(p.cli, "{\"op\":\"ping\",\"id\":1}", NULL), i++;
    ck_assert_int_eq(p.cli->close_calls, 1);
    pair_down(&p);
}
END_TEST

/* A pending request costs the broker a bounded record (the forwarded frame itself sits in the
 * target's bounded queue): under 256 bytes of counted heap each. */
START_TEST(pending_request_memory)
{
    enum { N = 5000 };
    pair p;
    pair_up(&p, N, 60000, 64u << 20);
    p.svc->stalled = true;
    req(p.cli, 1);                          /* the target's queue ring exists */
    size_t before = heap_live_bytes();
    for (int i = 2; i <= N; i++)
        req(p.cli, i);
    size_t used = heap_live_bytes() - before;
    uint64_t frames = aipc_client_out_pending(p.svc->cl);
    fprintf(stderr, "%d pending requests: heap +%zu bytes, %llu of them queued frames\n", N,
            used, (unsigned long long)frames);
    ck_assert_uint_le(used, frames + (size_t)N * 256u);
    pair_down(&p);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_req_limits");
    TCase *tc = tcase_create("req_limits");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, pending_bound_exact);
    tcase_add_test(tc, timeout_exact);
    tcase_add_test(tc, no_reply_never_lost);
    tcase_add_test(tc, timeouts_never_lost);
    tcase_add_test(tc, pings_still_cut_off);
    tcase_add_test(tc, pending_request_memory);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
