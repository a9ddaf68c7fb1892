/*
 * test_bus_shm_fanout.c - broker fan-out through shared memory with one slow subscriber: one
 * publisher and 16 subscriber clients of this process (8 on PIPE_ASYNC, 8 on
 * PIPE_OVERLAPPED), the broker its own process with its default bounds. One subscriber stops
 * reading: its callbacks go to a dispatcher nobody runs until the end, so after
 * max_dispatch_bytes it stops reading from the broker, whose queue for it fills and then drops.
 * The stream mixes 1 MiB, the threshold, threshold + 1, 300 KiB and 100 B publications (every
 * payload a pattern seeded with its sequence number).
 *   - the other 15 get every publication, in order, byte-exact, no drop, most of the large ones
 *     through shared memory (their counters);
 *   - the slow one gets on_dropped, and what it received plus what was dropped is everything;
 *   - the broker's shm_bytes, sampled during the stream, stays within the slow one's
 *     max_queue_bytes (what it may pin) plus the fast ones' share (the window of publications
 *     ahead of them), and returns to 0 when everyone has read and released.
 * And the releases of one read are gathered: a subscriber whose callback held the I/O thread
 * while GATHER_N shared publications reached its pipe reads them in one read and writes their
 * releases in a few shm_done frames (the broker's shm_release_frames), not one each.
 */
#include "check_main.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "bus_shm_kit.h"

#define NSUB        16
#define COUNT       160
#define WINDOW      4                    /* publications ahead of the slowest fast subscriber */
#define BROKER_MQB  (8u * BS_MIB)       /* the broker's default max_queue_bytes */
#define SLOW_DISPATCH (2u * BS_MIB)
#define SLOT_ROUND  4096u                /* slots are 4 KiB-aligned, one spare byte */

static size_t size_of(uint32_t seq)
{
    static const size_t z[] = {BS_MIB, BS_THR, BS_THR + 1, 300u * 1024u, 100};
    return z[seq % (sizeof z / sizeof z[0])];
}

static long long fast_min(bsk_sub *subs, int slow)
{
    long long m = LLONG_MAX;
    for (int i = 0; i < NSUB; i++)
        if (i != slow && subs[i].got < m)
            m = subs[i].got;
    return m;
}

static int no_slot(const bsk_stats *st, const bsk_stats *ref)
{
    (void)ref;
    return st->shm_bytes == 0;
}

/* _i: the slow subscriber's engine (0 PIPE_ASYNC, 1 PIPE_OVERLAPPED). */
START_TEST(one_slow_subscriber_others_get_everything)
{
    bs_broker b;
    bs_broker_start(&b, "bshmfan", NULL);
    char topic[64];
    bt_unique_topic(topic, sizeof topic, "fan");
    static bsk_sub subs[NSUB];
    memset(subs, 0, sizeof subs);
    int slow = _i ? NSUB - 1 : 0;          /* subscribers 0..7 apc, 8..15 iocp */
    aipc_dispatcher *d = NULL;
    ck_assert_int_eq(aipc_dispatcher_new(AIPC_DISPATCH_MANUAL, &d), AIPC_OK);
    for (int i = 0; i < NSUB; i++) {
        aipc_bus_options o;
        bsk_sub_options(&subs[i], &o, b.wpipe, i < NSUB / 2 ? PIPE_ASYNC : PIPE_OVERLAPPED);
        if (i == slow) {
            o.dispatcher = d;
            o.max_dispatch_bytes = SLOW_DISPATCH;
            subs[i].allow_gaps = 1;
        }
        ck_assert_msg(bsk_sub_open(&subs[i], &o, topic) == 0, "subscriber %d did not connect", i);
    }
    bsk_sub pubc;
    ck_assert_int_eq(bsk_open(&pubc, &b, PIPE_ASYNC, NULL), 0);
    uint8_t *buf = malloc(BS_MIB);
    ck_assert_ptr_nonnull(buf);

    /* warm-up (sequence numbers 0..): 1 MiB publications until every subscriber receives
     * through the broker's segments; the slow one's dispatcher runs meanwhile */
    uint32_t seq = 0;
    for (int round = 0;; round++) {
        ck_assert_msg(round < 20, "shared memory not in use after 20 publications");
        ck_assert_int_eq(bsk_publish(pubc.bus, topic, buf, BS_MIB, seq), AIPC_OK);
        seq++;
        for (int i = 0; i < NSUB; i++)
            ck_assert_msg(bsk_wait_pump(i == slow ? d : NULL, NULL, &subs[i].got, seq),
                          "warm-up: subscriber %d got %lld of %u", i, (long long)subs[i].got, seq);
        int all = 1;
        for (int i = 0; i < NSUB; i++)
            all &= bsk_counters(subs[i].bus).shm_recv >= 1;
        if (all)
            break;
    }
    uint64_t recv0[NSUB];
    for (int i = 0; i < NSUB; i++)
        recv0[i] = bsk_counters(subs[i].bus).shm_recv;
    bsk_stats st0, st;
    ck_assert_int_eq(bsk_stats_get(pubc.bus, &st0), 0);
    ck_assert_msg(st0.shm_publications >= 1, "the broker counts %lld shared publications",
                  st0.shm_publications);

    /* the stream: the slow one is not run any more */
    uint32_t end = seq + COUNT, eligible = 0;
    long long peak = 0;
    for (; seq < end; seq++) {
        while ((long long)seq - fast_min(subs, slow) > WINDOW)
            ck_assert_msg(WaitForSingleObject(bsk_progress, aipc_test_wait_ms()) == WAIT_OBJECT_0,
                          "no progress at publication %u (fast ones have %lld)", seq,
                          fast_min(subs, slow));
        size_t n = size_of(seq);
        eligible += n >= BS_THR;
        ck_assert_int_eq(bsk_publish(pubc.bus, topic, buf, n, seq), AIPC_OK);
        if (seq % 8 == 0) {
            ck_assert_int_eq(bsk_stats_get(pubc.bus, &st), 0);
            if (st.shm_bytes > peak)
                peak = st.shm_bytes;
        }
    }
    for (int i = 0; i < NSUB; i++)
        if (i != slow)
            ck_assert_msg(bsk_wait64(&subs[i].got, end), "subscriber %d got %lld of %u", i,
                          (long long)subs[i].got, end);
    ck_assert_int_eq(bsk_stats_get(pubc.bus, &st), 0);
    if (st.shm_bytes > peak)
        peak = st.shm_bytes;
    long long bound = (long long)BROKER_MQB + (long long)(BROKER_MQB / BS_THR) * SLOT_ROUND +
                      (long long)(WINDOW + 2) * (BS_MIB + SLOT_ROUND);
    ck_assert_msg(peak > 0 && peak <= bound,
                  "broker shm_bytes peaked at %lld (bound %lld: the slow one's queue + the window)",
                  peak, bound);
    ck_assert_msg(st.drops > st0.drops, "the broker dropped nothing for the slow subscriber");
    ck_assert_msg(subs[slow].got < end, "the slow subscriber read everything (%lld)",
                  (long long)subs[slow].got);
    for (int i = 0; i < NSUB; i++) {
        if (i == slow)
            continue;
        ck_assert_msg(subs[i].bad == 0 && subs[i].dropped == 0 && subs[i].got == end,
                      "subscriber %d: %lld bad (%s), %lld dropped, %lld of %u", i,
                      (long long)subs[i].bad, subs[i].error, (long long)subs[i].dropped,
                      (long long)subs[i].got, end);
        uint64_t shared = bsk_counters(subs[i].bus).shm_recv - recv0[i];
        ck_assert_msg(shared >= eligible / 2, "subscriber %d: %llu of %u large publications shared",
                      i, (unsigned long long)shared, eligible);
    }
    ck_assert_msg(st.shm_publications - st0.shm_publications >= eligible / 2,
                  "the broker shared %lld of %u large publications",
                  st.shm_publications - st0.shm_publications, eligible);

    /* the slow one catches up: on_dropped, and received + dropped = everything since the
     * warm-up, byte-exact and in order (gaps only where it was told of drops) */
    long long got_before = subs[slow].got;
    HANDLE wake[2] = {bsk_progress, (HANDLE)aipc_dispatcher_event(d)};
    for (uint64_t until = aipc_test_now_ms() + aipc_test_wait_ms();;) {
        aipc_dispatcher_run(d, 0);
        if (subs[slow].got + subs[slow].dropped >= end || aipc_test_now_ms() >= until)
            break;
        WaitForMultipleObjects(2, wake, FALSE, 200);
    }
    ck_assert_msg(subs[slow].dropped > 0, "the slow subscriber got no on_dropped");
    ck_assert_msg(subs[slow].got + subs[slow].dropped == end,
                  "slow subscriber: %lld received (%lld before catching up) + %lld dropped != %u",
                  (long long)subs[slow].got, got_before, (long long)subs[slow].dropped, end);
    ck_assert_msg(subs[slow].bad == 0, "slow subscriber: %s", subs[slow].error);

    /* everyone has read and released: the broker holds no slot */
    if (!bsk_stats_until(pubc.bus, no_slot, NULL, &st)) {
        aipc_bus_counters k = bsk_counters(subs[slow].bus);
        ck_abort_msg("broker shm_bytes stays at %lld%s (bad releases %lld); the slow "
                     "subscriber: shm_active %u, shm_recv %llu, last state %ld (error %ld)",
                     st.shm_bytes, bsk_broker_gone(&b), st.shm_bad_releases, k.shm_active,
                     (unsigned long long)k.shm_recv, (long)subs[slow].last_state,
                     (long)subs[slow].last_error);
    }
    free(buf);
    bsk_sub_close(&pubc);
    for (int i = 0; i < NSUB; i++)
        bsk_sub_close(&subs[i]);
    aipc_dispatcher_free(d);
    bs_broker_stop(&b);
}
END_TEST

#define GATHER_N 16                      /* shared publications that wait in the pipe */

static int all_written(const bsk_stats *st, const bsk_stats *ref)
{
    /* frames written since ref: the subscriber's descriptors + at most `polls` stats answers
     * (ref's and the earlier polls', each counted once its write completed; the publisher
     * has shared memory off, so the broker writes it no shm_done): all but one descriptor
     * are in the pipe (the answer counted last may lag a poll behind) */
    static int polls;
    if (!ref) {
        polls = 0;
        return 0;
    }
    return st->msgs_out - ref->msgs_out >= GATHER_N - 1 + ++polls;
}

/* _i: the subscriber's engine, PIPE_OVERLAPPED only (1); the publisher is on the other one
 * (another I/O thread: it keeps publishing while the subscriber's callback holds its own),
 * without shared memory (msgs_out and shm_release_frames are then the subscriber's frames and
 * the stats answers only). PIPE_ASYNC (0) is not run: every write there completes later by
 * APC, so without gathering the first release's write is still in flight when the others
 * come and they go together after the read anyway (2 frames for the read, measured 3 in all
 * against 1 with gathering unless the 1 ms bound trips on a loaded box): this count cannot
 * tell the two apart reliably. */
START_TEST(releases_of_one_read_are_gathered)
{
    bs_broker b;
    bs_broker_start(&b, "bshmgat", "\"shm_release_page\":false");   /* the frame path */
    char topic[64];
    bt_unique_topic(topic, sizeof topic, "gat");
    bsk_sub sub, pubc;
    PipeImplType se = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    ck_assert_int_eq(bsk_open(&sub, &b, se, topic), 0);
    aipc_bus_options po;
    memset(&pubc, 0, sizeof pubc);
    bsk_sub_options(&pubc, &po, b.wpipe, _i ? PIPE_ASYNC : PIPE_OVERLAPPED);
    po.shm = AIPC_SHM_OFF;
    ck_assert_int_eq(bsk_sub_open(&pubc, &po, NULL), 0);
    uint8_t *buf = malloc(BS_MIB);
    ck_assert_ptr_nonnull(buf);
    uint32_t seq = 0;
    while (bsk_counters(sub.bus).shm_recv < 1) {
        ck_assert_msg(seq < 20, "shared memory not in use after 20 publications");
        ck_assert_int_eq(bsk_publish(pubc.bus, topic, buf, BS_THR, seq), AIPC_OK);
        seq++;
        ck_assert_msg(bsk_wait64(&sub.got, seq), "warm-up: %lld of %u", (long long)sub.got, seq);
    }
    HANDLE go = CreateEventW(NULL, TRUE, FALSE, NULL);
    ck_assert_ptr_nonnull(go);
    sub.stall = go;                        /* its next shared callback waits for `go` */
    ck_assert_int_eq(bsk_publish(pubc.bus, topic, buf, BS_THR, seq), AIPC_OK);
    seq++;
    while (!sub.stalled)
        ck_assert_msg(WaitForSingleObject(bsk_progress, aipc_test_wait_ms()) == WAIT_OBJECT_0,
                      "the subscriber's callback did not start");
    bsk_stats st0, st;
    ck_assert_int_eq(bsk_stats_get(pubc.bus, &st0), 0);
    for (int i = 0; i < GATHER_N; i++, seq++)
        ck_assert_int_eq(bsk_publish(pubc.bus, topic, buf, BS_THR, seq), AIPC_OK);
    all_written(NULL, NULL);
    int written = bsk_stats_until(pubc.bus, all_written, &st0, &st);
    SetEvent(go);                          /* first: a failure must not leave it held */
    ck_assert_msg(written, "the broker wrote %lld frames, not the %d descriptors",
                  st.msgs_out - st0.msgs_out, GATHER_N);
    ck_assert_msg(bsk_wait64(&sub.got, seq), "%lld of %u delivered", (long long)sub.got, seq);
    ck_assert_msg(bsk_stats_until(pubc.bus, no_slot, NULL, &st), "shm_bytes stays at %lld",
                  st.shm_bytes);
    long long shared = st.shm_deliveries - st0.shm_deliveries;
    long long frames = st.shm_release_frames - st0.shm_release_frames;
    ck_assert_msg(sub.bad == 0 && sub.dropped == 0, "%s", sub.error);
    ck_assert_msg(shared == GATHER_N, "%lld of %d went through shared memory", shared, GATHER_N);
    /* one for the held callback's read, then the GATHER_N of one read (a few more if the
     * box stalled the reader past the 1 ms bound); one frame per release without gathering */
    ck_assert_msg(frames >= 1 && frames <= GATHER_N / 2,
                  "%lld shm_done frames for %d + 1 shared deliveries", frames, GATHER_N);
    CloseHandle(go);
    free(buf);
    bsk_sub_close(&pubc);
    bsk_sub_close(&sub);
    bs_broker_stop(&b);
}
END_TEST

static Suite *bus_shm_fanout_suite(void)
{
    Suite *s = suite_create("bus_shm_fanout");
    TCase *t = bt_tcase_create("fanout");
    tcase_set_timeout(t, 0);
    tcase_add_checked_fixture(t, NULL, bs_teardown);
    tcase_add_loop_test(t, one_slow_subscriber_others_get_everything, 0, 2);
    tcase_add_loop_test(t, releases_of_one_read_are_gathered, 1, 2);   /* not 0: see the test */
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(bus_shm_fanout_suite, NULL, NULL, CHECK_MAIN_VERBOSE);
