/*
 * test_bus_shm_order.c - one publisher's stream mixing inline and shared payloads keeps its order
 * through the broker: a real broker process, one publisher and two subscribers, one on each
 * engine (PIPE_ASYNC, PIPE_OVERLAPPED); 10 000 publications of 10 B, 64 KiB - 1, 64 KiB and
 * 1 MiB in turn, each carrying its sequence number (first 4 bytes) and a pattern seeded by it.
 * Each subscriber checks on its I/O thread that publication n arrives n-th with its size and
 * bytes; nothing is dropped (the publisher keeps at most a window of publications ahead of the
 * slower subscriber, well within the broker's queue bound); most large payloads went shared at
 * both subscribers (some may fall back inline while a new segment awaits confirmation: the
 * order holds either way), and the small ones never.
 */
#include "bus_shm_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ORDER_N 10000
#define WINDOW  48      /* publications ahead of the slower subscriber: < 13 MiB queued */
static const uint32_t order_sizes[4] = {10, BS_THR - 1, BS_THR, BS_MIB};

typedef struct ord_sub {
    bt_client bt;        /* first: the recorder's user pointer is this struct */
    long long next;      /* the sequence number expected next (under bt.lock) */
    long long bad;       /* first wrong publication + 1 (0: none) */
    int checking;
} ord_sub;

static void put_seq(uint8_t *buf, uint32_t size, uint32_t seq)
{
    memcpy(buf, &seq, 4);
    aipc_pattern_fill(buf + 4, size - 4, seq);
}

/* The subscriber's I/O thread: publication `next` must come now, with its size and bytes. */
static void ord_on_message(aipc_bus *bus, void *user, const char *topic, const aipc_bus_peer *from,
                           bool retained, const void *data, size_t len)
{
    ord_sub *o = user;
    (void)bus;
    (void)topic;
    (void)from;
    (void)retained;
    EnterCriticalSection(&o->bt.lock);
    if (o->checking) {
        uint32_t i = (uint32_t)o->next, seq = 0;
        if (len >= 4)
            memcpy(&seq, data, 4);
        if (!o->bad && (len != order_sizes[i % 4] || seq != i ||
                        aipc_pattern_check((const uint8_t *)data + 4, len - 4, i) >= 0))
            o->bad = o->next + 1;
        o->next++;
    }
    o->bt.msgs++;
    WakeAllConditionVariable(&o->bt.cv);
    LeaveCriticalSection(&o->bt.lock);
}

START_TEST(mixed_stream_in_order_at_both_engines)
{
    bs_broker b;
    bs_broker_start(&b, "bshm-order", "\"max_queue_bytes\":67108864");
    bt_client pub;
    ord_sub s[2];
    memset(s, 0, sizeof s);
    bs_open(&pub, &b, "ordP", PIPE_ASYNC, AIPC_SHM_AUTO, 64u * BS_MIB, 0, NULL);
    bs_open(&s[0].bt, &b, "ordS0", PIPE_ASYNC, AIPC_SHM_AUTO, 0, 0, ord_on_message);
    bs_open(&s[1].bt, &b, "ordS1", PIPE_OVERLAPPED, AIPC_SHM_AUTO, 0, 0, ord_on_message);
    bt_client *all[3] = {&pub, &s[0].bt, &s[1].bt};
    const uint32_t warm[1] = {BS_MIB};
    bs_warm_up(all, 3, "warm", warm, 1);
    char topic[96];
    bt_unique_topic(topic, sizeof topic, "order");
    long long base[2];
    aipc_bus_counters k0[2];
    for (int j = 0; j < 2; j++) {
        ck_assert_int_eq(aipc_bus_subscribe(s[j].bt.bus, topic), 0);
        EnterCriticalSection(&s[j].bt.lock);
        s[j].checking = 1;
        base[j] = s[j].bt.msgs;
        LeaveCriticalSection(&s[j].bt.lock);
    }
    bs_sync(all, 3);
    for (int j = 0; j < 2; j++)
        k0[j] = bs_counters(&s[j].bt);
    aipc_bus_counters p0 = bs_counters(&pub);
    uint8_t *buf = malloc(BS_MIB);
    ck_assert_ptr_nonnull(buf);
    for (uint32_t i = 0; i < ORDER_N; i++) {
        if (i >= WINDOW)
            for (int j = 0; j < 2; j++)
                ck_assert_msg(bt_wait(&s[j].bt, &s[j].bt.msgs, base[j] + i - WINDOW + 1, BS_W),
                              "subscriber %d stalled at %lld of %u", j,
                              bt_get(&s[j].bt, &s[j].bt.msgs) - base[j], i);
        put_seq(buf, order_sizes[i % 4], i);
        bs_publish(&pub, topic, buf, order_sizes[i % 4]);
    }
    for (int j = 0; j < 2; j++)
        ck_assert_msg(bt_wait(&s[j].bt, &s[j].bt.msgs, base[j] + ORDER_N, BS_W),
                      "subscriber %d got %lld of %d", j, bt_get(&s[j].bt, &s[j].bt.msgs) - base[j], ORDER_N);
    bs_sync(all, 3);
    aipc_bus_counters p1 = bs_counters(&pub);
    for (int j = 0; j < 2; j++) {
        EnterCriticalSection(&s[j].bt.lock);
        long long bad = s[j].bad, next = s[j].next;
        LeaveCriticalSection(&s[j].bt.lock);
        ck_assert_msg(bad == 0, "subscriber %d: publication %lld came wrong or out of order", j, bad - 1);
        ck_assert_int_eq(next, ORDER_N);
        ck_assert_int_eq(bt_get(&s[j].bt, &s[j].bt.dropped), 0);
        aipc_bus_counters k1 = bs_counters(&s[j].bt);
        uint64_t shared = k1.shm_recv - k0[j].shm_recv;
        ck_assert_msg(shared >= ORDER_N / 2 * 4 / 5 && shared <= ORDER_N / 2,
                      "subscriber %d: %llu of %d large publications came shared", j,
                      (unsigned long long)shared, ORDER_N / 2);
        ck_assert_str_eq(s[j].bt.error, "");
    }
    uint64_t sent = p1.shm_sent - p0.shm_sent;
    ck_assert_msg(sent >= ORDER_N / 2 * 4 / 5 && sent <= ORDER_N / 2, "publisher: %llu of %d sent shared",
                  (unsigned long long)sent, ORDER_N / 2);
    ck_assert_uint_eq(bs_stat(&pub, "shm_map_failures"), 0);
    free(buf);
    ck_assert(bt_close(&pub));
    ck_assert(bt_close(&s[0].bt));
    ck_assert(bt_close(&s[1].bt));
    bs_broker_stop(&b);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("bus_shm_order");
    TCase *tc = tcase_create("order");
    tcase_set_timeout(tc, 0);
    tcase_add_checked_fixture(tc, NULL, bs_teardown);
    tcase_add_test(tc, mixed_stream_in_order_at_both_engines);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
