/*
 * test_broker_engine_io.c - the broker engine's I/O edge cases under Wine (asyncipc-broker.exe
 * in its own process, raw-protocol connections of this process): pipelined input handled inline
 * (read-buffer growth, inline rounds, yields to the port), a large in-place read whose client
 * vanishes mid-frame, a stop while a client's write is stalled, and large publications of
 * changing sizes assembled in recycled blocks. Every wait is bounded.
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

/* Large publications of changing sizes, small ones between them, all in one write so that
 * frames start anywhere in the broker's reads: the broker assembles the large ones in blocks
 * recycled from the ones before (service/core/blkcache.c) and reads their rest in one piece;
 * every payload arrives byte-exact and in order. Then a publisher that dies mid-frame inside a
 * recycled block: the broker carries on and the next publication arrives intact. */
START_TEST(recycled_blocks_byte_exact)
{
    static const uint32_t sizes[] = {1u << 20, (1u << 20) - 1, 300000, 17, (1u << 20) + 4097,
                                     600000, 2u << 20, 5000, 1u << 20, 1u << 20};
    enum { NS = sizeof sizes / sizeof sizes[0] };
    raw_broker b;
    broker_start(&b, "rvb", NULL);
    raw_conn *s = raw_connect(b.pipe, W);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_gt(raw_hello(s, "sub", W), 0);
    ck_assert_int_eq(raw_sub(s, "rb/#", 1, W), 0);
    raw_conn *p = raw_connect(b.pipe, W);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_gt(raw_hello(p, "pub", W), 0);
    uint8_t *pl = malloc(2u << 20);
    ck_assert_ptr_nonnull(pl);
    /* Round 0 one by one (each block is back before the next frame starts), round 1 in one
     * write (frames start in the middle of reads, blocks come back while others arrive). */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < NS; i++) {
            aipc_pattern_fill(pl, sizes[i], 0x7B000000u + (uint32_t)(round * NS + i));
            ck_assert_int_eq(raw_queue(p, "{\"op\":\"pub\",\"topic\":\"rb/x\"}", pl, sizes[i]),
                             0);
            if (round == 0) {
                ck_assert_int_eq(raw_flush(p, W), 0);
                raw_frame f;
                ck_assert_int_eq(raw_expect(s, &f, "msg", -1, W), 1);
                ck_assert_uint_eq(f.payload_len, sizes[i]);
                ck_assert_msg(aipc_pattern_check(f.payload, f.payload_len,
                                                 0x7B000000u + (uint32_t)i) == -1,
                              "publication %d damaged", i);
                raw_frame_free(&f);
            }
        }
        if (round == 0)
            continue;
        ck_assert_int_eq(raw_flush(p, W), 0);
        for (int i = 0; i < NS; i++) {
            raw_frame f;
            ck_assert_int_eq(raw_expect(s, &f, "msg", -1, W), 1);
            ck_assert_uint_eq(f.payload_len, sizes[i]);
            ck_assert_msg(aipc_pattern_check(f.payload, f.payload_len,
                                             0x7B000000u + (uint32_t)(round * NS + i)) == -1,
                          "round %d publication %d damaged", round, i);
            raw_frame_free(&f);
        }
    }
    /* Cut off inside a lent block (the one of the 1 MiB publication before it): header, meta
     * and a third of a 1 MiB payload, then gone. */
    aipc_pattern_fill(pl, 1u << 20, 0x7E000000u);
    ck_assert_int_eq(raw_send(p, "{\"op\":\"pub\",\"topic\":\"rb/x\"}", pl, 1u << 20, W), 0);
    raw_frame g;
    ck_assert_int_eq(raw_expect(s, &g, "msg", -1, W), 1);
    ck_assert(aipc_pattern_check(g.payload, g.payload_len, 0x7E000000u) == -1);
    raw_frame_free(&g);
    raw_conn *cut = raw_connect(b.pipe, W);
    ck_assert_ptr_nonnull(cut);
    ck_assert_int_gt(raw_hello(cut, "cut", W), 0);
    aipc_pattern_fill(pl, 1u << 20, 0x7C000000u);
    ck_assert_int_eq(raw_queue(cut, "{\"op\":\"pub\",\"topic\":\"rb/x\"}", pl, 1u << 20), 0);
    ck_assert_int_eq(raw_write(cut, cut->wbuf, cut->wlen / 3, W), 0);
    cut->wlen = 0;
    raw_close(cut);
    aipc_pattern_fill(pl, 1u << 20, 0x7D000000u);
    ck_assert_int_eq(raw_send(p, "{\"op\":\"pub\",\"topic\":\"rb/after\"}", pl, 1u << 20, W),
                     0);     /* (the cut frame never reached the subscriber) */
    raw_frame f;
    ck_assert_int_eq(raw_expect(s, &f, "msg", -1, W), 1);
    ck_assert_str_eq(raw_str(&f, "topic"), "rb/after");
    ck_assert_uint_eq(f.payload_len, 1u << 20);
    ck_assert(aipc_pattern_check(f.payload, f.payload_len, 0x7D000000u) == -1);
    raw_frame_free(&f);
    free(pl);
    raw_close(p);
    raw_close(s);
    ck_assert_int_eq(raw_broker_stop(&b, 5000), 0);
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
    add(s, "recycled_blocks_byte_exact", recycled_blocks_byte_exact);
    return s;
}

CHECK_MAIN(make_suite);
