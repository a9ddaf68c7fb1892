/* test_broker_blkloan.c - the limits of recycled large blocks (service/core/blkcache.c),
 * from the review of 4363213 (notes binl-review, M1/M2): a queued frame is not parked in a
 * block much larger than itself (queue charges bound memory); loans go only to joined clients
 * whose input carries part of the frame, at most AIPC_BLK_MAX at once, so stalled clients
 * cannot take max_incomplete_bytes from others; random read splits across publishers stay
 * byte-exact; a client cut off while the engine reads into its lent block leaves nothing. */
#include "check_main.h"
#include "test_broker_blk_kit.h"

#include "internal.h"

#include <inttypes.h>

#define CACHED(b) ((b)->blk_bytes)
#define NBLK(b) ((b)->nblk)

enum { FIRST = 65536 };

static uint8_t *mkframe(const char *topic, size_t pl, uint8_t seed, size_t *len)
{
    char meta[128];
    int ml = snprintf(meta, sizeof meta, "{\"op\":\"pub\",\"topic\":\"%s\"}", topic);
    *len = 8 + (size_t)ml + pl;
    uint8_t *f = malloc(*len);
    aipc_frame_put_header(f, (uint32_t)ml, (uint32_t)pl);
    memcpy(f + 8, meta, (size_t)ml);
    for (size_t i = 0; i < pl; i++)
        f[8 + ml + i] = (uint8_t)(i * 13 + seed);
    return f;
}

/* Feeds [off, upto) like the engine: direct reads while offered (>= 64 KiB), else input. */
static void feed(fake *c, const uint8_t *f, size_t off, size_t upto)
{
    while (off < upto) {
        size_t want = 0;
        uint8_t *dst = aipc_client_read_direct(c->cl, &want);
        if (dst && want >= 65536) {
            size_t n = want < upto - off ? want : upto - off;
            memcpy(dst, f + off, n);
            ck_assert_int_eq(aipc_client_read_commit(c->b, c->cl, n), 0);
            off += n;
        } else {
            size_t n = upto - off < 65536 ? upto - off : 65536;
            ck_assert_int_eq(aipc_broker_input(c->b, c->cl, f + off, n), 0);
            off += n;
        }
    }
}

static void publish(fake *p, const char *topic, size_t pl, uint8_t seed)
{
    size_t len;
    uint8_t *f = mkframe(topic, pl, seed, &len);
    feed(p, f, 0, len);
    free(f);
}

/* M1: a stalled subscriber's queue is charged ~1 MiB per frame against max_queue_bytes; the
 * frames must not sit in recycled 4 MiB blocks (they held ~4x the bound before the
 * AIPC_BLK_SLACK rule). */
START_TEST(queue_memory_inflated_by_oversized_loans)
{
    aipc_broker *b = blk_broker(0);
    fake *a = blk_subscriber(b, "a"), *s = blk_subscriber(b, "b"), *p = fake_new(b, 0);
    fake_hello(p, NULL);
    s->stalled = true;
    for (int i = 0; i < 12; i++) {
        publish(p, "a", 4u << 20, (uint8_t)i);            /* a drains it: block cached */
        while (fake_next(a))
            ;
        publish(p, "b", (1u << 20) + 4096, (uint8_t)i);   /* lent the 4 MiB block, queued */
    }
    aipc_broker_stats st = fake_stats(b);
    size_t cached = CACHED(b);
    fprintf(stderr, "queue_bytes (charged) %" PRIu64 "  max_queue_bytes %" PRIu64
                    "  live frame-allocator bytes %zu (cache %zu)  drops %" PRIu64 "\n",
            st.queue_bytes, (uint64_t)b->cfg.max_queue_bytes, ca.live_bytes, cached, st.drops);
    /* Everything live besides the cache is S's queued frames (+ small control frames). */
    ck_assert_msg(ca.live_bytes - cached <= st.queue_bytes + (256u << 10),
                  "queued frames hold %zu bytes, charged %" PRIu64, ca.live_bytes - cached,
                  st.queue_bytes);
    s->stalled = false;
    fake_free(p);
    fake_free(s);
    fake_free(a);
    aipc_broker_free(b);
}
END_TEST

/* M2: a loan (charged in full) must not refuse ANOTHER client the growing path would have
 * served: the 4 MiB block is too large for p's 1 MiB frame. */
START_TEST(loan_refuses_another_client)
{
    aipc_broker *b = blk_broker(6u << 20);
    fake *a = blk_subscriber(b, "a"), *p = fake_new(b, 0), *q = fake_new(b, 0);
    fake_hello(p, NULL);
    fake_hello(q, NULL);
    publish(p, "a", 4u << 20, 1);
    while (fake_next(a))
        ;
    size_t len;
    uint8_t *f = mkframe("a", (1u << 20) + 4096, 2, &len);
    ck_assert_int_eq(aipc_broker_input(b, p->cl, f, FIRST), 0);   /* then p stalls */
    fprintf(stderr, "after p sent 64 KiB of a 1 MiB frame: incomplete_bytes %" PRIu64 "\n",
            fake_stats(b).incomplete_bytes);
    publish(q, "a", (2u << 20) + (512u << 10), 3);                /* q: 2.5 MiB, all of it */
    fprintf(stderr, "q close_calls %d, incomplete_refused %" PRIu64 "\n", q->close_calls,
            fake_stats(b).incomplete_refused);
    ck_assert_int_eq(q->close_calls, 0);
    free(f);
    fake_free(q);
    fake_free(p);
    fake_free(a);
    aipc_broker_free(b);
}
END_TEST

/* Random read splits over a stream of mixed frame sizes from 3 publishers; every payload
 * byte-exact at the subscriber, allocator balanced at the end. */
static uint32_t rng = 12345;
static uint32_t rnd(void)
{
    rng = rng * 1103515245u + 12345u;
    return rng >> 8;
}

START_TEST(random_splits_byte_exact)
{
    aipc_broker *b = blk_broker(0);
    fake *s = blk_subscriber(b, "t");
    fake *p[3];
    for (int i = 0; i < 3; i++) {
        p[i] = fake_new(b, 0);
        fake_hello(p[i], NULL);
    }
    const size_t sizes[] = {100, 262144 - 2000, 262144, 300000, 1u << 20, (1u << 20) - 1,
                            (1u << 20) + 1, 2u << 20, (4u << 20) + 7, 70000, 3};
    enum { NF = 60 };
    uint8_t *st[3];
    size_t slen[3], off[3] = {0, 0, 0}, plen[3][NF];
    size_t poff[3][NF];
    for (int k = 0; k < 3; k++) {
        slen[k] = 0;
        st[k] = NULL;
        for (int i = 0; i < NF; i++) {
            size_t pl = sizes[rnd() % (sizeof sizes / sizeof sizes[0])], len;
            uint8_t *f = mkframe("t", pl, (uint8_t)(k * 61 + i), &len);
            st[k] = realloc(st[k], slen[k] + len);
            memcpy(st[k] + slen[k], f, len);
            plen[k][i] = pl;
            poff[k][i] = slen[k] + len - pl;
            slen[k] += len;
            free(f);
        }
    }
    size_t got[3] = {0, 0, 0};
    while (off[0] < slen[0] || off[1] < slen[1] || off[2] < slen[2]) {
        int k = (int)(rnd() % 3);
        if (off[k] >= slen[k])
            continue;
        size_t want = 0;
        uint8_t *dst = aipc_client_read_direct(p[k]->cl, &want);
        size_t n;
        if (dst && want >= 65536) {
            n = 1 + rnd() % want;
            if (rnd() % 2)
                n = want;
            if (n > slen[k] - off[k])
                n = slen[k] - off[k];
            memcpy(dst, st[k] + off[k], n);
            ck_assert_int_eq(aipc_client_read_commit(b, p[k]->cl, n), 0);
        } else {
            n = 1 + rnd() % 65536;
            if (n > slen[k] - off[k])
                n = slen[k] - off[k];
            ck_assert_int_eq(aipc_broker_input(b, p[k]->cl, st[k] + off[k], n), 0);
        }
        off[k] += n;
        rx_frame *r;
        while ((r = fake_next_nonpresence(s))) {
            /* which publisher? from.id */
            int who = -1;
            for (int j = 0; j < 3; j++)
                if ((double)p[j]->cl->id == rx_from_num(r, "id"))
                    who = j;
            ck_assert_int_ge(who, 0);
            int i = (int)got[who]++;
            ck_assert_uint_eq(r->plen, plen[who][i]);
            ck_assert_mem_eq(r->payload, st[who] + poff[who][i], r->plen);
        }
        ck_assert_int_eq(p[k]->close_calls, 0);
    }
    for (int k = 0; k < 3; k++)
        ck_assert_uint_eq(got[k], NF);
    ck_assert_uint_eq(fake_stats(b).incomplete_bytes, 0);
    fprintf(stderr, "random: cache %u blocks %zu bytes\n", NBLK(b), CACHED(b));
    for (int k = 0; k < 3; k++) {
        fake_free(p[k]);
        free(st[k]);
    }
    fake_free(s);
    aipc_broker_free(b);
    ck_assert_uint_eq(ca.allocs, ca.frees);
}
END_TEST

/* Disconnect / timeout while the engine reads into a lent block. */
START_TEST(close_while_lent_direct)
{
    aipc_broker *b = blk_broker(0);
    fake *a = blk_subscriber(b, "a"), *p = fake_new(b, 0), *p2 = fake_new(b, 0);
    fake_hello(p, NULL);
    fake_hello(p2, NULL);
    size_t l0;
    uint8_t *f0 = mkframe("a", 1u << 20, 1, &l0);
    feed(p, f0, 0, FIRST);
    feed(p2, f0, 0, FIRST);
    feed(p, f0, FIRST, l0);
    feed(p2, f0, FIRST, l0);
    free(f0);
    while (fake_next(a))
        ;
    ck_assert_uint_eq(NBLK(b), 2);
    size_t len;
    uint8_t *f = mkframe("a", 1u << 20, 3, &len);
    ck_assert_int_eq(aipc_broker_input(b, p->cl, f, FIRST), 0);
    ck_assert_int_eq(aipc_broker_input(b, p2->cl, f, FIRST), 0);
    size_t want = 0, want2 = 0;
    uint8_t *dst = aipc_client_read_direct(p->cl, &want);
    uint8_t *dst2 = aipc_client_read_direct(p2->cl, &want2);
    ck_assert_ptr_nonnull(dst);
    ck_assert_ptr_nonnull(dst2);
    ck_assert_uint_eq(want, len - FIRST);
    fake_clock_ms += 31000;                      /* frame_timeout while the reads are out */
    aipc_broker_tick(b);
    ck_assert_int_ge(p->close_calls, 1);
    memset(dst, 0xAA, want);                     /* the kernel still writes into them */
    memset(dst2, 0xBB, want2);
    ck_assert_int_eq(aipc_client_read_commit(b, p->cl, 1000), 0);   /* p: a completion */
    fake_free(p);                                /* detach p after its completion */
    fake_free(p2);                               /* p2: detach with no commit */
    ck_assert_uint_eq(fake_stats(b).incomplete_bytes, 0);
    fake_free(a);
    aipc_broker_free(b);
    ck_assert_uint_eq(ca.allocs, ca.frees);
    free(f);
}
END_TEST

/* M2: clients that send a large frame's header and stall must not be lent recycled blocks
 * (before: 12 x 8 header bytes pinned ~60 MiB of max_incomplete_bytes for frame_timeout_ms and a
 * legitimate 8 MiB publication was refused incomplete_full); with or without hello. */
static void stalled_headers(bool hello)
{
    aipc_broker *b = blk_broker(0);
    fake *a = blk_subscriber(b, "a"), *legit = fake_new(b, 0), *x[12];
    fake_hello(legit, NULL);
    size_t len, mlen;
    uint8_t *f = mkframe("zz", (1300u << 10), 9, &len);     /* the reviewer's frame */
    uint8_t *m = mkframe("b", (4900u << 10), 9, &mlen);      /* the cached block's size */
    for (int i = 0; i < 12; i++) {
        publish(legit, "a", (4900u << 10), (uint8_t)i);   /* legit traffic; a reads it */
        while (fake_next(a))
            ;
        x[i] = fake_new(b, 0);
        if (hello)
            fake_hello(x[i], NULL);
        /* header only, then stalls */
        ck_assert_int_eq(aipc_broker_input(b, x[i]->cl, i % 2 ? m : f, 8), 0);
    }
    uint64_t inc = fake_stats(b).incomplete_bytes;
    fprintf(stderr, "12 stalled clients x 8 header bytes sent: incomplete_bytes %" PRIu64 " of %" PRIu64 "\n",
            inc, (uint64_t)b->cfg.max_incomplete_bytes);
    ck_assert_uint_eq(b->nlent, 0);
    ck_assert_uint_le(inc, 12u * AIPC_DECODER_INITIAL);   /* what the growing buffers take */
    /* A client that sends 64 KiB of such a frame is lent the block, once past hello only. */
    fake *y = fake_new(b, 0);
    if (hello)
        fake_hello(y, NULL);
    ck_assert_int_eq(aipc_broker_input(b, y->cl, m, FIRST), 0);
    ck_assert_uint_eq(b->nlent, (hello ? 1u : 0u));
    fake_free(y);
    ck_assert_uint_eq(b->nlent, 0);
    fake *v = fake_new(b, 0);
    fake_hello(v, NULL);
    publish(v, "a", 8u << 20, 7);
    fprintf(stderr, "8 MiB publisher: close_calls %d incomplete_refused %" PRIu64 "\n",
            v->close_calls, fake_stats(b).incomplete_refused);
    ck_assert_int_eq(v->close_calls, 0);
    rx_frame *r = fake_next_nonpresence(a);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->plen, 8u << 20);
    for (int i = 0; i < 12; i++)
        fake_free(x[i]);
    fake_free(v);
    fake_free(legit);
    fake_free(a);
    aipc_broker_free(b);
    ck_assert_uint_eq(ca.allocs, ca.frees);
    free(f);
    free(m);
}

START_TEST(stalled_headers_get_no_loan)
{
    stalled_headers(true);
}
END_TEST

START_TEST(stalled_headers_before_hello)
{
    stalled_headers(false);
}
END_TEST

/* M2: clients that each send 64 KiB of a 1 MiB frame (the blocks' size) and stall: at most
 * AIPC_BLK_MAX loans (AIPC_BLK_BYTES) at once broker-wide, so the stalls hold at most that much
 * of max_incomplete_bytes more than the growing buffers would; a later large publication of
 * another client is served. */
START_TEST(stalled_loans_capped)
{
    aipc_broker *b = blk_broker(16u << 20);
    fake *a = blk_subscriber(b, "a"), *legit = fake_new(b, 0), *x[12];
    fake_hello(legit, NULL);
    size_t len;
    uint8_t *f = mkframe("b", 1u << 20, 9, &len);      /* the blocks' size exactly */
    for (int i = 0; i < 12; i++) {
        publish(legit, "a", 1u << 20, (uint8_t)i);     /* refills the cache; a reads it */
        while (fake_next(a))
            ;
        x[i] = fake_new(b, 0);
        fake_hello(x[i], NULL);
        ck_assert_int_eq(aipc_broker_input(b, x[i]->cl, f, FIRST), 0);   /* then stalls */
        ck_assert_uint_le(b->nlent, AIPC_BLK_MAX);
    }
    uint64_t inc = fake_stats(b).incomplete_bytes;
    fprintf(stderr, "12 clients x 64 KiB of 1 MiB frames: incomplete_bytes %" PRIu64 "\n", inc);
    ck_assert_uint_eq(b->nlent, AIPC_BLK_MAX);         /* loans were made, up to the cap */
    ck_assert_uint_le(inc, AIPC_BLK_BYTES + 12u * 2u * AIPC_DECODER_INITIAL);
    fake *v = fake_new(b, 0);
    fake_hello(v, NULL);
    publish(v, "a", 8u << 20, 7);
    ck_assert_int_eq(v->close_calls, 0);
    rx_frame *r = fake_next_nonpresence(a);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->plen, 8u << 20);
    for (int i = 0; i < 12; i++)
        fake_free(x[i]);
    ck_assert_uint_eq(b->nlent, 0);
    ck_assert_uint_eq(b->lent_bytes, 0);
    ck_assert_uint_eq(fake_stats(b).incomplete_bytes, 0);
    fake_free(v);
    fake_free(legit);
    fake_free(a);
    aipc_broker_free(b);
    ck_assert_uint_eq(ca.allocs, ca.frees);
    free(f);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_blkloan");
    TCase *tc = tcase_create("blkloan");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, queue_memory_inflated_by_oversized_loans);
    tcase_add_test(tc, loan_refuses_another_client);
    tcase_add_test(tc, random_splits_byte_exact);
    tcase_add_test(tc, close_while_lent_direct);
    tcase_add_test(tc, stalled_headers_get_no_loan);
    tcase_add_test(tc, stalled_headers_before_hello);
    tcase_add_test(tc, stalled_loans_capped);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
