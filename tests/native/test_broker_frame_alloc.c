/* test_broker_frame_alloc.c - aipc_broker_set_frame_allocator: every frame the broker queues
 * (control answers, publications built by copy, retained messages) and every block its
 * decoders assemble large inbound frames in comes from the allocator and goes back to it; a
 * large publication is still forwarded without a copy (its adopted block is the allocator's);
 * nothing the allocator handed out is left after aipc_broker_free. */
#include "check_main.h"
#include "test_broker_fake.h"
#include "test_count_alloc.h"

static count_alloc ca;

static aipc_broker *counted_broker(void)
{
    count_alloc_init(&ca);
    aipc_broker *b = test_broker(0, 0, 0);
    ck_assert_int_eq(aipc_broker_set_frame_allocator(b, &ca.a), 0);
    return b;
}

static fake *subscriber(aipc_broker *b, const char *filter)
{
    fake *f = fake_new(b, 0);
    fake_hello(f, NULL);
    char meta[128];
    snprintf(meta, sizeof meta, "{\"op\":\"sub\",\"id\":1,\"topic\":\"%s\"}", filter);
    fake_sendt(f, meta, NULL);
    fake_expect(f, "ok");
    return f;
}

START_TEST(frames_and_blocks_come_from_the_allocator)
{
    aipc_broker *b = counted_broker();
    fake *p = fake_new(b, 0);
    fake_hello(p, NULL);                        /* welcome: a control frame */
    size_t after_hello = ca.allocs;
    ck_assert_uint_ge(after_hello, 1);
    ck_assert_uint_eq(ca.nblk, 0);              /* written: freed */
    fake *s = subscriber(b, "t/#");
    s->stalled = true;                          /* its frames stay queued */

    /* A small publication (built by copy): one frame, held by s's queue. */
    size_t before = ca.allocs;
    ck_assert_int_eq(fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"t/a\"}", "small"), 0);
    ck_assert_uint_eq(ca.allocs, before + 1);
    ck_assert_uint_eq(ca.nblk, 1);

    /* A large publication sent in pieces: assembled in the allocator's block (alloc + growth),
     * and forwarded by adopting it: no allocation of the payload's size besides the block. */
    const size_t big = 200000;
    uint8_t *pl = malloc(big);
    for (size_t i = 0; i < big; i++)
        pl[i] = (uint8_t)(i * 7 + 1);
    ca.max_alloc = 0;
    before = ca.allocs;
    size_t reallocs = ca.reallocs;
    ck_assert_int_eq(fake_send_chunked(p, "{\"op\":\"pub\",\"topic\":\"t/b\"}", pl, big, 16384), 0);
    ck_assert_uint_eq(ca.allocs, before + 2);   /* the decoder's first block + the frame struct */
    ck_assert_uint_gt(ca.reallocs, reallocs);   /* the block grew with the data */
    ck_assert_uint_le(ca.max_alloc, AIPC_DECODER_INITIAL);   /* never a copy of the payload */
    ck_assert_uint_eq(ca.nblk, 3);              /* small frame, big frame's struct and block */
    ck_assert_uint_gt(ca.live_bytes, big);

    /* Drained: everything goes back to the allocator, payloads intact. */
    s->stalled = false;
    rx_frame *r = fake_next_nonpresence(s);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq((const char *)r->payload, "small");
    r = fake_next_nonpresence(s);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->plen, big);
    ck_assert_mem_eq(r->payload, pl, big);
    ck_assert_uint_eq(ca.nblk, 0);
    free(pl);

    /* Too late to change the allocator: clients attached. */
    ck_assert_int_eq(aipc_broker_set_frame_allocator(b, NULL), AIPC_EINVAL);
    fake_free(s);
    fake_free(p);
    aipc_broker_free(b);
    ck_assert_uint_eq(ca.nblk, 0);
    ck_assert_uint_eq(ca.allocs, ca.frees);
}
END_TEST

/* Frames still queued, a retained message and a half-received frame when the broker is freed:
 * aipc_broker_free gives all of them back to the allocator. */
START_TEST(broker_free_returns_everything)
{
    aipc_broker *b = counted_broker();
    fake *p = fake_new(b, 0);
    fake_hello(p, NULL);
    fake *s = subscriber(b, "r/#");
    s->stalled = true;
    ck_assert_int_eq(fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"r/x\",\"retain\":true}", "kept"), 0);
    ck_assert_int_eq(fake_sendt(p, "{\"op\":\"ping\",\"id\":7}", NULL), 0);
    uint8_t half[8 + 100];
    aipc_frame_put_header(half, 0, 100000);
    ck_assert_int_eq(aipc_broker_input(b, p->cl, half, sizeof half), 0);
    ck_assert_uint_ge(ca.nblk, 3);              /* queued copy, retained copy, partial block */
    ck_assert_uint_eq(fake_stats(b).retained_topics, 1);
    /* The broker goes first, as an engine frees it (the fakes' clients go with it). */
    aipc_broker_free(b);
    ck_assert_uint_eq(ca.nblk, 0);
    ck_assert_uint_eq(ca.allocs, ca.frees);
    s->cl = NULL;
    p->cl = NULL;
    s->conn.client = NULL;
    p->conn.client = NULL;
    fake_free(s);
    fake_free(p);
}
END_TEST

/* Incomplete allocators are refused; NULL restores the CRT's. */
START_TEST(allocator_checked)
{
    aipc_broker *b = test_broker(0, 0, 0);
    count_alloc_init(&ca);
    aipc_allocator bad = ca.a;
    bad.realloc = NULL;
    ck_assert_int_eq(aipc_broker_set_frame_allocator(b, &bad), AIPC_EINVAL);
    ck_assert_int_eq(aipc_broker_set_frame_allocator(b, &ca.a), 0);
    ck_assert_int_eq(aipc_broker_set_frame_allocator(b, NULL), 0);
    fake *p = fake_new(b, 0);
    fake_hello(p, NULL);
    ck_assert_uint_eq(ca.allocs, 0);            /* back on the CRT's */
    fake_free(p);
    aipc_broker_free(b);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_frame_alloc");
    TCase *tc = tcase_create("frame_alloc");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, frames_and_blocks_come_from_the_allocator);
    tcase_add_test(tc, broker_free_returns_everything);
    tcase_add_test(tc, allocator_checked);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
