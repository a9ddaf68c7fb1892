/*
 * test_broker_engine_io.c - the broker engine's I/O edge cases under Wine (asyncipc-broker.exe
 * in its own process, raw-protocol connections of this process): pipelined input handled inline
 * (read-buffer growth, inline rounds, yields to the port), a large in-place read whose client
 * vanishes mid-frame, and a stop while a client's write is stalled. Every wait is bounded.
 */
#include "check_main.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raw_proto.h"

#define W 30000u

static raw_broker *g_broker;

/* Starts the test's broker (the teardown kills it if the test failed half-way). */
static void broker_start(raw_broker *b, const char *tag, const char *extra)
{
    ck_assert_int_eq(raw_broker_start(b, tag, extra), 0);
    g_broker = b;
}

static void teardown(void)
{
    if (g_broker && g_broker->process)
        raw_broker_stop(g_broker, 0);
    g_broker = NULL;
}

/* 3000 pings in one write (about 100 KiB): every one answered, in order, on one connection. */
START_TEST(pipelined_pings)
{
    raw_broker b;
    broker_start(&b, "rvp", NULL);
    raw_conn *c = raw_connect(b.pipe, W);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_gt(raw_hello(c, "pipelined", W), 0);
    enum { N = 3000 };
    for (int i = 1; i <= N; i++) {
        char meta[96];
        snprintf(meta, sizeof meta, "{\"op\":\"ping\",\"id\":%d,\"pad\":\"%08d\"}", i, i);
        ck_assert_int_eq(raw_queue(c, meta, NULL, 0), 0);
    }
    ck_assert_int_eq(raw_flush(c, W), 0);
    for (int i = 1; i <= N; i++) {
        raw_frame f;
        ck_assert_msg(raw_expect(c, &f, "pong", i, W) == 1, "pong %d missing", i);
        raw_frame_free(&f);
    }
    raw_close(c);
    ck_assert_int_eq(raw_broker_stop(&b, 5000), 0);
}
END_TEST

/* A 1 MiB publication cut off half-way (the broker reads it in place) and its client gone:
 * the broker carries on, the next 1 MiB publication arrives intact, the stop is clean. */
START_TEST(direct_read_client_vanishes)
{
    raw_broker b;
    broker_start(&b, "rvd", NULL);
    raw_conn *s = raw_connect(b.pipe, W);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_gt(raw_hello(s, "sub", W), 0);
    ck_assert_int_eq(raw_sub(s, "big/#", 1, W), 0);
    const uint32_t n = 1u << 20;
    uint8_t *pl = malloc(n);
    ck_assert_ptr_nonnull(pl);
    for (int round = 0; round < 3; round++) {
        raw_conn *p = raw_connect(b.pipe, W);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_gt(raw_hello(p, "cut", W), 0);
        aipc_pattern_fill(pl, n, 0xC0DE0000u + (uint32_t)round);
        ck_assert_int_eq(raw_queue(p, "{\"op\":\"pub\",\"topic\":\"big/cut\"}", pl, n), 0);
        /* Header, meta and a third of the payload; then the client is gone. */
        ck_assert_int_eq(raw_write(p, p->wbuf, p->wlen / 3, W), 0);
        p->wlen = 0;
        raw_close(p);
    }
    ck_assert_int_eq(raw_sync(s, 2, W), 0);
    raw_conn *p = raw_connect(b.pipe, W);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_gt(raw_hello(p, "whole", W), 0);
    aipc_pattern_fill(pl, n, 0xBEEF0001u);
    ck_assert_int_eq(raw_send(p, "{\"op\":\"pub\",\"topic\":\"big/whole\"}", pl, n, W), 0);
    raw_frame f;
    ck_assert_int_eq(raw_expect(s, &f, "msg", -1, W), 1);
    ck_assert_str_eq(raw_str(&f, "topic"), "big/whole");
    ck_assert_uint_eq(f.payload_len, n);
    ck_assert(aipc_pattern_check(f.payload, f.payload_len, 0xBEEF0001u) == -1);
    raw_frame_free(&f);
    free(pl);
    raw_close(p);
    raw_close(s);
    ck_assert_int_eq(raw_broker_stop(&b, 5000), 0);
}
END_TEST

/* A subscriber that stops reading while large publications are queued to it (an in-place
 * write stays pending): the stop still ends cleanly within 5 s. */
START_TEST(stop_with_stalled_writer)
{
    raw_broker b;
    broker_start(&b, "rvs", NULL);
    raw_conn *s = raw_connect(b.pipe, W);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_gt(raw_hello(s, "stalled", W), 0);
    ck_assert_int_eq(raw_sub(s, "st/#", 1, W), 0);
    raw_conn *p = raw_connect(b.pipe, W);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_gt(raw_hello(p, "pub", W), 0);
    const uint32_t n = 256u * 1024u;
    uint8_t *pl = malloc(n);
    ck_assert_ptr_nonnull(pl);
    for (int i = 0; i < 16; i++) {
        aipc_pattern_fill(pl, n, 0x51000000u + (uint32_t)i);
        ck_assert_int_eq(raw_send(p, "{\"op\":\"pub\",\"topic\":\"st/x\"}", pl, n, W), 0);
    }
    ck_assert_int_eq(raw_sync(p, 2, W), 0);
    free(pl);
    uint64_t t0 = aipc_test_now_ms();
    ck_assert_int_eq(raw_broker_stop(&b, 8000), 0);
    ck_assert_uint_lt(aipc_test_now_ms() - t0, 5000);
    raw_close(p);
    raw_close(s);
}
END_TEST

static void add(Suite *s, const char *name, const TTest *t)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, t);
    suite_add_tcase(s, tc);
}

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_engine_io");
    add(s, "pipelined_pings", pipelined_pings);
    add(s, "direct_read_client_vanishes", direct_read_client_vanishes);
    add(s, "stop_with_stalled_writer", stop_with_stalled_writer);
    return s;
}

CHECK_MAIN(make_suite);
