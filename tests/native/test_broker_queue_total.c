/* test_broker_queue_total.c - max_total_queue_bytes: every outbound queue together stays under
 * the bound (counted in stats queue_bytes, and in the heap the test process really holds); the
 * client with the largest queue is the one that loses publications (evicted newest first,
 * reported with `dropped`, order of the rest kept), a client with a small queue loses nothing,
 * frames handed to the engine are never evicted; control answers are charged to the total
 * (they evict the client's own publications; over it only by a 1 MiB reserve in all). */
#include "check_main.h"
#include "test_broker_fake.h"
#include "test_heap.h"

#define PER_CLIENT (128u * 1024u)
#define TOTAL (256u * 1024u)
#define PL 1000u

static aipc_broker *total_broker(uint64_t per_client, uint64_t total)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.max_queue_bytes = per_client;
    cfg.max_total_queue_bytes = total;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    ck_assert_ptr_nonnull(b);
    return b;
}

static fake *subscriber(aipc_broker *b, uint32_t pid, const char *filter)
{
    fake *f = fake_new(b, pid);
    fake_hello(f, NULL);
    char meta[128];
    snprintf(meta, sizeof meta, "{\"op\":\"sub\",\"id\":1,\"topic\":\"%s\"}", filter);
    fake_sendt(f, meta, NULL);
    fake_expect(f, "ok");
    return f;
}

/* Publishes seq as a PL-byte payload (its first bytes are the decimal seq). */
static void publish(fake *p, const char *topic, unsigned seq)
{
    static char pl[PL];
    memset(pl, '.', sizeof pl);
    int n = snprintf(pl, sizeof pl, "%u", seq);
    pl[n] = ' ';
    char meta[128];
    snprintf(meta, sizeof meta, "{\"op\":\"pub\",\"topic\":\"%s\"}", topic);
    ck_assert_int_eq(fake_send(p, meta, pl, sizeof pl), 0);
}

/* Drains f: the `dropped` report (if any) first, then publications in increasing order.
 * Returns how many arrived; *dropped gets the reported count. */
static unsigned drain_in_order(fake *f, unsigned *dropped)
{
    f->stalled = false;
    *dropped = 0;
    unsigned got = 0;
    long last = -1;
    rx_frame *r;
    while ((r = fake_next(f))) {
        if (strcmp(rx_str(r, "op"), "dropped") == 0) {
            ck_assert_int_eq(got, 0);                  /* ahead of the queued publications */
            *dropped += (unsigned)rx_num(r, "count");
            continue;
        }
        ck_assert_str_eq(rx_str(r, "op"), "msg");
        long seq = strtol((const char *)r->payload, NULL, 10);
        ck_assert_msg(seq > last, "out of order: %ld after %ld", seq, last);
        last = seq;
        got++;
    }
    return got;
}

/* Three stalled subscribers fill the total; then a small stalled client gets 30 publications,
 * each made room for by evicting from the largest queues; it gets all of them, the large ones
 * get a `dropped` report for what they lost, and the total never exceeds the bound. */
START_TEST(largest_loses_small_keeps_everything)
{
    enum { SLOW = 3, N = 400, SMALL_N = 30 };
    aipc_broker *b = total_broker(PER_CLIENT, TOTAL);
    fake *p = fake_new(b, 1);
    fake_hello(p, NULL);
    fake *slow[SLOW];
    for (int i = 0; i < SLOW; i++) {
        slow[i] = subscriber(b, 10 + (uint32_t)i, "load/#");
        slow[i]->stalled = true;
    }
    fake *small = subscriber(b, 20, "small/#");
    small->stalled = true;
    size_t heap0 = heap_live_bytes();
    uint64_t peak_total = 0;
    for (unsigned i = 0; i < N; i++) {
        publish(p, "load/x", i);
        aipc_broker_stats st = fake_stats(b);
        ck_assert_uint_le(st.queue_bytes, TOTAL);
        if (st.queue_bytes > peak_total)
            peak_total = st.queue_bytes;
    }
    size_t heap_peak = heap_live_bytes();
    aipc_broker_stats st = fake_stats(b);
    ck_assert_uint_gt(st.queue_total_drops, 0);
    /* at the bound: one more frame's charge (PL + meta + overhead) would not fit */
    ck_assert_uint_gt(peak_total + PL + 200, TOTAL);
    /* the queues' real heap (frames shared by the three) is within the charge */
    ck_assert_uint_le(heap_peak - heap0, TOTAL);
    uint64_t drops_before = st.drops;
    for (unsigned i = 0; i < SMALL_N; i++) {
        publish(p, "small/y", i);
        ck_assert_uint_le(fake_stats(b).queue_bytes, TOTAL);
    }
    st = fake_stats(b);
    ck_assert_uint_gt(st.drops, drops_before);         /* evictions from the large ones */
    unsigned dropped;
    ck_assert_uint_eq(drain_in_order(small, &dropped), SMALL_N);
    ck_assert_uint_eq(dropped, 0);
    for (int i = 0; i < SLOW; i++) {
        unsigned got = drain_in_order(slow[i], &dropped);
        ck_assert_uint_gt(dropped, 0);
        ck_assert_uint_eq(got + dropped, N);
    }
    ck_assert_uint_eq(fake_stats(b).queue_bytes, 0);
    ck_assert_uint_eq(fake_pending(p), 0);             /* the publisher is told nothing */
    for (int i = 0; i < SLOW; i++)
        fake_free(slow[i]);
    fake_free(small);
    fake_free(p);
    aipc_broker_free(b);
}
END_TEST

/* The total below one client's bound: that client is the largest, it loses its own
 * publications once the total is reached, and a direct to it gets queue_full; a small client
 * keeps being served; 0 turns the bound off. */
START_TEST(the_largest_itself_loses)
{
    aipc_broker *b = total_broker(4 * TOTAL, TOTAL);
    fake *p = fake_new(b, 1);
    fake_hello(p, "p");
    fake *big = fake_new(b, 2);
    fake_hello(big, "big");
    fake_sendt(big, "{\"op\":\"sub\",\"id\":1,\"topic\":\"load/#\"}", NULL);
    fake_expect(big, "ok");
    big->stalled = true;
    fake *small = subscriber(b, 3, "small/#");
    unsigned i = 0;
    while (fake_stats(b).queue_total_drops == 0)
        publish(p, "load/x", i++);
    ck_assert_uint_le(fake_stats(b).queue_bytes, TOTAL);
    ck_assert_uint_gt(fake_stats(b).queue_bytes + PL + 200, TOTAL);
    static char direct[2 * PL];                        /* more than the room left */
    fake_send(p, "{\"op\":\"send\",\"id\":5,\"to\":\"big\"}", direct, sizeof direct);
    ck_assert_int_eq((int)rx_num(fake_expect_error(p, "queue_full"), "re"), 5);
    for (unsigned k = 0; k < 50; k++) {                /* small: served at once, never dropped */
        publish(p, "small/y", k);
        rx_frame *r = fake_expect(small, "msg");
        ck_assert_uint_eq(strtoul((const char *)r->payload, NULL, 10), k);
    }
    unsigned dropped;
    unsigned got = drain_in_order(big, &dropped);
    ck_assert_uint_eq(got + dropped, i);
    ck_assert_uint_gt(dropped, 0);
    fake_free(big);
    fake_free(small);
    fake_free(p);
    aipc_broker_free(b);

    b = total_broker(PER_CLIENT, 0);                   /* off: only the per-client bound */
    p = fake_new(b, 1);
    fake_hello(p, NULL);
    fake *s[4];
    for (int k = 0; k < 4; k++) {
        s[k] = subscriber(b, 10 + (uint32_t)k, "load/#");
        s[k]->stalled = true;
    }
    for (unsigned k = 0; k < 200; k++)
        publish(p, "load/x", k);
    ck_assert_uint_gt(fake_stats(b).queue_bytes, TOTAL);
    ck_assert_uint_eq(fake_stats(b).queue_total_drops, 0);
    for (int k = 0; k < 4; k++)
        fake_free(s[k]);
    fake_free(p);
    aipc_broker_free(b);
}
END_TEST

/* Frames out_next handed to the engine (a write in flight) are never evicted: their bytes stay
 * valid (AddressSanitizer would see a freed one) and are delivered first. */
START_TEST(frames_in_flight_stay)
{
    aipc_broker *b = total_broker(PER_CLIENT, 192u * 1024u);
    fake *p = fake_new(b, 1);
    fake_hello(p, NULL);
    fake *big = subscriber(b, 2, "load/#");
    fake *small = subscriber(b, 3, "small/#");
    big->stalled = true;
    small->stalled = true;
    for (unsigned i = 0; i < 100; i++)
        publish(p, "load/x", i);
    aipc_iov iov[4];                                   /* the engine starts a write of 4 */
    ck_assert_int_eq(aipc_client_out_next(big->cl, iov, 4), 4);
    for (unsigned i = 100; i < 400; i++)               /* big is full; the total is not */
        publish(p, "load/x", i);
    for (unsigned i = 0; i < 60; i++)                  /* small grows: big gets evicted */
        publish(p, "small/y", i);
    ck_assert_uint_gt(fake_stats(b).queue_total_drops, 0);
    size_t n = 0;
    for (int i = 0; i < 4; i++) {                      /* the write completes */
        ck_assert_int_eq(aipc_decoder_feed(&big->dec, iov[i].base, iov[i].len, fake_on_frame,
                                           big, NULL), 0);
        n += iov[i].len;
    }
    aipc_client_out_consume(big->cl, n);
    for (unsigned i = 0; i < 4; i++) {
        rx_frame *r = fake_expect(big, "msg");
        ck_assert_uint_eq(strtoul((const char *)r->payload, NULL, 10), i);
    }
    unsigned dropped;
    unsigned got = drain_in_order(big, &dropped);
    ck_assert_uint_gt(dropped, 0);
    ck_assert_uint_eq(4 + got + dropped, 400);
    ck_assert_uint_eq(drain_in_order(small, &dropped), 60);
    ck_assert_uint_eq(dropped, 0);
    fake_free(big);
    fake_free(small);
    fake_free(p);
    aipc_broker_free(b);
}
END_TEST

/* The key: 0 or 64 KiB..1 TiB; default 256 MiB; the stats answer lists the counters. */
START_TEST(config_and_stats)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    ck_assert_uint_eq(cfg.max_total_queue_bytes, 256ull * 1024 * 1024);
    char err[256];
    ck_assert_int_eq(aipc_broker_config_load_json(&cfg, "{\"max_total_queue_bytes\":0}", err,
                                                  sizeof err), 0);
    ck_assert_uint_eq(cfg.max_total_queue_bytes, 0);
    ck_assert_int_eq(aipc_broker_config_load_json(&cfg, "{\"max_total_queue_bytes\":1000}", err,
                                                  sizeof err), AIPC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "max_total_queue_bytes"));
    aipc_broker *b = total_broker(PER_CLIENT, TOTAL);
    fake *s = fake_new(b, 1);
    fake_hello(s, NULL);
    fake_sendt(s, "{\"op\":\"stats\",\"id\":1}", NULL);
    rx_frame *r = fake_expect(s, "stats");
    cJSON *j = cJSON_Parse((const char *)r->payload);
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(j, "queue_bytes")));
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(j, "queue_total_drops")));
    cJSON_Delete(j);
    fake_free(s);
    aipc_broker_free(b);
}
END_TEST

/* A stalled client whose own publications fill the total asks for answers: each answer takes
 * room from its own queued publications (reported with `dropped`), the total stays under the
 * bound, and the client is not cut off (its unread answers are under 64 KiB). */
START_TEST(answers_take_room_from_own_publications)
{
    enum { N = 400, PINGS = 200 };
    aipc_broker *b = total_broker(1u << 20, TOTAL);
    fake *p = fake_new(b, 1);
    fake_hello(p, NULL);
    fake *c = subscriber(b, 2, "mine/#");
    c->stalled = true;
    for (unsigned i = 0; i < N; i++)
        publish(p, "mine/x", i);
    ck_assert_uint_gt(fake_stats(b).queue_total_drops, 0);  /* c's queue holds the total */
    char meta[64];
    for (int i = 1; i <= PINGS; i++) {
        snprintf(meta, sizeof meta, "{\"op\":\"ping\",\"id\":%d}", i);
        ck_assert_int_eq(fake_sendt(c, meta, NULL), 0);
        ck_assert_uint_le(fake_stats(b).queue_bytes, TOTAL);
    }
    ck_assert_int_eq(c->close_calls, 0);
    c->stalled = false;
    unsigned got = 0, dropped = 0;
    int pongs = 0;
    for (rx_frame *r; (r = fake_next(c));) {
        if (strcmp(rx_str(r, "op"), "pong") == 0)
            ck_assert_int_eq((int)rx_num(r, "re"), ++pongs);
        else if (strcmp(rx_str(r, "op"), "dropped") == 0)
            dropped += (unsigned)rx_num(r, "count");
        else
            got++;
    }
    ck_assert_int_eq(pongs, PINGS);
    ck_assert_uint_eq(got + dropped, N);                   /* every publication accounted */
    fake_free(c);
    fake_free(p);
    aipc_broker_free(b);
}
END_TEST

/* The total held by frames that cannot be dropped (directs to a client that does not read):
 * clients that do not read their answers may take it over the bound by at most 1 MiB in all -
 * each one stays under the 64 KiB cut-off, so it is the reserve that cuts the later ones. */
START_TEST(answers_over_the_total_bounded_in_all)
{
    enum { CLIENTS = 24, PINGS = 550 };
    const uint64_t reserve = 1024u * 1024u;
    aipc_broker *b = total_broker(1u << 20, TOTAL);
    fake *p = fake_new(b, 1);
    fake_hello(p, "p");
    fake *d = fake_new(b, 2);
    fake_hello(d, "d");
    d->stalled = true;
    static char pl[PL];
    memset(pl, 'd', sizeof pl);
    for (int i = 0; i < 400; i++)
        fake_send(p, "{\"op\":\"send\",\"to\":\"d\"}", pl, sizeof pl);
    aipc_broker_stats st = fake_stats(b);
    ck_assert_uint_le(st.queue_bytes, TOTAL);
    ck_assert_uint_gt(st.queue_bytes, TOTAL - 2 * PL);         /* held by directs */
    fake *c[CLIENTS];
    int cut = 0;
    uint64_t peak = 0;
    char meta[64];
    for (int k = 0; k < CLIENTS; k++) {
        c[k] = fake_new(b, 10 + (uint32_t)k);
        fake_hello(c[k], NULL);
        c[k]->stalled = true;
    }
    for (int k = 0; k < CLIENTS; k++) {
        for (int i = 1; i <= PINGS; i++) {
            snprintf(meta, sizeof meta, "{\"op\":\"ping\",\"id\":%d}", i);
            fake_sendt(c[k], meta, NULL);
            st = fake_stats(b);
            if (st.queue_bytes > peak)
                peak = st.queue_bytes;
        }
        cut += c[k]->close_calls > 0;
        if (k < 12)                                             /* 12 x ~60 KB: in the reserve */
            ck_assert_int_eq(c[k]->close_calls, 0);
    }
    ck_assert_uint_le(peak, TOTAL + reserve);
    ck_assert_uint_gt(peak, TOTAL + reserve - 64 * 1024);
    ck_assert_int_gt(cut, 0);
    ck_assert_int_lt(cut, CLIENTS);
    for (int k = 0; k < CLIENTS; k++)
        fake_free(c[k]);
    fake_free(d);
    fake_free(p);
    aipc_broker_free(b);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_queue_total");
    TCase *tc = tcase_create("queue_total");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, largest_loses_small_keeps_everything);
    tcase_add_test(tc, the_largest_itself_loses);
    tcase_add_test(tc, frames_in_flight_stay);
    tcase_add_test(tc, config_and_stats);
    tcase_add_test(tc, answers_take_room_from_own_publications);
    tcase_add_test(tc, answers_over_the_total_bounded_in_all);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
