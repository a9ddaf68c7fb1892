/* test_broker_config.c - the strict JSON config loader: defaults, every key, and errors that
 * name the key (unknown keys, wrong types, out-of-range values, duplicates). */
#include "check_main.h"
#include "test_broker_fake.h"

#include <stddef.h>

/* Loads text expecting failure; the message must mention `needle`. */
static void expect_fail(const char *json, const char *needle)
{
    aipc_broker_config c;
    aipc_broker_config_defaults(&c);
    c.max_clients = 4242;              /* must stay untouched on failure */
    char err[256];
    int rc = aipc_broker_config_load_json(&c, json, err, sizeof err);
    ck_assert_msg(rc == AIPC_EINVAL, "accepted: %s", json);
    ck_assert_msg(strstr(err, needle) != NULL, "error for %s was \"%s\", lacks %s", json, err,
                  needle);
    ck_assert_uint_eq(c.max_clients, 4242);
}

START_TEST(defaults)
{
    aipc_broker_config c;
    aipc_broker_config_defaults(&c);
    ck_assert_str_eq(c.pipe_name, "asyncipc.broker");
    ck_assert_uint_eq(c.max_clients, 1024);
    ck_assert_uint_eq(c.max_payload, 16u * 1024 * 1024);
    ck_assert_uint_eq(c.max_queue_bytes, 8u * 1024 * 1024);
    ck_assert_uint_eq(c.max_retained_bytes, 64ull * 1024 * 1024);
    ck_assert_int_eq(c.log_level, AIPC_LOG_INFO);
    ck_assert_str_eq(c.log_file, "");
    ck_assert_str_eq(c.sddl, "");
    char err[64];
    aipc_broker_config d;
    ck_assert_int_eq(aipc_broker_config_load_json(&d, "{}", err, sizeof err), 0);
    ck_assert_mem_eq(&c, &d, sizeof c);
    ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(all_keys)
{
    aipc_broker_config c;
    char err[128];
    const char *json = "{ \"pipe_name\": \"\\\\\\\\.\\\\PIPE\\\\my.bus\", \"max_clients\": 10,"
                       " \"max_payload\": 1048576, \"max_queue_bytes\": 65536,"
                       " \"max_retained_bytes\": 4096,"
                       " \"log_level\": \"debug\", \"log_file\": \"C:\\\\logs\\\\b.log\","
                       " \"sddl\": \"D:P(A;;GA;;;SY)\" }";
    ck_assert_int_eq(aipc_broker_config_load_json(&c, json, err, sizeof err), 0);
    ck_assert_str_eq(c.pipe_name, "my.bus");
    ck_assert_uint_eq(c.max_clients, 10);
    ck_assert_uint_eq(c.max_payload, 1048576);
    ck_assert_uint_eq(c.max_queue_bytes, 65536);
    ck_assert_uint_eq(c.max_retained_bytes, 4096);
    ck_assert_int_eq(c.log_level, AIPC_LOG_DEBUG);
    ck_assert_str_eq(c.log_file, "C:\\logs\\b.log");
    ck_assert_str_eq(c.sddl, "D:P(A;;GA;;;SY)");
    ck_assert_int_eq(aipc_broker_config_load_json(&c, "{\"pipe_name\":\"short\",\"log_level\":0}",
                                                  err, sizeof err), 0);
    ck_assert_str_eq(c.pipe_name, "short");
    ck_assert_int_eq(c.log_level, AIPC_LOG_ERROR);
    ck_assert_int_eq(aipc_broker_config_load_json(&c, "{\"log_level\":\"trace\",\"log_file\":\"\"}",
                                                  err, sizeof err), 0);
    ck_assert_int_eq(c.log_level, AIPC_LOG_TRACE);
    ck_assert_int_eq(aipc_broker_config_load_json(&c, "{\"max_clients\":65536,\"max_payload\":1073741824,"
                                                  "\"max_queue_bytes\":1099511627776}", err, sizeof err), 0);
    ck_assert_uint_eq(c.max_queue_bytes, 1ull << 40);
    /* max_retained_bytes: both ends of 0..1 TiB; keys not given keep their defaults. */
    ck_assert_int_eq(aipc_broker_config_load_json(&c, "{\"max_retained_bytes\":0}", err,
                                                  sizeof err), 0);
    ck_assert_uint_eq(c.max_retained_bytes, 0);
    ck_assert_uint_eq(c.max_queue_bytes, 8u * 1024 * 1024);
    ck_assert_int_eq(aipc_broker_config_load_json(&c, "{\"max_retained_bytes\":1099511627776}",
                                                  err, sizeof err), 0);
    ck_assert_uint_eq(c.max_retained_bytes, 1ull << 40);
    ck_assert_int_eq(aipc_broker_config_load_json(&c, "{\"max_clients\":5}", err, sizeof err), 0);
    ck_assert_uint_eq(c.max_retained_bytes, 64ull * 1024 * 1024);
}
END_TEST

START_TEST(unknown_and_duplicate_keys)
{
    expect_fail("{\"pipe\":\"x\"}", "\"pipe\"");
    expect_fail("{\"max_clients\":1,\"Max_Clients\":2}", "Max_Clients");
    expect_fail("{\"max_clients\":1,\"max_clients\":2}", "duplicate key \"max_clients\"");
    expect_fail("{\"sddl\":\"\",\"extra\":{}}", "unknown key \"extra\"");
}
END_TEST

START_TEST(wrong_types)
{
    expect_fail("{\"max_clients\":\"10\"}", "\"max_clients\" must be an integer");
    expect_fail("{\"max_clients\":1.5}", "\"max_clients\" must be an integer");
    expect_fail("{\"max_payload\":true}", "\"max_payload\"");
    expect_fail("{\"max_queue_bytes\":null}", "\"max_queue_bytes\"");
    expect_fail("{\"max_retained_bytes\":\"64MiB\"}", "\"max_retained_bytes\" must be an integer");
    expect_fail("{\"max_retained_bytes\":1.5}", "\"max_retained_bytes\" must be an integer");
    expect_fail("{\"max_retained_bytes\":true}", "\"max_retained_bytes\" must be an integer");
    expect_fail("{\"max_retained_bytes\":null}", "\"max_retained_bytes\" must be an integer");
    expect_fail("{\"max_retained_bytes\":[1]}", "\"max_retained_bytes\" must be an integer");
    expect_fail("{\"pipe_name\":5}", "\"pipe_name\" must be a string");
    expect_fail("{\"log_file\":[]}", "\"log_file\" must be a string");
    expect_fail("{\"sddl\":false}", "\"sddl\" must be a string");
    expect_fail("{\"log_level\":\"loud\"}", "\"log_level\"");
    expect_fail("{\"log_level\":true}", "\"log_level\"");
}
END_TEST

START_TEST(out_of_range)
{
    expect_fail("{\"max_clients\":0}", "\"max_clients\" must be between 1 and 65536");
    expect_fail("{\"max_clients\":65537}", "\"max_clients\"");
    expect_fail("{\"max_clients\":-1}", "\"max_clients\"");
    expect_fail("{\"max_payload\":0}", "\"max_payload\"");
    expect_fail("{\"max_payload\":1073741825}", "\"max_payload\"");
    expect_fail("{\"max_queue_bytes\":65535}", "\"max_queue_bytes\"");
    expect_fail("{\"max_queue_bytes\":1e30}", "\"max_queue_bytes\"");
    expect_fail("{\"max_retained_bytes\":-1}",
                "\"max_retained_bytes\" must be between 0 and 1099511627776");
    expect_fail("{\"max_retained_bytes\":1099511627777}", "\"max_retained_bytes\"");
    expect_fail("{\"max_retained_bytes\":1e30}", "\"max_retained_bytes\"");
    expect_fail("{\"max_retained_bytes\":1,\"max_retained_bytes\":2}",
                "duplicate key \"max_retained_bytes\"");
    expect_fail("{\"max_retained\":1}", "unknown key \"max_retained\"");
    expect_fail("{\"log_level\":5}", "\"log_level\"");
    expect_fail("{\"log_level\":-1}", "\"log_level\"");
    expect_fail("{\"pipe_name\":\"\"}", "\"pipe_name\"");
    expect_fail("{\"pipe_name\":\"\\\\\\\\.\\\\pipe\\\\\"}", "\"pipe_name\"");
    expect_fail("{\"pipe_name\":\"a\\\\b\"}", "\"pipe_name\"");
    char big[600] = "{\"pipe_name\":\"";
    memset(big + 14, 'p', 257);
    strcpy(big + 14 + 257, "\"}");
    expect_fail(big, "\"pipe_name\"");
    char *huge = malloc(5000);
    strcpy(huge, "{\"sddl\":\"");
    memset(huge + 9, 'D', 4096);
    strcpy(huge + 9 + 4096, "\"}");
    expect_fail(huge, "\"sddl\" is too long");
    free(huge);
}
END_TEST

START_TEST(not_an_object)
{
    expect_fail("", "invalid JSON");
    expect_fail("{\"max_clients\":", "invalid JSON");
    expect_fail("[]", "JSON object");
    expect_fail("7", "JSON object");
    aipc_broker_config c;
    ck_assert_int_eq(aipc_broker_config_load_json(&c, NULL, NULL, 0), AIPC_EINVAL);
    char tiny[4];
    ck_assert_int_eq(aipc_broker_config_load_json(&c, "{\"zzzzzz\":1}", tiny, sizeof tiny), AIPC_EINVAL);
    ck_assert_uint_eq(strlen(tiny), 3);
}
END_TEST

/* The resource limits (issue "every resource a client can make the broker hold is bounded"):
 * each key's default, both ends of its range accepted, one past each end refused naming the
 * key, and a wrong type refused. */
typedef struct limit_key {
    const char *key;
    uint64_t lo, hi, def;
    size_t off, size;          /* the field in aipc_broker_config */
} limit_key;

#define LK(k, lo, hi, def, field)                                                           \
    { k, lo, hi, def, offsetof(aipc_broker_config, field),                                  \
      sizeof(((aipc_broker_config *)0)->field) }

static const limit_key limit_keys[] = {
    LK("hello_timeout_ms", 1, 86400000, 10000, hello_timeout_ms),
    LK("max_subscriptions", 1, 1000000, 1024, max_subscriptions),
    LK("max_subscription_bytes", 4096, 1ull << 32, 1048576, max_subscription_bytes),
    LK("max_pending_requests", 1, 1000000, 1024, max_pending_requests),
    LK("request_timeout_ms", 1, 86400000, 60000, request_timeout_ms),
    LK("max_incomplete_bytes", 65536, 1ull << 40, 64ull << 20, max_incomplete_bytes),
    LK("frame_timeout_ms", 1, 86400000, 30000, frame_timeout_ms),
    LK("close_linger_ms", 1, 86400000, 5000, close_linger_ms),
};

static uint64_t field_of(const aipc_broker_config *c, const limit_key *k)
{
    const char *p = (const char *)c + k->off;
    if (k->size == 4) {
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

START_TEST(limit_keys_ranges)
{
    for (size_t i = 0; i < sizeof limit_keys / sizeof limit_keys[0]; i++) {
        const limit_key *k = &limit_keys[i];
        aipc_broker_config c;
        aipc_broker_config_defaults(&c);
        ck_assert_msg(field_of(&c, k) == k->def, "%s default", k->key);
        char json[160], err[256];
        uint64_t ends[2] = {k->lo, k->hi};
        for (int e = 0; e < 2; e++) {
            snprintf(json, sizeof json, "{\"%s\":%llu}", k->key, (unsigned long long)ends[e]);
            ck_assert_msg(aipc_broker_config_load_json(&c, json, err, sizeof err) == 0, "%s: %s",
                          json, err);
            ck_assert_msg(field_of(&c, k) == ends[e], "%s", json);
        }
        char needle[96];
        snprintf(needle, sizeof needle, "\"%s\" must be between", k->key);
        if (k->lo > 0) {
            snprintf(json, sizeof json, "{\"%s\":%llu}", k->key, (unsigned long long)k->lo - 1);
            expect_fail(json, needle);
        }
        snprintf(json, sizeof json, "{\"%s\":%llu}", k->key, (unsigned long long)k->hi + 1);
        expect_fail(json, needle);
        snprintf(json, sizeof json, "{\"%s\":\"1\"}", k->key);
        snprintf(needle, sizeof needle, "\"%s\" must be an integer", k->key);
        expect_fail(json, needle);
    }
}
END_TEST

/* The broker fills zero fields with defaults (max_retained_bytes excepted: 0 is a real
 * setting, "no retained messages"; test_broker_retained covers it). */
START_TEST(broker_new_fills_defaults)
{
    aipc_broker_config c;
    memset(&c, 0, sizeof c);
    aipc_broker *b = aipc_broker_new(&c, NULL);
    ck_assert_ptr_nonnull(b);
    fake *f = fake_new(b, 1);
    f->conn.ops = &fake_ops;
    fake_sendt(f, "{\"op\":\"hello\",\"proto\":1}", NULL);
    ck_assert_int_eq((int)rx_num(fake_expect(f, "welcome"), "max_payload"), 16 * 1024 * 1024);
    fake_free(f);
    aipc_broker_free(b);
    aipc_broker_free(NULL);
    b = aipc_broker_new(NULL, NULL);
    ck_assert_ptr_nonnull(b);
    aipc_broker_free(b);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, all_keys);
    tcase_add_test(tc, unknown_and_duplicate_keys);
    tcase_add_test(tc, wrong_types);
    tcase_add_test(tc, out_of_range);
    tcase_add_test(tc, not_an_object);
    tcase_add_test(tc, broker_new_fills_defaults);
    tcase_add_test(tc, limit_keys_ranges);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
