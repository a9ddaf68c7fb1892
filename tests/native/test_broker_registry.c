/* test_broker_registry.c - ids and names: welcome fields, unique names (name_taken closes),
 * invalid names, ids never reused, presence $bus/joined and $bus/left, max_clients, shutdown. */
#include "check_main.h"
#include "test_broker_fake.h"

/* welcome carries proto, id, name and max_payload; ids count up from 1. */
START_TEST(welcome_fields)
{
    aipc_broker *b = test_broker(0, 123456, 0);
    fake *c = fake_new(b, 77);
    fake_sendt(c, "{\"op\":\"hello\",\"proto\":1,\"name\":\"ui\",\"id\":3}", NULL);
    rx_frame *w = fake_expect(c, "welcome");
    ck_assert_int_eq((int)rx_num(w, "re"), 3);
    ck_assert_int_eq((int)rx_num(w, "proto"), 1);
    ck_assert_int_eq((int)rx_num(w, "id"), 1);
    ck_assert_str_eq(rx_str(w, "name"), "ui");
    ck_assert_int_eq((int)rx_num(w, "max_payload"), 123456);
    ck_assert_uint_eq(aipc_client_id(c->cl), 1);
    ck_assert_str_eq(aipc_client_name(c->cl), "ui");
    ck_assert_uint_eq(aipc_client_pid(c->cl), 77);
    ck_assert_ptr_eq(aipc_client_conn(c->cl), &c->conn);
    fake *anon = fake_new(b, 78);
    fake_sendt(anon, "{\"op\":\"hello\",\"proto\":1}", NULL);
    w = fake_expect(anon, "welcome");
    ck_assert_int_eq((int)rx_num(w, "id"), 2);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(w->meta, "name")));
    ck_assert(!rx_has(w, "re"));
    fake_free(c);
    fake_free(anon);
    aipc_broker_free(b);
}
END_TEST

/* A taken name gets name_taken and a close; the name is free again once its owner left. */
START_TEST(name_taken_closes)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *a = fake_new(b, 1), *dup = fake_new(b, 2);
    fake_hello(a, "svc");
    fake_sendt(dup, "{\"op\":\"hello\",\"proto\":1,\"name\":\"svc\",\"id\":1}", NULL);
    ck_assert_int_eq((int)rx_num(fake_expect_error(dup, "name_taken"), "re"), 1);
    ck_assert_int_eq(dup->close_calls, 1);
    /* Input after the close request is ignored. */
    fake_sendt(dup, "{\"op\":\"ping\"}", NULL);
    ck_assert_ptr_null(fake_next(dup));
    ck_assert_uint_eq(aipc_client_id(dup->cl), 0);
    fake_free(dup);
    fake_free(a);
    fake *again = fake_new(b, 3);
    ck_assert_uint_eq(fake_hello(again, "svc"), 2);   /* id 1 is never handed out again */
    fake_free(again);
    aipc_broker_free(b);
}
END_TEST

/* Names: [A-Za-z0-9._-]{1,128}; bad ones get bad_name and may retry their hello. */
START_TEST(invalid_names)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *c = fake_new(b, 1);
    const char *bad[] = {"\"\"", "\"a b\"", "\"a/b\"", "\"$x\"", "\"\xc3\xa9\"",
                         "5", "true", "{}", "\"ab:c\"", "\"*\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char meta[128];
        snprintf(meta, sizeof meta, "{\"op\":\"hello\",\"proto\":1,\"name\":%s}", bad[i]);
        fake_sendt(c, meta, NULL);
        rx_frame *e = fake_next(c);
        ck_assert_ptr_nonnull(e);
        ck_assert_msg(strcmp(rx_str(e, "code"), "bad_name") == 0, "name %s: %s", bad[i],
                      rx_str(e, "code"));
    }
    /* A NUL would cut "a\0b" to "a": the whole meta is refused (before hello: closed). */
    fake *z = fake_new(b, 3);
    fake_sendt(z, "{\"op\":\"hello\",\"proto\":1,\"name\":\"a\\u0000b\"}", NULL);
    fake_expect_error(z, "bad_meta");
    ck_assert_int_eq(z->close_calls, 1);
    fake_free(z);
    char longname[200] = "{\"op\":\"hello\",\"proto\":1,\"name\":\"";
    size_t at = strlen(longname);
    memset(longname + at, 'n', 129);
    strcpy(longname + at + 129, "\"}");
    fake_sendt(c, longname, NULL);
    fake_expect_error(c, "bad_name");
    ck_assert_int_eq(c->close_calls, 0);
    strcpy(longname + at + 128, "\"}");
    fake_sendt(c, longname, NULL);
    rx_frame *w = fake_expect(c, "welcome");
    ck_assert_uint_eq(strlen(rx_str(w, "name")), 128);
    fake *d = fake_new(b, 2);
    fake_hello(d, "Az09._-");
    fake_free(d);
    fake_free(c);
    aipc_broker_free(b);
}
END_TEST

/* ids are never reused, across many joins and leaves. */
START_TEST(ids_never_reused)
{
    aipc_broker *b = test_broker(0, 0, 0);
    uint64_t last = 0;
    for (int i = 0; i < 100; i++) {
        fake *c = fake_new(b, (uint32_t)i);
        uint64_t id = fake_hello(c, (i % 2) ? "same" : NULL);
        ck_assert_uint_gt(id, last);
        last = id;
        fake_free(c);
    }
    ck_assert_uint_eq(last, 100);
    aipc_broker_free(b);
}
END_TEST

/* Presence: $bus/joined after the welcome, $bus/left on detach, payload {"id","name","pid"}. */
START_TEST(presence_joined_left)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *w = fake_new(b, 1);
    fake_hello(w, "watcher");
    fake_sendt(w, "{\"op\":\"sub\",\"topic\":\"$bus/+\"}", NULL);
    fake_sendt(w, "{\"op\":\"sub\",\"topic\":\"#\"}", NULL);    /* '#' must not add copies */
    fake *c = fake_new(b, 4242);
    uint64_t id = fake_hello(c, "joiner");
    rx_frame *m = fake_expect(w, "msg");
    ck_assert_str_eq(rx_str(m, "topic"), "$bus/joined");
    ck_assert_int_eq((int)rx_from_num(m, "id"), 0);
    ck_assert_str_eq(rx_from_str(m, "name"), "$broker");
    cJSON *pl = cJSON_Parse((char *)m->payload);
    ck_assert_ptr_nonnull(pl);
    ck_assert_uint_eq((uint64_t)cJSON_GetObjectItem(pl, "id")->valuedouble, id);
    ck_assert_str_eq(cJSON_GetObjectItem(pl, "name")->valuestring, "joiner");
    ck_assert_int_eq((int)cJSON_GetObjectItem(pl, "pid")->valuedouble, 4242);
    cJSON_Delete(pl);
    ck_assert_ptr_null(fake_next(w));
    /* A connection that never said hello leaves silently. */
    fake *ghost = fake_new(b, 9);
    fake_free(ghost);
    ck_assert_ptr_null(fake_next(w));
    fake_free(c);
    m = fake_expect(w, "msg");
    ck_assert_str_eq(rx_str(m, "topic"), "$bus/left");
    pl = cJSON_Parse((char *)m->payload);
    ck_assert_str_eq(cJSON_GetObjectItem(pl, "name")->valuestring, "joiner");
    cJSON_Delete(pl);
    /* Anonymous clients have a null name in presence. */
    fake *anon = fake_new(b, 5);
    fake_hello(anon, NULL);
    m = fake_expect(w, "msg");
    pl = cJSON_Parse((char *)m->payload);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(pl, "name")));
    cJSON_Delete(pl);
    fake_free(anon);
    fake_free(w);
    aipc_broker_free(b);
}
END_TEST

/* max_clients: attach returns NULL beyond it and works again after a detach. */
START_TEST(max_clients_refuses)
{
    aipc_broker *b = test_broker(0, 0, 3);
    fake *c[4];
    for (int i = 0; i < 3; i++) {
        c[i] = fake_new(b, (uint32_t)i);
        ck_assert_ptr_nonnull(c[i]->cl);
    }
    c[3] = fake_new(b, 3);
    ck_assert_ptr_null(c[3]->cl);
    ck_assert_ptr_null(c[3]->conn.client);
    fake_free(c[3]);
    fake_free(c[0]);
    c[0] = fake_new(b, 0);
    ck_assert_ptr_nonnull(c[0]->cl);
    aipc_broker_stats st;
    aipc_broker_get_stats(b, &st);
    ck_assert_uint_eq(st.clients, 3);
    ck_assert_uint_eq(st.clients_total, 4);
    for (int i = 0; i < 3; i++)
        fake_free(c[i]);
    aipc_broker_free(b);
}
END_TEST

/* shutdown: every client gets bye and a close request; later attaches are refused. */
START_TEST(shutdown_says_bye)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *a = fake_new(b, 1), *n = fake_new(b, 2);
    fake_hello(a, "a");
    aipc_broker_shutdown(b);
    ck_assert_str_eq(rx_str(fake_expect(a, "bye"), "reason"), "shutdown");
    ck_assert_str_eq(rx_str(fake_expect(n, "bye"), "reason"), "shutdown");
    ck_assert_int_eq(a->close_calls, 1);
    ck_assert_int_eq(n->close_calls, 1);
    fake_sendt(a, "{\"op\":\"ping\"}", NULL);
    ck_assert_ptr_null(fake_next(a));
    fake *late = fake_new(b, 3);
    ck_assert_ptr_null(late->cl);
    fake_free(late);
    fake_free(a);
    fake_free(n);
    aipc_broker_free(b);
}
END_TEST

/* Freeing a broker with clients still attached releases everything (ASan checks leaks). */
START_TEST(free_with_clients_attached)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *a = fake_new(b, 1), *s = fake_new(b, 2);
    fake_hello(a, "a");
    fake_hello(s, "s");
    fake_sendt(s, "{\"op\":\"sub\",\"topic\":\"#\"}", NULL);
    s->stalled = true;
    fake_sendt(a, "{\"op\":\"pub\",\"topic\":\"x\",\"retain\":true}", "1");
    fake_sendt(a, "{\"op\":\"req\",\"to\":\"s\",\"id\":1}", "1");
    aipc_broker_free(b);
    a->cl = s->cl = NULL;
    a->conn.client = s->conn.client = NULL;
    fake_free(a);
    fake_free(s);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_registry");
    TCase *tc = tcase_create("registry");
    tcase_add_test(tc, welcome_fields);
    tcase_add_test(tc, name_taken_closes);
    tcase_add_test(tc, invalid_names);
    tcase_add_test(tc, ids_never_reused);
    tcase_add_test(tc, presence_joined_left);
    tcase_add_test(tc, max_clients_refuses);
    tcase_add_test(tc, shutdown_says_bye);
    tcase_add_test(tc, free_with_clients_attached);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
