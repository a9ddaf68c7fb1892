/* test_broker_queue.c - per-client outbound queues: slow-consumer drops and the `dropped`
 * report, control frames never dropped, partial writes, per-publisher ordering, fan-out
 * sharing one encoded frame. */
#include "check_main.h"
#include "test_broker_fake.h"
#include "test_heap.h"

#include "internal.h"

/* Publications beyond max_queue_bytes are dropped for the slow client only, counted, and
 * reported in one `dropped` at the head of its queue, ahead of what it still has to read; the
 * fast client gets everything. */
START_TEST(slow_consumer_drops_and_report)
{
    aipc_broker *b = test_broker(65536, 0, 0);
    fake *slow = fake_new(b, 1), *fast = fake_new(b, 2), *p = fake_new(b, 3);
    fake_hello(slow, NULL);
    fake_hello(fast, NULL);
    fake_hello(p, NULL);
    fake_sendt(slow, "{\"op\":\"sub\",\"topic\":\"d\"}", NULL);
    fake_sendt(fast, "{\"op\":\"sub\",\"topic\":\"d\"}", NULL);
    fake_skip_all(slow);
    fake_skip_all(fast);
    slow->stalled = true;
    static char pl[10000];
    memset(pl, 'p', sizeof pl);
    for (int i = 0; i < 20; i++) {
        char meta[64];
        snprintf(meta, sizeof meta, "{\"op\":\"pub\",\"topic\":\"d\",\"id\":%d}", i);
        fake_send(p, meta, pl, sizeof pl);
        fake_expect(p, "ok");          /* the publisher is not told about drops */
    }
    for (int i = 0; i < 20; i++)
        ck_assert_str_eq(rx_str(fake_expect(fast, "msg"), "topic"), "d");
    uint64_t queued = aipc_client_out_pending(slow->cl);
    ck_assert(queued <= 65536);
    aipc_broker_stats st;
    aipc_broker_get_stats(b, &st);
    int kept = 20 - (int)st.drops;
    ck_assert_int_eq(kept, 6);         /* 6 x ~10.1 KB fit in 64 KiB, the 7th does not */
    ck_assert(queued > 60000);
    /* Control frames are never dropped, even now. */
    fake_sendt(slow, "{\"op\":\"ping\",\"id\":42}", NULL);
    slow->stalled = false;
    rx_frame *d = fake_expect(slow, "dropped");
    ck_assert_int_eq((int)rx_num(d, "count"), 20 - kept);
    for (int i = 0; i < kept; i++)
        fake_expect(slow, "msg");
    ck_assert_int_eq((int)rx_num(fake_expect(slow, "pong"), "re"), 42);
    ck_assert_ptr_null(fake_next(slow));
    aipc_broker_get_stats(b, &st);
    ck_assert_uint_eq(st.drop_reports, 1);
    /* Reported once: the next publication arrives plainly. */
    fake_send(p, "{\"op\":\"pub\",\"topic\":\"d\"}", "z", 1);
    fake_expect(slow, "msg");
    ck_assert_ptr_null(fake_next(slow));
    fake_free(slow);
    fake_free(fast);
    fake_free(p);
    aipc_broker_free(b);
}
END_TEST

/* When room returns before the queue is empty, the report precedes the next publication. */
START_TEST(dropped_report_at_the_head)
{
    aipc_broker *b = test_broker(65536, 0, 0);
    fake *s = fake_new(b, 1), *p = fake_new(b, 3);
    fake_hello(s, NULL);
    fake_hello(p, NULL);
    fake_sendt(s, "{\"op\":\"sub\",\"topic\":\"d\"}", NULL);
    fake_skip_all(s);
    static char pl[30000];
    memset(pl, 'p', sizeof pl);
    s->stalled = true;
    for (int i = 0; i < 4; i++)
        fake_send(p, "{\"op\":\"pub\",\"topic\":\"d\"}", pl, sizeof pl);   /* 2 kept, 2 dropped */
    /* The writer's next piece is the report, before the two queued publications. */
    aipc_iov iov[1];
    ck_assert_int_eq(aipc_client_out_next(s->cl, iov, 1), 1);
    ck_assert_uint_lt(iov[0].len, 100);
    ck_assert_int_eq(aipc_decoder_feed(&s->dec, iov[0].base, iov[0].len, fake_on_frame, s, NULL), 0);
    aipc_client_out_consume(s->cl, iov[0].len);
    ck_assert_int_eq((int)rx_num(fake_expect(s, "dropped"), "count"), 2);
    /* Half a publication written: drops meanwhile wait for the frame boundary, coalesced. */
    ck_assert_int_eq(aipc_client_out_next(s->cl, iov, 1), 1);
    ck_assert_int_eq(aipc_decoder_feed(&s->dec, iov[0].base, 1000, fake_on_frame, s, NULL), 0);
    aipc_client_out_consume(s->cl, 1000);
    for (int i = 0; i < 3; i++)
        fake_send(p, "{\"op\":\"pub\",\"topic\":\"d\"}", pl, sizeof pl);   /* dropped */
    ck_assert_int_eq(aipc_client_out_next(s->cl, iov, 1), 1);
    ck_assert_uint_gt(iov[0].len, sizeof pl - 1000);         /* still the publication's rest */
    ck_assert_int_eq(aipc_decoder_feed(&s->dec, iov[0].base, iov[0].len, fake_on_frame, s, NULL), 0);
    aipc_client_out_consume(s->cl, iov[0].len);                /* the first one completes */
    fake_expect(s, "msg");
    s->stalled = false;
    ck_assert_int_eq((int)rx_num(fake_expect(s, "dropped"), "count"), 3);
    fake_expect(s, "msg");
    fake_send(p, "{\"op\":\"pub\",\"topic\":\"d\"}", "new", 3);
    ck_assert_str_eq((char *)fake_expect(s, "msg")->payload, "new");
    ck_assert_ptr_null(fake_next(s));
    aipc_broker_stats st;
    aipc_broker_get_stats(b, &st);
    ck_assert_uint_eq(st.drop_reports, 2);
    ck_assert_uint_eq(st.drops, 5);
    fake_free(s);
    fake_free(p);
    aipc_broker_free(b);
}
END_TEST

/* A slow consumer with a long backlog learns of drops at once, not after the backlog: each
 * time its writer reaches a frame boundary, all drops since the last report arrive in one
 * report, so reports add up to the drops and none waits behind queued publications. */
START_TEST(dropped_report_prompt_and_coalesced)
{
    aipc_broker *b = test_broker(1u << 20, 0, 0);
    fake *s = fake_new(b, 1), *p = fake_new(b, 3);
    fake_hello(s, NULL);
    fake_hello(p, NULL);
    fake_sendt(s, "{\"op\":\"sub\",\"topic\":\"d\"}", NULL);
    fake_skip_all(s);
    static char pl[1000];
    s->stalled = true;
    for (int i = 0; i < 2000; i++)                            /* ~1000 queued, ~1000 dropped */
        fake_send(p, "{\"op\":\"pub\",\"topic\":\"d\"}", pl, sizeof pl);
    uint64_t reported = 0, msgs = 0;
    for (int round = 0; round < 200; round++) {
        /* The consumer reads one frame per round; the publisher keeps overflowing it. */
        for (int i = 0; i < 5; i++)
            fake_send(p, "{\"op\":\"pub\",\"topic\":\"d\"}", pl, sizeof pl);
        aipc_iov iov[1];
        ck_assert_int_eq(aipc_client_out_next(s->cl, iov, 1), 1);
        size_t before = s->nrx;
        ck_assert_int_eq(aipc_decoder_feed(&s->dec, iov[0].base, iov[0].len, fake_on_frame, s, NULL), 0);
        aipc_client_out_consume(s->cl, iov[0].len);
        ck_assert_uint_eq(s->nrx, before + 1);
        rx_frame *r = fake_next(s);
        if (strcmp(rx_str(r, "op"), "dropped") == 0) {
            reported += (uint64_t)rx_num(r, "count");
            ck_assert_uint_eq(round % 2, 0);                   /* every other frame: at once */
        } else {
            ck_assert_str_eq(rx_str(r, "op"), "msg");
            msgs++;
        }
    }
    aipc_broker_stats st;
    aipc_broker_get_stats(b, &st);
    ck_assert_uint_eq(st.drop_reports, 100);
    ck_assert_uint_eq(msgs, 100);
    /* The rest of the backlog: everything dropped so far has been reported but the drops of
     * the last round, which come first now. */
    s->stalled = false;
    for (rx_frame *r; (r = fake_next(s));)
        if (strcmp(rx_str(r, "op"), "dropped") == 0)
            reported += (uint64_t)rx_num(r, "count");
    aipc_broker_get_stats(b, &st);
    ck_assert_uint_eq(reported, st.drops);
    fake_free(s);
    fake_free(p);
    aipc_broker_free(b);
}
END_TEST

/* One publication larger than the whole bound still reaches an idle subscriber. */
START_TEST(oversize_publication_to_idle_queue)
{
    aipc_broker *b = test_broker(65536, 0, 0);
    fake *s = fake_new(b, 1), *p = fake_new(b, 3);
    fake_hello(s, NULL);
    fake_hello(p, NULL);
    fake_sendt(s, "{\"op\":\"sub\",\"topic\":\"big\",\"id\":1}", NULL);
    s->stalled = true;
    size_t n = 200000;
    uint8_t *pl = malloc(n);
    for (size_t i = 0; i < n; i++)
        pl[i] = (uint8_t)(i * 7);
    fake_send(p, "{\"op\":\"pub\",\"topic\":\"big\"}", pl, n);
    fake_send(p, "{\"op\":\"pub\",\"topic\":\"big\"}", pl, n);     /* this one is dropped */
    s->stalled = false;
    fake_expect(s, "ok");                                      /* received before the stall */
    ck_assert_int_eq((int)rx_num(fake_expect(s, "dropped"), "count"), 1);   /* then first */
    rx_frame *m = fake_expect(s, "msg");
    ck_assert_uint_eq(m->plen, n);
    ck_assert_mem_eq(m->payload, pl, n);
    free(pl);
    fake_free(s);
    fake_free(p);
    aipc_broker_free(b);
}
END_TEST

/* Per publisher, each subscriber sees publications in publish order, whatever the write sizes;
 * publications from two publishers interleave but each stream stays ordered. */
START_TEST(per_publisher_order_with_partial_writes)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *s1 = fake_new(b, 1), *s2 = fake_new(b, 2), *pa = fake_new(b, 3), *pb = fake_new(b, 4);
    fake_hello(s1, NULL);
    fake_hello(s2, NULL);
    uint64_t ida = fake_hello(pa, "A");
    fake_hello(pb, "B");
    fake_sendt(s1, "{\"op\":\"sub\",\"topic\":\"o/#\"}", NULL);
    fake_sendt(s2, "{\"op\":\"sub\",\"topic\":\"o/+\"}", NULL);
    fake_sendt(s2, "{\"op\":\"sub\",\"topic\":\"o/a\"}", NULL);
    fake_skip_all(s1);
    fake_skip_all(s2);
    s1->write_chunk = 7;               /* odd write sizes split frames everywhere */
    s2->write_chunk = 1000;
    enum { N = 500 };
    for (int i = 0; i < N; i++) {
        char pl[16];
        int n = snprintf(pl, sizeof pl, "%d", i);
        fake_send(pa, "{\"op\":\"pub\",\"topic\":\"o/a\"}", pl, (size_t)n);
        fake_send(pb, "{\"op\":\"pub\",\"topic\":\"o/b\"}", pl, (size_t)n);
        if (i % 37 == 0)
            fake_pump(s1);
    }
    fake *subs[2] = {s1, s2};
    for (int k = 0; k < 2; k++) {
        int next_a = 0, next_b = 0;
        rx_frame *m;
        while ((m = fake_next(subs[k])) != NULL) {
            ck_assert_str_eq(rx_str(m, "op"), "msg");
            int v = atoi((char *)m->payload);
            if ((uint64_t)rx_from_num(m, "id") == ida) {
                ck_assert_int_eq(v, next_a);
                next_a++;
            } else {
                ck_assert_int_eq(v, next_b);
                next_b++;
            }
        }
        ck_assert_int_eq(next_a, N);
        ck_assert_int_eq(next_b, N);
    }
    fake_free(s1);
    fake_free(s2);
    fake_free(pa);
    fake_free(pb);
    aipc_broker_free(b);
}
END_TEST

/* Fan-out shares one encoded frame: every subscriber's iov points at the same bytes. */
START_TEST(fanout_shares_one_frame)
{
    aipc_broker *b = test_broker(0, 0, 0);
    enum { N = 50 };
    fake *s[N];
    for (int i = 0; i < N; i++) {
        s[i] = fake_new(b, (uint32_t)i);
        fake_hello(s[i], NULL);
        fake_sendt(s[i], "{\"op\":\"sub\",\"topic\":\"f\"}", NULL);
        fake_skip_all(s[i]);
        s[i]->stalled = true;
    }
    fake *p = fake_new(b, 99);
    fake_hello(p, NULL);
    fake_send(p, "{\"op\":\"pub\",\"topic\":\"f\"}", "shared", 6);
    const uint8_t *first = NULL;
    for (int i = 0; i < N; i++) {
        aipc_iov iov[4];
        ck_assert_int_eq(aipc_client_out_next(s[i]->cl, iov, 4), 1);
        if (!first)
            first = iov[0].base;
        ck_assert_ptr_eq(iov[0].base, first);
        ck_assert_int_ge(s[i]->want_write_calls, 2);
    }
    for (int i = 0; i < N; i++) {
        s[i]->stalled = false;
        ck_assert_str_eq((char *)fake_expect(s[i], "msg")->payload, "shared");
        fake_free(s[i]);
    }
    aipc_broker_stats st;
    aipc_broker_get_stats(b, &st);
    ck_assert_uint_eq(st.deliveries, N);
    fake_free(p);
    aipc_broker_free(b);
}
END_TEST

/* want_write is called when the queue goes from empty to non-empty, not per frame. */
START_TEST(want_write_on_empty_to_nonempty)
{
    aipc_broker *b = test_broker(0, 0, 0);
    fake *c = fake_new(b, 1);
    c->stalled = true;
    fake_sendt(c, "{\"op\":\"hello\",\"proto\":1}", NULL);
    ck_assert_int_eq(c->want_write_calls, 1);
    fake_sendt(c, "{\"op\":\"ping\"}", NULL);
    fake_sendt(c, "{\"op\":\"ping\"}", NULL);
    ck_assert_int_eq(c->want_write_calls, 1);
    c->stalled = false;
    fake_pump(c);
    fake_sendt(c, "{\"op\":\"ping\"}", NULL);
    ck_assert_int_eq(c->want_write_calls, 2);
    /* out_next honours max_iov and a partial consume keeps the offset. */
    c->stalled = true;
    fake_sendt(c, "{\"op\":\"ping\",\"id\":1}", NULL);
    fake_sendt(c, "{\"op\":\"ping\",\"id\":2}", NULL);
    aipc_iov iov[2];
    ck_assert_int_eq(aipc_client_out_next(c->cl, iov, 2), 2);
    ck_assert_int_eq(aipc_client_out_next(c->cl, iov, 1), 1);
    size_t first = iov[0].len;
    aipc_client_out_consume(c->cl, 3);
    ck_assert_int_eq(aipc_client_out_next(c->cl, iov, 2), 2);
    ck_assert_uint_eq(iov[0].len, first - 3);
    ck_assert_uint_eq(aipc_client_out_pending(c->cl), iov[0].len + iov[1].len);
    aipc_client_out_consume(c->cl, iov[0].len + iov[1].len);
    ck_assert_int_eq(aipc_client_out_next(c->cl, iov, 2), 0);
    ck_assert_uint_eq(aipc_client_out_pending(c->cl), 0);
    fake_free(c);
    aipc_broker_free(b);
}
END_TEST

/* A client that never reads but keeps asking for answers is cut off (input returns < 0), before
 * its small answers hold more than max_queue_bytes + 1 MiB of memory (overhead included). */
START_TEST(control_flood_is_cut_off)
{
    aipc_broker *b = test_broker(65536, 0, 0);
    fake *c = fake_new(b, 1);
    fake_hello(c, NULL);
    c->stalled = true;
    size_t h0 = heap_live_bytes();
    int rc = 0, i;
    for (i = 0; i < 200000 && rc == 0; i++)
        rc = fake_sendt(c, "{\"op\":\"ping\",\"id\":123456789}", NULL);
    ck_assert_int_lt(rc, 0);
    ck_assert_int_eq(c->close_calls, 1);
    ck_assert(aipc_client_out_pending(c->cl) <= 65536 + 1024 * 1024);
    ck_assert_uint_le(heap_live_bytes() - h0, 65536 + 1024 * 1024 + 64 * 1024);
    fake_free(c);
    aipc_broker_free(b);
}
END_TEST

/* A partly written publication does not confuse the control-bytes accounting. */
START_TEST(partial_publication_then_control)
{
    aipc_broker *b = test_broker(65536, 0, 0);
    fake *s = fake_new(b, 1), *p = fake_new(b, 2);
    fake_hello(s, NULL);
    fake_hello(p, NULL);
    fake_sendt(s, "{\"op\":\"sub\",\"topic\":\"x\"}", NULL);
    s->stalled = true;
    static char pl[50000];
    memset(pl, 'x', sizeof pl);
    fake_send(p, "{\"op\":\"pub\",\"topic\":\"x\"}", pl, sizeof pl);
    aipc_iov iov[2];
    ck_assert_int_eq(aipc_client_out_next(s->cl, iov, 2), 1);
    ck_assert_int_eq(aipc_decoder_feed(&s->dec, iov[0].base, 40000, fake_on_frame, s, NULL), 0);
    aipc_client_out_consume(s->cl, 40000);
    ck_assert_int_eq(fake_sendt(s, "{\"op\":\"ping\",\"id\":1}", NULL), 0);
    ck_assert_int_eq(s->close_calls, 0);
    fake_send(p, "{\"op\":\"pub\",\"topic\":\"x\"}", pl, 20000);   /* over the bound: dropped */
    s->stalled = false;
    /* The writer was inside the publication: its rest and the pong go in that write, the
     * report at the next boundary. */
    ck_assert_uint_eq(fake_expect(s, "msg")->plen, sizeof pl);
    fake_expect(s, "pong");
    ck_assert_int_eq((int)rx_num(fake_expect(s, "dropped"), "count"), 1);
    fake_free(s);
    fake_free(p);
    aipc_broker_free(b);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_queue");
    TCase *tc = tcase_create("queue");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, slow_consumer_drops_and_report);
    tcase_add_test(tc, dropped_report_at_the_head);
    tcase_add_test(tc, dropped_report_prompt_and_coalesced);
    tcase_add_test(tc, oversize_publication_to_idle_queue);
    tcase_add_test(tc, per_publisher_order_with_partial_writes);
    tcase_add_test(tc, fanout_shares_one_frame);
    tcase_add_test(tc, want_write_on_empty_to_nonempty);
    tcase_add_test(tc, control_flood_is_cut_off);
    tcase_add_test(tc, partial_publication_then_control);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
