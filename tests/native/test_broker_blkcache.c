/* test_broker_blkcache.c - large blocks recycled (service/core/blkcache.c): once a large
 * publication's frame is written, its block assembles the next large frame, which the engine
 * then reads in ONE direct read of the whole rest (no growth step, no realloc, no new block);
 * payloads stay byte-exact; the loan is charged to max_incomplete_bytes and refused when it
 * would not fit; a frame that starts in the middle of a read is lent too; the block goes back
 * to the allocator after AIPC_BLK_IDLE_MS without use, and at aipc_broker_free. */
#include "check_main.h"
#include "test_broker_blk_kit.h"

#include "internal.h"

enum { PL = 1u << 20, FIRST = 65536 };
static const char META[] = "{\"op\":\"pub\",\"topic\":\"t\"}";
#define ML (sizeof META - 1)
#define FULL ((uint64_t)ML + PL + 2 + AIPC_ADOPT_GAP)   /* the decoder block of one frame */

/* One encoded publication whose payload bytes depend on seed. */
static uint8_t *frame(uint8_t seed, size_t *len)
{
    *len = 8 + ML + PL;
    uint8_t *f = malloc(*len);
    aipc_frame_put_header(f, (uint32_t)ML, PL);
    memcpy(f + 8, META, ML);
    for (size_t i = 0; i < PL; i++)
        f[8 + ML + i] = (uint8_t)(i * 13 + seed);
    return f;
}

/* Feeds f[off..len) like the engine: direct reads while offered, else input. Returns the
 * number of direct reads. */
static int finish_direct(fake *c, const uint8_t *f, size_t off, size_t len)
{
    int reads = 0;
    while (off < len) {
        size_t want = 0;
        uint8_t *dst = aipc_client_read_direct(c->cl, &want);
        ck_assert_ptr_nonnull(dst);
        size_t n = want < len - off ? want : len - off;
        memcpy(dst, f + off, n);
        ck_assert_int_eq(aipc_client_read_commit(c->b, c->cl, n), 0);
        off += n;
        reads++;
    }
    return reads;
}

static void expect_payload(fake *s, const uint8_t *f)
{
    rx_frame *r = fake_next_nonpresence(s);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->plen, PL);
    ck_assert_mem_eq(r->payload, f + 8 + ML, PL);
}

/* The second 1 MiB publication goes into the first one's block, read in one piece. */
START_TEST(second_frame_one_direct_read)
{
    aipc_broker *b = blk_broker(0);
    fake *s = blk_subscriber(b, "t"), *p = fake_new(b, 0);
    fake_hello(p, NULL);
    size_t len;
    uint8_t *f1 = frame(1, &len), *f2 = frame(2, &len);

    ck_assert_int_eq(aipc_broker_input(b, p->cl, f1, FIRST), 0);
    ck_assert_int_gt(finish_direct(p, f1, FIRST, len), 1);     /* growing: several reads */
    expect_payload(s, f1);
    ck_assert_uint_eq(ca.nblk, 1);                             /* its block, kept */
    ck_assert_uint_ge(ca.len[0], FULL);

    size_t allocs = ca.allocs, reallocs = ca.reallocs;
    ck_assert_int_eq(aipc_broker_input(b, p->cl, f2, FIRST), 0);
    ck_assert_uint_eq(ca.allocs, allocs);                      /* no new block */
    ck_assert_uint_eq(fake_stats(b).incomplete_bytes, FULL);   /* the loan is charged whole */
    size_t want = 0;
    ck_assert_ptr_nonnull(aipc_client_read_direct(p->cl, &want));
    ck_assert_uint_eq(want, len - FIRST);                      /* the whole rest at once */
    ck_assert_int_eq(finish_direct(p, f2, FIRST, len), 1);
    ck_assert_uint_eq(ca.reallocs, reallocs);
    ck_assert_uint_eq(ca.allocs, allocs + 1);                  /* the frame struct only */
    expect_payload(s, f2);
    ck_assert_uint_eq(fake_stats(b).incomplete_bytes, 0);
    ck_assert_uint_eq(ca.nblk, 1);

    /* Unused for AIPC_BLK_IDLE_MS: back to the allocator. */
    ck_assert_uint_eq(aipc_broker_tick(b), AIPC_BLK_IDLE_MS);
    fake_clock_ms += AIPC_BLK_IDLE_MS - 1;
    ck_assert_uint_eq(aipc_broker_tick(b), 1);
    ck_assert_uint_eq(ca.nblk, 1);
    fake_clock_ms += 1;
    ck_assert_uint_eq(aipc_broker_tick(b), UINT64_MAX);
    ck_assert_uint_eq(ca.nblk, 0);
    fake_free(p);
    fake_free(s);
    aipc_broker_free(b);
    ck_assert_uint_eq(ca.allocs, ca.frees);
    free(f1);
    free(f2);
}
END_TEST

/* A frame that starts after the tail of the previous one in the same read is lent a block
 * too, while the previous one is still in its own loan; the blocks left at aipc_broker_free go
 * back to the allocator. */
START_TEST(frame_starting_mid_read)
{
    aipc_broker *b = blk_broker(0);
    fake *s = blk_subscriber(b, "t"), *p = fake_new(b, 0), *p2 = fake_new(b, 0);
    fake_hello(p, NULL);
    fake_hello(p2, NULL);
    size_t len;
    uint8_t *f1 = frame(1, &len), *f2 = frame(2, &len), *f3 = frame(3, &len);
    /* Two frames assembled at once by growth: two blocks cached afterwards. */
    ck_assert_int_eq(aipc_broker_input(b, p->cl, f1, FIRST), 0);
    ck_assert_int_eq(aipc_broker_input(b, p2->cl, f1, FIRST), 0);
    finish_direct(p, f1, FIRST, len);
    finish_direct(p2, f1, FIRST, len);
    expect_payload(s, f1);
    expect_payload(s, f1);
    ck_assert_uint_eq(ca.nblk, 2);
    /* f2 (lent) up to its last 1000 bytes, then one read: its tail + the start of f3. */
    size_t allocs = ca.allocs;
    ck_assert_int_eq(aipc_broker_input(b, p->cl, f2, FIRST), 0);
    size_t want = 0;
    uint8_t *dst = aipc_client_read_direct(p->cl, &want);
    ck_assert_uint_eq(want, len - FIRST);
    memcpy(dst, f2 + FIRST, len - FIRST - 1000);
    ck_assert_int_eq(aipc_client_read_commit(b, p->cl, len - FIRST - 1000), 0);
    uint8_t *mix = malloc(1000 + FIRST);
    memcpy(mix, f2 + len - 1000, 1000);
    memcpy(mix + 1000, f3, FIRST);
    ck_assert_int_eq(aipc_broker_input(b, p->cl, mix, 1000 + FIRST), 0);
    expect_payload(s, f2);
    ck_assert_uint_eq(ca.allocs, allocs + 1);                  /* f2's frame struct only */
    ck_assert_ptr_nonnull(aipc_client_read_direct(p->cl, &want));
    ck_assert_uint_eq(want, len - FIRST);
    ck_assert_int_eq(finish_direct(p, f3, FIRST, len), 1);
    expect_payload(s, f3);
    ck_assert_uint_eq(ca.allocs, allocs + 2);
    ck_assert_uint_eq(ca.nblk, 2);
    fake_free(p2);
    fake_free(p);
    fake_free(s);
    aipc_broker_free(b);
    ck_assert_uint_eq(ca.nblk, 0);
    ck_assert_uint_eq(ca.allocs, ca.frees);
    free(mix);
    free(f1);
    free(f2);
    free(f3);
}
END_TEST

/* No loan that max_incomplete_bytes could not take: the frame grows as before (its charge
 * follows its bytes), the block stays cached, nobody is refused. */
START_TEST(no_loan_over_the_incomplete_bound)
{
    aipc_broker *b = blk_broker(FULL + AIPC_DECODER_INITIAL / 2);
    fake *s = blk_subscriber(b, "t"), *p = fake_new(b, 0), *q = fake_new(b, 0);
    fake_hello(p, NULL);
    fake_hello(q, NULL);
    size_t len;
    uint8_t *f1 = frame(1, &len), *f2 = frame(2, &len);
    ck_assert_int_eq(aipc_broker_input(b, p->cl, f1, FIRST), 0);
    finish_direct(p, f1, FIRST, len);
    expect_payload(s, f1);
    ck_assert_uint_eq(ca.nblk, 1);
    /* q starts a frame below AIPC_BLK_MIN (never lent): 64 KiB charged. */
    uint8_t small[8 + ML + 1000];
    aipc_frame_put_header(small, (uint32_t)ML, 200000);
    memcpy(small + 8, META, ML);
    memset(small + 8 + ML, 'q', 1000);
    ck_assert_int_eq(aipc_broker_input(b, q->cl, small, sizeof small), 0);
    ck_assert_uint_eq(fake_stats(b).incomplete_bytes, AIPC_DECODER_INITIAL);
    ck_assert_uint_eq(ca.nblk, 2);
    ck_assert_int_eq(aipc_broker_input(b, p->cl, f2, FIRST), 0);   /* a loan would not fit */
    ck_assert_uint_le(fake_stats(b).incomplete_bytes, 4 * AIPC_DECODER_INITIAL);  /* grown */
    ck_assert_uint_eq(ca.nblk, 3);                             /* the cached one + two new */
    size_t want = 0;
    ck_assert_ptr_nonnull(aipc_client_read_direct(p->cl, &want));
    ck_assert_uint_lt(want, len - FIRST);                      /* one growth step */
    ck_assert_int_eq(p->close_calls + q->close_calls, 0);
    fake_free(q);
    fake_free(p);
    fake_free(s);
    aipc_broker_free(b);
    ck_assert_uint_eq(ca.nblk, 0);
    ck_assert_uint_eq(ca.allocs, ca.frees);
    free(f1);
    free(f2);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_blkcache");
    TCase *tc = tcase_create("blkcache");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, second_frame_one_direct_read);
    tcase_add_test(tc, frame_starting_mid_read);
    tcase_add_test(tc, no_loan_over_the_incomplete_bound);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
