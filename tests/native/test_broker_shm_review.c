/* test_broker_shm_review.c - regression tests for the review of the broker's fan-out (findings
 * 1-4 of the session-6 review): each case asserts what the contract asks for and failed (R1:
 * crashed) on b39566f. Fake engine and fake backend (test_broker_shm_fake.h). */
#include "check_main.h"
#include "test_broker_fake.h"
#include "test_broker_idents.h"
#include "test_broker_shm_fake.h"
#include "internal.h"

#define THR 65536u

static aipc_broker *rbroker(uint32_t seg_bytes, uint64_t max_shm, fshm **fs)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.shm_segment_bytes = seg_bytes;
    cfg.max_shm_bytes = max_shm;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    ck_assert_ptr_nonnull(b);
    *fs = fshm_install(b);
    return b;
}

static fake *shm_client(aipc_broker *b, const aipc_identity *id, const char *name, uint32_t pid,
                        const char *topic)
{
    fake *f = fake_new(b, pid);
    ck_assert_ptr_nonnull(f->cl);
    ck_assert_int_eq(aipc_client_set_identity(f->cl, id), 0);
    char meta[200];
    snprintf(meta, sizeof meta, "{\"op\":\"hello\",\"proto\":1,\"name\":\"%s\",\"shm\":{\"v\":1}}",
             name);
    ck_assert_int_eq(fake_sendt(f, meta, NULL), 0);
    ck_assert(rx_has(fake_expect(f, "welcome"), "shm"));
    if (topic) {
        snprintf(meta, sizeof meta, "{\"op\":\"sub\",\"topic\":\"%s\",\"id\":1}", topic);
        ck_assert_int_eq(fake_sendt(f, meta, NULL), 0);
        fake_expect(f, "ok");
    }
    return f;
}

/* R1: the 65th principal set retires the LRU pool; its segment's shm_unseg is built in b->meta,
 * which still holds the new pool's key: the new pool gets the unseg JSON as key and strchr('|')
 * returns NULL -> crash (SIGSEGV / UBSan pointer overflow). Finding 5: directs advance the LRU
 * order too (it counted publications only), so the pool retired is c0's, the oldest. */
START_TEST(pool_65_retires_lru)
{
    enum { N = 65 };
    fshm *fs;
    aipc_broker *b = rbroker(1u << 20, 256u << 20, &fs);
    static char sids[N][40];
    static aipc_identity ids[N];
    fake *c[N];
    for (int i = 0; i < N; i++) {
        snprintf(sids[i], sizeof sids[i], "S-1-5-21-9-9-9-%d", 2000 + i);
        ids[i] = (aipc_identity){sids[i], 1, 0x2000, NULL, 0};
        char name[16];
        snprintf(name, sizeof name, "c%d", i);
        c[i] = shm_client(b, &ids[i], name, 100 + (uint32_t)i, NULL);
    }
    fake *p = fake_new(b, 20);
    ck_assert_int_eq(aipc_client_set_identity(p->cl, &id_bob), 0);
    fake_hello(p, "pub");
    uint8_t *pl = calloc(1, THR);
    for (int i = 0; i < N; i++) {
        char meta[80];
        snprintf(meta, sizeof meta, "{\"op\":\"send\",\"to\":\"c%d\",\"id\":%d}", i, i + 1);
        ck_assert_int_eq(fake_send(p, meta, pl, THR), 0);
        fake_expect(p, "ok");
        int ann = 0;
        shm_rx x = fshm_next(fs, c[i], true, &ann);   /* announce answered ok, inline copy */
        ck_assert_ptr_nonnull(x.r);
        ck_assert_int_eq(ann, 1);
    }
    ck_assert_uint_le(fake_stats(b).shm_segments, 64);
    const fshm_seg *last = &fs->segs[fs->nsegs - 1];   /* the 65th set's segment: its readers */
    ck_assert_uint_eq(last->nreaders, 1);
    ck_assert_str_eq(last->readers[0], sids[N - 1]);
    int unsegs = 0, closed = 0;                      /* one idle pool retired for the 65th */
    for (int i = 0; i < N - 1; i++) {
        rx_frame *r = fake_next(c[i]);
        if (r) {
            ck_assert_str_eq(rx_str(r, "op"), "shm_unseg");
            ck_assert_int_eq(fs->segs[i].closed, 1);
            unsegs++;
        }
        closed += fs->segs[i].closed;
    }
    ck_assert_int_eq(unsegs, 1);
    ck_assert_int_eq(closed, 1);
    ck_assert_int_eq(fs->segs[0].closed, 1);           /* the least recently used: c0's */
    ck_assert_int_eq(fake_send(p, "{\"op\":\"send\",\"to\":\"c64\",\"id\":99}", pl, THR), 0);
    fake_expect(p, "ok");
    shm_rx x = fshm_next(fs, c[N - 1], true, NULL);   /* the new pool works */
    ck_assert(x.shared);
    ck_assert_int_eq(x.data[0], 0);
    fshm_done(c[N - 1], x.seg, x.off);
    free(pl);
    for (int i = 0; i < N; i++)
        fake_free(c[i]);
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* R2: the engine hands the descriptor to WriteFile (out_next); the client reads it and releases
 * it before the write's completion reaches the broker (out_consume): a batch with a large inline
 * frame behind the descriptor completes only once the client has read it. The release is
 * applied at the completion (it was ignored and the slot stayed held until the client left);
 * a repeat of it before the completion is still a bad release. */
START_TEST(release_before_write_completion)
{
    fshm *fs;
    aipc_broker *b = rbroker(0, 256u << 20, &fs);
    fake *s = shm_client(b, &id_alice, "s", 10, "t/#");
    fake *p = fake_new(b, 20);
    ck_assert_int_eq(aipc_client_set_identity(p->cl, &id_bob), 0);
    fake_hello(p, "pub");
    uint8_t *pl = calloc(1, THR);
    ck_assert_int_eq(fake_send(p, "{\"op\":\"pub\",\"topic\":\"t/x\"}", pl, THR), 0);
    ck_assert_ptr_nonnull(fshm_next(fs, s, true, NULL).r);      /* announce + inline */
    s->stalled = true;                                           /* a write in flight */
    ck_assert_int_eq(fake_send(p, "{\"op\":\"pub\",\"topic\":\"t/x\"}", pl, THR), 0);
    ck_assert_int_eq(fake_send(p, "{\"op\":\"pub\",\"topic\":\"t/y\"}", pl, 1000), 0);
    aipc_iov iov[8];
    int n = aipc_client_out_next(s->cl, iov, 8);
    ck_assert_int_ge(n, 2);
    size_t total = 0;
    for (int i = 0; i < n; i++) {                 /* the bytes reach the client */
        ck_assert_int_eq(aipc_decoder_feed(&s->dec, iov[i].base, iov[i].len, fake_on_frame, s,
                                           NULL), 0);
        total += iov[i].len;
    }
    shm_rx x = fshm_next(fs, s, true, NULL);
    ck_assert(x.shared);
    fshm_done(s, x.seg, x.off);                   /* its release arrives first ... */
    ck_assert_uint_eq(fake_stats(b).shm_bad_releases, 0);
    ck_assert_uint_gt(fake_stats(b).shm_bytes, 0);  /* (the queued frame still names it) */
    fshm_done(s, x.seg, x.off);                   /* a repeat */
    ck_assert_uint_eq(fake_stats(b).shm_bad_releases, 1);
    aipc_client_out_consume(s->cl, total);        /* ... then the write completion */
    s->stalled = false;
    aipc_broker_stats st = fake_stats(b);
    ck_assert_uint_eq(st.shm_bad_releases, 1);
    ck_assert_uint_eq(st.shm_bytes, 0);           /* the slot came back */
    ck_assert_uint_eq(s->cl->q.shm_bytes, 0);
    free(pl);
    fake_free(s);
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* R3: one subscriber that keeps ONE slot per segment (well under its max_queue_bytes) pins every
 * segment of its pool (ring reclaim is in order); on b39566f it filled max_shm_bytes and another
 * user's subscribers never got shared memory again (make_room retires only idle segments). The
 * segments a client pins are bounded by aipc_shm_pin_limit (here max_shm_bytes / 2 = 2 MiB:
 * alice pins 2 segments, her deliveries on a third go inline) and bob's pool finds room. (The
 * review's version had max_shm_bytes 2 MiB: alice's 2 pinned segments and bob's 1 cannot all fit
 * 2 MiB under any rule.) */
START_TEST(one_held_slot_pins_segment)
{
    fshm *fs;
    aipc_broker *b = rbroker(1u << 20, 4u << 20, &fs);
    fake *a = shm_client(b, &id_alice, "a", 10, "a/#");
    fake *o = shm_client(b, &id_bob, "o", 11, "b/#");
    fake *p = fake_new(b, 20);
    ck_assert_int_eq(aipc_client_set_identity(p->cl, &id_guest), 0);
    fake_hello(p, "pub");
    uint8_t *pl = calloc(1, THR);
    uint32_t held_seg = 0;
    int held = 0;
    for (int i = 0; i < 64; i++) {
        ck_assert_int_eq(fake_send(p, "{\"op\":\"pub\",\"topic\":\"a/x\"}", pl, THR), 0);
        shm_rx x = fshm_next(fs, a, true, NULL);
        ck_assert_ptr_nonnull(x.r);
        if (!x.shared)
            continue;
        if (x.seg != held_seg) {                  /* keep the first slot of each segment */
            held_seg = x.seg;
            held++;
            continue;
        }
        fshm_done(a, x.seg, x.off);
    }
    ck_assert_int_eq(held, 2);
    ck_assert_uint_le(a->cl->q.shm_bytes, 2 * (THR + 200));      /* alice holds ~130 KiB */
    ck_assert_uint_eq(aipc_shm_pin_limit(b), 2u << 20);
    ck_assert_uint_eq(a->cl->shm_pinned, 2u << 20);
    ck_assert_uint_gt(fake_stats(b).shm_inline_fallbacks, 0);   /* her third segment: inline */
    int shared = 0;
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(fake_send(p, "{\"op\":\"pub\",\"topic\":\"b/x\"}", pl, THR), 0);
        shm_rx x = fshm_next(fs, o, true, NULL);
        ck_assert_ptr_nonnull(x.r);
        shared += x.shared;
        if (x.shared)
            fshm_done(o, x.seg, x.off);
    }
    ck_assert_msg(shared > 0, "bob never got shared memory: alice's 2 held slots pin %u segments"
                  " (%llu bytes)", (unsigned)fake_stats(b).shm_segments,
                  (unsigned long long)b->shm_seg_bytes);
    free(pl);
    fake_free(a);
    fake_free(o);
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

static fake *guest_pub(aipc_broker *b)
{
    fake *p = fake_new(b, 20);
    ck_assert_int_eq(aipc_client_set_identity(p->cl, &id_guest), 0);
    fake_hello(p, "pub");
    return p;
}

static void direct(fake *p, const char *to, const uint8_t *pl, size_t n)
{
    char meta[80];
    snprintf(meta, sizeof meta, "{\"op\":\"send\",\"to\":\"%s\"}", to);
    ck_assert_int_eq(fake_send(p, meta, pl, n), 0);
}

/* Finding 8: making room for a new segment retires only as many idle segments as it needs (it
 * retired every idle segment of each pool it visited: shm_unseg, a new announce and inline
 * frames for nothing). */
START_TEST(make_room_retires_only_what_is_needed)
{
    fshm *fs;
    aipc_broker *b = rbroker(1u << 20, 2u << 20, &fs);
    fake *a = shm_client(b, &id_alice, "a", 10, "a/#");
    fake *o = shm_client(b, &id_bob, "o", 11, NULL);
    fake *p = guest_pub(b);
    uint8_t *pl = calloc(1, THR);
    shm_rx got[64];
    int ng = 0;
    for (int i = 0; i < 64 && fs->creates < 2; i++) {   /* alice holds until 2 segments */
        ck_assert_int_eq(fake_send(p, "{\"op\":\"pub\",\"topic\":\"a/x\"}", pl, THR), 0);
        shm_rx x = fshm_next(fs, a, true, NULL);
        ck_assert_ptr_nonnull(x.r);
        if (x.shared)
            got[ng++] = x;
    }
    ck_assert_int_eq(fs->creates, 2);
    for (int i = 0; i < ng; i++)
        fshm_done(a, got[i].seg, got[i].off);
    ck_assert_uint_eq(fake_stats(b).shm_bytes, 0);
    ck_assert_uint_eq(fake_stats(b).shm_segments, 2);  /* the budget is full, both idle */
    int before = fs->unsegs;
    direct(p, "o", pl, THR);                            /* {bob} needs 1 MiB */
    ck_assert_int_eq(fs->creates, 3);
    ck_assert_ptr_nonnull(fshm_next(fs, o, true, NULL).r);
    ck_assert_ptr_null(fshm_next(fs, a, true, NULL).r);
    ck_assert_int_eq(fs->unsegs - before, 1);           /* one of alice's, not both */
    ck_assert_uint_eq(fake_stats(b).shm_segments, 2);
    free(pl);
    fake_free(a);
    fake_free(o);
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* Finding 9: max_shm_bytes 0 means no fan-out segment at all: a large direct goes inline
 * without making a pool or counting a fallback. */
START_TEST(no_budget_no_pools)
{
    fshm *fs;
    aipc_broker *b = rbroker(0, 0, &fs);
    fake *s = shm_client(b, &id_alice, "s", 10, NULL);
    fake *p = guest_pub(b);
    uint8_t *pl = calloc(1, THR);
    direct(p, "s", pl, THR);
    shm_rx x = fshm_next(fs, s, true, NULL);
    ck_assert_ptr_nonnull(x.r);
    ck_assert(!x.shared);
    ck_assert_int_eq(fs->creates, 0);
    ck_assert_uint_eq(fake_stats(b).shm_inline_fallbacks, 0);
    free(pl);
    fake_free(s);
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* Finding 6: idle segments do not stay committed for the broker's life. The tick's sweep
 * retires at once an idle segment no attached client has a view of (its pool freed), and any
 * other idle segment after AIPC_SHM_IDLE_MS (shm_unseg to its clients); the tick asks to be
 * called again within AIPC_SHM_SWEEP_MS while segments exist. */
START_TEST(idle_segments_retired_on_tick)
{
    fshm *fs;
    aipc_broker *b = rbroker(1u << 20, 256u << 20, &fs);
    fake *s = shm_client(b, &id_alice, "s", 10, NULL);
    fake *t = shm_client(b, &id_bob, "t", 11, NULL);
    fake *p = guest_pub(b);
    uint8_t *pl = calloc(1, THR);
    direct(p, "s", pl, THR);                            /* announce + inline */
    ck_assert(!fshm_next(fs, s, true, NULL).shared);
    direct(p, "s", pl, THR);
    shm_rx x = fshm_next(fs, s, true, NULL);
    ck_assert(x.shared);
    direct(p, "t", pl, THR);
    ck_assert(!fshm_next(fs, t, true, NULL).shared);
    ck_assert_uint_eq(fake_stats(b).shm_segments, 2);
    ck_assert_uint_le(aipc_broker_tick(b), AIPC_SHM_SWEEP_MS);  /* s holds x: nothing idle */
    fshm_done(s, x.seg, x.off);
    fake_free(t);                                       /* {bob}'s segment: nobody views it */
    fake_clock_ms += AIPC_SHM_SWEEP_MS;
    ck_assert_uint_le(aipc_broker_tick(b), AIPC_SHM_SWEEP_MS);
    ck_assert_uint_eq(fake_stats(b).shm_segments, 1);
    ck_assert_int_eq(fs->closes, 1);
    ck_assert_ptr_null(fshm_next(fs, s, true, NULL).r);   /* s's segment: idle, still there */
    fake_clock_ms += AIPC_SHM_IDLE_MS - AIPC_SHM_SWEEP_MS;
    aipc_broker_tick(b);                                /* idle for less than the limit */
    ck_assert_uint_eq(fake_stats(b).shm_segments, 1);
    fake_clock_ms += AIPC_SHM_SWEEP_MS;
    ck_assert_uint_eq(aipc_broker_tick(b), UINT64_MAX); /* nothing left to sweep */
    ck_assert_uint_eq(fake_stats(b).shm_segments, 0);
    int before = fs->unsegs;
    ck_assert_ptr_null(fshm_next(fs, s, true, NULL).r);
    ck_assert_int_eq(fs->unsegs - before, 1);           /* s was told */
    direct(p, "s", pl, THR);                            /* a new pool, a new segment */
    ck_assert(!fshm_next(fs, s, true, NULL).shared);
    ck_assert_uint_eq(fake_stats(b).shm_segments, 1);
    free(pl);
    fake_free(s);
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST


static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_shm_review");
    TCase *tc = tcase_create("review");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, pool_65_retires_lru);
    tcase_add_test(tc, release_before_write_completion);
    tcase_add_test(tc, one_held_slot_pins_segment);
    tcase_add_test(tc, make_room_retires_only_what_is_needed);
    tcase_add_test(tc, no_budget_no_pools);
    tcase_add_test(tc, idle_segments_retired_on_tick);
    suite_add_tcase(s, tc);
    return s;
}
CHECK_MAIN(make_suite);
