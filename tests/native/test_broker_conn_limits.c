/* test_broker_conn_limits.c - connections per client process (max_connections_per_process,
 * decided at attach from the pid) and per user (max_connections_per_user, decided when the
 * engine gives the identity, before the first frame): exactly at the bound the next connection
 * gets error too_many_connections as its only frame and is closed, the counters move, refused
 * connections do not count, the memory comes back, and other clients are not touched. */
#include "check_main.h"
#include "test_broker_fake.h"
#include "test_broker_idents.h"
#include "test_heap.h"

static aipc_broker *conn_broker(uint32_t per_process, uint32_t per_user)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.max_connections_per_process = per_process;
    cfg.max_connections_per_user = per_user;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    ck_assert_ptr_nonnull(b);
    return b;
}

/* A connection of pid with an identity (as the engine gives it before the first read). */
static fake *conn_as(aipc_broker *b, uint32_t pid, const aipc_identity *id)
{
    fake *f = fake_new(b, pid);
    ck_assert_ptr_nonnull(f->cl);
    if (id)
        ck_assert_int_eq(aipc_client_set_identity(f->cl, id), 0);
    return f;
}

/* The refused connection's only frame is the error, its close was asked for, what it sends is
 * ignored (its hello is never answered). */
static void assert_refused(fake *f)
{
    fake_expect_error(f, "too_many_connections");
    ck_assert_int_eq(f->close_calls, 1);
    ck_assert_int_eq(fake_sendt(f, "{\"op\":\"hello\",\"proto\":1}", NULL), 0);
    ck_assert_uint_eq(fake_pending(f), 0);
}

/* One process: LIMIT connections work, the next is refused at attach; another process still
 * connects; once one of the first goes, the process may connect again. */
START_TEST(per_process_exactly_at_the_bound)
{
    enum { LIMIT = 5 };
    aipc_broker *b = conn_broker(LIMIT, 0);
    fake *other = conn_as(b, 9, &id_alice);
    fake_hello(other, "other");
    fake_sendt(other, "{\"op\":\"sub\",\"id\":1,\"topic\":\"t/#\"}", NULL);
    fake_expect(other, "ok");
    fake *f[LIMIT];
    for (int i = 0; i < LIMIT; i++) {
        f[i] = conn_as(b, 7, &id_alice);
        fake_hello(f[i], NULL);
    }
    size_t heap0 = heap_live_bytes();
    for (int round = 0; round < 3; round++) {   /* refusals hold nothing once detached */
        fake *over = conn_as(b, 7, &id_alice);
        assert_refused(over);
        ck_assert_uint_eq(fake_stats(b).process_conns_refused, (uint64_t)round + 1);
        fake_free(over);
    }
    ck_assert_uint_eq(heap_live_bytes(), heap0);
    ck_assert_uint_eq(fake_stats(b).clients, LIMIT + 1);
    fake *p8 = conn_as(b, 8, &id_alice);          /* same user, another process */
    fake_hello(p8, "p8");
    fake_sendt(f[0], "{\"op\":\"pub\",\"topic\":\"t/x\"}", "1");
    rx_frame *m = fake_expect(other, "msg");
    ck_assert_str_eq((const char *)m->payload, "1");
    ck_assert_int_eq(other->close_calls, 0);
    fake_free(f[0]);
    f[0] = conn_as(b, 7, &id_alice);              /* room again */
    fake_hello(f[0], NULL);
    ck_assert_uint_eq(fake_stats(b).process_conns_refused, 3);
    ck_assert_uint_eq(fake_stats(b).user_conns_refused, 0);
    for (int i = 0; i < LIMIT; i++)
        fake_free(f[i]);
    fake_free(p8);
    fake_free(other);
    aipc_broker_free(b);
}
END_TEST

/* One user over several processes: the bound counts every process of the user; another user
 * is not affected; a refused connection is counted for neither its process nor its user. */
START_TEST(per_user_exactly_at_the_bound)
{
    enum { LIMIT = 4 };
    aipc_broker *b = conn_broker(3, LIMIT);
    fake *bob = conn_as(b, 50, &id_bob);
    fake_hello(bob, "bob");
    fake_sendt(bob, "{\"op\":\"sub\",\"id\":1,\"topic\":\"t/#\"}", NULL);
    fake_expect(bob, "ok");
    fake *a[LIMIT];
    for (int i = 0; i < LIMIT; i++) {              /* pids 10, 10, 11, 11 */
        a[i] = conn_as(b, 10 + (uint32_t)i / 2, &id_alice);
        fake_hello(a[i], NULL);
    }
    size_t heap0 = heap_live_bytes();
    fake *over = conn_as(b, 12, &id_alice);        /* its process has none: the user's bound */
    assert_refused(over);
    fake_free(over);
    ck_assert_uint_eq(heap_live_bytes(), heap0);
    aipc_broker_stats st = fake_stats(b);
    ck_assert_uint_eq(st.user_conns_refused, 1);
    ck_assert_uint_eq(st.process_conns_refused, 0);
    /* Refused for the user while its process had room: the process is not charged for it. */
    over = conn_as(b, 10, &id_alice);
    assert_refused(over);
    fake_free(over);
    fake_free(a[3]);                               /* alice drops to 3: pid 10 may add its 3rd */
    a[3] = conn_as(b, 10, &id_alice);
    fake_hello(a[3], NULL);
    fake *bob2 = conn_as(b, 51, &id_bob);
    fake_hello(bob2, "bob2");
    fake_sendt(a[0], "{\"op\":\"pub\",\"topic\":\"t/y\"}", "2");
    ck_assert_str_eq((const char *)fake_expect(bob, "msg")->payload, "2");
    ck_assert_int_eq(bob->close_calls, 0);
    st = fake_stats(b);
    ck_assert_uint_eq(st.user_conns_refused, 2);
    ck_assert_uint_eq(st.clients, LIMIT + 2);
    for (int i = 0; i < LIMIT; i++)
        fake_free(a[i]);
    fake_free(bob);
    fake_free(bob2);
    aipc_broker_free(b);
}
END_TEST

/* 0 = no bound; pid 0 (unknown) and clients without identity are never counted. */
START_TEST(zero_is_off_and_unknowns_are_not_counted)
{
    enum { N = 200 };
    aipc_broker *b = conn_broker(0, 0);
    fake *f[N];
    for (int i = 0; i < N; i++) {
        f[i] = conn_as(b, 7, &id_alice);
        ck_assert_int_eq(f[i]->close_calls, 0);
    }
    for (int i = 0; i < N; i++)
        fake_free(f[i]);
    aipc_broker_free(b);
    b = conn_broker(1, 1);
    for (int i = 0; i < 3; i++) {
        f[i] = conn_as(b, 0, &id_alice);               /* unknown pid: the user's bound only */
        ck_assert_int_eq(f[i]->close_calls, i == 0 ? 0 : 1);
        f[3 + i] = conn_as(b, 5, NULL);                /* no identity: the process bound only */
        ck_assert_int_eq(f[3 + i]->close_calls, i == 0 ? 0 : 1);
    }
    ck_assert_uint_eq(fake_stats(b).user_conns_refused, 2);
    ck_assert_uint_eq(fake_stats(b).process_conns_refused, 2);
    for (int i = 0; i < 6; i++)
        fake_free(f[i]);
    aipc_broker_free(b);
}
END_TEST

/* The stats answer lists both counters; the defaults are 128 per process and 512 per user. */
START_TEST(defaults_and_stats)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    ck_assert_uint_eq(cfg.max_connections_per_process, 128);
    ck_assert_uint_eq(cfg.max_connections_per_user, 512);
    char err[256];
    ck_assert_int_eq(aipc_broker_config_load_json(&cfg, "{\"max_connections_per_process\":0,"
                     "\"max_connections_per_user\":65536}", err, sizeof err), 0);
    ck_assert_uint_eq(cfg.max_connections_per_process, 0);
    ck_assert_uint_eq(cfg.max_connections_per_user, 65536);
    ck_assert_int_eq(aipc_broker_config_load_json(&cfg, "{\"max_connections_per_user\":65537}",
                     err, sizeof err), AIPC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "max_connections_per_user"));
    aipc_broker_config_free(&cfg);
    aipc_broker *b = conn_broker(1, 0);
    fake *s = conn_as(b, 3, NULL);
    fake_hello(s, NULL);
    fake *over = conn_as(b, 3, NULL);
    assert_refused(over);
    fake_sendt(s, "{\"op\":\"stats\",\"id\":1}", NULL);
    rx_frame *r = fake_expect(s, "stats");
    cJSON *j = cJSON_Parse((const char *)r->payload);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "process_conns_refused")->valueint, 1);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "user_conns_refused")->valueint, 0);
    cJSON_Delete(j);
    fake_free(over);
    fake_free(s);
    aipc_broker_free(b);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_conn_limits");
    TCase *tc = tcase_create("conn_limits");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, per_process_exactly_at_the_bound);
    tcase_add_test(tc, per_user_exactly_at_the_bound);
    tcase_add_test(tc, zero_is_off_and_unknowns_are_not_counted);
    tcase_add_test(tc, defaults_and_stats);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
