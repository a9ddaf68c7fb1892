/* test_broker_blkloan.c - the recycled large blocks' limits against the real broker (review
 * binl M1/M2, service/core/blkcache.c): stalled header-only connections do not take
 * max_incomplete_bytes from others, and frames queued to a stalled subscriber do not sit in
 * blocks 4x their size. Raw clients, default configuration. */
#include "check_main.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raw_proto.h"

#define W 30000u
static raw_broker *g_broker;
static void teardown(void)
{
    if (g_broker && g_broker->process)
        raw_broker_stop(g_broker, 0);
    g_broker = NULL;
}

/* M2: 12 joined connections send the header of a 1.3 MiB frame and stall, each right after a
 * 4.9 MiB forward refilled the block cache: the budget holds what growing buffers hold, and a
 * later 8 MiB publication of another client reaches its reader (before the fix:
 * incomplete_bytes ~60 MB, the 8 MiB publication refused incomplete_full). */
START_TEST(stalled_headers_pin_incomplete_budget)
{
    raw_broker b;
    ck_assert_int_eq(raw_broker_start(&b, "blkloan", NULL), 0);
    g_broker = &b;
    raw_conn *r = raw_connect(b.pipe, W), *l = raw_connect(b.pipe, W);
    ck_assert(raw_hello(r, "r", W) > 0);
    ck_assert(raw_hello(l, "l", W) > 0);
    ck_assert_int_eq(raw_sub(r, "a/#", 1, W), 0);
    const uint32_t big = 4900u << 10;
    uint8_t *pl = calloc(1, 8u << 20);
    enum { N = 12 };
    raw_conn *x[N];
    long long id = 10;
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(raw_send(l, "{\"op\":\"pub\",\"topic\":\"a/x\"}", pl, big, W), 0);
        raw_frame f;
        ck_assert_int_eq(raw_expect(r, &f, "msg", -1, W), 1);
        raw_frame_free(&f);
        ck_assert_int_eq(raw_sync(r, ++id, W), 0);
        ck_assert_int_eq(raw_sync(l, ++id, W), 0);
        x[i] = raw_connect(b.pipe, W);
        ck_assert_ptr_nonnull(x[i]);
        ck_assert(raw_hello(x[i], NULL, W) > 0);
        ck_assert_int_eq(raw_queue(x[i], "{\"op\":\"pub\",\"topic\":\"zz\"}", pl, 1300u << 10), 0);
        ck_assert_int_eq(raw_write(x[i], x[i]->wbuf, 8, W), 0);    /* the header only */
        x[i]->wlen = 0;
    }
    double inc = raw_stat(l, "incomplete_bytes", ++id, W);
    fprintf(stderr, "real broker: %d clients x 8 header bytes -> incomplete_bytes %.0f\n", N, inc);
    ck_assert_double_le(inc, (double)N * 65536);
    raw_conn *v = raw_connect(b.pipe, W);
    ck_assert(raw_hello(v, "v", W) > 0);
    raw_send(v, "{\"op\":\"pub\",\"topic\":\"a/v\"}", pl, 8u << 20, W);
    raw_frame f;
    ck_assert_int_eq(raw_expect(r, &f, "msg", -1, W), 1);    /* the 8 MiB publication */
    ck_assert_uint_eq(f.payload_len, 8u << 20);
    raw_frame_free(&f);
    double refused = raw_stat(l, "incomplete_refused", ++id, W);
    fprintf(stderr, "incomplete_refused %.0f\n", refused);
    ck_assert_double_eq(refused, 0);
    for (int i = 0; i < N; i++)
        raw_close(x[i]);
    raw_close(v);
    raw_close(r);
    raw_close(l);
    free(pl);
    ck_assert_int_eq(raw_broker_stop(&b, 5000), 0);
}
END_TEST


/* M1: 12 x (4 MiB to a reader, 1 MiB + 4 KiB to a subscriber that never reads): the queued
 * 1 MiB frames are not parked in the recycled 4 MiB blocks, so the broker's private bytes grow
 * by about the queue's charge plus the block cache (before the fix: +29.9 MB for a 7.4 MB
 * queue; base without the cache +7.9 MB). */
START_TEST(stalled_subscriber_holds_4x)
{
    raw_broker b;
    ck_assert_int_eq(raw_broker_start(&b, "blkloan2", NULL), 0);
    g_broker = &b;
    raw_conn *r = raw_connect(b.pipe, W), *l = raw_connect(b.pipe, W), *s = raw_connect(b.pipe, W);
    ck_assert(raw_hello(r, "r", W) > 0);
    ck_assert(raw_hello(l, "l", W) > 0);
    ck_assert(raw_hello(s, "s", W) > 0);
    ck_assert_int_eq(raw_sub(r, "a/#", 1, W), 0);
    ck_assert_int_eq(raw_sub(s, "b/#", 2, W), 0);
    uint8_t *pl = calloc(1, 8u << 20);
    long long id = 10;
    size_t pb0 = raw_broker_private_bytes(&b);
    for (int i = 0; i < 12; i++) {
        ck_assert_int_eq(raw_send(l, "{\"op\":\"pub\",\"topic\":\"a/x\"}", pl, 4u << 20, W), 0);
        raw_frame f;
        ck_assert_int_eq(raw_expect(r, &f, "msg", -1, W), 1);
        raw_frame_free(&f);
        ck_assert_int_eq(raw_sync(r, ++id, W), 0);
        ck_assert_int_eq(raw_sync(l, ++id, W), 0);
        ck_assert_int_eq(raw_send(l, "{\"op\":\"pub\",\"topic\":\"b/x\"}", pl, (1u << 20) + 4096, W), 0);
        ck_assert_int_eq(raw_sync(l, ++id, W), 0);
    }
    double qb = raw_stat(l, "queue_bytes", ++id, W);
    size_t pb1 = raw_broker_private_bytes(&b);
    fprintf(stderr, "real broker: stalled subscriber queue_bytes %.0f, private bytes +%.1f MB\n", qb,
            ((double)pb1 - (double)pb0) / 1e6);
    ck_assert_double_le(qb, 8u << 20);
    ck_assert_double_le((double)pb1 - (double)pb0, qb * 1.125 + (12u << 20));
    raw_close(s);
    raw_close(r);
    raw_close(l);
    free(pl);
    ck_assert_int_eq(raw_broker_stop(&b, 5000), 0);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_blkloan");
    TCase *tc = tcase_create("blkloan");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 200);
    tcase_add_test(tc, stalled_headers_pin_incomplete_budget);
    tcase_add_test(tc, stalled_subscriber_holds_4x);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
