/* test_relseq.c - the release counter of the bus client's release page (sdk/src/core/relseq.h):
 * in-order and out-of-order releases, a held one stopping the prefix, bitmap growth across
 * many outstanding descriptors, the 2^32 wrap, bogus releases refused, the page store, and a
 * random run against a model. */
#include "check_main.h"
#include <stdlib.h>
#include <string.h>

#include "asyncipc/asyncipc.h"
#include "relseq.h"

START_TEST(in_order)
{
    aipc__relseq r;
    aipc__relseq_init(&r, 0);
    for (uint32_t i = 0; i < 1000; i++) {
        uint32_t s = 99;
        if (aipc__relseq_take(&r, &s) != 0 || s != i || aipc__relseq_release(&r, s) != 1 ||
            aipc__relseq_prefix(&r) != i + 1 || aipc__relseq_outstanding(&r) != 0)
            ck_abort_msg("descriptor %u: seq %u, prefix %u", i, s, aipc__relseq_prefix(&r));
    }
    ck_assert_uint_eq(r.cap, AIPC__RELSEQ_MIN_BITS);   /* never more than one outstanding */
    ck_assert_uint_eq(r.waiting, 0);
    aipc__relseq_free(&r);
}
END_TEST

/* Three held; #3 then #2 released: the prefix stays; #1: all three go at once. */
START_TEST(held_one_stops_the_prefix)
{
    aipc__relseq r;
    aipc__relseq_init(&r, 0);
    uint32_t s[3];
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(aipc__relseq_take(&r, &s[i]), 0);
    ck_assert_int_eq(aipc__relseq_release(&r, s[2]), 0);
    ck_assert_int_eq(aipc__relseq_release(&r, s[1]), 0);
    ck_assert_uint_eq(aipc__relseq_prefix(&r), 0);
    ck_assert_uint_eq(r.waiting, 2);
    ck_assert_uint_eq(aipc__relseq_outstanding(&r), 3);
    ck_assert_int_eq(aipc__relseq_release(&r, s[0]), 1);
    ck_assert_uint_eq(aipc__relseq_prefix(&r), 3);
    ck_assert_uint_eq(r.waiting, 0);
    ck_assert_uint_eq(aipc__relseq_outstanding(&r), 0);
    /* a later one taken after the run starts from the prefix again */
    uint32_t t;
    ck_assert_int_eq(aipc__relseq_take(&r, &t), 0);
    ck_assert_uint_eq(t, 3);
    ck_assert_int_eq(aipc__relseq_release(&r, t), 1);
    ck_assert_uint_eq(aipc__relseq_prefix(&r), 4);
    aipc__relseq_free(&r);
}
END_TEST

/* 10 000 outstanding behind a held first one: the bitmap doubles and keeps every release. */
START_TEST(growth_keeps_the_releases)
{
    enum { N = 10000 };
    aipc__relseq r;
    aipc__relseq_init(&r, 0);
    uint32_t s;
    ck_assert_int_eq(aipc__relseq_take(&r, &s), 0);
    ck_assert_uint_eq(s, 0);
    for (uint32_t i = 1; i < N; i++) {
        if (aipc__relseq_take(&r, &s) != 0 || s != i)
            ck_abort_msg("take %u: %u", i, s);
        /* release two of three as they come, across the growths */
        if (i % 3 != 0 && aipc__relseq_release(&r, s) != 0)
            ck_abort_msg("release %u", s);
    }
    ck_assert_uint_ge(r.cap, N);
    ck_assert_uint_eq(r.cap & (r.cap - 1), 0);          /* a power of two */
    for (uint32_t i = 3; i < N; i += 3)
        if (aipc__relseq_release(&r, i) != 0)
            ck_abort_msg("release %u", i);
    ck_assert_uint_eq(aipc__relseq_prefix(&r), 0);
    ck_assert_uint_eq(r.waiting, N - 1);
    ck_assert_int_eq(aipc__relseq_release(&r, 0), 1);
    ck_assert_uint_eq(aipc__relseq_prefix(&r), N);
    ck_assert_uint_eq(r.waiting, 0);
    /* the bitmap is clean: a new round in reverse order works from the same bits */
    for (uint32_t i = 0; i < N; i++)
        if (aipc__relseq_take(&r, &s) != 0)
            ck_abort_msg("take %u", i);
    for (uint32_t i = 2 * N - 1; i > N; i--)
        if (aipc__relseq_release(&r, i) != 0)
            ck_abort_msg("release %u", i);
    ck_assert_int_eq(aipc__relseq_release(&r, N), 1);
    ck_assert_uint_eq(aipc__relseq_prefix(&r), 2 * N);
    aipc__relseq_free(&r);
}
END_TEST

/* Started 16 before 2^32: sequence numbers and the prefix wrap to 0 and on, out of order. */
START_TEST(wraps_at_2_32)
{
    aipc__relseq r;
    aipc__relseq_init(&r, 0xFFFFFFF0u);
    uint32_t s[40];
    for (int i = 0; i < 40; i++) {
        ck_assert_int_eq(aipc__relseq_take(&r, &s[i]), 0);
        ck_assert_uint_eq(s[i], 0xFFFFFFF0u + (uint32_t)i);
    }
    ck_assert_uint_eq(s[16], 0);
    for (int i = 39; i >= 10; i--)                     /* across the wrap, backwards */
        ck_assert_int_eq(aipc__relseq_release(&r, s[i]), 0);
    for (int i = 0; i < 9; i++)
        ck_assert_int_eq(aipc__relseq_release(&r, s[i]), 1);
    ck_assert_uint_eq(aipc__relseq_prefix(&r), 0xFFFFFFF9u);
    ck_assert_int_eq(aipc__relseq_release(&r, s[9]), 1);
    ck_assert_uint_eq(aipc__relseq_prefix(&r), 24);    /* 0xFFFFFFF0 + 40 mod 2^32 */
    ck_assert_uint_eq(aipc__relseq_outstanding(&r), 0);
    ck_assert_int_eq(aipc__relseq_release(&r, 23), AIPC_EINVAL);
    aipc__relseq_free(&r);
}
END_TEST

START_TEST(bogus_releases_refused)
{
    aipc__relseq r;
    aipc__relseq_init(&r, 0);
    ck_assert_int_eq(aipc__relseq_release(&r, 0), AIPC_EINVAL);   /* nothing taken */
    uint32_t a, b;
    ck_assert_int_eq(aipc__relseq_take(&r, &a), 0);
    ck_assert_int_eq(aipc__relseq_take(&r, &b), 0);
    ck_assert_int_eq(aipc__relseq_release(&r, 2), AIPC_EINVAL);   /* not taken yet */
    ck_assert_int_eq(aipc__relseq_release(&r, 0xFFFFFFFFu), AIPC_EINVAL);
    ck_assert_int_eq(aipc__relseq_release(&r, b), 0);
    ck_assert_int_eq(aipc__relseq_release(&r, b), AIPC_EINVAL);   /* twice, behind a held one */
    ck_assert_uint_eq(r.waiting, 1);
    ck_assert_int_eq(aipc__relseq_release(&r, a), 1);
    ck_assert_int_eq(aipc__relseq_release(&r, a), AIPC_EINVAL);   /* under the prefix */
    ck_assert_uint_eq(aipc__relseq_prefix(&r), 2);
    aipc__relseq_free(&r);
    ck_assert_ptr_null(r.bits);
    ck_assert_uint_eq(r.cap, 0);
}
END_TEST

/* The store writes the little-endian u32 at offset 0 and nothing else. */
START_TEST(store_writes_offset_0_only)
{
    _Alignas(8) uint8_t page[64];
    memset(page, 0xAB, sizeof page);
    aipc__relseq_store(page, 0x04030201u);
    ck_assert_uint_eq(page[0], 1);
    ck_assert_uint_eq(page[1], 2);
    ck_assert_uint_eq(page[2], 3);
    ck_assert_uint_eq(page[3], 4);
    for (size_t i = 4; i < sizeof page; i++)
        ck_assert_uint_eq(page[i], 0xAB);
    ck_assert_uint_eq(aipc__relseq_load(page), 0x04030201u);
}
END_TEST

/* Random takes and releases against a plain model (an array of flags). */
START_TEST(random_against_a_model)
{
    enum { MAXO = 3000, STEPS = 200000 };
    static uint8_t released[1u << 20];   /* model window: far more than ever outstanding */
    static uint32_t open_seq[MAXO];
    aipc__relseq r;
    uint32_t start = _i ? 0xFFFFF000u : 0;
    aipc__relseq_init(&r, start);
    uint32_t model_prefix = start, model_next = start, nopen = 0;
    memset(released, 0, sizeof released);
    uint32_t rnd = 12345u + (uint32_t)_i;
    for (int step = 0; step < STEPS; step++) {
        rnd = rnd * 1664525u + 1013904223u;
        int take = nopen == 0 || (nopen < MAXO && (rnd >> 16) % 2 == 0);
        /* (plain checks in the loop: each ck_assert costs a message to Check's runner) */
        if (take) {
            uint32_t s = 0;
            if (aipc__relseq_take(&r, &s) != 0 || s != model_next)
                ck_abort_msg("step %d: took %u, want %u", step, s, model_next);
            model_next++;
            open_seq[nopen++] = s;
        } else {
            uint32_t k = (rnd >> 8) % nopen, s = open_seq[k];
            open_seq[k] = open_seq[--nopen];
            released[(s - start) % sizeof released] = 1;
            uint32_t before = model_prefix;
            while (model_prefix != model_next && released[(model_prefix - start) % sizeof released]) {
                released[(model_prefix - start) % sizeof released] = 0;
                model_prefix++;
            }
            int rc = aipc__relseq_release(&r, s);
            if (rc != (model_prefix != before))
                ck_abort_msg("step %d: release of %u returned %d", step, s, rc);
        }
        if (aipc__relseq_prefix(&r) != model_prefix ||
            aipc__relseq_outstanding(&r) != model_next - model_prefix)
            ck_abort_msg("step %d: prefix %u outstanding %u, model %u %u", step,
                         aipc__relseq_prefix(&r), aipc__relseq_outstanding(&r), model_prefix,
                         model_next - model_prefix);
    }
    aipc__relseq_free(&r);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("relseq");
    TCase *tc = tcase_create("relseq");
    tcase_add_test(tc, in_order);
    tcase_add_test(tc, held_one_stops_the_prefix);
    tcase_add_test(tc, growth_keeps_the_releases);
    tcase_add_test(tc, wraps_at_2_32);
    tcase_add_test(tc, bogus_releases_refused);
    tcase_add_test(tc, store_writes_offset_0_only);
    tcase_add_loop_test(tc, random_against_a_model, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
