/* test_broker_linger.c - a connection the broker closes gracefully (error then close, bye) must
 * not keep its slot and name forever when its client never reads: close_linger_ms after the
 * close request the engine is told to abort it (ops->abort, stat linger_aborts), and its name
 * is free for a successor at once. Driven by the fake clock. */
#include "check_main.h"
#include "test_broker_fake.h"

#define LINGER 700u

static aipc_broker *linger_broker(void)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.close_linger_ms = LINGER;
    cfg.max_payload = 1024;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    ck_assert_ptr_nonnull(b);
    return b;
}

/* An oversize frame from a named client that does not read: too_large + close; exactly
 * close_linger_ms later the abort, and the name is free at once (before the engine detaches);
 * the old connection's detach leaves the successor's name alone. */
START_TEST(non_reader_aborted_and_name_freed)
{
    fake_clock_ms = 1000;
    aipc_broker *b = linger_broker();
    fake *old = fake_new(b, 1), *peer = fake_new(b, 2);
    fake_hello(old, "svc");
    fake_hello(peer, "peer");
    fake_skip_all(peer);
    old->stalled = true;
    static char big[2048];
    ck_assert_int_eq(fake_send(old, "{\"op\":\"pub\",\"topic\":\"t\"}", big, sizeof big), 0);
    ck_assert_int_eq(old->close_calls, 1);
    ck_assert_uint_gt(aipc_client_out_pending(old->cl), 0);   /* too_large, unread */
    ck_assert_uint_eq(aipc_broker_tick(b), LINGER);
    fake_clock_ms += LINGER - 1;
    aipc_broker_tick(b);
    ck_assert_int_eq(old->abort_calls, 0);
    fake *early = fake_new(b, 3);
    fake_sendt(early, "{\"op\":\"hello\",\"proto\":1,\"name\":\"svc\"}", NULL);
    fake_expect_error(early, "name_taken");                    /* still held */
    fake_free(early);                                          /* read it: detached */
    fake_clock_ms += 1;
    aipc_broker_tick(b);
    ck_assert_int_eq(old->abort_calls, 1);
    ck_assert_uint_eq(fake_stats(b).linger_aborts, 1);
    fake *succ = fake_new(b, 4);
    fake_hello(succ, "svc");                                   /* free at once */
    fake_free(old);                                            /* the engine's detach */
    fake_sendt(peer, "{\"op\":\"send\",\"to\":\"svc\",\"id\":1}", "hi");
    fake_expect(peer, "ok");
    ck_assert_str_eq((char *)fake_expect(succ, "direct")->payload, "hi");
    fake_clock_ms += 10 * LINGER;
    aipc_broker_tick(b);
    ck_assert_int_eq(succ->abort_calls + succ->close_calls + peer->close_calls, 0);
    ck_assert_uint_eq(fake_stats(b).linger_aborts, 1);
    fake_free(succ);
    fake_free(peer);
    aipc_broker_free(b);
}
END_TEST

/* A close that drains (the engine detaches in time) is never aborted; a closed client that was
 * detached leaves no timer behind (ASan). */
START_TEST(drained_close_not_aborted)
{
    fake_clock_ms = 1000;
    aipc_broker *b = linger_broker();
    fake *c = fake_new(b, 1);
    fake_sendt(c, "{\"op\":\"ping\"}", NULL);                  /* before hello: error + close */
    fake_expect_error(c, "hello_required");
    ck_assert_int_eq(c->close_calls, 1);
    fake_clock_ms += LINGER / 2;
    fake_free(c);
    ck_assert_uint_eq(aipc_broker_tick(b), UINT64_MAX);
    fake_clock_ms += LINGER;
    aipc_broker_tick(b);
    ck_assert_uint_eq(fake_stats(b).linger_aborts, 0);
    aipc_broker_free(b);
}
END_TEST

/* Every close the broker requests lingers the same way: hello timeouts and the bye of a
 * shutdown; readers are detached by their engine, non-readers aborted. */
START_TEST(every_close_lingers)
{
    fake_clock_ms = 1000;
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.close_linger_ms = LINGER;
    cfg.hello_timeout_ms = 100;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    fake *mute = fake_new(b, 1), *reader = fake_new(b, 2), *deaf = fake_new(b, 3);
    mute->stalled = true;
    fake_hello(reader, NULL);
    fake_hello(deaf, NULL);
    deaf->stalled = true;
    fake_clock_ms += 100;
    aipc_broker_tick(b);                                       /* mute: hello_timeout + close */
    ck_assert_int_eq(mute->close_calls, 1);
    fake_clock_ms += 300;
    aipc_broker_shutdown(b);                                   /* bye + close to the others */
    ck_assert_int_eq(reader->close_calls + deaf->close_calls, 2);
    fake_expect(reader, "bye");
    fake_free(reader);                                         /* drained: the engine detaches */
    fake_clock_ms += LINGER - 300;
    aipc_broker_tick(b);
    ck_assert_int_eq(mute->abort_calls, 1);
    ck_assert_int_eq(deaf->abort_calls, 0);
    fake_clock_ms += 300;
    aipc_broker_tick(b);
    ck_assert_int_eq(deaf->abort_calls, 1);
    ck_assert_uint_eq(fake_stats(b).linger_aborts, 2);
    fake_free(mute);
    fake_free(deaf);
    aipc_broker_free(b);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_linger");
    TCase *tc = tcase_create("linger");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, non_reader_aborted_and_name_freed);
    tcase_add_test(tc, drained_close_not_aborted);
    tcase_add_test(tc, every_close_lingers);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
