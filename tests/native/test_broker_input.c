/* test_broker_input.c - bad input: hello first, invalid JSON, non-object metas, unknown or
 * missing op, bad ids, oversize frames (too_large + close), byte-by-byte input, ping, stats. */
#include "check_main.h"
#include "test_broker_fake.h"

/* Anything but hello first gets an error and a close. */
START_TEST(hello_must_be_first)
{
    const char *firsts[] = {"{\"op\":\"ping\"}", "{\"op\":\"pub\",\"topic\":\"a\"}",
                            "{\"op\":\"sub\",\"topic\":\"#\",\"id\":1}", "not json", "[]", "",
                            "{\"op\":\"nope\"}", "{}"};
    const char *codes[] = {"hello_required", "hello_required", "hello_required", "bad_meta",
                           "bad_meta", "bad_meta", "unknown_op", "unknown_op"};
    aipc_broker *b = test_broker(0, 0, 0);
    for (size_t i = 0; i < sizeof firsts / sizeof firsts[0]; i++) {
        fake *c = fake_new(b, 1);
        ck_assert_int_eq(fake_sendt(c, firsts[i], NULL), 0);
        fake_expect_error(c, codes[i]);
        ck_assert_int_eq(c->close_calls, 1);
        /* Further input is ignored, even a valid hello. */
        fake_sendt(c, "{\"op\":\"hello\",\"proto\":1}", NULL);
        ck_assert_ptr_null(fake_next(c));
        fake_free(c);
    }
    aipc_broker_free(b);
}
END_TEST

/* A proto mismatch is an error but the client may try again with proto 1. */
START_TEST(proto_mismatch)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *c = fake_new(b, 1);
    fake_sendt(c, "{\"op\":\"hello\",\"proto\":2,\"id\":1}", NULL);
    ck_assert_int_eq((int)rx_num(fake_expect_error(c, "proto_mismatch"), "re"), 1);
    fake_sendt(c, "{\"op\":\"hello\"}", NULL);
    fake_expect_error(c, "proto_mismatch");
    fake_sendt(c, "{\"op\":\"hello\",\"proto\":\"1\"}", NULL);
    fake_expect_error(c, "proto_mismatch");
    ck_assert_int_eq(c->close_calls, 0);
    fake_hello(c, "late");
    fake_sendt(c, "{\"op\":\"hello\",\"proto\":1,\"id\":2}", NULL);
    ck_assert_int_eq((int)rx_num(fake_expect_error(c, "bad_request"), "re"), 2);
    fake_free(c);
    aipc_broker_free(b);
}
END_TEST

/* After hello, bad metas get an error and the connection stays up. */
START_TEST(bad_meta_keeps_connection)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *c = fake_new(b, 1);
    fake_hello(c, NULL);
    struct {
        const char *meta, *code;
    } t[] = {
        {"not json", "bad_meta"},
        {"{\"op\":\"ping\"", "bad_meta"},
        {"[1,2]", "bad_meta"},
        {"\"str\"", "bad_meta"},
        {"42", "bad_meta"},
        {"null", "bad_meta"},
        {"", "bad_meta"},
        {"{\"op\":\"ping\"}garbage", "bad_meta"},
        {"{\"op\":\"p\\u0000ing\"}", "bad_meta"},
        {"{}", "unknown_op"},
        {"{\"op\":5}", "unknown_op"},
        {"{\"op\":\"PING\"}", "unknown_op"},
        {"{\"op\":\"launch\"}", "unknown_op"},
        {"{\"op\":\"ping\",\"id\":1.5}", "bad_request"},
        {"{\"op\":\"ping\",\"id\":\"7\"}", "bad_request"},
        {"{\"op\":\"ping\",\"id\":1e300}", "bad_request"},
        {"{\"op\":\"sub\"}", "bad_request"},
        {"{\"op\":\"sub\",\"topic\":7}", "bad_request"},
        {"{\"op\":\"pub\",\"topic\":null}", "bad_request"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        ck_assert_int_eq(fake_sendt(c, t[i].meta, "payload"), 0);
        rx_frame *e = fake_next(c);
        ck_assert_msg(e != NULL, "no answer to %s", t[i].meta);
        ck_assert_msg(strcmp(rx_str(e, "op"), "error") == 0 && strcmp(rx_str(e, "code"), t[i].code) == 0,
                      "meta %s: got %s/%s, want %s", t[i].meta, rx_str(e, "op"), rx_str(e, "code"),
                      t[i].code);
    }
    ck_assert_int_eq(c->close_calls, 0);
    /* An unknown op with an id still echoes it. */
    fake_sendt(c, "{\"op\":\"launch\",\"id\":-3}", NULL);
    ck_assert_int_eq((int)rx_num(fake_expect_error(c, "unknown_op"), "re"), -3);
    /* Large exact ids survive the round trip. */
    fake_sendt(c, "{\"op\":\"ping\",\"id\":9007199254740991}", NULL);
    ck_assert(rx_num(fake_expect(c, "pong"), "re") == 9007199254740991.0);
    aipc_broker_stats st;
    aipc_broker_get_stats(b, &st);
    ck_assert_uint_eq(st.errors, sizeof t / sizeof t[0] + 1);
    fake_free(c);
    aipc_broker_free(b);
}
END_TEST

/* A payload over max_payload: too_large, then close; other clients are not disturbed. */
START_TEST(oversize_payload_too_large)
{
    aipc_broker *b = test_broker(0, 1000, 0);
    fake *c = fake_new(b, 1), *other = fake_new(b, 2);
    fake_hello(c, NULL);
    fake_hello(other, NULL);
    fake_sendt(other, "{\"op\":\"sub\",\"topic\":\"#\"}", NULL);
    static char pl[1001];
    memset(pl, 'x', sizeof pl);
    fake_send(c, "{\"op\":\"pub\",\"topic\":\"a\"}", pl, 1000);   /* exactly the limit: fine */
    ck_assert_uint_eq(fake_expect(other, "msg")->plen, 1000);
    ck_assert_int_eq(fake_send(c, "{\"op\":\"pub\",\"topic\":\"a\"}", pl, 1001), 0);
    rx_frame *e = fake_expect_error(c, "too_large");
    ck_assert(!rx_has(e, "re"));
    ck_assert_int_eq(c->close_calls, 1);
    ck_assert_ptr_null(fake_next(other));
    fake_sendt(other, "{\"op\":\"ping\",\"id\":1}", NULL);
    fake_expect(other, "pong");
    fake_free(c);
    fake_free(other);
    aipc_broker_free(b);
}
END_TEST

/* A meta over 64 KiB: too_large from the header alone (before the body arrives). */
START_TEST(oversize_meta_too_large)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *c = fake_new(b, 1);
    fake_hello(c, NULL);
    uint8_t hdr[8];
    aipc_frame_put_header(hdr, 65537, 0);
    ck_assert_int_eq(aipc_broker_input(b, c->cl, hdr, 8), 0);
    fake_expect_error(c, "too_large");
    ck_assert_int_eq(c->close_calls, 1);
    fake_free(c);
    /* Exactly 64 KiB of meta is accepted. */
    c = fake_new(b, 1);
    fake_hello(c, NULL);
    char *meta = malloc(65537);
    memset(meta, ' ', 65536);
    memcpy(meta, "{\"op\":\"ping\",\"id\":5}", 20);
    meta[65536] = 0;
    fake_sendt(c, meta, NULL);
    ck_assert_int_eq((int)rx_num(fake_expect(c, "pong"), "re"), 5);
    free(meta);
    /* Also before hello. */
    fake *d = fake_new(b, 2);
    aipc_frame_put_header(hdr, 0, 0xffffffffu);
    aipc_broker_input(b, d->cl, hdr, 8);
    fake_expect_error(d, "too_large");
    ck_assert_int_eq(d->close_calls, 1);
    fake_free(d);
    fake_free(c);
    aipc_broker_free(b);
}
END_TEST

/* Frames split at every byte, and many frames in one read, are processed alike. */
START_TEST(split_and_coalesced_input)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *c = fake_new(b, 1);
    fake_send_chunked(c, "{\"op\":\"hello\",\"proto\":1,\"name\":\"bytewise\"}", NULL, 0, 1);
    fake_expect(c, "welcome");
    fake_send_chunked(c, "{\"op\":\"sub\",\"topic\":\"s\",\"id\":1}", NULL, 0, 3);
    fake_expect(c, "ok");
    fake_send_chunked(c, "{\"op\":\"pub\",\"topic\":\"s\"}", "split payload", 13, 1);
    ck_assert_str_eq((char *)fake_expect(c, "msg")->payload, "split payload");
    /* Ten pings in one buffer. */
    uint8_t buf[1024];
    size_t len = 0;
    for (int i = 0; i < 10; i++) {
        char meta[64];
        int ml = snprintf(meta, sizeof meta, "{\"op\":\"ping\",\"id\":%d}", i);
        aipc_frame_put_header(buf + len, (uint32_t)ml, 0);
        memcpy(buf + len + 8, meta, (size_t)ml);
        len += 8 + (size_t)ml;
    }
    ck_assert_int_eq(aipc_broker_input(b, c->cl, buf, len), 0);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq((int)rx_num(fake_expect(c, "pong"), "re"), i);
    fake_free(c);
    aipc_broker_free(b);
}
END_TEST

/* Large payloads that arrive split are forwarded from the inbound block itself (adopted, not
 * copied): every subscriber, a direct target and a later retained delivery get them byte-exact,
 * and the inbound meta stays readable while the router uses it. */
START_TEST(large_split_payload_adopted)
{
    aipc_broker *b = test_broker(64u << 20, 0, 0);
    fake *p = fake_new(b, 1), *s1 = fake_new(b, 2), *s2 = fake_new(b, 3), *d = fake_new(b, 4);
    fake_hello(p, "pub");
    fake_hello(s1, NULL);
    fake_hello(s2, NULL);
    fake_hello(d, "dst");
    fake_sendt(s1, "{\"op\":\"sub\",\"topic\":\"big/+\",\"id\":1}", NULL);
    fake_expect(s1, "ok");
    fake_sendt(s2, "{\"op\":\"sub\",\"topic\":\"big/#\",\"id\":1}", NULL);
    fake_expect(s2, "ok");
    fake_skip_all(s1);
    fake_skip_all(s2);
    fake_skip_all(d);
    const size_t pn = 300000;
    uint8_t *pl = malloc(pn);
    for (size_t i = 0; i < pn; i++)
        pl[i] = (uint8_t)(i * 131u + (i >> 11));
    for (int round = 0; round < 3; round++) {     /* the block is adopted each time, then freed */
        pl[0] = (uint8_t)round;
        ck_assert_int_eq(fake_send_chunked(p, "{\"op\":\"pub\",\"topic\":\"big/a\",\"retain\":true}",
                                           pl, pn, 4093), 0);
        fake *subs[2] = {s1, s2};
        for (int k = 0; k < 2; k++) {
            rx_frame *r = fake_expect(subs[k], "msg");
            ck_assert_str_eq(rx_str(r, "topic"), "big/a");
            ck_assert_uint_eq(r->plen, pn);
            ck_assert_mem_eq(r->payload, pl, pn);
        }
    }
    ck_assert_int_eq(fake_send_chunked(p, "{\"op\":\"send\",\"to\":\"dst\"}", pl, pn, 65536), 0);
    rx_frame *r = fake_next_nonpresence(d);
    ck_assert_str_eq(rx_str(r, "op"), "direct");
    ck_assert_str_eq(rx_from_str(r, "name"), "pub");
    ck_assert_uint_eq(r->plen, pn);
    ck_assert_mem_eq(r->payload, pl, pn);
    /* A late subscriber gets the last retained copy, intact. */
    fake *late = fake_new(b, 5);
    fake_hello(late, NULL);
    fake_sendt(late, "{\"op\":\"sub\",\"topic\":\"big/a\",\"id\":7}", NULL);
    fake_expect(late, "ok");
    r = fake_expect(late, "msg");
    ck_assert(rx_has(r, "retained"));
    ck_assert_uint_eq(r->plen, pn);
    ck_assert_mem_eq(r->payload, pl, pn);
    free(pl);
    fake_free(late);
    fake_free(d);
    fake_free(s2);
    fake_free(s1);
    fake_free(p);
    aipc_broker_free(b);
}
END_TEST

/* The zero-copy read pair delivers a large frame read straight into the decoder. */
START_TEST(direct_read_path)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *c = fake_new(b, 1);
    fake_hello(c, NULL);
    fake_sendt(c, "{\"op\":\"sub\",\"topic\":\"z\"}", NULL);
    size_t want;
    ck_assert_ptr_null(aipc_client_read_direct(c->cl, &want));
    const char *meta = "{\"op\":\"pub\",\"topic\":\"z\"}";
    size_t ml = strlen(meta), pn = 100000;
    uint8_t *frame = malloc(8 + ml + pn);
    aipc_frame_put_header(frame, (uint32_t)ml, (uint32_t)pn);
    memcpy(frame + 8, meta, ml);
    memset(frame + 8 + ml, 'q', pn);
    ck_assert_int_eq(aipc_broker_input(b, c->cl, frame, 8 + ml + 10), 0);
    uint8_t *dst = aipc_client_read_direct(c->cl, &want);
    ck_assert_ptr_nonnull(dst);
    ck_assert_uint_eq(want, pn - 10);
    memcpy(dst, frame + 8 + ml + 10, want);
    ck_assert_int_eq(aipc_client_read_commit(b, c->cl, want), 0);
    ck_assert_uint_eq(fake_expect(c, "msg")->plen, pn);
    free(frame);
    fake_free(c);
    aipc_broker_free(b);
}
END_TEST

/* stats answers with the counters as a JSON payload; ping answers pong. */
START_TEST(stats_and_ping)
{
    fake_clock_ms = 1000;
    aipc_broker *b = test_broker(0, 0, 0);
    fake *c = fake_new(b, 1);
    fake_hello(c, NULL);
    fake_sendt(c, "{\"op\":\"ping\"}", NULL);
    rx_frame *p = fake_expect(c, "pong");
    ck_assert(!rx_has(p, "re"));
    fake_sendt(c, "{\"op\":\"sub\",\"topic\":\"a\"}", NULL);
    fake_sendt(c, "{\"op\":\"pub\",\"topic\":\"a\",\"retain\":true}", "x");
    fake_expect(c, "msg");
    fake_clock_ms = 6000;
    fake_sendt(c, "{\"op\":\"stats\",\"id\":11}", NULL);
    rx_frame *s = fake_expect(c, "stats");
    ck_assert_int_eq((int)rx_num(s, "re"), 11);
    cJSON *j = cJSON_Parse((char *)s->payload);
    ck_assert_ptr_nonnull(j);
    const char *keys[] = {"clients", "subscriptions", "retained_topics", "msgs_in", "msgs_out",
                          "bytes_in", "bytes_out", "drops", "errors", "uptime_ms"};
    for (int i = 0; i < 10; i++)
        ck_assert_msg(cJSON_IsNumber(cJSON_GetObjectItem(j, keys[i])), "stats lacks %s", keys[i]);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "clients")->valueint, 1);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "subscriptions")->valueint, 1);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "retained_topics")->valueint, 1);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "msgs_in")->valueint, 5);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "uptime_ms")->valueint, 5000);
    ck_assert_int_gt(cJSON_GetObjectItem(j, "bytes_out")->valueint, 0);
    cJSON_Delete(j);
    char small[8];
    size_t need = aipc_broker_stats_json(b, small, sizeof small);
    ck_assert_uint_gt(need, sizeof small);
    ck_assert_uint_eq(strlen(small), sizeof small - 1);
    fake_free(c);
    aipc_broker_free(b);
}
END_TEST

/* The log sink receives join/leave and protocol-error lines, filtered by log_level. */
static int log_lines, log_warns;
static void on_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    ck_assert_ptr_nonnull(msg);
    log_lines++;
    log_warns += level == AIPC_LOG_WARN;
}

START_TEST(log_sink)
{
    aipc_broker *b = test_broker(0, 10, 0);
    aipc_broker_set_log(b, on_log, NULL);
    fake *c = fake_new(b, 1);
    fake_hello(c, "logged");
    ck_assert_int_eq(log_lines, 1);
    fake_send(c, "{\"op\":\"pub\",\"topic\":\"a\"}", "01234567890", 11);
    ck_assert_int_eq(log_warns, 1);
    fake_free(c);
    ck_assert_int_eq(log_lines, 3);
    aipc_broker_free(b);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_input");
    TCase *tc = tcase_create("input");
    tcase_add_test(tc, hello_must_be_first);
    tcase_add_test(tc, proto_mismatch);
    tcase_add_test(tc, bad_meta_keeps_connection);
    tcase_add_test(tc, oversize_payload_too_large);
    tcase_add_test(tc, oversize_meta_too_large);
    tcase_add_test(tc, split_and_coalesced_input);
    tcase_add_test(tc, direct_read_path);
    tcase_add_test(tc, large_split_payload_adopted);
    tcase_add_test(tc, stats_and_ping);
    tcase_add_test(tc, log_sink);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
