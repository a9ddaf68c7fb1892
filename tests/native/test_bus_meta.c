/* test_bus_meta.c - bus meta building/parsing, validation and MQTT topic matching. */
#include "check_main.h"
#include <stdlib.h>
#include <string.h>

#include "bus_core.h"

/* Builds o and compares with the expected compact JSON. */
static void expect_meta(const aipc__bus_out *o, const char *want)
{
    size_t len = 0;
    char *s = aipc__bus_meta_build(o, &len);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, want);
    ck_assert_uint_eq(len, strlen(want));
    free(s);
}

START_TEST(build_client_ops)
{
    expect_meta(&(aipc__bus_out){.op = "hello", .name = "ui"}, "{\"op\":\"hello\",\"proto\":1,\"name\":\"ui\"}");
    expect_meta(&(aipc__bus_out){.op = "hello"}, "{\"op\":\"hello\",\"proto\":1}");
    expect_meta(&(aipc__bus_out){.op = "sub", .topic = "a/+/c", .id = 3},
                "{\"op\":\"sub\",\"topic\":\"a/+/c\",\"id\":3}");
    expect_meta(&(aipc__bus_out){.op = "pub", .topic = "a/b", .retain = 1},
                "{\"op\":\"pub\",\"topic\":\"a/b\",\"retain\":true}");
    expect_meta(&(aipc__bus_out){.op = "pub", .topic = "a/b"}, "{\"op\":\"pub\",\"topic\":\"a/b\"}");
    expect_meta(&(aipc__bus_out){.op = "send", .to = "ui", .id = 9},
                "{\"op\":\"send\",\"to\":\"ui\",\"id\":9}");
    expect_meta(&(aipc__bus_out){.op = "send", .to = "17"}, "{\"op\":\"send\",\"to\":17}");
    expect_meta(&(aipc__bus_out){.op = "req", .to = "svc", .id = 5},
                "{\"op\":\"req\",\"to\":\"svc\",\"id\":5}");
    expect_meta(&(aipc__bus_out){.op = "rep", .to_id = 7, .re = 5}, "{\"op\":\"rep\",\"to\":7,\"re\":5}");
    expect_meta(&(aipc__bus_out){.op = "ping", .id = 1}, "{\"op\":\"ping\",\"id\":1}");
    expect_meta(&(aipc__bus_out){.op = "stats", .id = 2}, "{\"op\":\"stats\",\"id\":2}");
}
END_TEST

START_TEST(build_escapes_strings)
{
    size_t len;
    char *s = aipc__bus_meta_build(&(aipc__bus_out){.op = "pub", .topic = "a\"b\\c\n"}, &len);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "{\"op\":\"pub\",\"topic\":\"a\\\"b\\\\c\\n\"}");
    free(s);
    ck_assert_ptr_null(aipc__bus_meta_build(&(aipc__bus_out){.op = NULL}, &len));
    ck_assert_ptr_null(aipc__bus_meta_build(NULL, &len));
}
END_TEST

/* Parses a NUL-terminated meta string. */
static int parse(const char *m, aipc__bus_in *in)
{
    return aipc__bus_meta_parse((const uint8_t *)m, strlen(m), in);
}

/* The welcome's max_queue_bytes (the gather bound's base); 0 from a broker that omits it. */
START_TEST(parse_welcome_queue_bound)
{
    aipc__bus_in in;
    ck_assert_int_eq(parse("{\"op\":\"welcome\",\"proto\":1,\"id\":7,\"name\":null,\"max_payload\":16777216,\"max_queue_bytes\":3145728}", &in), 0);
    ck_assert_uint_eq(in.max_queue_bytes, 3145728u);
    aipc__bus_in_free(&in);
    ck_assert_int_eq(parse("{\"op\":\"welcome\",\"proto\":1,\"id\":7,\"max_payload\":16777216}", &in), 0);
    ck_assert_uint_eq(in.max_queue_bytes, 0);
    aipc__bus_in_free(&in);
}
END_TEST

/* The welcome's "shm" object: "rel":1 when the broker accepts a release page, else 0. */
START_TEST(parse_welcome_release_page)
{
    aipc__bus_in in;
    ck_assert_int_eq(parse("{\"op\":\"welcome\",\"proto\":1,\"id\":7,\"shm\":{\"v\":1,\"rel\":1}}", &in), 0);
    ck_assert_uint_eq(in.shm_v, 1);
    ck_assert_uint_eq(in.shm_rel, 1);
    aipc__bus_in_free(&in);
    ck_assert_int_eq(parse("{\"op\":\"welcome\",\"proto\":1,\"id\":7,\"shm\":{\"v\":1}}", &in), 0);
    ck_assert_uint_eq(in.shm_v, 1);
    ck_assert_uint_eq(in.shm_rel, 0);
    aipc__bus_in_free(&in);
    ck_assert_int_eq(parse("{\"op\":\"welcome\",\"proto\":1,\"id\":7,\"shm\":{\"v\":1,\"rel\":true}}", &in), 0);
    ck_assert_uint_eq(in.shm_rel, 0);                  /* not a number: not offered */
    aipc__bus_in_free(&in);
}
END_TEST

START_TEST(parse_broker_ops)
{
    aipc__bus_in in;
    ck_assert_int_eq(parse("{\"op\":\"welcome\",\"proto\":1,\"id\":7,\"name\":\"ui\",\"max_payload\":16777216}", &in), 0);
    ck_assert_int_eq(in.op, AIPC_BUS_IN_WELCOME);
    ck_assert(in.has_id);
    ck_assert_uint_eq(in.id, 7);
    ck_assert_str_eq(in.name, "ui");
    ck_assert_uint_eq(in.proto, 1);
    ck_assert_uint_eq(in.max_payload, 16777216u);
    aipc__bus_in_free(&in);

    ck_assert_int_eq(parse("{\"op\":\"msg\",\"topic\":\"a/b\",\"from\":{\"id\":7,\"name\":\"ui\",\"pid\":1234},\"retained\":true}", &in), 0);
    ck_assert_int_eq(in.op, AIPC_BUS_IN_MSG);
    ck_assert_str_eq(in.topic, "a/b");
    ck_assert(in.has_from);
    ck_assert_uint_eq(in.from.id, 7);
    ck_assert_str_eq(in.from.name, "ui");
    ck_assert_uint_eq(in.from.pid, 1234);
    ck_assert(in.retained);
    aipc__bus_in_free(&in);

    ck_assert_int_eq(parse("{\"op\":\"req\",\"from\":{\"id\":3},\"id\":5}", &in), 0);
    ck_assert_int_eq(in.op, AIPC_BUS_IN_REQ);
    ck_assert_uint_eq(in.id, 5);
    ck_assert_str_eq(in.from.name, "");
    ck_assert_uint_eq(in.from.pid, 0);
    aipc__bus_in_free(&in);

    ck_assert_int_eq(parse("{\"op\":\"error\",\"re\":4,\"code\":\"no_such_client\",\"message\":\"x\"}", &in), 0);
    ck_assert_int_eq(in.op, AIPC_BUS_IN_ERROR);
    ck_assert(in.has_re);
    ck_assert_uint_eq(in.re, 4);
    ck_assert(!in.has_id);
    ck_assert_str_eq(in.code, "no_such_client");
    ck_assert_str_eq(in.message, "x");
    aipc__bus_in_free(&in);

    ck_assert_int_eq(parse("{\"op\":\"dropped\",\"count\":12}", &in), 0);
    ck_assert_int_eq(in.op, AIPC_BUS_IN_DROPPED);
    ck_assert_uint_eq(in.count, 12);
    aipc__bus_in_free(&in);

    ck_assert_int_eq(parse("{\"op\":\"bye\",\"reason\":\"shutdown\"}", &in), 0);
    ck_assert_int_eq(in.op, AIPC_BUS_IN_BYE);
    ck_assert_str_eq(in.reason, "shutdown");
    ck_assert_str_eq(in.topic, "");
    aipc__bus_in_free(&in);

    ck_assert_int_eq(parse("{\"op\":\"future-op\",\"x\":[1,2]}", &in), 0);
    ck_assert_int_eq(in.op, AIPC_BUS_IN_UNKNOWN);
    ck_assert_str_eq(in.op_text, "future-op");
    aipc__bus_in_free(&in);
}
END_TEST

START_TEST(parse_rejects_garbage)
{
    aipc__bus_in in;
    ck_assert_int_eq(parse("[1,2]", &in), AIPC_EPROTO);
    ck_assert_int_eq(parse("{\"op\":3}", &in), AIPC_EPROTO);
    ck_assert_int_eq(parse("{\"topic\":\"a\"}", &in), AIPC_EPROTO);
    ck_assert_int_eq(parse("{\"op\":\"msg\"", &in), AIPC_EPROTO);
    ck_assert_int_eq(aipc__bus_meta_parse(NULL, 0, &in), AIPC_EPROTO);
    /* length-bounded: no NUL terminator needed, trailing bytes not read */
    const char m[] = "{\"op\":\"pong\",\"re\":2}XXXX";
    ck_assert_int_eq(aipc__bus_meta_parse((const uint8_t *)m, strlen(m) - 4, &in), 0);
    ck_assert_int_eq(in.op, AIPC_BUS_IN_PONG);
    ck_assert_uint_eq(in.re, 2);
    aipc__bus_in_free(&in);
    /* wrong types are treated as absent */
    ck_assert_int_eq(parse("{\"op\":\"msg\",\"topic\":5,\"from\":\"x\",\"id\":-1,\"re\":\"2\"}", &in), 0);
    ck_assert_str_eq(in.topic, "");
    ck_assert(!in.has_from && !in.has_id && !in.has_re);
    aipc__bus_in_free(&in);
}
END_TEST

START_TEST(presence_payload)
{
    aipc_bus_peer who;
    char buf[8];
    const char *p = "{\"id\":9,\"name\":\"averylongname\",\"pid\":42}";
    ck_assert_int_eq(aipc__bus_presence_parse((const uint8_t *)p, strlen(p), &who, buf, sizeof buf), 0);
    ck_assert_uint_eq(who.id, 9);
    ck_assert_uint_eq(who.pid, 42);
    ck_assert_str_eq(who.name, "averylo");
    p = "{\"name\":\"x\"}";
    ck_assert_int_eq(aipc__bus_presence_parse((const uint8_t *)p, strlen(p), &who, buf, sizeof buf), AIPC_EPROTO);
    ck_assert_int_eq(aipc__bus_presence_parse((const uint8_t *)"nope", 4, &who, buf, sizeof buf), AIPC_EPROTO);
}
END_TEST

/* The identity the broker stamps: sid/session/integrity in presence payloads and in "from". */
START_TEST(peer_identity)
{
    aipc_bus_peer who;
    char big[AIPC_BUS_PRESENCE_BUF], small[8];
    const char *p = "{\"id\":9,\"name\":\"ui\",\"pid\":42,\"sid\":\"S-1-5-21-1-2-3-1001\","
                    "\"session\":2,\"integrity\":8192}";
    ck_assert_int_eq(aipc__bus_presence_parse((const uint8_t *)p, strlen(p), &who, big, sizeof big), 0);
    ck_assert_str_eq(who.name, "ui");
    ck_assert_str_eq(who.user_sid, "S-1-5-21-1-2-3-1001");
    ck_assert_uint_eq(who.session, 2);
    ck_assert_uint_eq(who.integrity, 0x2000);
    /* no room for the SID after the name: "" rather than a cut SID */
    ck_assert_int_eq(aipc__bus_presence_parse((const uint8_t *)p, strlen(p), &who, small, sizeof small), 0);
    ck_assert_str_eq(who.name, "ui");
    ck_assert_str_eq(who.user_sid, "");
    /* an old broker: no identity fields */
    p = "{\"id\":9,\"name\":\"ui\",\"pid\":42}";
    ck_assert_int_eq(aipc__bus_presence_parse((const uint8_t *)p, strlen(p), &who, big, sizeof big), 0);
    ck_assert_str_eq(who.user_sid, "");
    ck_assert_uint_eq(who.session, 0);
    ck_assert_uint_eq(who.integrity, 0);
    aipc__bus_in in;
    const char *m = "{\"op\":\"msg\",\"topic\":\"a\",\"from\":{\"id\":3,\"name\":\"x\",\"pid\":1,"
                    "\"sid\":\"S-1-5-18\",\"session\":0,\"integrity\":16384}}";
    ck_assert_int_eq(aipc__bus_meta_parse((const uint8_t *)m, strlen(m), &in), 0);
    ck_assert(in.has_from);
    ck_assert_str_eq(in.from.user_sid, "S-1-5-18");
    ck_assert_uint_eq(in.from.integrity, 0x4000);
    aipc__bus_in_free(&in);
}
END_TEST

START_TEST(validation)
{
    ck_assert(aipc__bus_name_valid("ui"));
    ck_assert(aipc__bus_name_valid("a.b_c-9"));
    ck_assert(!aipc__bus_name_valid(""));
    ck_assert(!aipc__bus_name_valid(NULL));
    ck_assert(!aipc__bus_name_valid("a b"));
    ck_assert(!aipc__bus_name_valid("a/b"));
    char longname[130];
    memset(longname, 'x', 128);
    longname[128] = 0;
    ck_assert(aipc__bus_name_valid(longname));
    longname[128] = 'x';
    longname[129] = 0;
    ck_assert(!aipc__bus_name_valid(longname));

    ck_assert(aipc__bus_topic_valid("a/b"));
    ck_assert(aipc__bus_topic_valid("a//b/"));
    ck_assert(!aipc__bus_topic_valid(""));
    ck_assert(!aipc__bus_topic_valid("a/+"));
    ck_assert(!aipc__bus_topic_valid("a/#"));
    ck_assert(!aipc__bus_topic_valid("$bus/joined"));
    ck_assert(!aipc__bus_topic_valid(NULL));

    ck_assert(aipc__bus_filter_valid("a/+/c"));
    ck_assert(aipc__bus_filter_valid("#"));
    ck_assert(aipc__bus_filter_valid("+"));
    ck_assert(aipc__bus_filter_valid("a/#"));
    ck_assert(aipc__bus_filter_valid("$bus/+"));
    ck_assert(!aipc__bus_filter_valid("a/#/c"));
    ck_assert(!aipc__bus_filter_valid("a+/c"));
    ck_assert(!aipc__bus_filter_valid("a/b#"));
    ck_assert(!aipc__bus_filter_valid(""));

    char *huge = malloc(AIPC_PROTO_TOPIC_MAX_BYTES + 2);
    memset(huge, 'a', AIPC_PROTO_TOPIC_MAX_BYTES + 1);
    huge[AIPC_PROTO_TOPIC_MAX_BYTES + 1] = 0;
    ck_assert(!aipc__bus_topic_valid(huge));
    ck_assert(!aipc__bus_filter_valid(huge));
    huge[AIPC_PROTO_TOPIC_MAX_BYTES] = 0;
    ck_assert(aipc__bus_topic_valid(huge));
    free(huge);

    uint64_t id = 0;
    ck_assert(aipc__bus_to_is_id("17", &id));
    ck_assert_uint_eq(id, 17);
    ck_assert(aipc__bus_to_is_id("18446744073709551615", &id));
    ck_assert(id == UINT64_MAX);
    ck_assert(!aipc__bus_to_is_id("18446744073709551616", &id));
    ck_assert(!aipc__bus_to_is_id("1a", &id));
    ck_assert(!aipc__bus_to_is_id("", &id));
}
END_TEST

START_TEST(matching)
{
    ck_assert(aipc__bus_topic_match("a/b", "a/b"));
    ck_assert(!aipc__bus_topic_match("a/b", "a/b/c"));
    ck_assert(!aipc__bus_topic_match("a/b/c", "a/b"));
    ck_assert(aipc__bus_topic_match("a/+/c", "a/x/c"));
    ck_assert(aipc__bus_topic_match("a/+/c", "a//c"));
    ck_assert(!aipc__bus_topic_match("a/+/c", "a/x/y/c"));
    ck_assert(aipc__bus_topic_match("a/#", "a"));
    ck_assert(aipc__bus_topic_match("a/#", "a/b/c"));
    ck_assert(!aipc__bus_topic_match("a/#", "ab"));
    ck_assert(aipc__bus_topic_match("#", "x/y"));
    ck_assert(aipc__bus_topic_match("+", "x"));
    ck_assert(!aipc__bus_topic_match("+", "x/y"));
    ck_assert(aipc__bus_topic_match("+/+", "x/y"));
    ck_assert(!aipc__bus_topic_match("#", "$bus/joined"));
    ck_assert(!aipc__bus_topic_match("+/joined", "$bus/joined"));
    ck_assert(aipc__bus_topic_match("$bus/#", "$bus/joined"));
    ck_assert(aipc__bus_topic_match("$bus/+", "$bus/left"));
    ck_assert(!aipc__bus_topic_match("a", "b"));
    ck_assert(!aipc__bus_topic_match("ab", "a"));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("bus_meta");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, build_client_ops);
    tcase_add_test(tc, peer_identity);
    tcase_add_test(tc, build_escapes_strings);
    tcase_add_test(tc, parse_broker_ops);
    tcase_add_test(tc, parse_welcome_queue_bound);
    tcase_add_test(tc, parse_welcome_release_page);
    tcase_add_test(tc, parse_rejects_garbage);
    tcase_add_test(tc, presence_payload);
    tcase_add_test(tc, validation);
    tcase_add_test(tc, matching);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite);
