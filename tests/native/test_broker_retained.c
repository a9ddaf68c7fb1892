/* test_broker_retained.c - retained messages: stored by retain:true, delivered right after the
 * sub's ok with "retained":true, replaced, cleared by an empty payload, matched by wildcards,
 * and bounded by max_retained_bytes (retained_full, still delivered, replacement accounting). */
#include "check_main.h"
#include "test_broker_fake.h"

#include "internal.h"

/* A retained publication reaches a later subscriber right after its ok. */
START_TEST(retained_after_ok)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *p = fake_new(b, 5), *s = fake_new(b, 6);
    uint64_t pid = fake_hello(p, "pub");
    fake_hello(s, NULL);
    fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"cfg/a\",\"retain\":true,\"id\":1}", "A1");
    fake_expect(p, "ok");
    fake_sendt(s, "{\"op\":\"sub\",\"topic\":\"cfg/a\",\"id\":9}", NULL);
    ck_assert_int_eq((int)rx_num(fake_expect(s, "ok"), "re"), 9);
    rx_frame *m = fake_expect(s, "msg");
    ck_assert_str_eq(rx_str(m, "topic"), "cfg/a");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(m->meta, "retained")));
    ck_assert_str_eq((char *)m->payload, "A1");
    ck_assert_uint_eq((uint64_t)rx_from_num(m, "id"), pid);
    ck_assert_str_eq(rx_from_str(m, "name"), "pub");
    ck_assert_int_eq((int)rx_from_num(m, "pid"), 5);
    ck_assert_ptr_null(fake_next(s));
    /* Live publications are marked retained:false even when they are retained. */
    fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"cfg/a\",\"retain\":true}", "A2");
    m = fake_expect(s, "msg");
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(m->meta, "retained")));
    ck_assert_str_eq((char *)m->payload, "A2");
    fake_free(p);
    fake_free(s);
    aipc_broker_free(b);
}
END_TEST

/* A new retain replaces the old one; retain with an empty payload clears it. */
START_TEST(retained_replace_and_clear)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *p = fake_new(b, 5);
    fake_hello(p, NULL);
    fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"k\",\"retain\":true}", "old");
    fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"k\",\"retain\":true}", "new");
    aipc_broker_stats st;
    aipc_broker_get_stats(b, &st);
    ck_assert_uint_eq(st.retained_topics, 1);
    fake *s = fake_new(b, 6);
    fake_hello(s, NULL);
    fake_sendt(s, "{\"op\":\"sub\",\"topic\":\"k\"}", NULL);
    rx_frame *m = fake_expect(s, "msg");
    ck_assert_str_eq((char *)m->payload, "new");
    ck_assert_ptr_null(fake_next(s));
    /* Clearing is delivered live (empty payload) and removes the retained message. */
    fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"k\",\"retain\":true}", "");
    m = fake_expect(s, "msg");
    ck_assert_uint_eq(m->plen, 0);
    aipc_broker_get_stats(b, &st);
    ck_assert_uint_eq(st.retained_topics, 0);
    fake *s2 = fake_new(b, 7);
    fake_hello(s2, NULL);
    fake_sendt(s2, "{\"op\":\"sub\",\"topic\":\"#\",\"id\":1}", NULL);
    fake_expect(s2, "ok");
    ck_assert_ptr_null(fake_next(s2));
    /* Clearing a topic that has nothing retained is harmless. */
    fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"never\",\"retain\":true,\"id\":4}", "");
    fake_expect(p, "ok");
    fake_free(p);
    fake_free(s);
    fake_free(s2);
    aipc_broker_free(b);
}
END_TEST

/* Non-retained publications are not stored. */
START_TEST(not_retained_not_stored)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *p = fake_new(b, 5);
    fake_hello(p, NULL);
    fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"k\",\"retain\":false}", "x");
    fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"k\"}", "x");
    fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"k\",\"retain\":1,\"id\":2}", "x");
    fake_expect_error(p, "bad_request");
    fake *s = fake_new(b, 6);
    fake_hello(s, NULL);
    fake_sendt(s, "{\"op\":\"sub\",\"topic\":\"k\",\"id\":1}", NULL);
    fake_expect(s, "ok");
    ck_assert_ptr_null(fake_next(s));
    fake_free(p);
    fake_free(s);
    aipc_broker_free(b);
}
END_TEST

/* Which retained topics a wildcard subscription gets (and never '$' ones for '#'/'+'). */
START_TEST(retained_wildcards)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *p = fake_new(b, 5);
    fake_hello(p, NULL);
    const char *topics[] = {"a", "a/b", "a/c", "a/b/c", "x/b", "/b", "a//b"};
    for (int i = 0; i < 7; i++) {
        char meta[128];
        snprintf(meta, sizeof meta, "{\"op\":\"pub\",\"topic\":\"%s\",\"retain\":true}", topics[i]);
        fake_sendt(p, meta, topics[i]);
    }
    static const char from[] = "{\"id\":0,\"name\":\"$broker\",\"pid\":0}";
    /* A '$' topic retained by the broker itself (clients cannot publish those). */
    aipc__publish(b, "$sys/v", 6, from, sizeof from - 1, (const uint8_t *)"1", 1, true);
    struct {
        const char *filter;
        int count;
    } want[] = {{"#", 7}, {"a/#", 5}, {"+/b", 3}, {"a/+", 2}, {"+", 1}, {"a/+/c", 1},
                {"+/+/+", 2}, {"$sys/#", 1}, {"+/v", 0}, {"nothing/#", 0}, {"a/b/c/#", 1},
                {"$sys/v", 1}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        fake *s = fake_new(b, 6);
        fake_hello(s, NULL);
        char meta[128];
        snprintf(meta, sizeof meta, "{\"op\":\"sub\",\"topic\":\"%s\",\"id\":1}", want[i].filter);
        fake_sendt(s, meta, NULL);
        fake_expect(s, "ok");
        int n = 0;
        rx_frame *m;
        while ((m = fake_next(s)) != NULL) {
            ck_assert_str_eq(rx_str(m, "op"), "msg");
            ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(m->meta, "retained")));
            ck_assert_str_eq((char *)m->payload, rx_str(m, "topic")[0] == '$' ? "1" : rx_str(m, "topic"));
            n++;
        }
        ck_assert_msg(n == want[i].count, "filter %s: %d retained, want %d", want[i].filter, n,
                      want[i].count);
        fake_free(s);
    }
    fake_free(p);
    aipc_broker_free(b);
}
END_TEST

/* Retained messages survive their publisher and are freed with the broker (ASan: no leak). */
START_TEST(retained_outlives_publisher)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *p = fake_new(b, 5);
    fake_hello(p, "gone");
    fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"last/will\",\"retain\":true}", "bye");
    fake_free(p);
    fake *s = fake_new(b, 6);
    fake_hello(s, NULL);
    fake_sendt(s, "{\"op\":\"sub\",\"topic\":\"last/+\"}", NULL);
    rx_frame *m = fake_expect(s, "msg");
    ck_assert_str_eq(rx_from_str(m, "name"), "gone");
    fake_free(s);
    aipc_broker_free(b);
}
END_TEST

/* A broker with the test clock and this retained-store bound. */
static aipc_broker *retained_broker(uint64_t max_retained)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.max_retained_bytes = max_retained;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    ck_assert_ptr_nonnull(b);
    return b;
}

/* Publishes topic=payload with retain:true and id 1; returns the answer (ok or error). */
static rx_frame *retain_pub(fake *p, const char *topic, const char *payload)
{
    char meta[256];
    snprintf(meta, sizeof meta, "{\"op\":\"pub\",\"topic\":\"%s\",\"retain\":true,\"id\":1}",
             topic);
    fake_sendt(p, meta, payload);
    rx_frame *r = fake_next(p);
    ck_assert_msg(r != NULL, "no answer to the pub on %s", topic);
    ck_assert_int_eq((int)rx_num(r, "re"), 1);
    return r;
}

/* Asserts the retained store's gauges (struct and the stats answer agree). */
static void expect_store(aipc_broker *b, fake *asker, uint64_t topics, uint64_t bytes)
{
    aipc_broker_stats st;
    aipc_broker_get_stats(b, &st);
    ck_assert_uint_eq(st.retained_topics, topics);
    ck_assert_uint_eq(st.retained_bytes, bytes);
    fake_sendt(asker, "{\"op\":\"stats\",\"id\":3}", NULL);
    rx_frame *r = fake_expect(asker, "stats");
    cJSON *j = cJSON_Parse((const char *)r->payload);
    ck_assert_ptr_nonnull(j);
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(j, "retained_bytes")));
    ck_assert_uint_eq((uint64_t)cJSON_GetObjectItem(j, "retained_bytes")->valuedouble, bytes);
    ck_assert_uint_eq((uint64_t)cJSON_GetObjectItem(j, "retained_topics")->valuedouble, topics);
    cJSON_Delete(j);
}

/* A late subscriber to "#" gets exactly these retained topic=payload pairs (any order). */
static void expect_retained(aipc_broker *b, const char *const *pairs, int n)
{
    fake *s = fake_new(b, 9);
    fake_hello(s, NULL);
    fake_sendt(s, "{\"op\":\"sub\",\"topic\":\"#\",\"id\":1}", NULL);
    fake_expect(s, "ok");
    int got = 0;
    rx_frame *m;
    while ((m = fake_next(s)) != NULL) {
        ck_assert_str_eq(rx_str(m, "op"), "msg");
        ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(m->meta, "retained")));
        bool found = false;
        for (int i = 0; i < n; i++)
            if (strcmp(rx_str(m, "topic"), pairs[2 * i]) == 0) {
                ck_assert_str_eq((char *)m->payload, pairs[2 * i + 1]);
                found = true;
            }
        ck_assert_msg(found, "unexpected retained topic %s", rx_str(m, "topic"));
        got++;
    }
    ck_assert_int_eq(got, n);
    fake_free(s);
}

/* Log sink: counts warnings that mention the bound. */
static int full_warnings;
static void count_warn(void *ctx, int level, const char *msg)
{
    (void)ctx;
    if (level == AIPC_LOG_WARN && strstr(msg, "max_retained_bytes"))
        full_warnings++;
}

/* What the store is charged (the heap it really holds: trie nodes and tables, records,
 * frames) after these retains (topic, payload pairs; "" clears) in a fresh unbounded broker:
 * the bounds below are set from it, so each test hits its bound exactly. */
static uint64_t measure(const char *const *pairs, int n)
{
    aipc_broker *b = retained_broker(1ull << 40);
    fake *p = fake_new(b, 5);
    fake_hello(p, "pub");
    for (int i = 0; i < n; i++)
        ck_assert_str_eq(rx_str(retain_pub(p, pairs[2 * i], pairs[2 * i + 1]), "op"), "ok");
    aipc_broker_stats st;
    aipc_broker_get_stats(b, &st);
    fake_free(p);
    aipc_broker_free(b);
    return st.retained_bytes;
}

/* A retain that would take the store over the bound gets retained_full, is not stored, and is
 * still delivered live; exactly at the bound is accepted. */
START_TEST(retained_bound_enforced)
{
    const char *a[] = {"a", "0123456789"}, *ab[] = {"a", "0123456789", "b", "abcdefghi"},
               *ac[] = {"a", "0123456789", "c", "abcdefgh"};
    uint64_t bound = measure(ac, 2);
    ck_assert_uint_gt(measure(ab, 2), bound);                  /* one payload byte more */
    aipc_broker *b = retained_broker(bound);
    full_warnings = 0;
    aipc_broker_set_log(b, count_warn, NULL);
    fake *p = fake_new(b, 5), *s = fake_new(b, 6);
    fake_hello(p, "pub");
    fake_hello(s, NULL);
    fake_sendt(s, "{\"op\":\"sub\",\"topic\":\"#\",\"id\":1}", NULL);
    fake_expect(s, "ok");
    ck_assert_str_eq(rx_str(retain_pub(p, "a", "0123456789"), "op"), "ok");
    fake_skip_all(s);
    expect_store(b, p, 1, measure(a, 1));
    /* Refused, named retained_full, with re, yet delivered live. */
    rx_frame *e = retain_pub(p, "b", "abcdefghi");
    ck_assert_str_eq(rx_str(e, "op"), "error");
    ck_assert_str_eq(rx_str(e, "code"), "retained_full");
    ck_assert(rx_has(e, "message"));
    rx_frame *m = fake_expect(s, "msg");
    ck_assert_str_eq(rx_str(m, "topic"), "b");
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(m->meta, "retained")));
    ck_assert_str_eq((char *)m->payload, "abcdefghi");
    ck_assert_str_eq(rx_from_str(m, "name"), "pub");
    ck_assert_ptr_null(fake_next(s));
    expect_store(b, p, 1, measure(a, 1));
    /* Without an id the error has no re. */
    fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"b\",\"retain\":true}", "abcdefghi");
    e = fake_expect_error(p, "retained_full");
    ck_assert(!rx_has(e, "re"));
    fake_expect(s, "msg");
    /* Exactly at the bound is fine. */
    ck_assert_str_eq(rx_str(retain_pub(p, "c", "abcdefgh"), "op"), "ok");
    expect_store(b, p, 2, bound);
    /* Non-retained publications are not limited by the store. */
    fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"d\",\"id\":2}", "a payload far over the bound");
    fake_expect(p, "ok");
    /* One warning per episode, however often the store refuses. */
    ck_assert_int_eq(full_warnings, 1);
    const char *want[] = {"a", "0123456789", "c", "abcdefgh"};
    expect_retained(b, want, 2);
    fake_free(p);
    fake_free(s);
    aipc_broker_free(b);
}
END_TEST

/* Replacing a retained topic is charged the difference only; a refused replacement keeps the
 * old retained message. */
START_TEST(retained_bound_replacement)
{
    const char *ab[] = {"a", "0123456789", "b", "abcdefgh"};
    uint64_t bound = measure(ab, 2);
    aipc_broker *b = retained_broker(bound);
    fake *p = fake_new(b, 5);
    fake_hello(p, "pub");
    ck_assert_str_eq(rx_str(retain_pub(p, "a", "0123456789"), "op"), "ok");
    ck_assert_str_eq(rx_str(retain_pub(p, "b", "abcdefgh"), "op"), "ok");
    expect_store(b, p, 2, bound);
    /* Shrinking frees room: a's payload 5 bytes shorter. */
    ck_assert_str_eq(rx_str(retain_pub(p, "a", "ABCDE"), "op"), "ok");
    expect_store(b, p, 2, bound - 5);
    /* Growing a by 5 (back to the bound) fits although a second "a" would not. */
    ck_assert_str_eq(rx_str(retain_pub(p, "a", "0123456789"), "op"), "ok");
    expect_store(b, p, 2, bound);
    /* Growing a by one more byte does not fit: refused, the old value stays. */
    ck_assert_str_eq(rx_str(retain_pub(p, "a", "0123456789X"), "code"), "retained_full");
    expect_store(b, p, 2, bound);
    const char *want[] = {"a", "0123456789", "b", "abcdefgh"};
    expect_retained(b, want, 2);
    /* Same size replacement at the bound is fine. */
    ck_assert_str_eq(rx_str(retain_pub(p, "b", "ABCDEFGH"), "op"), "ok");
    expect_store(b, p, 2, bound);
    fake_free(p);
    aipc_broker_free(b);
}
END_TEST

/* Clearing (retain + empty payload) frees room, is never refused, and the bytes go back to 0
 * (nodes and tables included). */
START_TEST(retained_bound_clear_frees)
{
    const char *ab[] = {"a", "0123456789", "b", "abcdefgh"}, *bonly[] = {"b", "abcdefgh"};
    uint64_t bound = measure(ab, 2);
    aipc_broker *b = retained_broker(bound);
    fake *p = fake_new(b, 5);
    fake_hello(p, "pub");
    ck_assert_str_eq(rx_str(retain_pub(p, "a", "0123456789"), "op"), "ok");
    ck_assert_str_eq(rx_str(retain_pub(p, "b", "abcdefgh"), "op"), "ok");
    ck_assert_str_eq(rx_str(retain_pub(p, "c", "x"), "code"), "retained_full");
    ck_assert_str_eq(rx_str(retain_pub(p, "a", ""), "op"), "ok");
    expect_store(b, p, 1, measure(bonly, 1));
    ck_assert_str_eq(rx_str(retain_pub(p, "c", "0123456789"), "op"), "ok");     /* as a was */
    expect_store(b, p, 2, bound);
    const char *want[] = {"b", "abcdefgh", "c", "0123456789"};
    expect_retained(b, want, 2);
    ck_assert_str_eq(rx_str(retain_pub(p, "b", ""), "op"), "ok");
    ck_assert_str_eq(rx_str(retain_pub(p, "c", ""), "op"), "ok");
    expect_store(b, p, 0, 0);
    expect_retained(b, NULL, 0);
    fake_free(p);
    aipc_broker_free(b);
}
END_TEST

/* max_retained_bytes 0: no retained message is accepted, but publications flow and clearing
 * is still ok. A bound loaded from JSON reaches the broker. */
START_TEST(retained_bound_zero_and_loaded)
{
    aipc_broker *b = retained_broker(0);
    fake *p = fake_new(b, 5), *s = fake_new(b, 6);
    fake_hello(p, NULL);
    fake_hello(s, NULL);
    fake_sendt(s, "{\"op\":\"sub\",\"topic\":\"t\",\"id\":1}", NULL);
    fake_expect(s, "ok");
    ck_assert_str_eq(rx_str(retain_pub(p, "t", "v"), "code"), "retained_full");
    ck_assert_str_eq((char *)fake_expect(s, "msg")->payload, "v");
    ck_assert_str_eq(rx_str(retain_pub(p, "t", ""), "op"), "ok");
    ck_assert_uint_eq(fake_expect(s, "msg")->plen, 0);
    expect_store(b, p, 0, 0);
    fake_free(p);
    fake_free(s);
    aipc_broker_free(b);

    const char *t[] = {"t", "1234567"};
    uint64_t bound = measure(t, 1);
    aipc_broker_config cfg;
    char err[128], json[64];
    snprintf(json, sizeof json, "{\"max_retained_bytes\":%llu}", (unsigned long long)bound);
    ck_assert_int_eq(aipc_broker_config_load_json(&cfg, json, err, sizeof err), 0);
    b = aipc_broker_new(&cfg, fake_now);
    ck_assert_ptr_nonnull(b);
    p = fake_new(b, 5);
    fake_hello(p, "pub");
    ck_assert_str_eq(rx_str(retain_pub(p, "t", "1234567"), "op"), "ok");
    ck_assert_str_eq(rx_str(retain_pub(p, "u", "1"), "code"), "retained_full");
    expect_store(b, p, 1, bound);
    fake_free(p);
    aipc_broker_free(b);
}
END_TEST

/* The default bound (64 MiB) leaves ordinary use alone; large payloads are charged about their
 * size (the frame around them adds little). */
START_TEST(retained_default_bound)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *p = fake_new(b, 5);
    fake_hello(p, NULL);
    size_t n = 1024u * 1024u;
    char *big = malloc(n + 1);
    memset(big, 'r', n);
    big[n] = 0;
    ck_assert_str_eq(rx_str(retain_pub(p, "big/one", big), "op"), "ok");
    ck_assert_str_eq(rx_str(retain_pub(p, "big/two", big), "op"), "ok");
    aipc_broker_stats st;
    aipc_broker_get_stats(b, &st);
    ck_assert_uint_eq(st.retained_topics, 2);
    ck_assert_uint_ge(st.retained_bytes, 2 * n);
    ck_assert_uint_le(st.retained_bytes, 2 * n + 4096);
    free(big);
    fake_free(p);
    aipc_broker_free(b);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_retained");
    TCase *tc = tcase_create("retained");
    tcase_add_test(tc, retained_after_ok);
    tcase_add_test(tc, retained_replace_and_clear);
    tcase_add_test(tc, not_retained_not_stored);
    tcase_add_test(tc, retained_wildcards);
    tcase_add_test(tc, retained_outlives_publisher);
    tcase_add_test(tc, retained_bound_enforced);
    tcase_add_test(tc, retained_bound_replacement);
    tcase_add_test(tc, retained_bound_clear_frees);
    tcase_add_test(tc, retained_bound_zero_and_loaded);
    tcase_add_test(tc, retained_default_bound);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
