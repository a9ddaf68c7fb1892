/* test_broker_retained_limits.c - the retained store is bounded by the heap it really holds
 * (trie nodes and tables, records, frames: deep topics cost what they take), retained_bytes
 * stays within 2x of the counted heap, and a wildcard sub against a large store is delivered in
 * bounded slices (the sub itself, then aipc_broker_tick) that pause while the subscriber's queue
 * is full (its own bound, or every queue's together) instead of dropping, and cope with the
 * store changing underneath. */
#include "check_main.h"
#include "test_broker_fake.h"
#include "test_heap.h"

static aipc_broker *ret_broker(uint64_t max_retained, uint64_t max_queue)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.max_retained_bytes = max_retained;
    if (max_queue)
        cfg.max_queue_bytes = max_queue;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    ck_assert_ptr_nonnull(b);
    return b;
}

/* retain topic = payload (no id: nothing is queued to the publisher on success). */
static void retain(fake *p, const char *topic, const void *pl, size_t n)
{
    char meta[2200];
    snprintf(meta, sizeof meta, "{\"op\":\"pub\",\"topic\":\"%s\",\"retain\":true}", topic);
    ck_assert_int_eq(fake_send(p, meta, pl, n), 0);
}

/* A 256-level topic, unique by its first level. */
static void deep_topic(char *out, size_t cap, int i)
{
    int n = snprintf(out, cap, "d%d", i);
    for (int l = 1; l < 256; l++) {
        out[n++] = '/';
        out[n++] = 'x';
    }
    out[n] = 0;
    (void)cap;
}

/* Deep topics are charged what they hold: a 1 MiB bound holds about 1 MiB of heap (it held
 * ~109 MiB when only topic and payload bytes counted), refused ones get retained_full, and
 * retained_bytes is within 2x of the counted heap; clearing everything gives it all back. */
START_TEST(deep_topics_bounded_by_heap)
{
    aipc_broker *b = ret_broker(1u << 20, 0);
    fake *p = fake_new(b, 1);
    fake_hello(p, "p");
    static char topic[600];
    size_t h0 = heap_live_bytes();
    int stored = 0;
    for (int i = 0; i < 1000; i++) {
        deep_topic(topic, sizeof topic, i);
        retain(p, topic, "v", 1);
        rx_frame *r = fake_next(p);
        if (r) {
            ck_assert_str_eq(rx_str(r, "code"), "retained_full");
            break;
        }
        stored++;
    }
    size_t heap = heap_live_bytes() - h0;
    aipc_broker_stats st = fake_stats(b);
    fprintf(stderr, "deep retained topics: %d stored, charged %llu, heap +%zu\n", stored,
            (unsigned long long)st.retained_bytes, heap);
    ck_assert_int_gt(stored, 5);
    ck_assert_int_lt(stored, 1000);
    ck_assert_uint_eq(st.retained_topics, (uint64_t)stored);
    ck_assert_uint_le(st.retained_bytes, 1u << 20);
    ck_assert_uint_le(heap, st.retained_bytes + 4096);         /* the charge covers the heap */
    ck_assert_uint_le(st.retained_bytes, 2 * heap);            /* and is within 2x of it */
    for (int i = 0; i < stored; i++) {
        deep_topic(topic, sizeof topic, i);
        retain(p, topic, NULL, 0);
    }
    ck_assert_uint_eq(fake_stats(b).retained_bytes, 0);
    ck_assert_uint_le(heap_live_bytes() - h0, 4096);
    fake_free(p);
    aipc_broker_free(b);
}
END_TEST

/* Shallow topics sharing their upper levels, small and large payloads: the charge stays within
 * [heap, 2 x heap]. */
START_TEST(charge_tracks_heap)
{
    aipc_broker *b = ret_broker(1ull << 40, 0);
    fake *p = fake_new(b, 1);
    fake_hello(p, "p");
    static uint8_t pl[100000];
    size_t h0 = heap_live_bytes();
    char topic[64];
    for (int i = 0; i < 3000; i++) {
        snprintf(topic, sizeof topic, "site/%d/room/%d/temp", i % 7, i);
        retain(p, topic, pl, i % 100 == 0 ? 70000 + (size_t)i : 1 + (size_t)i % 50);
    }
    size_t heap = heap_live_bytes() - h0;
    uint64_t charged = fake_stats(b).retained_bytes;
    fprintf(stderr, "3000 shared topics: charged %llu, heap +%zu\n", (unsigned long long)charged,
            heap);
    ck_assert_uint_le(heap, charged);
    ck_assert_uint_le(charged, 2 * heap);
    fake_free(p);
    aipc_broker_free(b);
}
END_TEST

/* Receives what s got so far; counts retained msgs (checking each topic once) and returns
 * their number. */
static int take_retained(fake *s, char *seen, int n)
{
    int got = 0;
    for (rx_frame *r; (r = fake_next(s));) {
        if (strcmp(rx_str(r, "op"), "msg") != 0)
            continue;
        ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(r->meta, "retained")));
        int i = atoi(rx_str(r, "topic") + 2);
        ck_assert(i >= 0 && i < n && !seen[i]);
        seen[i] = 1;
        got++;
    }
    return got;
}

/* "#" against 20000 retained topics: the sub delivers a first slice only, each tick at most
 * its budget, the tick asks to be called again at once while work remains, and in the end
 * every topic came once. Another client is served between slices. */
START_TEST(wildcard_sub_in_slices)
{
    enum { N = 20000 };
    aipc_broker *b = ret_broker(1ull << 40, 64u << 20);
    fake *p = fake_new(b, 1), *s = fake_new(b, 2), *other = fake_new(b, 3);
    fake_hello(p, "p");
    fake_hello(s, "s");
    fake_hello(other, "o");
    char topic[32];
    for (int i = 0; i < N; i++) {
        snprintf(topic, sizeof topic, "r/%d", i);
        retain(p, topic, "v", 1);
    }
    char *seen = calloc(N, 1);
    fake_sendt(s, "{\"op\":\"sub\",\"topic\":\"#\",\"id\":1}", NULL);
    fake_expect(s, "ok");
    int got = take_retained(s, seen, N), ticks = 0;
    ck_assert_int_le(got, 1024);                               /* the first slice */
    ck_assert_int_gt(got, 0);
    while (got < N) {
        uint64_t next = aipc_broker_tick(b);
        int slice = take_retained(s, seen, N);
        ck_assert_int_gt(slice, 0);
        ck_assert_int_le(slice, 4096);
        got += slice;
        ck_assert_uint_eq(next, got < N ? 0 : UINT64_MAX);      /* at once while work remains */
        ticks++;
        fake_sendt(other, "{\"op\":\"ping\",\"id\":7}", NULL);
        fake_expect(other, "pong");
    }
    ck_assert_int_eq(got, N);
    ck_assert_uint_eq(aipc_broker_tick(b), UINT64_MAX);        /* done: nothing pending */
    ck_assert_int_ge(ticks, (N - 1024) / 4096);
    ck_assert_uint_eq(fake_stats(b).drops, 0);
    free(seen);
    fake_free(p);
    fake_free(s);
    fake_free(other);
    aipc_broker_free(b);
}
END_TEST

/* A subscriber with a small queue that does not read: the delivery fills the queue to its
 * bound and pauses (nothing dropped, no `dropped`); as it reads, the rest follows. */
START_TEST(pauses_for_the_queue_bound)
{
    enum { N = 500 };
    aipc_broker *b = ret_broker(1ull << 40, 65536);
    fake *p = fake_new(b, 1), *s = fake_new(b, 2);
    fake_hello(p, "p");
    fake_hello(s, "s");
    static uint8_t pl[1000];
    char topic[32];
    for (int i = 0; i < N; i++) {
        snprintf(topic, sizeof topic, "r/%d", i);
        retain(p, topic, pl, sizeof pl);
    }
    s->stalled = true;
    fake_sendt(s, "{\"op\":\"sub\",\"topic\":\"r/+\"}", NULL);
    for (int i = 0; i < 10; i++)
        aipc_broker_tick(b);
    ck_assert_uint_le(aipc_client_out_pending(s->cl), 65536);
    ck_assert_uint_gt(aipc_client_out_pending(s->cl), 60000);
    ck_assert_uint_eq(aipc_broker_tick(b), UINT64_MAX);        /* paused: nothing to do now */
    ck_assert_uint_eq(fake_stats(b).drops, 0);
    s->stalled = false;
    char *seen = calloc(N, 1);
    int got = 0;
    for (int rounds = 0; got < N && rounds < 1000; rounds++) {
        got += take_retained(s, seen, N);
        aipc_broker_tick(b);
    }
    ck_assert_int_eq(got, N);
    ck_assert_uint_eq(fake_stats(b).drops, 0);
    free(seen);
    fake_free(p);
    fake_free(s);
    aipc_broker_free(b);
}
END_TEST

/* The same at the bound of every queue together (max_total_queue_bytes) with a per-client bound
 * that is far larger: the delivery fills the total and pauses (nothing dropped, the total kept);
 * another client's larger queue of publications loses to it as to a live publication; as the
 * subscriber reads, the rest follows. */
START_TEST(pauses_for_the_total_bound)
{
    enum { N = 500 };
    const uint64_t total = 128 * 1024;
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.max_retained_bytes = 1ull << 40;
    cfg.max_queue_bytes = 1u << 20;
    cfg.max_total_queue_bytes = total;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    fake *p = fake_new(b, 1), *s = fake_new(b, 2);
    fake_hello(p, "p");
    fake_hello(s, "s");
    static uint8_t pl[1000];
    char topic[32];
    for (int i = 0; i < N; i++) {
        snprintf(topic, sizeof topic, "r/%d", i);
        retain(p, topic, pl, sizeof pl);
    }
    s->stalled = true;
    fake_sendt(s, "{\"op\":\"sub\",\"topic\":\"r/+\"}", NULL);
    for (int i = 0; i < 10; i++)
        aipc_broker_tick(b);
    aipc_broker_stats st = fake_stats(b);
    ck_assert_uint_le(st.queue_bytes, total);
    ck_assert_uint_gt(st.queue_bytes, total - 2000);
    ck_assert_uint_eq(aipc_broker_tick(b), UINT64_MAX);        /* paused: nothing to do now */
    ck_assert_uint_eq(st.drops, 0);
    s->stalled = false;
    char *seen = calloc(N, 1);
    int got = 0;
    for (int rounds = 0; got < N && rounds < 1000; rounds++) {
        got += take_retained(s, seen, N);
        ck_assert_uint_le(fake_stats(b).queue_bytes, total);
        aipc_broker_tick(b);
    }
    ck_assert_int_eq(got, N);
    ck_assert_uint_eq(fake_stats(b).drops, 0);
    ck_assert_uint_eq(aipc_broker_tick(b), UINT64_MAX);        /* done */

    /* A larger queue of live publications (l, not reading) loses them to a retained delivery. */
    fake *l = fake_new(b, 3), *t = fake_new(b, 4);
    fake_hello(l, "l");
    fake_hello(t, "t");
    fake_sendt(l, "{\"op\":\"sub\",\"topic\":\"live\"}", NULL);
    fake_skip_all(l);
    l->stalled = true;
    for (int i = 0; i < 200; i++)
        fake_send(p, "{\"op\":\"pub\",\"topic\":\"live\"}", pl, sizeof pl);
    ck_assert_uint_gt(fake_stats(b).queue_bytes, total - 2000);
    uint64_t drops = fake_stats(b).drops;
    t->stalled = true;
    fake_sendt(t, "{\"op\":\"sub\",\"topic\":\"r/+\"}", NULL);
    for (int i = 0; i < 10; i++)
        aipc_broker_tick(b);
    st = fake_stats(b);
    ck_assert_uint_le(st.queue_bytes, total);
    ck_assert_uint_gt(aipc_client_out_pending(t->cl), total / 3);   /* t got its share */
    ck_assert_uint_gt(st.queue_total_drops, 0);                     /* l paid for it */
    ck_assert_uint_gt(st.drops, drops);
    free(seen);
    fake_free(t);
    fake_free(l);
    fake_free(p);
    fake_free(s);
    aipc_broker_free(b);
}
END_TEST

/* The store changes while a delivery is paused: cleared topics are not delivered as retained
 * (their clear went out live, empty), replaced ones came live (not again as retained), topics
 * stored after the sub only live (live ones that met the full queue were dropped and reported,
 * as always); unsub and detach in the middle leave nothing behind (ASan). */
START_TEST(store_changes_during_delivery)
{
    enum { N = 300 };
    aipc_broker *b = ret_broker(1ull << 40, 65536);
    fake *p = fake_new(b, 1), *s = fake_new(b, 2);
    fake_hello(p, "p");
    fake_hello(s, "s");
    static uint8_t pl[1000];
    char topic[32];
    for (int i = 0; i < N; i++) {
        snprintf(topic, sizeof topic, "r/%d", i);
        retain(p, topic, pl, sizeof pl);
    }
    s->stalled = true;
    fake_sendt(s, "{\"op\":\"sub\",\"topic\":\"r/#\"}", NULL);  /* pauses after ~64 */
    for (int i = 100; i < 150; i++) {                          /* cleared */
        snprintf(topic, sizeof topic, "r/%d", i);
        retain(p, topic, NULL, 0);
    }
    for (int i = 150; i < 160; i++) {                          /* replaced: live only */
        snprintf(topic, sizeof topic, "r/%d", i);
        retain(p, topic, "new", 3);
    }
    for (int i = N; i < N + 10; i++) {                         /* new: live only */
        snprintf(topic, sizeof topic, "r/%d", i);
        retain(p, topic, "new", 3);
    }
    s->stalled = false;
    int retained_n = 0, live = 0, dropped = 0;
    for (int rounds = 0; rounds < 200; rounds++) {            /* read, then the engine's tick */
        for (rx_frame *r; (r = fake_next(s));) {
            if (strcmp(rx_str(r, "op"), "dropped") == 0)
                dropped += (int)rx_num(r, "count");           /* live ones met a full queue */
            if (strcmp(rx_str(r, "op"), "msg") != 0)
                continue;
            int i = atoi(rx_str(r, "topic") + 2);
            bool ret = cJSON_IsTrue(cJSON_GetObjectItem(r->meta, "retained"));
            if (ret) {
                ck_assert_msg(i < 100 || i >= 160, "r/%d came as retained", i);
                ck_assert(i < N);
                retained_n++;
            } else {
                ck_assert((i >= 100 && i < 160) || i >= N);
                ck_assert_uint_eq(r->plen, i < 150 ? 0 : 3);
                live++;
            }
        }
        aipc_broker_tick(b);
    }
    ck_assert_int_eq(retained_n, N - 60);
    ck_assert_int_eq(live + dropped, 70);
    /* Unsub and detach with deliveries in progress. */
    fake *u = fake_new(b, 3), *d = fake_new(b, 4);
    fake_hello(u, "u");
    fake_hello(d, "d");
    u->stalled = d->stalled = true;
    fake_sendt(u, "{\"op\":\"sub\",\"topic\":\"r/+\"}", NULL);
    fake_sendt(d, "{\"op\":\"sub\",\"topic\":\"#\"}", NULL);
    fake_sendt(u, "{\"op\":\"unsub\",\"topic\":\"r/+\"}", NULL);
    fake_free(d);
    u->stalled = false;
    fake_pump(u);
    ck_assert_uint_eq(aipc_broker_tick(b), UINT64_MAX);
    fake_free(u);
    fake_free(p);
    fake_free(s);
    aipc_broker_free(b);
}
END_TEST

/* An exact filter whose one retained message does not fit the queue now waits for room. */
START_TEST(exact_filter_waits_for_room)
{
    aipc_broker *b = ret_broker(1ull << 40, 65536);
    fake *p = fake_new(b, 1), *s = fake_new(b, 2);
    fake_hello(p, "p");
    fake_hello(s, "s");
    static uint8_t pl[40000];
    retain(p, "one", pl, sizeof pl);
    retain(p, "two", pl, sizeof pl);
    s->stalled = true;
    fake_sendt(s, "{\"op\":\"sub\",\"topic\":\"one\"}", NULL);
    fake_sendt(s, "{\"op\":\"sub\",\"topic\":\"two\"}", NULL);  /* 80 KB > 64 KiB: waits */
    ck_assert_uint_lt(aipc_client_out_pending(s->cl), 65536);
    s->stalled = false;
    fake_pump(s);
    aipc_broker_tick(b);
    ck_assert_str_eq(rx_str(fake_expect(s, "msg"), "topic"), "one");
    ck_assert_str_eq(rx_str(fake_expect(s, "msg"), "topic"), "two");
    ck_assert_uint_eq(fake_stats(b).drops, 0);
    fake_free(p);
    fake_free(s);
    aipc_broker_free(b);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_retained_limits");
    TCase *tc = tcase_create("retained_limits");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, deep_topics_bounded_by_heap);
    tcase_add_test(tc, charge_tracks_heap);
    tcase_add_test(tc, wildcard_sub_in_slices);
    tcase_add_test(tc, pauses_for_the_queue_bound);
    tcase_add_test(tc, pauses_for_the_total_bound);
    tcase_add_test(tc, store_changes_during_delivery);
    tcase_add_test(tc, exact_filter_waits_for_room);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
