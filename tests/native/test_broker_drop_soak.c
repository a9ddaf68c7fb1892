/* test_broker_drop_soak.c - memory stays flat while a slow subscriber has publications
 * dropped. A long synthetic run (publisher, fast subscriber, slow subscriber reading a little
 * now and then) samples the counted heap: once the slow queue is full it must not grow, and
 * the slow client's queue - frames, their structs, the ring - stays within max_queue_bytes
 * (each queued frame is charged its overhead; one coalesced `dropped` report at a time).
 * Before, a report queued per drop episode behind the backlog and per-frame overhead outside
 * the bound let the heap grow (3 MB over 320k publications of 64..264 bytes), until the slow
 * client was cut off for not reading its answers. */
#include "check_main.h"
#include "test_broker_fake.h"
#include "test_heap.h"

#include "internal.h"

/* Frees what a fake received (the test's own memory must not blur the broker's). */
static void forget(fake *f)
{
    for (size_t i = 0; i < f->nrx; i++) {
        cJSON_Delete(f->rx[i].meta);
        free(f->rx[i].payload);
    }
    f->nrx = f->rpos = 0;
}

/* The slow subscriber's writer takes up to `max` bytes (one frame when one_frame). */
static void slow_write(fake *s, size_t max, bool one_frame, uint64_t *reported)
{
    aipc_iov iov[64];
    int k = aipc_client_out_next(s->cl, iov, one_frame ? 1 : 64);
    size_t tot = 0;
    for (int i = 0; i < k && tot < max; i++) {
        size_t t = iov[i].len;
        if (!one_frame && tot + t > max)
            t = max - tot;
        ck_assert_int_eq(aipc_decoder_feed(&s->dec, iov[i].base, t, fake_on_frame, s, NULL), 0);
        tot += t;
    }
    aipc_client_out_consume(s->cl, tot);
    for (size_t i = 0; i < s->nrx; i++)
        if (strcmp(rx_str(&s->rx[i], "op"), "dropped") == 0)
            *reported += (uint64_t)rx_num(&s->rx[i], "count");
    forget(s);
}

typedef struct soak_cfg {
    long rounds;
    size_t small_max;         /* payloads 64..64+small_max */
    int big_every;            /* 0, or one 64..256 KiB payload per this many */
    int read_every;           /* the slow writer runs every this many publications */
    size_t read_max;
    bool one_frame;
} soak_cfg;

static void soak(const soak_cfg *sc)
{
    enum { MAXQ = 4u << 20 };
    aipc_broker *b = test_broker(MAXQ, 0, 0);
    fake *pub = fake_new(b, 1), *fast = fake_new(b, 2), *slow = fake_new(b, 3);
    fake_hello(pub, "pub");
    fake_hello(fast, "fast");
    fake_hello(slow, "slow");
    fake_sendt(fast, "{\"op\":\"sub\",\"topic\":\"t/#\"}", NULL);
    fake_sendt(slow, "{\"op\":\"sub\",\"topic\":\"t/#\"}", NULL);
    forget(fast);
    forget(slow);
    slow->stalled = true;
    static uint8_t pl[256 * 1024];
    uint32_t rng = 12345;
    uint64_t reported = 0;
    size_t base = heap_live_bytes(), mid = 0, top = 0;
    for (long r = 0; r < sc->rounds; r++) {
        rng = rng * 1103515245u + 12345u;
        size_t n = 64 + (rng >> 8) % sc->small_max;
        if (sc->big_every && (rng >> 4) % (uint32_t)sc->big_every == 0)
            n = 64 * 1024 + (rng >> 10) % (192 * 1024);
        ck_assert_int_eq(fake_send(pub, "{\"op\":\"pub\",\"topic\":\"t/x\"}", pl, n), 0);
        forget(fast);
        if (r % sc->read_every == 0)
            slow_write(slow, sc->read_max, sc->one_frame, &reported);
        size_t h = heap_live_bytes() - base;
        if (r >= sc->rounds / 4 && h > top)
            top = h;
        if (r == sc->rounds / 2)
            mid = top;
    }
    aipc_broker_stats st;
    aipc_broker_get_stats(b, &st);
    fprintf(stderr, "soak: %ld publications, %llu dropped for the slow client in %llu reports; "
            "heap over the run's second quarter %zu KiB, at the end %zu KiB (bound %u KiB)\n",
            sc->rounds, (unsigned long long)st.drops, (unsigned long long)st.drop_reports,
            mid / 1024, top / 1024, MAXQ / 1024);
    ck_assert_uint_gt(st.drops, (uint64_t)sc->rounds / 10);   /* it really was too slow */
    ck_assert_uint_le(top, MAXQ + 256u * 1024);               /* the queue's bound, all in */
    ck_assert_uint_le(top - mid, 64u * 1024);                 /* flat once full */
    ck_assert_int_eq(slow->close_calls, 0);
    slow->stalled = false;                                     /* every drop gets reported */
    while (aipc_client_out_pending(slow->cl))
        slow_write(slow, SIZE_MAX, false, &reported);
    slow_write(slow, SIZE_MAX, false, &reported);
    aipc_broker_get_stats(b, &st);
    ck_assert_uint_eq(reported, st.drops);
    fake_free(pub);
    fake_free(fast);
    fake_free(slow);
    aipc_broker_free(b);
}

/* Small publications, the slow client writes one frame every other publication (many short
 * drop episodes: the pattern that piled reports up). */
START_TEST(small_publications_one_frame_reads)
{
    soak_cfg sc = {160000, 200, 0, 2, SIZE_MAX, true};
    soak(&sc);
}
END_TEST

/* 64 B..4 KiB with a 64..256 KiB one now and then, the slow client taking 16 KiB writes. */
START_TEST(mixed_sizes_partial_writes)
{
    soak_cfg sc = {80000, 4000, 64, 10, 16384, false};
    soak(&sc);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_drop_soak");
    TCase *tc = tcase_create("drop_soak");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, small_publications_one_frame_reads);
    tcase_add_test(tc, mixed_sizes_partial_writes);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
