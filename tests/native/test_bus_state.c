/* test_bus_state.c - bus client state: pending table, subscription set, backoff, frame queue. */
#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_core.h"
#include "proto/frame.h"

static aipc__bus_pend mk(uint64_t id, uint64_t deadline, const char *desc)
{
    aipc__bus_pend e;
    memset(&e, 0, sizeof e);
    e.id = id;
    e.deadline_ms = deadline;
    e.kind = AIPC_BUS_PEND_REQ;
    e.desc = (char *)desc;
    return e;
}

START_TEST(pending_add_take)
{
    aipc__bus_pending p;
    aipc__bus_pending_init(&p);
    aipc__bus_pend e = mk(1, 100, "first");
    ck_assert_int_eq(aipc__bus_pending_add(&p, &e), 0);
    ck_assert_int_eq(aipc__bus_pending_add(&p, &e), AIPC_EINVAL);   /* duplicate */
    e = mk(0, 0, NULL);
    ck_assert_int_eq(aipc__bus_pending_add(&p, &e), AIPC_EINVAL);   /* id 0 */
    for (uint64_t id = 2; id <= 1000; id++) {
        e = mk(id, 1000 + id, NULL);
        ck_assert_int_eq(aipc__bus_pending_add(&p, &e), 0);
    }
    ck_assert_uint_eq(p.count, 1000);
    ck_assert_ptr_nonnull(aipc__bus_pending_find(&p, 500));
    ck_assert_ptr_null(aipc__bus_pending_find(&p, 5000));
    aipc__bus_pend out;
    ck_assert_int_eq(aipc__bus_pending_take(&p, 1, &out), 1);
    ck_assert_str_eq(out.desc, "first");
    free(out.desc);
    ck_assert_int_eq(aipc__bus_pending_take(&p, 1, &out), 0);
    for (uint64_t id = 1000; id >= 2; id--) {
        ck_assert_int_eq(aipc__bus_pending_take(&p, id, &out), 1);
        ck_assert_uint_eq(out.id, id);
        ck_assert_uint_eq(out.deadline_ms, 1000 + id);
    }
    ck_assert_uint_eq(p.count, 0);
    aipc__bus_pending_free(&p);
}
END_TEST

START_TEST(pending_deadlines)
{
    aipc__bus_pending p;
    aipc__bus_pending_init(&p);
    ck_assert_uint_eq(aipc__bus_pending_next_deadline(&p), 0);
    aipc__bus_pend e = mk(1, 300, NULL);
    aipc__bus_pending_add(&p, &e);
    e = mk(2, 100, NULL);
    aipc__bus_pending_add(&p, &e);
    e = mk(3, 0, "ack without deadline");
    aipc__bus_pending_add(&p, &e);
    e = mk(4, 200, NULL);
    aipc__bus_pending_add(&p, &e);
    ck_assert_uint_eq(aipc__bus_pending_next_deadline(&p), 100);
    aipc__bus_pend out;
    ck_assert_int_eq(aipc__bus_pending_take_expired(&p, 99, &out), 0);
    ck_assert_int_eq(aipc__bus_pending_take_expired(&p, 250, &out), 1);
    uint64_t a = out.id;
    ck_assert_int_eq(aipc__bus_pending_take_expired(&p, 250, &out), 1);
    uint64_t b = out.id;
    ck_assert_int_eq(aipc__bus_pending_take_expired(&p, 250, &out), 0);
    ck_assert((a == 2 && b == 4) || (a == 4 && b == 2));
    ck_assert_uint_eq(aipc__bus_pending_next_deadline(&p), 300);
    ck_assert_int_eq(aipc__bus_pending_take_expired(&p, UINT64_MAX, &out), 1);
    ck_assert_uint_eq(out.id, 1);
    ck_assert_int_eq(aipc__bus_pending_take_expired(&p, UINT64_MAX, &out), 0); /* 3 has none */
    ck_assert_uint_eq(aipc__bus_pending_next_deadline(&p), 0);
    aipc__bus_pending_free(&p);   /* frees entry 3 and its desc */
}
END_TEST

START_TEST(pending_sent_flag)
{
    aipc__bus_pending p;
    aipc__bus_pending_init(&p);
    for (uint64_t id = 1; id <= 6; id++) {
        aipc__bus_pend e = mk(id, 0, NULL);
        aipc__bus_pending_add(&p, &e);
    }
    aipc__bus_pending_find(&p, 2)->sent = 1;
    aipc__bus_pending_find(&p, 5)->sent = 1;
    aipc__bus_pend out;
    int n = 0;
    uint64_t sum = 0;
    while (aipc__bus_pending_take_sent(&p, 0, &out)) {
        n++;
        sum += out.id;
    }
    ck_assert_int_eq(n, 2);
    ck_assert_uint_eq(sum, 7);
    ck_assert_uint_eq(p.count, 4);
    while (aipc__bus_pending_take_sent(&p, 1, &out))
        n++;
    ck_assert_int_eq(n, 6);
    ck_assert_uint_eq(p.count, 0);
    aipc__bus_pending_free(&p);
}
END_TEST

START_TEST(subs_set)
{
    aipc__bus_subs s;
    aipc__bus_subs_init(&s);
    ck_assert_int_eq(aipc__bus_subs_add(&s, "a/+"), 1);
    ck_assert_int_eq(aipc__bus_subs_add(&s, "a/+"), 0);
    ck_assert_int_eq(aipc__bus_subs_add(&s, "b/#"), 1);
    for (int i = 0; i < 40; i++) {
        char f[16];
        snprintf(f, sizeof f, "x/%d", i);
        ck_assert_int_eq(aipc__bus_subs_add(&s, f), 1);
    }
    ck_assert_uint_eq(s.count, 42);
    ck_assert_str_eq(s.filters[0], "a/+");   /* insertion order kept for resubscribe */
    ck_assert_str_eq(s.filters[41], "x/39");
    ck_assert(aipc__bus_subs_match(&s, "a/z"));
    ck_assert(aipc__bus_subs_match(&s, "b"));
    ck_assert(aipc__bus_subs_match(&s, "x/7"));
    ck_assert(!aipc__bus_subs_match(&s, "c"));
    ck_assert_int_eq(aipc__bus_subs_remove(&s, "a/+"), 1);
    ck_assert_int_eq(aipc__bus_subs_remove(&s, "a/+"), 0);
    ck_assert(!aipc__bus_subs_match(&s, "a/z"));
    ck_assert(!aipc__bus_subs_contains(&s, "a/+"));
    ck_assert(aipc__bus_subs_contains(&s, "b/#"));
    ck_assert_str_eq(s.filters[0], "b/#");
    aipc__bus_subs_free(&s);
}
END_TEST

START_TEST(backoff)
{
    /* the first delay never undercuts the minimum */
    ck_assert_uint_eq(aipc__bus_backoff_delay(100, 5000, 0, 7), 100);
    for (uint32_t attempt = 0; attempt < 64; attempt++) {
        uint64_t d = 100;
        for (uint32_t i = 0; i < attempt && d < 5000; i++)
            d *= 2;
        if (d > 5000)
            d = 5000;
        for (uint32_t r = 0; r < 2000; r += 37) {
            uint32_t v = aipc__bus_backoff_delay(100, 5000, attempt, r * 2654435761u);
            ck_assert_uint_ge(v, d / 2 < 100 ? 100 : d / 2);
            ck_assert_uint_le(v, d);
        }
    }
    /* grows then saturates */
    ck_assert_uint_eq(aipc__bus_backoff_delay(100, 5000, 1000, 0), 2500);
    ck_assert_uint_eq(aipc__bus_backoff_delay(100, 5000, 3, 0), 400);
    ck_assert_uint_eq(aipc__bus_backoff_delay(100, 100, 9, 12345), 100);
    ck_assert_uint_eq(aipc__bus_backoff_delay(100, 1000, 4, 5), 505);   /* d=1000: 500 + 5 */
    ck_assert_uint_eq(aipc__bus_backoff_delay(0, 0, 0, 0), 1);
    ck_assert_uint_eq(aipc__bus_backoff_delay(500, 200, 0, 0), 200);
    ck_assert_uint_le(aipc__bus_backoff_delay(1, UINT32_MAX, 40, UINT32_MAX), UINT32_MAX);
}
END_TEST

static uint64_t tags_seen[16];
static int ntags;
static void on_tag(void *ctx, uint64_t tag)
{
    (void)ctx;
    if (ntags < 16)
        tags_seen[ntags++] = tag;
}

/* Frame with meta "m<i>" and a payload of i bytes. */
static aipc__bus_qnode *frame(int i, uint64_t tag)
{
    char meta[16];
    uint8_t pl[64];
    int ml = snprintf(meta, sizeof meta, "m%d", i);
    memset(pl, i, sizeof pl);
    return aipc__bus_frame_new(meta, (size_t)ml, pl, (size_t)i, tag);
}

START_TEST(queue_bound_and_batches)
{
    aipc__bus_queue q;
    aipc__bus_queue_init(&q, 100);
    aipc__bus_qnode *n = frame(10, 0);            /* 8 + 3 + 10 = 21 bytes */
    ck_assert_uint_eq(n->len, 21);
    uint32_t ml, pl;
    aipc_frame_get_header(n->data, &ml, &pl);
    ck_assert_uint_eq(ml, 3);
    ck_assert_uint_eq(pl, 10);
    ck_assert_int_eq(aipc__bus_queue_push(&q, n, 1), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(aipc__bus_queue_push(&q, frame(10, 0), 1), 0);
    ck_assert_uint_eq(q.bytes, 84);
    aipc__bus_qnode *big = frame(10, 7);
    ck_assert_int_eq(aipc__bus_queue_push(&q, big, 1), AIPC_EQUEUEFULL);
    ck_assert_int_eq(aipc__bus_queue_push(&q, big, 0), 0);   /* unbounded push always fits */
    ck_assert_uint_eq(q.count, 5);

    /* a batch stops before exceeding max_len */
    ntags = 0;
    size_t len;
    uint8_t *b = aipc__bus_queue_take_batch(&q, 50, &len, on_tag, NULL);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(len, 42);
    /* the decoder sees two whole frames */
    aipc_frame_get_header(b + 21, &ml, &pl);
    ck_assert_uint_eq(ml, 3);
    ck_assert_mem_eq(b + 29, "m10", 3);
    free(b);
    ck_assert_uint_eq(q.count, 3);
    b = aipc__bus_queue_take_batch(&q, 1 << 20, &len, on_tag, NULL);
    ck_assert_uint_eq(len, 63);
    free(b);
    ck_assert_int_eq(ntags, 1);
    ck_assert_uint_eq(tags_seen[0], 7);
    ck_assert_uint_eq(q.bytes, 0);
    ck_assert_ptr_null(q.tail);
    ck_assert_ptr_null(aipc__bus_queue_take_batch(&q, 100, &len, NULL, NULL));
    ck_assert_uint_eq(len, 0);

    /* one frame larger than max_len still goes out alone */
    aipc__bus_queue_push(&q, frame(60, 0), 0);
    b = aipc__bus_queue_take_batch(&q, 10, &len, NULL, NULL);
    ck_assert_uint_eq(len, 8 + 3 + 60);
    free(b);
    aipc__bus_queue_free(&q);
}
END_TEST

START_TEST(queue_remove_tag_and_splice)
{
    aipc__bus_queue q, ctl;
    aipc__bus_queue_init(&q, 1 << 20);
    aipc__bus_queue_init(&ctl, 1 << 20);
    aipc__bus_queue_push(&q, frame(1, 5), 1);
    aipc__bus_queue_push(&q, frame(2, 0), 1);
    aipc__bus_queue_push(&q, frame(3, 5), 1);
    ck_assert_uint_eq(aipc__bus_queue_remove_tag(&q, 5), 2);
    ck_assert_uint_eq(q.count, 1);
    ck_assert_ptr_eq(q.head, q.tail);
    ck_assert_uint_eq(aipc__bus_queue_remove_tag(&q, 0), 0);
    aipc__bus_queue_push(&q, frame(4, 0), 1);           /* tail must be right after removal */
    ck_assert_uint_eq(q.count, 2);
    aipc__bus_queue_push(&ctl, frame(9, 0), 1);
    aipc__bus_queue_splice(&q, &ctl, 1);
    ck_assert_uint_eq(q.count, 3);
    ck_assert_uint_eq(ctl.count, 0);
    ck_assert_mem_eq(q.head->data + 8, "m9", 2);
    ck_assert_mem_eq(q.tail->data + 8, "m4", 2);
    aipc__bus_queue_push(&ctl, frame(8, 0), 1);
    aipc__bus_queue_splice(&q, &ctl, 0);
    ck_assert_mem_eq(q.tail->data + 8, "m8", 2);
    ck_assert_uint_eq(q.bytes, (8 + 2 + 9) + (8 + 2 + 2) + (8 + 2 + 4) + (8 + 2 + 8));
    aipc__bus_queue_splice(&q, &ctl, 0);                /* empty splice is a no-op */
    ck_assert_uint_eq(q.count, 4);
    ck_assert_ptr_null(aipc__bus_frame_new("x", AIPC_MAX_META + 1, NULL, 0, 0));
    ck_assert_ptr_null(aipc__bus_frame_new(NULL, 0, NULL, 5, 0));
    aipc__bus_qnode *empty = aipc__bus_frame_new(NULL, 0, NULL, 0, 0);
    ck_assert_uint_eq(empty->len, 8);
    free(empty);
    aipc__bus_queue_free(&q);
    aipc__bus_queue_free(&ctl);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("bus_state");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, pending_add_take);
    tcase_add_test(tc, pending_deadlines);
    tcase_add_test(tc, pending_sent_flag);
    tcase_add_test(tc, subs_set);
    tcase_add_test(tc, backoff);
    tcase_add_test(tc, queue_bound_and_batches);
    tcase_add_test(tc, queue_remove_tag_and_splice);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite);
