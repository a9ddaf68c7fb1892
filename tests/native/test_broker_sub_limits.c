/* test_broker_sub_limits.c - subscriptions per client: max_subscriptions (count) and
 * max_subscription_bytes (each filter charged aipc_subscription_cost, its real size in the
 * trie): refused exactly at the bound with too_many_subscriptions (nothing subscribed),
 * counted in subs_refused, per client only; the charge bounds the heap the trie really takes. */
#include "check_main.h"
#include "test_broker_fake.h"
#include "test_heap.h"

static aipc_broker *sub_broker(uint32_t max_subs, uint64_t max_bytes)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.max_subscriptions = max_subs;
    cfg.max_subscription_bytes = max_bytes;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    ck_assert_ptr_nonnull(b);
    return b;
}

/* sub with an id; returns the answer's op ("ok" or the error code). */
static const char *sub_answer(fake *f, const char *filter, int id)
{
    char meta[40100];
    snprintf(meta, sizeof meta, "{\"op\":\"sub\",\"topic\":\"%s\",\"id\":%d}", filter, id);
    ck_assert_int_eq(fake_sendt(f, meta, NULL), 0);
    rx_frame *r = fake_next(f);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq((int)rx_num(r, "re"), id);
    if (strcmp(rx_str(r, "op"), "ok") == 0)
        return "ok";
    ck_assert_str_eq(rx_str(r, "op"), "error");
    ck_assert(rx_has(r, "message"));
    return rx_str(r, "code");
}

/* Whether a publication on topic reaches f (one pub, then a ping as a fence). */
static bool reaches(fake *pub, fake *f, const char *topic)
{
    char meta[256];
    snprintf(meta, sizeof meta, "{\"op\":\"pub\",\"topic\":\"%s\"}", topic);
    fake_sendt(pub, meta, "x");
    fake_sendt(f, "{\"op\":\"ping\",\"id\":77}", NULL);
    bool got = false;
    for (rx_frame *r; (r = fake_next(f));) {
        if (strcmp(rx_str(r, "op"), "msg") == 0 && strcmp(rx_str(r, "topic"), topic) == 0)
            got = true;
        if (strcmp(rx_str(r, "op"), "pong") == 0)
            break;
    }
    return got;
}

/* The count bound: max_subscriptions distinct filters fit, one more is refused and not
 * subscribed; repeating a held filter is still ok; after an unsub there is room again; another
 * client has its own budget. */
START_TEST(count_bound_exact)
{
    enum { MAX = 10 };
    aipc_broker *b = sub_broker(MAX, 1u << 30);
    fake *c = fake_new(b, 1), *other = fake_new(b, 2), *pub = fake_new(b, 3);
    fake_hello(c, NULL);
    fake_hello(other, NULL);
    fake_hello(pub, NULL);
    fake_skip_all(c);
    char f[64];
    for (int i = 0; i < MAX; i++) {
        snprintf(f, sizeof f, "c/%d/#", i);
        ck_assert_str_eq(sub_answer(c, f, i), "ok");
    }
    ck_assert_str_eq(sub_answer(c, "c/extra", 100), "too_many_subscriptions");
    ck_assert_uint_eq(fake_stats(b).subs_refused, 1);
    ck_assert_uint_eq(fake_stats(b).subscriptions, MAX);
    ck_assert(!reaches(pub, c, "c/extra"));
    ck_assert(reaches(pub, c, "c/3/x"));
    ck_assert_str_eq(sub_answer(c, "c/3/#", 101), "ok");      /* held already: no charge */
    ck_assert_uint_eq(fake_stats(b).subscriptions, MAX);
    for (int i = 0; i < MAX; i++) {                            /* the other client's own budget */
        snprintf(f, sizeof f, "o/%d", i);
        ck_assert_str_eq(sub_answer(other, f, i), "ok");
    }
    fake_sendt(c, "{\"op\":\"unsub\",\"topic\":\"c/0/#\",\"id\":102}", NULL);
    fake_expect(c, "ok");
    ck_assert_str_eq(sub_answer(c, "c/extra", 103), "ok");
    ck_assert(reaches(pub, c, "c/extra"));
    ck_assert_str_eq(sub_answer(c, "c/extra2", 104), "too_many_subscriptions");
    ck_assert_uint_eq(fake_stats(b).subs_refused, 2);
    /* Without an id the refusal is still answered (errors always are). */
    fake_sendt(c, "{\"op\":\"sub\",\"topic\":\"c/extra3\"}", NULL);
    fake_expect_error(c, "too_many_subscriptions");
    ck_assert_int_eq(c->close_calls, 0);
    fake_free(c);
    fake_free(other);
    fake_free(pub);
    aipc_broker_free(b);
}
END_TEST

/* A filter of n one-byte levels "<first>/<lvl>/.../<lvl>" (2n - 1 bytes). */
static char *deep_filter_of(unsigned levels, char first, char lvl)
{
    char *f = malloc(2 * levels);
    for (unsigned i = 0; i < levels; i++) {
        f[2 * i] = i == 0 ? first : lvl;
        f[2 * i + 1] = '/';
    }
    f[2 * levels - 1] = 0;
    return f;
}

static char *deep_filter(unsigned levels, char first)
{
    return deep_filter_of(levels, first, '+');
}

/* The bytes bound: filters are charged by levels, not bytes (a 256-level filter of 511 bytes
 * costs ~50 times its length, ~95 times with literal levels); the bound is reached exactly. */
START_TEST(bytes_bound_exact)
{
    char *deep[4];
    for (int i = 0; i < 4; i++)
        deep[i] = deep_filter(256, (char)('a' + i));
    uint64_t cost = aipc_subscription_cost(deep[0], strlen(deep[0]));
    ck_assert_uint_eq(cost, aipc_subscription_cost(deep[1], strlen(deep[1])));
    ck_assert_uint_gt(cost, 50u * strlen(deep[0]));           /* charged by its real size */
    char *lit = deep_filter_of(256, 'a', 'a');
    ck_assert_uint_gt(aipc_subscription_cost(lit, strlen(lit)), 90u * strlen(lit));
    free(lit);
    /* Exactly three fit. */
    aipc_broker *b = sub_broker(1000, 3 * cost);
    fake *c = fake_new(b, 1);
    fake_hello(c, NULL);
    for (int i = 0; i < 3; i++)
        ck_assert_str_eq(sub_answer(c, deep[i], i), "ok");
    ck_assert_uint_eq(fake_stats(b).subscription_bytes, 3 * cost);
    ck_assert_str_eq(sub_answer(c, deep[3], 3), "too_many_subscriptions");
    ck_assert_uint_eq(fake_stats(b).subs_refused, 1);
    ck_assert_uint_eq(fake_stats(b).subscriptions, 3);
    /* A short filter still fits? Only if its cost fits the 0 bytes left: no. */
    ck_assert_str_eq(sub_answer(c, "a", 4), "too_many_subscriptions");
    fake_free(c);
    ck_assert_uint_eq(fake_stats(b).subscription_bytes, 0);
    aipc_broker_free(b);
    /* One byte less: the third no longer fits. */
    b = sub_broker(1000, 3 * cost - 1);
    c = fake_new(b, 1);
    fake_hello(c, NULL);
    ck_assert_str_eq(sub_answer(c, deep[0], 0), "ok");
    ck_assert_str_eq(sub_answer(c, deep[1], 1), "ok");
    ck_assert_str_eq(sub_answer(c, deep[2], 2), "too_many_subscriptions");
    fake_free(c);
    aipc_broker_free(b);
    for (int i = 0; i < 4; i++)
        free(deep[i]);
}
END_TEST

/* The charge bounds the heap: filters sharing no node (the worst case; wildcard and literal
 * levels) take between half the charge and the charge in counted allocations; they all go
 * again on unsub. */
START_TEST(charge_bounds_the_heap)
{
    enum { N = 200 };
    aipc_broker *b = sub_broker(100000, 1ull << 32);
    fake *c = fake_new(b, 1);
    fake_hello(c, NULL);
    fake_skip_all(c);
    char *filters[N];
    for (int i = 0; i < N; i++) {
        char *f = deep_filter_of(40 + (unsigned)i % 200, 'x', i % 2 ? 'l' : '+');
        char head[16];
        int hl = snprintf(head, sizeof head, "%d", i);    /* own first level: nothing shared */
        char *g = malloc(strlen(f) + (size_t)hl);
        memcpy(g, head, (size_t)hl);
        strcpy(g + hl, f + 1);
        free(f);
        filters[i] = g;
    }
    size_t before = heap_live_bytes();
    for (int i = 0; i < N; i++) {
        char meta[1200];
        snprintf(meta, sizeof meta, "{\"op\":\"sub\",\"topic\":\"%s\"}", filters[i]);
        ck_assert_int_eq(fake_sendt(c, meta, NULL), 0);     /* no id: nothing queued */
    }
    size_t after = heap_live_bytes();
    uint64_t charged = fake_stats(b).subscription_bytes;
    size_t used = after - before;
    fprintf(stderr, "%d deep filters: heap +%zu bytes, charged %llu\n", N, used,
            (unsigned long long)charged);
    ck_assert_uint_eq(fake_stats(b).subscriptions, N);
    ck_assert_uint_le(used, charged);
    ck_assert_uint_ge(used, charged / 2);
    for (int i = 0; i < N; i++) {
        char meta[1200];
        snprintf(meta, sizeof meta, "{\"op\":\"unsub\",\"topic\":\"%s\"}", filters[i]);
        ck_assert_int_eq(fake_sendt(c, meta, NULL), 0);
    }
    size_t end = heap_live_bytes();
    ck_assert_uint_eq(fake_stats(b).subscription_bytes, 0);
    /* What stays is the root's and the index's tables (they do not shrink). */
    ck_assert_uint_le(end - before, 64u * 1024);
    fake_free(c);
    aipc_broker_free(b);
    for (int i = 0; i < N; i++)
        free(filters[i]);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_sub_limits");
    TCase *tc = tcase_create("sub_limits");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, count_bound_exact);
    tcase_add_test(tc, bytes_bound_exact);
    tcase_add_test(tc, charge_bounds_the_heap);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
