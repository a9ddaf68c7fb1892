/* test_broker_hello_timeout.c - a connection that never says hello is closed hello_timeout_ms
 * after attach (error hello_timeout, stat hello_timeouts), on the broker's clock (the fake
 * clock here, moved by the test; aipc_broker_tick runs what is due). */
#include "check_main.h"
#include "test_broker_fake.h"

#define HELLO_MS 500u

static aipc_broker *hello_broker(void)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.hello_timeout_ms = HELLO_MS;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    ck_assert_ptr_nonnull(b);
    return b;
}

/* Exactly at the bound: one millisecond before, nothing; at it, the error and the close. A
 * client that said hello, attached at the same time, is not touched. */
START_TEST(closed_exactly_at_the_timeout)
{
    fake_clock_ms = 1000;
    aipc_broker *b = hello_broker();
    ck_assert_uint_eq(aipc_broker_tick(b), UINT64_MAX);       /* nothing scheduled */
    fake *good = fake_new(b, 1), *mute = fake_new(b, 2);
    fake_hello(good, "good");
    fake_skip_all(good);
    ck_assert_uint_eq(aipc_broker_tick(b), HELLO_MS);         /* the mute one's deadline */
    fake_clock_ms += HELLO_MS - 1;
    ck_assert_uint_eq(aipc_broker_tick(b), 1);
    ck_assert_uint_eq(fake_pending(mute), 0);
    ck_assert_int_eq(mute->close_calls, 0);
    fake_clock_ms += 1;
    ck_assert_uint_eq(aipc_broker_tick(b), AIPC_BROKER_DEFAULT_LINGER);   /* its close lingers */
    fake_expect_error(mute, "hello_timeout");
    ck_assert_int_eq(mute->close_calls, 1);
    ck_assert_uint_eq(fake_stats(b).hello_timeouts, 1);
    /* Input after the close request is ignored; the good client goes on. */
    ck_assert_int_eq(fake_sendt(mute, "{\"op\":\"hello\",\"proto\":1}", NULL), 0);
    ck_assert_uint_eq(fake_pending(mute), 0);
    ck_assert_int_eq(good->close_calls, 0);
    ck_assert_uint_eq(fake_pending(good), 0);
    fake_sendt(good, "{\"op\":\"ping\",\"id\":1}", NULL);
    fake_expect(good, "pong");
    fake_free(mute);                                          /* drained: the engine detaches */
    mute = NULL;
    fake_clock_ms += 100000;
    ck_assert_uint_eq(aipc_broker_tick(b), UINT64_MAX);
    ck_assert_int_eq(good->close_calls, 0);
    ck_assert_uint_eq(fake_stats(b).hello_timeouts, 1);
    fake_free(good);
    aipc_broker_free(b);
}
END_TEST

/* The deadline runs from attach: failed hellos that keep the connection (bad_name,
 * proto_mismatch) do not extend it; a successful hello just before it cancels it. */
START_TEST(deadline_runs_from_attach)
{
    fake_clock_ms = 5000;
    aipc_broker *b = hello_broker();
    fake *retry = fake_new(b, 1), *late = fake_new(b, 2);
    fake_clock_ms += HELLO_MS / 2;
    fake_sendt(retry, "{\"op\":\"hello\",\"proto\":1,\"name\":\"bad name\"}", NULL);
    fake_expect_error(retry, "bad_name");
    fake_clock_ms += HELLO_MS / 2 - 1;
    fake_sendt(retry, "{\"op\":\"hello\",\"proto\":2}", NULL);
    fake_expect_error(retry, "proto_mismatch");
    fake_hello(late, "late");                                 /* 1 ms before its deadline */
    fake_clock_ms += 1;
    aipc_broker_tick(b);
    fake_expect_error(retry, "hello_timeout");
    ck_assert_int_eq(retry->close_calls, 1);
    ck_assert_int_eq(late->close_calls, 0);
    ck_assert_uint_eq(fake_stats(b).hello_timeouts, 1);
    fake_free(retry);
    fake_free(late);
    aipc_broker_free(b);
}
END_TEST

/* Connections that leave or are closed for another reason before their deadline are
 * forgotten (nothing fires later; ASan would see a use after free). */
START_TEST(gone_before_the_deadline)
{
    fake_clock_ms = 1000;
    aipc_broker *b = hello_broker();
    fake *left = fake_new(b, 1), *rude = fake_new(b, 2), *stay = fake_new(b, 3);
    fake_free(left);
    fake_sendt(rude, "{\"op\":\"ping\"}", NULL);              /* before hello: closed */
    fake_expect_error(rude, "hello_required");
    ck_assert_int_eq(rude->close_calls, 1);
    fake_clock_ms += HELLO_MS;
    aipc_broker_tick(b);
    fake_expect_error(stay, "hello_timeout");
    ck_assert_uint_eq(fake_pending(rude), 0);
    ck_assert_int_eq(rude->close_calls, 1);
    ck_assert_uint_eq(fake_stats(b).hello_timeouts, 1);
    fake_free(rude);
    fake_free(stay);
    aipc_broker_free(b);
}
END_TEST

/* Many mute connections expire in attach order, each exactly at its own deadline, and the
 * tick's answer is always the time to the next one. The stats payload carries the counter. */
START_TEST(many_in_order)
{
    fake_clock_ms = 1000;
    aipc_broker *b = hello_broker();
    enum { N = 50 };
    fake *f[N];
    for (int i = 0; i < N; i++) {
        f[i] = fake_new(b, (uint32_t)i + 1);
        fake_clock_ms += 10;
    }
    /* f[i] attached at 1000 + 10 i, due at 1000 + 10 i + HELLO_MS; now = 1000 + 10 N. */
    for (int i = 0; i < N; i++) {
        uint64_t due = 1000 + 10u * (uint64_t)i + HELLO_MS;
        if (fake_clock_ms < due) {
            ck_assert_uint_eq(aipc_broker_tick(b), due - fake_clock_ms);
            fake_clock_ms = due;
        }
        aipc_broker_tick(b);
        fake_expect_error(f[i], "hello_timeout");
        if (i + 1 < N)
            ck_assert_int_eq(f[i + 1]->close_calls, 0);
    }
    ck_assert_uint_eq(fake_stats(b).hello_timeouts, N);
    fake *s = fake_new(b, 99);
    fake_hello(s, NULL);
    fake_sendt(s, "{\"op\":\"stats\",\"id\":1}", NULL);
    rx_frame *r = fake_expect(s, "stats");
    cJSON *j = cJSON_Parse((const char *)r->payload);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "hello_timeouts")->valueint, N);
    cJSON_Delete(j);
    for (int i = 0; i < N; i++)
        fake_free(f[i]);
    fake_free(s);
    aipc_broker_free(b);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_hello_timeout");
    TCase *tc = tcase_create("hello_timeout");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, closed_exactly_at_the_timeout);
    tcase_add_test(tc, deadline_runs_from_attach);
    tcase_add_test(tc, gone_before_the_deadline);
    tcase_add_test(tc, many_in_order);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
