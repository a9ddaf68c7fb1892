/*
 * test_bus_shm_gather.c - how long the bus client keeps the releases it gathers in one read
 * (bus_shm.c): a real broker, one subscriber on each engine (the loop index), its publisher on
 * the other engine (another I/O thread) with shared memory off, so every frame the broker
 * writes in the stalled window is the subscriber's own or a stats answer to the publisher.
 *   - a shared delivery followed, in the same read, by inline ones whose callbacks are slow:
 *     the shared slot is released (the broker's shm_bytes is 0) while those callbacks still
 *     run, not only when the read ends (review fan M1: the 1 ms bound applies before every
 *     frame, not only before shared ones).
 * Callbacks run on the SDK's I/O thread of the subscriber's engine and only count or wait on
 * an event of the test; the test thread asserts.
 */
#include "check_main.h"

#include <stdlib.h>
#include <string.h>

#include "bus_shm_kit.h"

#define SLOW_N   8          /* inline publications behind the shared one, in the same read */
#define SLOW_MS  300        /* each of their callbacks waits this long unless the test ends it */

/* Frames the broker wrote since ref: the subscriber's + at most `polls` stats answers (each
 * counted once its write completed; the latest may lag). True once all `want` of the
 * subscriber's are certainly written. */
static int polls, want;
static int sub_written(const bsk_stats *st, const bsk_stats *ref)
{
    return st->msgs_out - ref->msgs_out >= want + ++polls;
}

/* A checking subscriber of `topic` on engine (0 PIPE_ASYNC, 1 PIPE_OVERLAPPED) and a
 * publisher on the other engine without shared memory. */
static void open_pair(bs_broker *b, bsk_sub *sub, bsk_sub *pubc, int engine, const char *topic)
{
    PipeImplType se = engine ? PIPE_OVERLAPPED : PIPE_ASYNC;
    ck_assert_int_eq(bsk_open(sub, b, se, topic), 0);
    aipc_bus_options o;
    memset(pubc, 0, sizeof *pubc);
    bsk_sub_options(pubc, &o, b->wpipe, engine ? PIPE_ASYNC : PIPE_OVERLAPPED);
    o.shm = AIPC_SHM_OFF;                  /* no shm_done frames to it in msgs_out */
    ck_assert_int_eq(bsk_sub_open(pubc, &o, NULL), 0);
}

START_TEST(release_does_not_wait_for_slow_inline_callbacks)
{
    bs_broker b;
    bs_broker_start(&b, "bshmgsl", "\"shm_release_page\":false");   /* the frame path */
    char topic[64];
    bt_unique_topic(topic, sizeof topic, "gsl");
    bsk_sub sub, pubc;
    open_pair(&b, &sub, &pubc, _i, topic);
    uint8_t *buf = malloc(BS_THR);
    ck_assert_ptr_nonnull(buf);
    uint32_t seq = 0;
    while (bsk_counters(sub.bus).shm_recv < 1) {
        ck_assert_msg(seq < 20, "shared memory not in use after 20 publications");
        ck_assert_int_eq(bsk_publish(pubc.bus, topic, buf, BS_THR, seq), AIPC_OK);
        seq++;
        ck_assert_msg(bsk_wait64(&sub.got, seq), "warm-up: %lld of %u", (long long)sub.got, seq);
    }
    HANDLE go = CreateEventW(NULL, TRUE, FALSE, NULL), slow = CreateEventW(NULL, TRUE, FALSE, NULL);
    ck_assert(go && slow);
    sub.stall = go;                        /* its next shared callback waits for `go` */
    ck_assert_int_eq(bsk_publish(pubc.bus, topic, buf, BS_THR, seq), AIPC_OK);
    seq++;
    while (!sub.stalled)
        ck_assert_msg(WaitForSingleObject(bsk_progress, aipc_test_wait_ms()) == WAIT_OBJECT_0,
                      "the subscriber's callback did not start");
    bsk_stats st0, st;
    ck_assert_int_eq(bsk_stats_get(pubc.bus, &st0), 0);
    ck_assert_int_eq(bsk_publish(pubc.bus, topic, buf, BS_THR, seq), AIPC_OK);   /* shared */
    seq++;
    for (int i = 0; i < SLOW_N; i++, seq++)
        ck_assert_int_eq(bsk_publish(pubc.bus, topic, buf, 100, seq), AIPC_OK); /* inline */
    polls = 0;
    want = 1 + SLOW_N;
    int written = bsk_stats_until(pubc.bus, sub_written, &st0, &st);
    sub.slow_ms = SLOW_MS;
    sub.slow = slow;
    SetEvent(go);                          /* one read now holds them all */
    if (!written) {
        SetEvent(slow);
        ck_abort_msg("the broker wrote %lld frames, not the %d of the subscriber",
                     st.msgs_out - st0.msgs_out, want);
    }
    /* the broker's slot is released while the slow callbacks run (each waits SLOW_MS: they
     * end SLOW_N * SLOW_MS after the shared one; with the bound checked before every frame
     * the release goes before the second of them) */
    long long got_at_release = -1;
    uint64_t until = aipc_test_now_ms() + aipc_test_wait_ms();
    while (aipc_test_now_ms() < until) {
        long long got = sub.got;           /* read first: the release is then not later */
        if (bsk_stats_get(pubc.bus, &st) != 0)
            break;
        if (st.shm_bytes == 0) {
            got_at_release = got;
            break;
        }
        if (got >= seq)                    /* every callback ended: the release came after */
            break;
        WaitForSingleObject(bsk_progress, 10);
    }
    SetEvent(slow);                        /* the rest of the callbacks end now */
    ck_assert_msg(bsk_wait64(&sub.got, seq), "%lld of %u delivered", (long long)sub.got, seq);
    ck_assert_msg(got_at_release >= 0 && got_at_release <= (long long)seq - SLOW_N / 2,
                  "the shared slot was released only after the slow callbacks ended "
                  "(delivered at release %lld of %u, shm_bytes %lld)", got_at_release, seq,
                  st.shm_bytes);
    ck_assert_msg(sub.bad == 0 && sub.dropped == 0, "%s", sub.error);
    ck_assert_msg(bsk_counters(sub.bus).shm_recv >= 2, "the delivery was not shared");
    CloseHandle(go);
    CloseHandle(slow);
    free(buf);
    bsk_sub_close(&pubc);
    bsk_sub_close(&sub);
    bs_broker_stop(&b);
}
END_TEST

static Suite *bus_shm_gather_suite(void)
{
    Suite *s = suite_create("bus_shm_gather");
    TCase *t = bt_tcase_create("gather");
    tcase_set_timeout(t, 0);
    tcase_add_checked_fixture(t, NULL, bs_teardown);
    tcase_add_loop_test(t, release_does_not_wait_for_slow_inline_callbacks, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(bus_shm_gather_suite, NULL, NULL, CHECK_MAIN_VERBOSE);
