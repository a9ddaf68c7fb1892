/* test_broker_blkland.c - whole-frame reads into recycled blocks (service/core/blkcache.c
 * aipc_blk_land, proto/frame.c aipc_decoder_land): once a client's last frame was large and a
 * block of its size is cached, the engine's next read at the frame boundary is offered that
 * block for exactly that frame size; a frame of that size then arrives in ONE read with no
 * allocation but its frame struct, byte-exact. A frame of another size, a partial landing read,
 * small frames and a closing client all stay byte-exact and leave the loan accounting and the
 * incomplete-bytes charge where they were. */
#include "check_main.h"
#include "test_broker_blk_kit.h"

#include "internal.h"

enum { PL = 1u << 20, FIRST = 65536 };
static const char META[] = "{\"op\":\"pub\",\"topic\":\"t\"}";
#define ML (sizeof META - 1)

/* One encoded publication of pl bytes whose payload bytes depend on seed. */
static uint8_t *frame(size_t pl, uint8_t seed, size_t *len)
{
    *len = 8 + ML + pl;
    uint8_t *f = malloc(*len);
    aipc_frame_put_header(f, (uint32_t)ML, (uint32_t)pl);
    memcpy(f + 8, META, ML);
    for (size_t i = 0; i < pl; i++)
        f[8 + ML + i] = (uint8_t)(i * 7 + seed);
    return f;
}

/* Like the engine: a read goes where read_direct says (>= 64 KiB offered), else into the
 * engine's buffer (input). Returns the number of reads. */
static int deliver(fake *c, const uint8_t *f, size_t len, size_t first_read)
{
    int reads = 0;
    size_t off = 0;
    while (off < len) {
        size_t want = 0;
        uint8_t *dst = aipc_client_read_direct(c->cl, &want);
        size_t cap = dst && want >= 65536 ? want : 65536;
        size_t n = len - off < cap ? len - off : cap;
        if (reads == 0 && first_read && first_read < n)
            n = first_read;
        if (dst && want >= 65536) {
            memcpy(dst, f + off, n);
            ck_assert_int_eq(aipc_client_read_commit(c->b, c->cl, n), 0);
        } else {
            ck_assert_int_eq(aipc_broker_input(c->b, c->cl, f + off, n), 0);
        }
        off += n;
        reads++;
    }
    return reads;
}

/* Ends a test: the clients go, then the broker; every block went back to the allocator. */
static void finish(aipc_broker *b, fake *p, fake *s)
{
    ck_assert_uint_eq(fake_stats(b).incomplete_bytes, 0);
    fake_free(p);
    fake_free(s);
    aipc_broker_free(b);
    ck_assert_uint_eq(ca.nblk, 0);
    ck_assert_uint_eq(ca.allocs, ca.frees);
}

static void expect_payload(fake *s, const uint8_t *f, size_t pl)
{
    rx_frame *r = fake_next_nonpresence(s);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->plen, pl);
    ck_assert_mem_eq(r->payload, f + 8 + ML, pl);
}

/* Same-size frames after the first: one read each, no block allocated, byte-exact. */
START_TEST(same_size_frames_one_read)
{
    aipc_broker *b = blk_broker(0);
    fake *s = blk_subscriber(b, "t"), *p = fake_new(b, 0);
    fake_hello(p, NULL);
    size_t len;
    uint8_t *f[4];
    for (int i = 0; i < 4; i++)
        f[i] = frame(PL, (uint8_t)(i + 1), &len);
    ck_assert_int_gt(deliver(p, f[0], len, 0), 2);          /* growing: several reads */
    expect_payload(s, f[0], PL);
    ck_assert_uint_eq(ca.nblk, 1);
    for (int i = 1; i < 4; i++) {
        size_t allocs = ca.allocs, reallocs = ca.reallocs, want = 0;
        ck_assert_ptr_nonnull(aipc_client_read_direct(p->cl, &want));
        ck_assert_uint_eq(want, len);                        /* exactly one frame */
        ck_assert_uint_eq(b->nlent, 1);
        ck_assert_int_eq(deliver(p, f[i], len, 0), 1);
        ck_assert_uint_eq(ca.allocs, allocs + 1);            /* the frame struct only */
        ck_assert_uint_eq(ca.reallocs, reallocs);
        expect_payload(s, f[i], PL);
        ck_assert_uint_eq(fake_stats(b).incomplete_bytes, 0);
        ck_assert_uint_eq(b->nlent, 0);
        ck_assert_uint_eq(ca.nblk, 1);
    }
    finish(b, p, s);
    for (int i = 0; i < 4; i++)
        free(f[i]);
}
END_TEST

/* A landing read that brings only part of the frame: with 16 KiB of the body the block is kept
 * and charged whole, the rest comes by direct reads; with less (a header and a little) the
 * bytes are decoded as input and the block goes back to the cache. */
START_TEST(partial_landing_reads)
{
    aipc_broker *b = blk_broker(0);
    fake *s = blk_subscriber(b, "t"), *p = fake_new(b, 0);
    fake_hello(p, NULL);
    size_t len;
    uint8_t *f1 = frame(PL, 1, &len), *f2 = frame(PL, 2, &len), *f3 = frame(PL, 3, &len);
    deliver(p, f1, len, 0);
    expect_payload(s, f1, PL);
    size_t allocs = ca.allocs;
    ck_assert_int_eq(deliver(p, f2, len, 200000), 2);        /* 200000 bytes, then the rest */
    ck_assert_uint_eq(ca.allocs, allocs + 1);
    expect_payload(s, f2, PL);
    /* 100 bytes of body only: not kept (the frame grows as input, the block stays cached) */
    size_t want = 0;
    uint8_t *dst = aipc_client_read_direct(p->cl, &want);
    ck_assert_ptr_nonnull(dst);
    memcpy(dst, f3, 8 + ML + 100);
    ck_assert_int_eq(aipc_client_read_commit(b, p->cl, 8 + ML + 100), 0);
    ck_assert_uint_eq(b->nlent, 0);
    ck_assert_uint_eq(b->nblk, 1);                           /* back in the cache */
    ck_assert_uint_lt(fake_stats(b).incomplete_bytes, 256u * 1024u);
    size_t off = 8 + ML + 100;
    while (off < len) {
        dst = aipc_client_read_direct(p->cl, &want);
        size_t n = dst && want >= 65536 ? (want < len - off ? want : len - off)
                                        : (len - off < 65536 ? len - off : 65536);
        if (dst && want >= 65536) {
            memcpy(dst, f3 + off, n);
            ck_assert_int_eq(aipc_client_read_commit(b, p->cl, n), 0);
        } else {
            ck_assert_int_eq(aipc_broker_input(b, p->cl, f3 + off, n), 0);
        }
        off += n;
    }
    expect_payload(s, f3, PL);
    finish(b, p, s);
    free(f1);
    free(f2);
    free(f3);
}
END_TEST

/* What the landing gets may be other frames: a smaller large one, small ones in a row, a larger
 * one (the block too small), or the engine reading into its own buffer after all. All arrive
 * byte-exact and in order; no loan is left behind. */
START_TEST(other_frames_into_a_landing)
{
    aipc_broker *b = blk_broker(0);
    fake *s = blk_subscriber(b, "t"), *p = fake_new(b, 0);
    fake_hello(p, NULL);
    size_t len, l2, l3, l4;
    uint8_t *f1 = frame(PL, 1, &len);
    uint8_t *f2 = frame(PL - 1000, 2, &l2);                  /* same block (within 1/8) */
    uint8_t *f3 = frame(300, 3, &l3);
    uint8_t *f4 = frame(2 * PL, 4, &l4);
    deliver(p, f1, len, 0);
    expect_payload(s, f1, PL);
    /* f2 then f3 in one read into the landing: f2 is complete in less than the read */
    size_t want = 0;
    uint8_t *dst = aipc_client_read_direct(p->cl, &want);
    ck_assert_ptr_nonnull(dst);
    ck_assert_uint_eq(want, len);
    memcpy(dst, f2, l2);
    memcpy(dst + l2, f3, l3);
    ck_assert_int_eq(aipc_client_read_commit(b, p->cl, l2 + l3), 0);
    expect_payload(s, f2, PL - 1000);
    expect_payload(s, f3, 300);
    ck_assert_uint_eq(b->nlent, 0);
    /* f3 was small: no landing offered; f1 again, then f4 (twice the size) into its landing */
    ck_assert_int_eq(deliver(p, f1, len, 0) > 1, 1);
    expect_payload(s, f1, PL);
    ck_assert_ptr_nonnull(aipc_client_read_direct(p->cl, &want));
    ck_assert_uint_eq(want, len);
    deliver(p, f4, l4, 0);
    expect_payload(s, f4, 2 * PL);
    /* offered a landing, the engine reads into its own buffer: the loan ends */
    ck_assert_ptr_nonnull(aipc_client_read_direct(p->cl, &want));    /* f4's block */
    ck_assert_uint_eq(b->nlent, 1);
    ck_assert_int_eq(aipc_broker_input(b, p->cl, f3, l3), 0);
    expect_payload(s, f3, 300);
    ck_assert_uint_eq(b->nlent, 0);
    finish(b, p, s);
    free(f1);
    free(f2);
    free(f3);
    free(f4);
}
END_TEST

/* A client that goes while its landing is offered (its read never completed): the block is
 * freed at detach and the loan count is back to 0. */
START_TEST(landing_of_a_client_that_goes)
{
    aipc_broker *b = blk_broker(0);
    fake *s = blk_subscriber(b, "t"), *p = fake_new(b, 0);
    fake_hello(p, NULL);
    size_t len;
    uint8_t *f1 = frame(PL, 1, &len);
    deliver(p, f1, len, 0);
    expect_payload(s, f1, PL);
    size_t want = 0;
    ck_assert_ptr_nonnull(aipc_client_read_direct(p->cl, &want));
    ck_assert_uint_eq(b->nlent, 1);
    ck_assert_uint_eq(ca.nblk, 1);                           /* the landing, out of the cache */
    ck_assert_uint_eq(fake_stats(b).incomplete_bytes, 0);    /* no byte yet: nothing charged */
    fake_free(p);
    ck_assert_uint_eq(b->nlent, 0);
    ck_assert_uint_eq(ca.nblk, 0);
    fake_free(s);
    aipc_broker_free(b);
    ck_assert_uint_eq(ca.allocs, ca.frees);
    free(f1);
}
END_TEST

/* Clients that sent one large frame and then went quiet keep their landings (pending reads):
 * at most AIPC_BLK_LAND_MAX of them, so a third client streaming large frames still gets the
 * other loan slot and its frames still assemble in recycled blocks (no growing buffer). */
START_TEST(quiet_landers_leave_a_loan)
{
    aipc_broker *b = blk_broker(0);
    fake *s = blk_subscriber(b, "t"), *q = fake_new(b, 0), *quiet[2];
    fake_hello(q, NULL);
    size_t len;
    uint8_t *f = frame(PL, 3, &len);
    for (int i = 0; i < 2; i++) {
        quiet[i] = fake_new(b, 0);
        fake_hello(quiet[i], NULL);
        deliver(quiet[i], f, len, 0);
        expect_payload(s, f, PL);
        size_t want = 0;                        /* the engine re-arms its read at once */
        uint8_t *l = aipc_client_read_direct(quiet[i]->cl, &want);
        ck_assert_msg(i == 0 ? l != NULL : l == NULL,
                      "quiet client %d: landing %p (only the first may land)", i, (void *)l);
    }
    ck_assert_uint_eq(b->nland, 1);
    ck_assert_uint_le(b->nlent, 1);
    deliver(q, f, len, FIRST);                  /* q streams: its frames borrow the other slot */
    expect_payload(s, f, PL);
    size_t reallocs = ca.reallocs;
    for (int i = 0; i < 8; i++) {
        size_t want = 0;
        if (!aipc_client_read_direct(q->cl, &want))   /* no landing for q: the slot is taken */
            deliver(q, f, len, FIRST);
        else
            ck_abort_msg("frame %d: q got a landing beyond AIPC_BLK_LAND_MAX", i);
        expect_payload(s, f, PL);
    }
    ck_assert_msg(ca.reallocs == reallocs, "q's frames grew their buffers (%zu reallocs for 8 "
                  "frames): no loan was left for them", ca.reallocs - reallocs);
    fake_free(quiet[0]);
    fake_free(quiet[1]);
    ck_assert_uint_eq(b->nland, 0);
    finish(b, q, s);
    free(f);
}
END_TEST

/* A partial landing keeps its block only when the block's whole size fits max_incomplete_bytes
 * next to what other clients hold: here it does not, so the bytes are decoded as input and the
 * lander is served through its growing buffer, not closed for the block's charge. */
START_TEST(partial_landing_within_incomplete_bound)
{
    aipc_broker *b = blk_broker(1792u * 1024u);
    fake *s = blk_subscriber(b, "t"), *p = fake_new(b, 0), *o = fake_new(b, 0);
    fake_hello(p, NULL);
    fake_hello(o, NULL);
    size_t len, lo;
    uint8_t *f1 = frame(PL, 1, &len), *f2 = frame(PL, 2, &len), *fo = frame(3u << 20, 7, &lo);
    deliver(p, f1, len, 0);
    expect_payload(s, f1, PL);
    ck_assert_int_eq(aipc_broker_input(b, o->cl, fo, 65536), 0);   /* o: a partial 3 MiB frame */
    for (size_t off = 65536; off < 400000; off += 65536) {
        size_t want = 0, n = 400000 - off < 65536 ? 400000 - off : 65536;
        uint8_t *dst = aipc_client_read_direct(o->cl, &want);
        if (dst && want >= n) {
            memcpy(dst, fo + off, n);
            ck_assert_int_eq(aipc_client_read_commit(b, o->cl, n), 0);
        } else {
            ck_assert_int_eq(aipc_broker_input(b, o->cl, fo + off, n), 0);
        }
    }
    ck_assert_int_eq(o->close_calls, 0);
    ck_assert_uint_eq(fake_stats(b).incomplete_bytes, 1024u * 1024u);   /* o's buffer: 1 MiB */
    size_t want = 0;
    uint8_t *dst = aipc_client_read_direct(p->cl, &want);      /* p's landing */
    ck_assert_ptr_nonnull(dst);
    memcpy(dst, f2, 200000);
    ck_assert_int_eq(aipc_client_read_commit(b, p->cl, 200000), 0);
    ck_assert_int_eq(p->close_calls, 0);
    ck_assert_uint_le(fake_stats(b).incomplete_bytes, 1792u * 1024u);
    fake_free(o);                                               /* o gives up: room for p */
    deliver(p, f2 + 200000, len - 200000, 0);
    ck_assert_int_eq(p->close_calls, 0);
    expect_payload(s, f2, PL);
    finish(b, p, s);
    free(f1);
    free(f2);
    free(fo);
}
END_TEST

/* A publisher ahead of its subscriber: every block is still queued when the next frame comes,
 * none is cached, and the landing is a new block of the last frame's size, so each frame is
 * still read whole in one read (it used to take a 64 KiB head read and growing reads). When
 * the subscriber drains, AIPC_BLK_KEEP of the blocks stay cached (within AIPC_BLK_BYTES) and
 * the next frames land in them with no allocation but their frame structs. */
START_TEST(landing_without_a_cached_block)
{
    aipc_broker *b = blk_broker(0);
    fake *s = blk_subscriber(b, "t"), *p = fake_new(b, 0);
    fake_hello(p, NULL);
    s->stalled = true;                          /* its queue keeps every block */
    enum { N = 5 };
    size_t len;
    uint8_t *f[N + 2];
    for (int i = 0; i < N + 2; i++)
        f[i] = frame(PL, (uint8_t)(i + 1), &len);
    ck_assert_int_gt(deliver(p, f[0], len, 0), 2);          /* the first one grows */
    ck_assert_uint_eq(b->nblk, 0);
    for (int i = 1; i < N; i++) {
        size_t allocs = ca.allocs, reallocs = ca.reallocs, want = 0;
        ck_assert_ptr_nonnull(aipc_client_read_direct(p->cl, &want));
        ck_assert_uint_eq(want, len);                        /* exactly one frame */
        ck_assert_uint_eq(b->nland, 1);
        ck_assert_uint_eq(ca.allocs, allocs + 1);            /* the new block */
        ck_assert_int_eq(deliver(p, f[i], len, 0), 1);
        ck_assert_uint_eq(ca.allocs, allocs + 2);            /* + the frame struct */
        ck_assert_uint_eq(ca.reallocs, reallocs);
        ck_assert_uint_eq(b->nlent, 0);
        ck_assert_uint_eq(fake_stats(b).incomplete_bytes, 0);
    }
    ck_assert_uint_eq(ca.nblk, 2 * N);                       /* queued to s: blocks, structs */
    s->stalled = false;
    fake_pump(s);
    for (int i = 0; i < N; i++)
        expect_payload(s, f[i], PL);
    ck_assert_uint_eq(b->nblk, AIPC_BLK_KEEP);               /* kept; the rest freed */
    ck_assert_uint_eq(ca.nblk, AIPC_BLK_KEEP);
    ck_assert_uint_le(b->blk_bytes, AIPC_BLK_BYTES);
    for (int i = N; i < N + 2; i++) {
        size_t allocs = ca.allocs, want = 0;
        ck_assert_ptr_nonnull(aipc_client_read_direct(p->cl, &want));
        ck_assert_uint_eq(ca.allocs, allocs);                /* a kept block */
        ck_assert_int_eq(deliver(p, f[i], len, 0), 1);
        ck_assert_uint_eq(ca.allocs, allocs + 1);            /* the frame struct only */
        expect_payload(s, f[i], PL);
    }
    finish(b, p, s);
    for (int i = 0; i < N + 2; i++)
        free(f[i]);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_blkland");
    TCase *tc = tcase_create("blkland");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, same_size_frames_one_read);
    tcase_add_test(tc, partial_landing_reads);
    tcase_add_test(tc, other_frames_into_a_landing);
    tcase_add_test(tc, landing_of_a_client_that_goes);
    tcase_add_test(tc, quiet_landers_leave_a_loan);
    tcase_add_test(tc, partial_landing_within_incomplete_bound);
    tcase_add_test(tc, landing_without_a_cached_block);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
