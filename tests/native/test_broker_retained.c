/* test_broker_retained.c - retained messages: stored by retain:true, delivered right after the
 * sub's ok with "retained":true, replaced, cleared by an empty payload, matched by wildcards. */
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
    aipc_publish(b, "$sys/v", 6, from, sizeof from - 1, (const uint8_t *)"1", 1, true);
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

int main(void)
{
    Suite *s = suite_create("broker_retained");
    TCase *tc = tcase_create("retained");
    tcase_add_test(tc, retained_after_ok);
    tcase_add_test(tc, retained_replace_and_clear);
    tcase_add_test(tc, not_retained_not_stored);
    tcase_add_test(tc, retained_wildcards);
    tcase_add_test(tc, retained_outlives_publisher);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
