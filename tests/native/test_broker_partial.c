/* test_broker_partial.c - partially received frames: their memory follows the bytes that
 * arrived in both read paths (input and the engine's direct reads), all clients' partial frames
 * together are bounded by max_incomplete_bytes (the client that would go over gets
 * incomplete_full, its buffer freed at once), and a frame stalled for frame_timeout_ms closes
 * its connection (frame_timeout). The fake clock drives the timeout. */
#include "check_main.h"
#include "test_broker_fake.h"
#include "test_heap.h"

#include "internal.h"

static aipc_broker *partial_broker(uint64_t max_incomplete, uint32_t frame_ms)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.max_incomplete_bytes = max_incomplete;
    cfg.frame_timeout_ms = frame_ms;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    ck_assert_ptr_nonnull(b);
    return b;
}

/* The first `part` bytes of a pub frame with a payload of plen bytes (the rest via
 * send_rest). The frame is kept in *out for the rest. */
static uint8_t *pub_frame(const char *topic, size_t plen, size_t *len)
{
    char meta[128];
    int ml = snprintf(meta, sizeof meta, "{\"op\":\"pub\",\"topic\":\"%s\"}", topic);
    *len = 8 + (size_t)ml + plen;
    uint8_t *f = malloc(*len);
    aipc_frame_put_header(f, (uint32_t)ml, (uint32_t)plen);
    memcpy(f + 8, meta, (size_t)ml);
    memset(f + 8 + ml, 'p', plen);
    return f;
}

static int feed(fake *c, const uint8_t *p, size_t n)
{
    return aipc_broker_input(c->b, c->cl, p, n);
}

/* A header declaring 16 MiB reserves nothing like it: the charge (and the heap) follow the
 * bytes that arrived, through the input path and the engine's direct reads. */
START_TEST(memory_follows_bytes)
{
    aipc_broker *b = partial_broker(1ull << 30, 30000);
    fake *c = fake_new(b, 1);
    fake_hello(c, NULL);
    size_t len;
    uint8_t *f = pub_frame("big", 16u << 20, &len);
    size_t h0 = heap_live_bytes();
    ck_assert_int_eq(feed(c, f, 100), 0);
    ck_assert_uint_le(fake_stats(b).incomplete_bytes, AIPC_DECODER_INITIAL);
    ck_assert_uint_le(heap_live_bytes() - h0, AIPC_DECODER_INITIAL + 1024);
    size_t off = 100;
    ck_assert_int_eq(feed(c, f + off, 1u << 20), 0);         /* 1 MiB more by input */
    off += 1u << 20;
    uint64_t charged = fake_stats(b).incomplete_bytes;
    ck_assert_uint_ge(charged, off);
    ck_assert_uint_le(charged, 2 * off + AIPC_ADOPT_GAP);
    ck_assert_uint_le(heap_live_bytes() - h0, charged + 1024);
    /* The engine's direct reads: each offer grows the buffer by one (doubling) step at most,
     * so the buffer stays within a small multiple of what arrived; the charge is the buffer. */
    while (off < len) {
        size_t want = 0;
        uint8_t *dst = aipc_client_read_direct(c->cl, &want);
        ck_assert_ptr_nonnull(dst);
        ck_assert_uint_le(fake_stats(b).incomplete_bytes, 4 * off + AIPC_ADOPT_GAP + 2);
        ck_assert_uint_le(heap_live_bytes() - h0, fake_stats(b).incomplete_bytes + 1024);
        size_t n = want < len - off ? want : len - off;
        memcpy(dst, f + off, n);
        ck_assert_int_eq(aipc_client_read_commit(b, c->cl, n), 0);
        off += n;
    }
    ck_assert_uint_eq(fake_stats(b).incomplete_bytes, 0);
    ck_assert_int_eq(c->close_calls, 0);
    free(f);
    fake_free(c);
    aipc_broker_free(b);
}
END_TEST

/* The total bound, exactly: three partial frames fill it; the fourth client that starts one is
 * refused (incomplete_full, closed, its buffer freed at once); the three complete normally. */
START_TEST(total_bound_exact)
{
    enum { PL = 60000 };
    size_t len;
    uint8_t *f = pub_frame("t", PL, &len);
    uint64_t cap = (len - 8) + 2 + AIPC_ADOPT_GAP;             /* one whole frame's buffer */
    aipc_broker *b = partial_broker(3 * cap, 30000);
    fake *sub = fake_new(b, 9), *c[4];
    fake_hello(sub, "sub");
    fake_sendt(sub, "{\"op\":\"sub\",\"topic\":\"t\"}", NULL);
    for (int i = 0; i < 4; i++) {
        c[i] = fake_new(b, (uint32_t)i + 1);
        fake_hello(c[i], NULL);
    }
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(feed(c[i], f, 5000), 0);
    ck_assert_uint_eq(fake_stats(b).incomplete_bytes, 3 * cap);
    ck_assert_int_eq(feed(c[3], f, 5000), 0);
    fake_expect_error(c[3], "incomplete_full");
    ck_assert_int_eq(c[3]->close_calls, 1);
    ck_assert_uint_eq(fake_stats(b).incomplete_bytes, 3 * cap);
    ck_assert_uint_eq(fake_stats(b).incomplete_refused, 1);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(feed(c[i], f + 5000, len - 5000), 0);
        ck_assert_int_eq(c[i]->close_calls, 0);
        ck_assert_uint_eq(fake_next_nonpresence(sub)->plen, PL);
    }
    ck_assert_uint_eq(fake_stats(b).incomplete_bytes, 0);
    ck_assert_int_eq(feed(c[0], f, 5000), 0);                  /* room again */
    ck_assert_uint_eq(fake_stats(b).incomplete_bytes, cap);
    for (int i = 0; i < 4; i++)
        fake_free(c[i]);
    ck_assert_uint_eq(fake_stats(b).incomplete_bytes, 0);
    fake_free(sub);
    aipc_broker_free(b);
    free(f);
}
END_TEST

/* The engine's direct read that would take the total over: no buffer is handed out, the
 * client is refused, and the engine's next (ordinary) read is ignored. */
START_TEST(direct_read_over_the_bound)
{
    size_t len;
    uint8_t *f = pub_frame("t", 1u << 20, &len);
    aipc_broker *b = partial_broker(100000, 30000);
    fake *c = fake_new(b, 1);
    fake_hello(c, NULL);
    ck_assert_int_eq(feed(c, f, 50000), 0);
    ck_assert_uint_eq(fake_stats(b).incomplete_bytes, AIPC_DECODER_INITIAL);
    size_t want = 1;
    ck_assert_ptr_null(aipc_client_read_direct(c->cl, &want));  /* would grow to 128 KiB */
    ck_assert_uint_eq(want, 0);
    fake_expect_error(c, "incomplete_full");
    ck_assert_int_eq(c->close_calls, 1);
    ck_assert_uint_eq(fake_stats(b).incomplete_bytes, 0);
    ck_assert_int_eq(feed(c, f + 50000, 1000), 0);
    ck_assert_uint_eq(fake_stats(b).incomplete_bytes, 0);
    fake_free(c);
    aipc_broker_free(b);
    free(f);
}
END_TEST

/* A frame that gets no byte for frame_timeout_ms, exactly: each byte restarts the clock; idle
 * clients (no partial frame) never time out; a partial header counts. */
START_TEST(stall_timeout_exact)
{
    enum { T = 2000 };
    fake_clock_ms = 1000;
    aipc_broker *b = partial_broker(1u << 30, T);
    fake *slow = fake_new(b, 1), *idle = fake_new(b, 2), *hdr = fake_new(b, 3);
    fake_hello(slow, NULL);
    fake_hello(idle, NULL);
    fake_hello(hdr, NULL);
    size_t len;
    uint8_t *f = pub_frame("t", 100000, &len);
    ck_assert_int_eq(feed(slow, f, 10), 0);
    ck_assert_int_eq(feed(hdr, f, 4), 0);                      /* half a header */
    ck_assert_uint_eq(aipc_broker_tick(b), T);
    fake_clock_ms += T - 1;
    ck_assert_int_eq(feed(slow, f + 10, 10), 0);               /* progress: clock restarts */
    ck_assert_uint_eq(aipc_broker_tick(b), 1);
    fake_clock_ms += 1;
    aipc_broker_tick(b);
    fake_expect_error(hdr, "frame_timeout");
    ck_assert_int_eq(hdr->close_calls, 1);
    ck_assert_int_eq(slow->close_calls, 0);
    fake_clock_ms += T - 2;
    ck_assert_uint_eq(aipc_broker_tick(b), 1);
    ck_assert_uint_eq(fake_pending(slow), 0);
    fake_clock_ms += 1;
    /* next: the linger of hdr's close, requested T - 1 ms ago */
    ck_assert_uint_eq(aipc_broker_tick(b), AIPC_BROKER_DEFAULT_LINGER - (T - 1));
    fake_expect_error(slow, "frame_timeout");
    ck_assert_int_eq(slow->close_calls, 1);
    ck_assert_uint_eq(fake_stats(b).frame_timeouts, 2);
    ck_assert_uint_eq(fake_stats(b).incomplete_bytes, 0);
    fake_clock_ms += 100 * T;
    aipc_broker_tick(b);
    ck_assert_int_eq(idle->close_calls, 0);
    ck_assert_uint_eq(fake_pending(idle), 0);
    /* A frame completed in time stops the clock. */
    ck_assert_int_eq(feed(idle, f, 100), 0);
    fake_clock_ms += T - 1;
    ck_assert_int_eq(feed(idle, f + 100, len - 100), 0);
    fake_clock_ms += 10 * T;
    ck_assert_uint_eq(aipc_broker_tick(b), UINT64_MAX);
    ck_assert_int_eq(idle->close_calls, 0);
    fake_free(slow);
    fake_free(idle);
    fake_free(hdr);
    aipc_broker_free(b);
    free(f);
}
END_TEST

/* A stall while the engine may be reading into the frame's buffer (read_direct handed it out):
 * the connection is closed but the buffer stays valid until detach (ASan: the late write and
 * commit below would be a use after free otherwise). */
START_TEST(stall_during_direct_read)
{
    fake_clock_ms = 1000;
    aipc_broker *b = partial_broker(1u << 30, 500);
    fake *c = fake_new(b, 1);
    fake_hello(c, NULL);
    size_t len;
    uint8_t *f = pub_frame("t", 1u << 20, &len);
    ck_assert_int_eq(feed(c, f, 1000), 0);
    size_t want = 0;
    uint8_t *dst = aipc_client_read_direct(c->cl, &want);
    ck_assert_ptr_nonnull(dst);
    fake_clock_ms += 500;
    aipc_broker_tick(b);
    fake_expect_error(c, "frame_timeout");
    ck_assert_int_eq(c->close_calls, 1);
    ck_assert_uint_gt(fake_stats(b).incomplete_bytes, 0);        /* still held (and charged) */
    memset(dst, 'x', want);                                    /* the read completes late */
    ck_assert_int_eq(aipc_client_read_commit(b, c->cl, want), 0);
    ck_assert_uint_eq(fake_stats(b).incomplete_bytes, 0);        /* now it goes */
    fake_free(c);
    aipc_broker_free(b);
    free(f);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_partial");
    TCase *tc = tcase_create("partial");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, memory_follows_bytes);
    tcase_add_test(tc, total_bound_exact);
    tcase_add_test(tc, direct_read_over_the_bound);
    tcase_add_test(tc, stall_timeout_exact);
    tcase_add_test(tc, stall_during_direct_read);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
