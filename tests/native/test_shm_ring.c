/* test_shm_ring.c - the slot allocator of one shared-memory segment (proto/shm_ring.h): fill,
 * drain, out-of-order release, wrap, the spare byte, alignment, bogus releases, the slot bound. */
#include "check_main.h"
#include <stdlib.h>
#include <string.h>

#include "asyncipc/asyncipc.h"
#include "proto/shm_ring.h"

#define K 4096u

START_TEST(init_refuses_bad_sizes)
{
    aipc_shm_ring r;
    ck_assert_int_eq(aipc_shm_ring_init(&r, 0), AIPC_EINVAL);
    ck_assert_int_eq(aipc_shm_ring_init(&r, K + 1), AIPC_EINVAL);
    ck_assert_int_eq(aipc_shm_ring_init(&r, 100), AIPC_EINVAL);
    ck_assert_int_eq(aipc_shm_ring_init(NULL, K), AIPC_EINVAL);
    ck_assert_int_eq(aipc_shm_ring_init(&r, K), 0);
    ck_assert_uint_eq(aipc_shm_ring_used(&r), 0);
    ck_assert_uint_eq(aipc_shm_ring_live(&r), 0);
}
END_TEST

/* len + 1 bytes rounded up to 4 KiB, starting 4 KiB-aligned. */
START_TEST(spare_byte_and_alignment)
{
    aipc_shm_ring r;
    uint32_t a, b, c, d;
    ck_assert_int_eq(aipc_shm_ring_init(&r, 16 * K), 0);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, K - 1, &a), 0);    /* K - 1 + 1 = one page */
    ck_assert_uint_eq(a, 0);
    ck_assert_uint_eq(aipc_shm_ring_used(&r), K);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, K, &b), 0);        /* K + 1: two pages */
    ck_assert_uint_eq(b, K);
    ck_assert_uint_eq(aipc_shm_ring_used(&r), 3 * K);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 0, &c), 0);        /* the spare byte alone */
    ck_assert_uint_eq(c, 3 * K);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 1, &d), 0);
    ck_assert_uint_eq(d, 4 * K);
    ck_assert_uint_eq(a % K + b % K + c % K + d % K, 0);
    ck_assert_uint_eq(aipc_shm_ring_used(&r), 5 * K);
    ck_assert_uint_eq(aipc_shm_ring_live(&r), 4);
    /* The whole segment less the spare byte fits an empty ring; one more byte never does. */
    aipc_shm_ring r2;
    ck_assert_int_eq(aipc_shm_ring_init(&r2, 4 * K), 0);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r2, 4 * K, &a), AIPC_ETOOBIG);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r2, UINT32_MAX, &a), AIPC_ETOOBIG);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r2, 4 * K - 1, &a), 0);
    ck_assert_uint_eq(a, 0);
    ck_assert_uint_eq(aipc_shm_ring_used(&r2), 4 * K);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r2, 0, &b), AIPC_EQUEUEFULL);
}
END_TEST

START_TEST(fill_then_drain_in_order)
{
    aipc_shm_ring r;
    uint32_t off[8], x;
    ck_assert_int_eq(aipc_shm_ring_init(&r, 8 * K), 0);
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(aipc_shm_ring_alloc(&r, 100, &off[i]), 0);
        ck_assert_uint_eq(off[i], (uint32_t)i * K);
    }
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 100, &x), AIPC_EQUEUEFULL);
    ck_assert_uint_eq(aipc_shm_ring_used(&r), 8 * K);
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(aipc_shm_ring_release(&r, off[i]), 0);
        ck_assert_uint_eq(aipc_shm_ring_used(&r), (uint32_t)(7 - i) * K);
        ck_assert_uint_eq(aipc_shm_ring_live(&r), (uint32_t)(7 - i));
    }
    /* Empty again: starts at 0. */
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 100, &x), 0);
    ck_assert_uint_eq(x, 0);
}
END_TEST

/* A slot released before an older one stays charged until the older one goes. */
START_TEST(out_of_order_release)
{
    aipc_shm_ring r;
    uint32_t a, b, c, x;
    ck_assert_int_eq(aipc_shm_ring_init(&r, 3 * K), 0);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 10, &a), 0);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 10, &b), 0);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 10, &c), 0);
    ck_assert_int_eq(aipc_shm_ring_release(&r, c), 0);
    ck_assert_int_eq(aipc_shm_ring_release(&r, b), 0);
    ck_assert_uint_eq(aipc_shm_ring_live(&r), 1);
    ck_assert_uint_eq(aipc_shm_ring_used(&r), 3 * K);           /* behind a: still held */
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 10, &x), AIPC_EQUEUEFULL);
    ck_assert_int_eq(aipc_shm_ring_release(&r, a), 0);          /* reclaims all three */
    ck_assert_uint_eq(aipc_shm_ring_used(&r), 0);
    ck_assert_uint_eq(aipc_shm_ring_live(&r), 0);
    /* Middle release, then the oldest: only the two oldest are reclaimed. */
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 10, &a), 0);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 10, &b), 0);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 10, &c), 0);
    ck_assert_int_eq(aipc_shm_ring_release(&r, b), 0);
    ck_assert_int_eq(aipc_shm_ring_release(&r, a), 0);
    ck_assert_uint_eq(aipc_shm_ring_used(&r), K);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 2 * K - 1, &x), 0);   /* the freed front */
    ck_assert_uint_eq(x, 0);
}
END_TEST

/* A slot that does not fit before the end starts at 0; the skipped tail is charged to it. */
START_TEST(wrap_charges_the_skipped_tail)
{
    aipc_shm_ring r;
    uint32_t a, b, c, d;
    ck_assert_int_eq(aipc_shm_ring_init(&r, 10 * K), 0);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 4 * K - 1, &a), 0);   /* [0,4K) */
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 4 * K - 1, &b), 0);   /* [4K,8K) */
    ck_assert_int_eq(aipc_shm_ring_release(&r, a), 0);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 3 * K - 1, &c), 0);   /* tail [8K,10K) too small */
    ck_assert_uint_eq(c, 0);
    ck_assert_uint_eq(aipc_shm_ring_used(&r), 4 * K + 2 * K + 3 * K);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 2 * K - 1, &d), AIPC_EQUEUEFULL);  /* [3K,4K) free */
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, K - 1, &d), 0);
    ck_assert_uint_eq(d, 3 * K);
    ck_assert_uint_eq(aipc_shm_ring_used(&r), 10 * K);
    ck_assert_int_eq(aipc_shm_ring_release(&r, b), 0);             /* frees [4K,8K) only */
    ck_assert_uint_eq(aipc_shm_ring_used(&r), 2 * K + 3 * K + K);
    ck_assert_int_eq(aipc_shm_ring_release(&r, c), 0);             /* frees the tail and [0,3K) */
    ck_assert_uint_eq(aipc_shm_ring_used(&r), K);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 6 * K - 1, &a), 0);   /* [4K,10K) */
    ck_assert_uint_eq(a, 4 * K);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 3 * K - 1, &b), 0);   /* wraps: [0,3K) */
    ck_assert_uint_eq(b, 0);
    ck_assert_uint_eq(aipc_shm_ring_used(&r), 10 * K);
}
END_TEST

/* Released slots behind an older live one are pinned (aipc_shm_ring_pinned) until it goes. */
START_TEST(pinned_behind_a_held_slot)
{
    aipc_shm_ring r;
    uint32_t a, b, c;
    ck_assert_int_eq(aipc_shm_ring_init(&r, 8 * K), 0);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, K - 1, &a), 0);       /* one page */
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 2 * K - 1, &b), 0);   /* two */
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, K - 1, &c), 0);       /* one */
    ck_assert_uint_eq(aipc_shm_ring_pinned(&r), 0);
    ck_assert_int_eq(aipc_shm_ring_release(&r, b), 0);
    ck_assert_uint_eq(aipc_shm_ring_pinned(&r), 2 * K);
    ck_assert_int_eq(aipc_shm_ring_release(&r, c), 0);
    ck_assert_uint_eq(aipc_shm_ring_pinned(&r), 3 * K);
    ck_assert_uint_eq(aipc_shm_ring_used(&r), 4 * K);
    ck_assert_int_eq(aipc_shm_ring_release(&r, a), 0);             /* the oldest goes: all free */
    ck_assert_uint_eq(aipc_shm_ring_pinned(&r), 0);
    ck_assert_uint_eq(aipc_shm_ring_used(&r), 0);
    ck_assert_uint_eq(aipc_shm_ring_pinned(NULL), 0);
}
END_TEST

START_TEST(bogus_release_refused)
{
    aipc_shm_ring r;
    uint32_t a, b;
    ck_assert_int_eq(aipc_shm_ring_init(&r, 8 * K), 0);
    ck_assert_int_eq(aipc_shm_ring_release(&r, 0), AIPC_EINVAL);         /* nothing live */
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 2 * K, &a), 0);             /* [0,3K) */
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 10, &b), 0);                /* [3K,4K) */
    ck_assert_int_eq(aipc_shm_ring_release(&r, K), AIPC_EINVAL);         /* inside a slot */
    ck_assert_int_eq(aipc_shm_ring_release(&r, 1), AIPC_EINVAL);         /* unaligned */
    ck_assert_int_eq(aipc_shm_ring_release(&r, 5 * K), AIPC_EINVAL);     /* free space */
    ck_assert_int_eq(aipc_shm_ring_release(&r, 64 * K), AIPC_EINVAL);    /* outside */
    ck_assert_int_eq(aipc_shm_ring_release(&r, UINT32_MAX), AIPC_EINVAL);
    ck_assert_uint_eq(aipc_shm_ring_live(&r), 2);
    ck_assert_uint_eq(aipc_shm_ring_used(&r), 4 * K);
    ck_assert_int_eq(aipc_shm_ring_release(&r, b), 0);
    ck_assert_int_eq(aipc_shm_ring_release(&r, b), AIPC_EINVAL);         /* twice, still pinned */
    ck_assert_uint_eq(aipc_shm_ring_live(&r), 1);
    ck_assert_int_eq(aipc_shm_ring_release(&r, a), 0);
    ck_assert_int_eq(aipc_shm_ring_release(&r, a), AIPC_EINVAL);         /* twice, reclaimed */
    ck_assert_uint_eq(aipc_shm_ring_used(&r), 0);
    ck_assert_uint_eq(aipc_shm_ring_live(&r), 0);
}
END_TEST

/* At most AIPC_SHM_RING_SLOTS slots are held, however much space is left. */
START_TEST(slot_count_bounded)
{
    static aipc_shm_ring r;
    uint32_t off, first;
    ck_assert_int_eq(aipc_shm_ring_init(&r, (AIPC_SHM_RING_SLOTS + 8) * K), 0);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 1, &first), 0);
    for (uint32_t i = 1; i < AIPC_SHM_RING_SLOTS; i++)
        ck_assert_int_eq(aipc_shm_ring_alloc(&r, 1, &off), 0);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 1, &off), AIPC_EQUEUEFULL);
    ck_assert_uint_eq(aipc_shm_ring_live(&r), AIPC_SHM_RING_SLOTS);
    ck_assert_uint_eq(aipc_shm_ring_used(&r), AIPC_SHM_RING_SLOTS * K);
    ck_assert_int_eq(aipc_shm_ring_release(&r, first), 0);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 1, &off), 0);
    ck_assert_uint_eq(off, AIPC_SHM_RING_SLOTS * K);
    aipc_shm_ring_free(&r);
    ck_assert_uint_eq(aipc_shm_ring_live(&r), 0);
    ck_assert_uint_eq(aipc_shm_ring_used(&r), 0);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 1, &off), 0);
    ck_assert_uint_eq(off, 0);
}
END_TEST

/* Random sizes and release orders against a byte map: slots never overlap, stay in bounds and
 * aligned, and `used` returns to 0 when everything is released. An allocator refusing too much
 * fails it: an empty ring takes any slot of len + 1 <= size, a slot that fits in the free pages
 * after the head with nothing wrapped since the ring was last empty is never refused, and most attempts
 * succeed. */
START_TEST(random_against_a_model)
{
    enum { PAGES = 64, LIVE = 40 };
    static aipc_shm_ring r;
    int owner[PAGES];
    uint32_t live_off[LIVE], live_pages[LIVE];
    int nlive = 0, ok = 0, tries = 0, mhead = 0, wrapped = 0;
    srand(12345);
    ck_assert_int_eq(aipc_shm_ring_init(&r, PAGES * K), 0);
    for (int i = 0; i < PAGES; i++)
        owner[i] = -1;
    for (int step = 0; step < 20000; step++) {
        if (nlive < LIVE && (rand() % 3 != 0 || nlive == 0)) {
            uint32_t len = (uint32_t)(rand() % (9 * K));
            uint32_t off;
            /* The model's head: the end of the last slot allocated since the ring was last
             * empty; until a slot wraps to 0, [head, PAGES) is free for sure. */
            int need = (int)((len + 1 + K - 1) / K);
            int fits = nlive == 0 || (!wrapped && mhead + need <= PAGES);
            int rc = aipc_shm_ring_alloc(&r, len, &off);
            tries++;
            ck_assert_msg(rc == 0 || !fits, "refused a fitting slot: len %u, %d live, head %d", len, nlive, mhead);
            if (rc == AIPC_EQUEUEFULL)
                continue;
            ck_assert_int_eq(rc, 0);
            uint32_t pages = (len + 1 + K - 1) / K;
            ck_assert_uint_eq(off % K, 0);
            ck_assert_uint_le(off / K + pages, PAGES);
            for (uint32_t p = off / K; p < off / K + pages; p++) {
                ck_assert_int_eq(owner[p], -1);
                owner[p] = step;
            }
            if (nlive == 0)
                mhead = 0, wrapped = 0;
            if ((int)(off / K) < mhead)
                wrapped = 1;
            mhead = (int)(off / K + pages);
            live_off[nlive] = off;
            live_pages[nlive] = pages;
            nlive++;
            ok++;
        } else {
            int k = rand() % nlive;
            ck_assert_int_eq(aipc_shm_ring_release(&r, live_off[k]), 0);
            for (uint32_t p = live_off[k] / K; p < live_off[k] / K + live_pages[k]; p++)
                owner[p] = -1;
            live_off[k] = live_off[nlive - 1];
            live_pages[k] = live_pages[nlive - 1];
            nlive--;
        }
        ck_assert_uint_eq(aipc_shm_ring_live(&r), (uint32_t)nlive);
        ck_assert_uint_le(aipc_shm_ring_used(&r), PAGES * K);
    }
    while (nlive > 0)
        ck_assert_int_eq(aipc_shm_ring_release(&r, live_off[--nlive]), 0);
    ck_assert_uint_eq(aipc_shm_ring_used(&r), 0);
    ck_assert_int_gt(ok, tries / 3);         /* 49 % here */
}
END_TEST

/* A stale release (the generation of an earlier slot at the same offset) frees nothing. */
START_TEST(stale_generation_refused)
{
    static aipc_shm_ring r;
    uint32_t off, off2, g1, g2, g3;
    ck_assert_int_eq(aipc_shm_ring_init(&r, 4 * K), 0);
    ck_assert_int_eq(aipc_shm_ring_alloc_gen(&r, 100, &off, &g1), 0);
    ck_assert_uint_ne(g1, 0);
    ck_assert_int_eq(aipc_shm_ring_release_gen(&r, off, g1 + 1), AIPC_EINVAL);
    ck_assert_uint_eq(aipc_shm_ring_live(&r), 1);
    ck_assert_int_eq(aipc_shm_ring_release_gen(&r, off, g1), 0);
    ck_assert_int_eq(aipc_shm_ring_alloc_gen(&r, 100, &off2, &g2), 0);   /* the same offset */
    ck_assert_uint_eq(off2, off);
    ck_assert_uint_ne(g2, g1);
    ck_assert_int_eq(aipc_shm_ring_release_gen(&r, off, g1), AIPC_EINVAL);   /* repeated done */
    ck_assert_uint_eq(aipc_shm_ring_live(&r), 1);
    ck_assert_uint_eq(aipc_shm_ring_used(&r), K);
    aipc_shm_ring_free(&r);                     /* a reset keeps generations unique */
    ck_assert_int_eq(aipc_shm_ring_alloc_gen(&r, 100, &off2, &g3), 0);
    ck_assert_uint_eq(off2, off);
    ck_assert_uint_ne(g3, g2);
    ck_assert_uint_ne(g3, g1);
    ck_assert_int_eq(aipc_shm_ring_release_gen(&r, off, g2), AIPC_EINVAL);
    ck_assert_int_eq(aipc_shm_ring_release(&r, off), 0);   /* release() takes any generation */
    ck_assert_uint_eq(aipc_shm_ring_used(&r), 0);
}
END_TEST

/* Near 4 GiB: the largest segment the u32 offsets allow, no overflow in need/head/wrap. */
START_TEST(largest_segment)
{
    static aipc_shm_ring r;
    const uint32_t size = 0xFFFFF000u;
    uint32_t off, a, b;
    ck_assert_int_eq(aipc_shm_ring_init(&r, size), 0);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, size - 1, &off), 0);   /* len + 1 == size */
    ck_assert_uint_eq(off, 0);
    ck_assert_uint_eq(aipc_shm_ring_used(&r), size);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 0, &a), AIPC_EQUEUEFULL);
    ck_assert_int_eq(aipc_shm_ring_release(&r, 0), 0);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, size, &off), AIPC_ETOOBIG);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 0xFFFFFFFFu, &off), AIPC_ETOOBIG);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 0x7FFFF000u, &a), 0);   /* 2 GiB: 0x80000000 */
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 0x7FFFD000u, &b), 0);   /* the rest - 4 KiB */
    ck_assert_uint_eq(a, 0);
    ck_assert_uint_eq(b, 0x80000000u);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 4096, &off), AIPC_EQUEUEFULL);   /* 8 KiB: no */
    ck_assert_int_eq(aipc_shm_ring_release(&r, a), 0);
    ck_assert_int_eq(aipc_shm_ring_alloc(&r, 0x40000000u, &off), 0);   /* wraps: tail skipped */
    ck_assert_uint_eq(off, 0);
    ck_assert_uint_eq(aipc_shm_ring_used(&r), 0xC0000000u);   /* b + skipped 4 KiB + the new one */
    ck_assert_int_eq(aipc_shm_ring_release(&r, b), 0);
    ck_assert_int_eq(aipc_shm_ring_release(&r, off), 0);
    ck_assert_uint_eq(aipc_shm_ring_used(&r), 0);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("shm_ring");
    TCase *tc = tcase_create("ring");
    tcase_add_test(tc, init_refuses_bad_sizes);
    tcase_add_test(tc, spare_byte_and_alignment);
    tcase_add_test(tc, fill_then_drain_in_order);
    tcase_add_test(tc, out_of_order_release);
    tcase_add_test(tc, wrap_charges_the_skipped_tail);
    tcase_add_test(tc, bogus_release_refused);
    tcase_add_test(tc, pinned_behind_a_held_slot);
    tcase_add_test(tc, slot_count_bounded);
    tcase_add_test(tc, random_against_a_model);
    tcase_add_test(tc, largest_segment);
    tcase_add_test(tc, stale_generation_refused);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
