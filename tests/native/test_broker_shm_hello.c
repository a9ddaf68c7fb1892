/* test_broker_shm_hello.c - shared memory on the bus, step one: the config keys (defaults,
 * ranges, shm_threshold against max_payload), the backend's installation (before the first
 * attach only) and the negotiation: the welcome carries "shm" only when the hello asked for it
 * (v >= 1), config shm is true, a backend is installed and the client has an identity with a
 * user SID; the stats count clients welcomed with shm and show every shm counter. */
#include "check_main.h"
#include "test_broker_fake.h"
#include "test_broker_idents.h"
#include "test_broker_shm_fake.h"

#define HELLO_SHM "{\"op\":\"hello\",\"proto\":1,\"shm\":{\"v\":1}}"

/* Says `hello` (a full meta) and returns the welcome's "shm" member (NULL when absent). */
static const cJSON *welcome_shm(fake *f, const char *hello)
{
    ck_assert_int_eq(fake_sendt(f, hello, NULL), 0);
    rx_frame *w = fake_expect(f, "welcome");
    return cJSON_GetObjectItemCaseSensitive(w->meta, "shm");
}

/* A client with identity id (NULL: none). */
static fake *client(aipc_broker *b, uint32_t pid, const aipc_identity *id)
{
    fake *f = fake_new(b, pid);
    ck_assert_ptr_nonnull(f->cl);
    if (id)
        ck_assert_int_eq(aipc_client_set_identity(f->cl, id), 0);
    return f;
}

START_TEST(welcome_when_all_hold)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.shm_threshold = 100000;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    fshm *fs = fshm_install(b);
    fake *a = client(b, 10, &id_alice);
    const cJSON *s = welcome_shm(a, HELLO_SHM);
    ck_assert_msg(cJSON_IsObject(s), "welcome without shm");
    ck_assert_int_eq(cJSON_GetObjectItem(s, "v")->valueint, 1);
    ck_assert_int_eq(cJSON_GetObjectItem(s, "threshold")->valueint, 100000);
    /* a higher version is answered with ours; an id is echoed as always */
    fake *c = client(b, 11, &id_bob);
    ck_assert_int_eq(fake_sendt(c, "{\"op\":\"hello\",\"proto\":1,\"id\":4,\"shm\":{\"v\":7}}",
                                NULL), 0);
    rx_frame *w = fake_expect(c, "welcome");
    ck_assert_int_eq((int)rx_num(w, "re"), 4);
    s = cJSON_GetObjectItemCaseSensitive(w->meta, "shm");
    ck_assert_int_eq(cJSON_GetObjectItem(s, "v")->valueint, 1);
    ck_assert_uint_eq(fake_stats(b).shm_clients, 2);
    /* a plain client next to them */
    fake *p = client(b, 12, &id_bob);
    ck_assert_ptr_null(welcome_shm(p, "{\"op\":\"hello\",\"proto\":1}"));
    ck_assert_uint_eq(fake_stats(b).shm_clients, 2);
    fake_free(a);
    ck_assert_uint_eq(fake_stats(b).shm_clients, 1);
    fake_free(p);
    ck_assert_uint_eq(fake_stats(b).shm_clients, 1);
    fake_free(c);
    ck_assert_uint_eq(fake_stats(b).shm_clients, 0);
    ck_assert_int_eq(fs->creates, 0);   /* negotiation creates nothing */
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* The welcome tells the per-client queue bound (the bus client gathers at most 1/4 of it in
 * unsent releases), with or without shm: the configured value, not the default. */
START_TEST(welcome_tells_max_queue_bytes)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.max_queue_bytes = 3u * 1024u * 1024u;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    fshm *fs = fshm_install(b);
    fake *a = client(b, 10, &id_alice);
    ck_assert_int_eq(fake_sendt(a, HELLO_SHM, NULL), 0);
    rx_frame *w = fake_expect(a, "welcome");
    ck_assert_ptr_nonnull(cJSON_GetObjectItemCaseSensitive(w->meta, "shm"));
    ck_assert_double_eq(rx_num(w, "max_queue_bytes"), 3.0 * 1024 * 1024);
    fake *p = client(b, 11, &id_bob);
    ck_assert_int_eq(fake_sendt(p, "{\"op\":\"hello\",\"proto\":1}", NULL), 0);
    w = fake_expect(p, "welcome");
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(w->meta, "shm"));
    ck_assert_double_eq(rx_num(w, "max_queue_bytes"), 3.0 * 1024 * 1024);
    fake_free(a);
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* Each condition missing alone gives a plain welcome. */
START_TEST(plain_unless_all_hold)
{
    static const char *const hellos[] = {
        "{\"op\":\"hello\",\"proto\":1}",
        "{\"op\":\"hello\",\"proto\":1,\"shm\":{\"v\":0}}",
        "{\"op\":\"hello\",\"proto\":1,\"shm\":{\"v\":1.5}}",
        "{\"op\":\"hello\",\"proto\":1,\"shm\":{\"v\":\"1\"}}",
        "{\"op\":\"hello\",\"proto\":1,\"shm\":{}}",
        "{\"op\":\"hello\",\"proto\":1,\"shm\":true}",
        "{\"op\":\"hello\",\"proto\":1,\"shm\":[1]}",
    };
    aipc_broker *b = test_broker(0, 0, 0);
    fshm *fs = fshm_install(b);
    for (size_t i = 0; i < N_OF(hellos); i++) {
        fake *f = client(b, 10, &id_alice);
        ck_assert_msg(welcome_shm(f, hellos[i]) == NULL, "%s", hellos[i]);
        fake_free(f);
    }
    /* no identity */
    fake *f = client(b, 10, NULL);
    ck_assert_ptr_null(welcome_shm(f, HELLO_SHM));
    fake_free(f);
    ck_assert_uint_eq(fake_stats(b).shm_clients, 0);
    aipc_broker_free(b);
    fshm_free(fs);

    /* no backend */
    b = test_broker(0, 0, 0);
    f = client(b, 10, &id_alice);
    ck_assert_ptr_null(welcome_shm(f, HELLO_SHM));
    fake_free(f);
    aipc_broker_free(b);

    /* config shm false */
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.shm = false;
    b = aipc_broker_new(&cfg, fake_now);
    fs = fshm_install(b);
    f = client(b, 10, &id_alice);
    ck_assert_ptr_null(welcome_shm(f, HELLO_SHM));
    ck_assert_uint_eq(fake_stats(b).shm_clients, 0);
    fake_free(f);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* A failed hello negotiates nothing; the retry that succeeds does. */
START_TEST(failed_hello_then_retry)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fshm *fs = fshm_install(b);
    fake *f = client(b, 10, &id_alice);
    fake_sendt(f, "{\"op\":\"hello\",\"proto\":1,\"name\":\"\",\"shm\":{\"v\":1}}", NULL);
    fake_expect_error(f, "bad_name");
    ck_assert_uint_eq(fake_stats(b).shm_clients, 0);
    ck_assert_ptr_nonnull(welcome_shm(f, HELLO_SHM));
    ck_assert_uint_eq(fake_stats(b).shm_clients, 1);
    fake_free(f);
    ck_assert_uint_eq(fake_stats(b).shm_clients, 0);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

START_TEST(backend_install_rules)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fshm dummy;
    aipc_shm_backend be = {&dummy, fshm_create, fshm_open, NULL};
    ck_assert_int_eq(aipc_broker_set_shm_backend(b, &be), AIPC_EINVAL);
    be.close = fshm_close;
    be.open = NULL;
    ck_assert_int_eq(aipc_broker_set_shm_backend(b, &be), AIPC_EINVAL);
    be.open = fshm_open;
    ck_assert_int_eq(aipc_broker_set_shm_backend(b, &be), 0);
    ck_assert_int_eq(aipc_broker_set_shm_backend(b, NULL), 0);   /* removed again */
    fake *f = client(b, 10, &id_alice);
    ck_assert_ptr_null(welcome_shm(f, HELLO_SHM));
    ck_assert_int_eq(aipc_broker_set_shm_backend(b, &be), AIPC_EINVAL);   /* after attach */
    fake_free(f);
    ck_assert_int_eq(aipc_broker_set_shm_backend(b, &be), AIPC_EINVAL);   /* ever attached */
    aipc_broker_free(b);
}
END_TEST

START_TEST(stats_json_has_shm_counters)
{
    static const char *const keys[] = {
        "shm_clients", "shm_bytes", "shm_segments", "shm_client_segments", "shm_publications",
        "shm_deliveries", "shm_inline_fallbacks", "shm_map_failures", "shm_in",
        "shm_bad_releases", "shm_release_frames"};
    aipc_broker *b = test_broker(0, 0, 0);
    fshm *fs = fshm_install(b);
    fake *f = client(b, 10, &id_alice);
    ck_assert_ptr_nonnull(welcome_shm(f, HELLO_SHM));
    ck_assert_int_eq(fake_sendt(f, "{\"op\":\"stats\",\"id\":1}", NULL), 0);
    rx_frame *r = fake_expect(f, "stats");
    cJSON *j = cJSON_Parse((const char *)r->payload);
    ck_assert_ptr_nonnull(j);
    for (size_t i = 0; i < N_OF(keys); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
        ck_assert_msg(cJSON_IsNumber(v), "stats without %s", keys[i]);
        ck_assert_int_eq(v->valueint, strcmp(keys[i], "shm_clients") == 0 ? 1 : 0);
    }
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "uptime_ms")));
    cJSON_Delete(j);
    fake_free(f);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* Control frames: only after a welcome with shm; malformed ones close the connection. */
START_TEST(control_frames_need_shm)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fshm *fs = fshm_install(b);
    fake *p = client(b, 10, &id_alice);
    ck_assert_ptr_null(welcome_shm(p, "{\"op\":\"hello\",\"proto\":1}"));
    fake_sendt(p, "{\"op\":\"shm_done\",\"r\":[[0,0]]}", NULL);
    fake_expect_error(p, "bad_request");
    ck_assert_int_eq(p->close_calls, 1);
    fake_free(p);
    fake *f = client(b, 11, &id_alice);
    ck_assert_ptr_nonnull(welcome_shm(f, HELLO_SHM));
    fake_sendt(f, "{\"op\":\"shm_done\",\"r\":[[0,0],[1,4096]]}", NULL);
    ck_assert_uint_eq(fake_stats(b).shm_bad_releases, 2);
    ck_assert_uint_eq(fake_pending(f), 0);
    fake_sendt(f, "{\"op\":\"shm_done\",\"r\":[]}", NULL);
    fake_expect_error(f, "bad_request");
    ck_assert_int_eq(f->close_calls, 1);
    fake_free(f);
    ck_assert_uint_eq(fs->opens + fs->creates, 0);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* With shm_release_page false the welcome's "shm" has no "rel", and a release page's announce
 * ("rel":1) is bad_request + close: nothing is opened. */
START_TEST(rel_page_not_offered)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.shm_release_page = false;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    fshm *fs = fshm_install(b);
    fshm_client_segment(fs, "aipc-10-0123456789abcdef0123456789abcdef-1", 4096);
    fake *f = client(b, 10, &id_alice);
    const cJSON *s = welcome_shm(f, HELLO_SHM);
    ck_assert(cJSON_IsObject(s));
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(s, "rel"));
    fake_sendt(f, "{\"op\":\"shm_seg\",\"seg\":1,\"name\":\"aipc-10-0123456789abcdef0123456789abcdef-1\","
                  "\"size\":4096,\"session\":1,\"id\":1,\"rel\":1}", NULL);
    fake_expect_error(f, "bad_request");
    ck_assert_int_eq(f->close_calls, 1);
    ck_assert_int_eq(fs->opens, 0);
    fake_free(f);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

static int load(aipc_broker_config *c, const char *json, char *err, size_t errlen)
{
    aipc_broker_config_defaults(c);
    return aipc_broker_config_load_json(c, json, err, errlen);
}

START_TEST(config_keys)
{
    aipc_broker_config c;
    char err[256];
    ck_assert_int_eq(load(&c, "{}", err, sizeof err), 0);
    ck_assert(c.shm);
    ck_assert_uint_eq(c.shm_threshold, 65536);
    ck_assert_uint_eq(c.max_shm_bytes, 256ull << 20);
    ck_assert_uint_eq(c.shm_segment_bytes, 8u << 20);
    ck_assert(c.shm_release_page);
    ck_assert_int_eq(load(&c, "{\"shm_release_page\":false}", err, sizeof err), 0);
    ck_assert(!c.shm_release_page);
    ck_assert_int_eq(load(&c, "{\"shm\":false,\"shm_threshold\":4096,\"max_shm_bytes\":0,"
                              "\"shm_segment_bytes\":1048576}", err, sizeof err), 0);
    ck_assert(!c.shm);
    ck_assert_uint_eq(c.shm_threshold, 4096);
    ck_assert_uint_eq(c.max_shm_bytes, 0);
    ck_assert_uint_eq(c.shm_segment_bytes, 1u << 20);
    ck_assert_int_eq(load(&c, "{\"shm_threshold\":1048576,\"max_payload\":1048576,"
                              "\"shm_segment_bytes\":1073741824,\"max_shm_bytes\":1099511627776}",
                          err, sizeof err), 0);
    ck_assert_uint_eq(c.shm_threshold, 1u << 20);
    /* the default threshold never makes a small max_payload invalid */
    ck_assert_int_eq(load(&c, "{\"max_payload\":1000}", err, sizeof err), 0);
    static const struct { const char *json, *key; } bad[] = {
        {"{\"shm\":1}", "\"shm\""},
        {"{\"shm\":\"true\"}", "\"shm\""},
        {"{\"shm_threshold\":4095}", "\"shm_threshold\""},
        {"{\"shm_threshold\":65536.5}", "\"shm_threshold\""},
        {"{\"shm_threshold\":16777217}", "\"shm_threshold\""},   /* > default max_payload */
        {"{\"max_payload\":65536,\"shm_threshold\":65537}", "\"shm_threshold\""},
        {"{\"shm_threshold\":65537,\"max_payload\":65536}", "\"shm_threshold\""},
        {"{\"max_shm_bytes\":-1}", "\"max_shm_bytes\""},
        {"{\"max_shm_bytes\":1099511627777}", "\"max_shm_bytes\""},
        {"{\"shm_segment_bytes\":1048575}", "\"shm_segment_bytes\""},
        {"{\"shm_segment_bytes\":1073745920}", "\"shm_segment_bytes\""},
        {"{\"shm_segment_bytes\":1050000}", "\"shm_segment_bytes\""},
        {"{\"shm\":true,\"shm\":false}", "\"shm\""},
        {"{\"shm_release_page\":1}", "\"shm_release_page\""},
        {"{\"shm_release_page\":null}", "\"shm_release_page\""},
    };
    for (size_t i = 0; i < N_OF(bad); i++) {
        aipc_broker_config_defaults(&c);
        c.shm_threshold = 12345;   /* untouched on failure */
        ck_assert_msg(aipc_broker_config_load_json(&c, bad[i].json, err, sizeof err) ==
                      AIPC_EINVAL, "%s accepted", bad[i].json);
        ck_assert_msg(strstr(err, bad[i].key) != NULL, "%s: %s", bad[i].json, err);
        ck_assert_uint_eq(c.shm_threshold, 12345);
    }
}
END_TEST

/* aipc_broker_new: zero threshold and segment size mean the defaults. */
START_TEST(new_fills_shm_defaults)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.shm_threshold = 0;
    cfg.shm_segment_bytes = 0;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    fshm *fs = fshm_install(b);
    fake *f = client(b, 10, &id_alice);
    const cJSON *s = welcome_shm(f, HELLO_SHM);
    ck_assert_int_eq(cJSON_GetObjectItem(s, "threshold")->valueint, 65536);
    fake_free(f);
    aipc_broker_free(b);
    fshm_free(fs);
    /* NULL config: shared memory on by default */
    b = aipc_broker_new(NULL, fake_now);
    fs = fshm_install(b);
    f = client(b, 10, &id_alice);
    ck_assert_ptr_nonnull(welcome_shm(f, HELLO_SHM));
    fake_free(f);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_shm_hello");
    TCase *tc = tcase_create("shm_hello");
    tcase_add_test(tc, welcome_when_all_hold);
    tcase_add_test(tc, plain_unless_all_hold);
    tcase_add_test(tc, welcome_tells_max_queue_bytes);
    tcase_add_test(tc, failed_hello_then_retry);
    tcase_add_test(tc, backend_install_rules);
    tcase_add_test(tc, stats_json_has_shm_counters);
    tcase_add_test(tc, control_frames_need_shm);
    tcase_add_test(tc, rel_page_not_offered);
    tcase_add_test(tc, config_keys);
    tcase_add_test(tc, new_fills_shm_defaults);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
