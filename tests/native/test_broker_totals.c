/* test_broker_totals.c - the broker-wide bounds on what every client holds together:
 * max_total_subscription_bytes (subscriptions charged as per client) and
 * max_total_pending_requests (pending requests plus the queued answers that settled some).
 * Exactly at the bound the next one is refused (too_many_subscriptions / too_many_requests,
 * counted), whichever client asks; what is held stays served; room comes back when some goes. */
#include "check_main.h"
#include "test_broker_fake.h"
#include "test_heap.h"

static void sub_as(fake *f, const char *filter, int id, const char *expect_error)
{
    char meta[128];
    snprintf(meta, sizeof meta, "{\"op\":\"sub\",\"id\":%d,\"topic\":\"%s\"}", id, filter);
    ck_assert_int_eq(fake_sendt(f, meta, NULL), 0);
    if (expect_error)
        ck_assert_int_eq((int)rx_num(fake_expect_error(f, expect_error), "re"), id);
    else
        ck_assert_int_eq((int)rx_num(fake_expect(f, "ok"), "re"), id);
}

START_TEST(subscriptions_in_total)
{
    enum { K = 10 };
    uint64_t cost = aipc_subscription_cost("t/0000", 6);
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.max_total_subscription_bytes = K * cost;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    fake *a = fake_new(b, 1), *c = fake_new(b, 2), *p = fake_new(b, 3);
    fake_hello(a, NULL);
    fake_hello(c, NULL);
    fake_hello(p, NULL);
    size_t heap0 = heap_live_bytes();
    char filter[16];
    for (int i = 0; i < K - 2; i++) {
        snprintf(filter, sizeof filter, "t/%04d", i);
        sub_as(a, filter, i, NULL);
    }
    sub_as(c, "u/0000", 100, NULL);
    sub_as(c, "u/0001", 101, NULL);
    ck_assert_uint_eq(fake_stats(b).subscription_bytes, K * cost);   /* exactly at the bound */
    ck_assert_uint_le(heap_live_bytes() - heap0, K * cost);        /* the charge bounds it */
    sub_as(a, "t/9999", 50, "too_many_subscriptions");             /* either client */
    sub_as(c, "u/9999", 102, "too_many_subscriptions");
    sub_as(a, "t/0003", 51, NULL);                                  /* held: free */
    ck_assert_uint_eq(fake_stats(b).subs_refused, 2);
    fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"u/0001\"}", "x");   /* held ones served */
    ck_assert_str_eq((const char *)fake_expect(c, "msg")->payload, "x");
    fake_sendt(a, "{\"op\":\"unsub\",\"id\":60,\"topic\":\"t/0000\"}", NULL);
    fake_expect(a, "ok");
    sub_as(c, "u/9999", 103, NULL);                                 /* room again */
    ck_assert_uint_eq(fake_stats(b).subscription_bytes, K * cost);
    fake_free(a);
    fake_free(c);
    fake_free(p);
    aipc_broker_free(b);
}
END_TEST

static void req_to(fake *f, const char *to, long long id)
{
    char meta[96];
    snprintf(meta, sizeof meta, "{\"op\":\"req\",\"to\":\"%s\",\"id\":%lld}", to, id);
    ck_assert_int_eq(fake_sendt(f, meta, "q"), 0);
}

/* Requests of two requesters fill the total; a third request of either is refused, though each
 * is far under its own max_pending_requests. Queued answers (no_reply of a target that left,
 * not yet read by a stalled requester) count until written. */
START_TEST(pending_requests_in_total)
{
    enum { MAX = 5 };
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.max_total_pending_requests = MAX;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    fake *r1 = fake_new(b, 1), *r2 = fake_new(b, 2), *svc = fake_new(b, 3), *svc2 = fake_new(b, 4);
    uint64_t r1_id = fake_hello(r1, "r1");
    fake_hello(r2, "r2");
    fake_hello(svc, "svc");
    fake_hello(svc2, "svc2");
    fake_skip_all(r1);
    fake_skip_all(svc);
    for (int i = 1; i <= 3; i++)
        req_to(r1, "svc", i);
    req_to(r2, "svc", 1);
    req_to(r2, "svc2", 2);
    ck_assert_uint_eq(fake_stats(b).pending_requests, MAX);
    ck_assert_uint_eq(fake_pending(svc), 3 + 1);
    req_to(r2, "svc2", 3);
    ck_assert_int_eq((int)rx_num(fake_expect_error(r2, "too_many_requests"), "re"), 3);
    req_to(r1, "svc2", 4);
    fake_expect_error(r1, "too_many_requests");
    ck_assert_uint_eq(fake_stats(b).reqs_refused, 2);
    fake_skip_all(svc);
    char meta[128];                                   /* one answered: room for one */
    snprintf(meta, sizeof meta, "{\"op\":\"rep\",\"to\":%llu,\"re\":2}", (unsigned long long)r1_id);
    fake_sendt(svc, meta, "a");
    ck_assert_int_eq((int)rx_num(fake_expect(r1, "rep"), "re"), 2);
    req_to(r2, "svc2", 5);
    ck_assert_uint_eq(fake_pending(r2), 0);
    ck_assert_uint_eq(fake_stats(b).pending_requests, MAX);
    /* svc leaves while r1 does not read: its no_reply answers still count. */
    r1->stalled = true;
    fake_free(svc);
    ck_assert_uint_eq(fake_stats(b).pending_requests, 2);  /* r2's 2 and 5, to svc2 */
    ck_assert_int_eq((int)rx_num(fake_expect_error(r2, "no_reply"), "re"), 1);
    req_to(r2, "svc2", 6);                                  /* 2 + 2 answers queued to r1: 5 */
    ck_assert_uint_eq(fake_pending(r2), 0);
    req_to(r2, "svc2", 7);
    fake_expect_error(r2, "too_many_requests");
    r1->stalled = false;
    int re1 = (int)rx_num(fake_expect_error(r1, "no_reply"), "re");
    int re2 = (int)rx_num(fake_expect_error(r1, "no_reply"), "re");
    ck_assert_int_eq(re1 * re2 + re1 + re2, 3 + 1 + 3);    /* ids 1 and 3, either order */
    req_to(r2, "svc2", 8);                                  /* answers written: room */
    ck_assert_uint_eq(fake_pending(r2), 0);
    ck_assert_uint_eq(fake_stats(b).pending_requests, 4);
    fake_free(r1);
    fake_free(r2);
    fake_free(svc2);
    aipc_broker_free(b);
}
END_TEST

START_TEST(config_keys)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    ck_assert_uint_eq(cfg.max_total_subscription_bytes, 64ull * 1024 * 1024);
    ck_assert_uint_eq(cfg.max_total_pending_requests, 65536);
    char err[256];
    ck_assert_int_eq(aipc_broker_config_load_json(&cfg, "{\"max_total_subscription_bytes\":0,"
                     "\"max_total_pending_requests\":0}", err, sizeof err), 0);
    ck_assert_uint_eq(cfg.max_total_subscription_bytes, 0);
    ck_assert_uint_eq(cfg.max_total_pending_requests, 0);
    ck_assert_int_eq(aipc_broker_config_load_json(&cfg, "{\"max_total_subscription_bytes\":10}",
                     err, sizeof err), AIPC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "max_total_subscription_bytes"));
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_totals");
    TCase *tc = tcase_create("totals");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, subscriptions_in_total);
    tcase_add_test(tc, pending_requests_in_total);
    tcase_add_test(tc, config_keys);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
