/* test_broker_topic.c - topic filter matching (+, #, $, empty levels), filter and topic
 * validation, subscription dedup and unsub, through real broker clients. */
#include "check_main.h"
#include "test_broker_fake.h"

#include "internal.h"

typedef struct {
    const char *filter, *topic;
    int match;
} match_case;

static const match_case cases[] = {
    {"a/b", "a/b", 1},
    {"a/b", "a/c", 0},
    {"a/+", "a/b", 1},
    {"a/+", "a/b/c", 0},
    {"a/+", "a", 0},
    {"a/#", "a", 1},
    {"a/#", "a/b", 1},
    {"a/#", "a/b/c", 1},
    {"#", "a", 1},
    {"#", "a/b/c", 1},
    {"#", "/a", 1},
    {"#", "/", 1},
    {"+/+", "a/b", 1},
    {"+/+", "/a", 1},
    {"+", "/a", 0},
    {"/+", "/a", 1},
    {"+", "a", 1},
    {"a//b", "a//b", 1},
    {"a/+/b", "a//b", 1},
    {"a/+", "a/", 1},
    {"a/#", "a/", 1},
    {"a/b/#", "a/b", 1},
    {"+/b/#", "a/b", 1},
    {"+/b/#", "a/b/c/d", 1},
    {"+", "$bus", 0},
    {"#", "$bus/joined", 0},
    {"+/joined", "$bus/joined", 0},
    {"+/#", "$bus/joined", 0},
    {"$bus/#", "$bus/joined", 1},
    {"$bus/+", "$bus/joined", 1},
    {"$bus/joined", "$bus/joined", 1},
    {"$bus/joined", "$bus/left", 0},
    {"a/+", "a/$x", 1},
    {"a/#", "a/$x", 1},
    {"A/b", "a/b", 0},
    {"a/b", "a/b/", 0},
    {"a/b/", "a/b", 0},
    {"+/+/+", "a/b/c", 1},
    {"+/+/+", "a/b", 0},
    {"a/+/+/d", "a/b/c/d", 1},
    {"a/+/c/#", "a/x/c", 1},
    {"a/+/c/#", "a/x/d", 0},
    {"sport/tennis/+", "sport/tennis/player1", 1},
    {"sport/#", "sport", 1},
    {"#", "$SYS/x", 0},
    {"/#", "/finance", 1},
    {"/#", "finance", 0},
    {"\xc3\xa9/+", "\xc3\xa9/x", 1},
    {"a b/c", "a b/c", 1},
    {"a/+/#", "a/b", 1},
    {"+/#", "a", 1},
    {"//", "//", 1},
    {"+/+/+", "//", 1},
    {"a/b/c", "a/b", 0},
    {"a/+/c", "a/b/c/d", 0},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* One row of the table: the subscriber gets the publication iff the row says so. */
START_TEST(filter_matches_topic)
{
    const match_case *mc = &cases[_i];
    aipc_broker *b = test_broker(0, 0, 0);
    fake *sub = fake_new(b, 10), *pub = fake_new(b, 11);
    fake_hello(sub, "sub");
    fake_hello(pub, "pub");
    fake_skip_all(sub);
    char meta[512];
    snprintf(meta, sizeof meta, "{\"op\":\"sub\",\"topic\":\"%s\",\"id\":1}", mc->filter);
    fake_sendt(sub, meta, NULL);
    ck_assert_int_eq((int)rx_num(fake_expect(sub, "ok"), "re"), 1);
    if (mc->topic[0] == '$') {
        static const char from[] = "{\"id\":0,\"name\":\"$broker\",\"pid\":0}";
        aipc__publish(b, mc->topic, strlen(mc->topic), from, sizeof from - 1,
                     (const uint8_t *)"x", 1, false);
    } else {
        snprintf(meta, sizeof meta, "{\"op\":\"pub\",\"topic\":\"%s\"}", mc->topic);
        fake_sendt(pub, meta, "x");
        ck_assert_uint_eq(fake_pending(pub), 0);    /* no id: no ok */
    }
    rx_frame *r = fake_next(sub);
    if (mc->match) {
        ck_assert_msg(r != NULL, "filter %s should match %s", mc->filter, mc->topic);
        ck_assert_str_eq(rx_str(r, "op"), "msg");
        ck_assert_str_eq(rx_str(r, "topic"), mc->topic);
        ck_assert_int_eq(cJSON_IsFalse(cJSON_GetObjectItem(r->meta, "retained")), 1);
        ck_assert_uint_eq(r->plen, 1);
        ck_assert_ptr_null(fake_next(sub));
    } else {
        ck_assert_msg(r == NULL, "filter %s must not match %s", mc->filter, mc->topic);
    }
    fake_free(sub);
    fake_free(pub);
    aipc_broker_free(b);
}
END_TEST

static const char *const bad_filters[] = {
    "", "a/#/b", "a#", "#a", "a/b#", "+a", "a/+b", "a/++", "##", "a/\\u0001", "a/\\n",
    "#/", "+#", "a/\xff",
};

/* Invalid filters are refused with bad_topic for sub and unsub; the connection stays up. */
START_TEST(invalid_filters_bad_topic)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *c = fake_new(b, 1);
    fake_hello(c, NULL);
    for (size_t i = 0; i < sizeof bad_filters / sizeof bad_filters[0]; i++) {
        char meta[256];
        snprintf(meta, sizeof meta, "{\"op\":\"sub\",\"topic\":\"%s\",\"id\":%zu}", bad_filters[i], i);
        ck_assert_int_eq(fake_sendt(c, meta, NULL), 0);
        rx_frame *e = fake_expect_error(c, "bad_topic");
        ck_assert_int_eq((int)rx_num(e, "re"), (int)i);
        snprintf(meta, sizeof meta, "{\"op\":\"unsub\",\"topic\":\"%s\"}", bad_filters[i]);
        fake_sendt(c, meta, NULL);
        e = fake_expect_error(c, "bad_topic");
        ck_assert(!rx_has(e, "re"));
    }
    ck_assert_int_eq(c->close_calls, 0);
    aipc_broker_stats st;
    aipc_broker_get_stats(b, &st);
    ck_assert_uint_eq(st.subscriptions, 0);
    fake_free(c);
    aipc_broker_free(b);
}
END_TEST

static const char *const bad_topics[] = {
    "", "a/+", "a/#", "#", "+", "$bus/joined", "$x", "a/b+", "a#b", "a/\\t", "\xc0\xaf",
};

/* Publication topics: no wildcards, no leading '$', no control characters, valid UTF-8. */
START_TEST(invalid_pub_topics_bad_topic)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *c = fake_new(b, 1), *spy = fake_new(b, 2);
    fake_hello(c, NULL);
    fake_hello(spy, NULL);
    fake_sendt(spy, "{\"op\":\"sub\",\"topic\":\"#\"}", NULL);
    fake_sendt(spy, "{\"op\":\"sub\",\"topic\":\"$bus/#\"}", NULL);
    fake_skip_all(spy);
    for (size_t i = 0; i < sizeof bad_topics / sizeof bad_topics[0]; i++) {
        char meta[256];
        snprintf(meta, sizeof meta, "{\"op\":\"pub\",\"topic\":\"%s\",\"id\":7}", bad_topics[i]);
        fake_sendt(c, meta, "payload");
        fake_expect_error(c, "bad_topic");
    }
    ck_assert_ptr_null(fake_next(spy));
    /* A topic of 32001 bytes is too long; 32000 is fine. */
    char *big = malloc(32100);
    memcpy(big, "{\"op\":\"pub\",\"topic\":\"", 21);
    memset(big + 21, 'x', 32001);
    strcpy(big + 21 + 32001, "\"}");
    fake_sendt(c, big, NULL);
    fake_expect_error(c, "bad_topic");
    strcpy(big + 21 + 32000, "\"}");
    fake_sendt(c, big, NULL);
    ck_assert_ptr_null(fake_next(c));
    rx_frame *m = fake_next(spy);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(strlen(rx_str(m, "topic")), 32000);
    free(big);
    /* 256 levels are fine, 257 are not. */
    char lv[600] = "{\"op\":\"pub\",\"id\":3,\"topic\":\"";
    size_t at = strlen(lv);
    for (int i = 0; i < 257; i++) {
        lv[at++] = 'a';
        lv[at++] = i == 256 ? '"' : '/';
    }
    strcpy(lv + at, "}");
    fake_sendt(c, lv, NULL);
    fake_expect_error(c, "bad_topic");
    strcpy(lv + at - 3, "\"}");     /* drop the last level: 256 levels */
    fake_sendt(c, lv, NULL);
    fake_expect(c, "ok");
    fake_free(c);
    fake_free(spy);
    aipc_broker_free(b);
}
END_TEST

/* Escaping: quotes, backslashes and non-ASCII survive the round trip in topics. */
START_TEST(topic_escaping_round_trip)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *c = fake_new(b, 1);
    fake_hello(c, NULL);
    fake_sendt(c, "{\"op\":\"sub\",\"topic\":\"q/#\"}", NULL);
    fake_sendt(c, "{\"op\":\"pub\",\"topic\":\"q/\\\"x\\\\y\\\"/\xe2\x82\xac\"}", "v");
    rx_frame *m = fake_next_nonpresence(c);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(rx_str(m, "topic"), "q/\"x\\y\"/\xe2\x82\xac");
    fake_free(c);
    aipc_broker_free(b);
}
END_TEST

/* Overlapping filters of one client deliver a publication once. */
START_TEST(overlapping_filters_deliver_once)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *s = fake_new(b, 1), *p = fake_new(b, 2);
    fake_hello(s, NULL);
    fake_hello(p, NULL);
    const char *filters[] = {"a/#", "a/+", "#", "a/b", "+/b", "+/+"};
    for (int i = 0; i < 6; i++) {
        char meta[128];
        snprintf(meta, sizeof meta, "{\"op\":\"sub\",\"topic\":\"%s\"}", filters[i]);
        fake_sendt(s, meta, NULL);
    }
    fake_skip_all(s);
    fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"a/b\"}", "1");
    fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"a/b\"}", "2");
    rx_frame *m1 = fake_next(s), *m2 = fake_next(s);
    ck_assert_ptr_nonnull(m1);
    ck_assert_ptr_nonnull(m2);
    ck_assert_str_eq((char *)m1->payload, "1");
    ck_assert_str_eq((char *)m2->payload, "2");
    ck_assert_ptr_null(fake_next(s));
    aipc_broker_stats st;
    aipc_broker_get_stats(b, &st);
    ck_assert_uint_eq(st.subscriptions, 6);
    ck_assert_uint_eq(st.deliveries, 2);
    fake_free(s);
    fake_free(p);
    aipc_broker_free(b);
}
END_TEST

/* sub twice is one subscription; unsub removes it; unsub of an unknown filter is ok. */
START_TEST(sub_idempotent_and_unsub)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *s = fake_new(b, 1);
    fake_hello(s, NULL);
    fake_sendt(s, "{\"op\":\"sub\",\"topic\":\"x/+\",\"id\":1}", NULL);
    fake_sendt(s, "{\"op\":\"sub\",\"topic\":\"x/+\",\"id\":2}", NULL);
    fake_expect(s, "ok");
    fake_expect(s, "ok");
    aipc_broker_stats st;
    aipc_broker_get_stats(b, &st);
    ck_assert_uint_eq(st.subscriptions, 1);
    fake_sendt(s, "{\"op\":\"pub\",\"topic\":\"x/1\"}", "a");
    ck_assert_str_eq(rx_str(fake_expect(s, "msg"), "topic"), "x/1");
    fake_sendt(s, "{\"op\":\"unsub\",\"topic\":\"x/+\",\"id\":3}", NULL);
    ck_assert_int_eq((int)rx_num(fake_expect(s, "ok"), "re"), 3);
    fake_sendt(s, "{\"op\":\"unsub\",\"topic\":\"never/subscribed\",\"id\":4}", NULL);
    fake_expect(s, "ok");
    fake_sendt(s, "{\"op\":\"pub\",\"topic\":\"x/1\"}", "a");
    ck_assert_ptr_null(fake_next(s));
    aipc_broker_get_stats(b, &st);
    ck_assert_uint_eq(st.subscriptions, 0);
    /* The trie was pruned back to an empty root. */
    ck_assert_uint_eq(b->sub_root.kids.count, 0);
    ck_assert_ptr_null(b->sub_root.plus);
    fake_free(s);
    aipc_broker_free(b);
}
END_TEST

/* Many clients on one filter, detached in creation order: swap-removal keeps the rest. */
START_TEST(many_subscribers_detach_in_any_order)
{
    aipc_broker *b = test_broker(0, 0, 0);
    enum { N = 200 };
    fake *s[N];
    for (int i = 0; i < N; i++) {
        s[i] = fake_new(b, (uint32_t)i);
        fake_hello(s[i], NULL);
        fake_sendt(s[i], "{\"op\":\"sub\",\"topic\":\"t\"}", NULL);
    }
    fake *p = fake_new(b, 999);
    fake_hello(p, NULL);
    for (int i = 0; i < N; i += 2) {
        fake_free(s[i]);
        s[i] = NULL;
    }
    fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"t\"}", "z");
    for (int i = 1; i < N; i += 2) {
        rx_frame *m = fake_next_nonpresence(s[i]);
        ck_assert_ptr_nonnull(m);
        ck_assert_str_eq(rx_str(m, "topic"), "t");
        fake_free(s[i]);
    }
    aipc_broker_stats st;
    aipc_broker_get_stats(b, &st);
    ck_assert_uint_eq(st.subscriptions, 0);
    ck_assert_uint_eq(st.clients, 1);
    fake_free(p);
    aipc_broker_free(b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("broker_topic");
    TCase *tc = tcase_create("match");
    tcase_add_loop_test(tc, filter_matches_topic, 0, NCASES);
    suite_add_tcase(s, tc);
    tc = tcase_create("validate");
    tcase_add_test(tc, invalid_filters_bad_topic);
    tcase_add_test(tc, invalid_pub_topics_bad_topic);
    tcase_add_test(tc, topic_escaping_round_trip);
    suite_add_tcase(s, tc);
    tc = tcase_create("subs");
    tcase_add_test(tc, overlapping_filters_deliver_once);
    tcase_add_test(tc, sub_idempotent_and_unsub);
    tcase_add_test(tc, many_subscribers_detach_in_any_order);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite);
