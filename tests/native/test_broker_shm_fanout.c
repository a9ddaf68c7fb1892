/* test_broker_shm_fanout.c - broker -> subscribers through fan-out slots, with a fake backend
 * (malloc'd segments): sizes at the threshold, one copy shared by every subscriber, inline until
 * a client confirmed a segment (and after it refused one), releases that cannot free another
 * subscriber's slot, a slow subscriber bounded by max_queue_bytes, detach returning every slot,
 * max_shm_bytes, one pool per principal set, send/req/rep, and order with inline frames. */
#include "check_main.h"
#include "test_broker_fake.h"
#include "test_broker_idents.h"
#include "test_broker_shm_fake.h"
#include "internal.h"   /* the queue of a client: held slots bounded */

#define HELLO_SHM "{\"op\":\"hello\",\"proto\":1,\"shm\":{\"v\":1}}"
#define THR 65536u
#define SLOT(n) (((n) + 4096u) / 4096u * 4096u)   /* ring bytes of an n-byte payload */

static aipc_broker *shm_broker(uint64_t max_queue, uint64_t max_shm, fshm **fs)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    if (max_queue)
        cfg.max_queue_bytes = max_queue;
    cfg.max_shm_bytes = max_shm;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    ck_assert_ptr_nonnull(b);
    *fs = fshm_install(b);
    return b;
}

/* A client with identity id, welcomed with shm (shm false: a plain hello), subscribed to t/#. */
static fake *sub_client(aipc_broker *b, const aipc_identity *id, const char *name, bool shm)
{
    fake *f = fake_new(b, 10);
    ck_assert_ptr_nonnull(f->cl);
    ck_assert_int_eq(aipc_client_set_identity(f->cl, id), 0);
    char meta[160];
    snprintf(meta, sizeof meta, "{\"op\":\"hello\",\"proto\":1,\"name\":\"%s\"%s}", name,
             shm ? ",\"shm\":{\"v\":1}" : "");
    ck_assert_int_eq(fake_sendt(f, meta, NULL), 0);
    rx_frame *w = fake_expect(f, "welcome");
    ck_assert(rx_has(w, "shm") == shm);
    ck_assert_int_eq(fake_sendt(f, "{\"op\":\"sub\",\"topic\":\"t/#\",\"id\":1}", NULL), 0);
    fake_expect(f, "ok");
    return f;
}

static fake *pub_client(aipc_broker *b)
{
    fake *p = fake_new(b, 20);
    ck_assert_int_eq(aipc_client_set_identity(p->cl, &id_bob), 0);
    fake_hello(p, "pub");
    return p;
}

/* A payload of n bytes whose pattern depends on seed. */
static uint8_t *pattern(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31u + seed * 7u + (i >> 12));
    return p;
}

static void publish(fake *p, size_t n, unsigned seed)
{
    uint8_t *pl = pattern(n, seed);
    ck_assert_int_eq(fake_send(p, "{\"op\":\"pub\",\"topic\":\"t/x\"}", pl, n), 0);
    free(pl);
}

/* The next delivery is the publication of n bytes with seed, shared or not as expected. */
static shm_rx expect_pub(fshm *fs, fake *c, size_t n, unsigned seed, bool shared)
{
    shm_rx x = fshm_next(fs, c, true, NULL);
    ck_assert_ptr_nonnull(x.r);
    ck_assert_str_eq(rx_str(x.r, "op"), "msg");
    ck_assert_msg(x.shared == shared, "expected %s, got %s", shared ? "shared" : "inline",
                  x.shared ? "shared" : "inline");
    ck_assert_uint_eq(x.len, n);
    uint8_t *want = pattern(n, seed);
    ck_assert(memcmp(x.data, want, n) == 0);
    free(want);
    return x;
}

START_TEST(sizes_at_threshold)
{
    fshm *fs;
    aipc_broker *b = shm_broker(0, 256u << 20, &fs);
    fake *s = sub_client(b, &id_alice, "s", true);
    fake *p = pub_client(b);
    publish(p, THR - 1, 1);
    expect_pub(fs, s, THR - 1, 1, false);
    ck_assert_int_eq(fs->creates, 0);           /* below the threshold: no segment */
    int ann = 0;
    publish(p, THR, 2);                         /* a segment is made and announced: inline */
    shm_rx x = fshm_next(fs, s, true, &ann);
    ck_assert_int_eq(ann, 1);
    ck_assert(!x.shared && x.len == THR);
    ck_assert_uint_eq(fake_stats(b).shm_inline_fallbacks, 1);
    ck_assert_int_eq(fs->creates, 1);
    ck_assert_uint_eq(fs->segs[0].size, 8u << 20);
    ck_assert_uint_eq(fs->segs[0].nreaders, 1);
    ck_assert_str_eq(fs->segs[0].readers[0], SID_ALICE);
    publish(p, THR, 3);                         /* confirmed: a descriptor */
    x = expect_pub(fs, s, THR, 3, true);
    publish(p, THR - 1, 4);
    expect_pub(fs, s, THR - 1, 4, false);
    publish(p, THR + 1, 5);
    shm_rx y = expect_pub(fs, s, THR + 1, 5, true);
    aipc_broker_stats st = fake_stats(b);
    ck_assert_uint_eq(st.shm_publications, 2);
    ck_assert_uint_eq(st.shm_deliveries, 2);
    ck_assert_uint_eq(st.shm_segments, 1);
    ck_assert_uint_eq(st.shm_bytes, SLOT(THR) + SLOT(THR + 1));
    ck_assert_uint_eq(st.deliveries, 5);
    fshm_done(s, x.seg, x.off);
    ck_assert_uint_eq(fake_stats(b).shm_bytes, SLOT(THR + 1));
    fshm_done(s, y.seg, y.off);
    st = fake_stats(b);
    ck_assert_uint_eq(st.shm_bytes, 0);
    ck_assert_uint_eq(st.shm_bad_releases, 0);
    ck_assert_uint_eq(st.queue_bytes, 0);
    fake_free(s);
    fake_free(p);
    aipc_broker_free(b);
    ck_assert_int_eq(fs->closes, 1);
    fshm_free(fs);
}
END_TEST

/* N subscribers of one principal set share one copy: one segment, one slot's bytes. */
START_TEST(one_copy_shared)
{
    enum { N = 5 };
    fshm *fs;
    aipc_broker *b = shm_broker(0, 256u << 20, &fs);
    fake *s[N];
    char name[16];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "s%d", i);
        s[i] = sub_client(b, &id_alice, name, true);
    }
    fake *p = pub_client(b);
    publish(p, 1u << 20, 0);                    /* announces; inline to all */
    for (int i = 0; i < N; i++)
        expect_pub(fs, s[i], 1u << 20, 0, false);
    ck_assert_uint_eq(fake_stats(b).shm_inline_fallbacks, N);
    publish(p, 1u << 20, 1);
    shm_rx x[N];
    for (int i = 0; i < N; i++) {
        x[i] = expect_pub(fs, s[i], 1u << 20, 1, true);
        ck_assert_uint_eq(x[i].seg, x[0].seg);
        ck_assert_uint_eq(x[i].off, x[0].off);
    }
    ck_assert_int_eq(fs->creates, 1);
    aipc_broker_stats st = fake_stats(b);
    ck_assert_uint_eq(st.shm_bytes, SLOT(1u << 20));   /* one copy for all N */
    ck_assert_uint_eq(st.shm_publications, 1);
    ck_assert_uint_eq(st.shm_deliveries, N);
    for (int i = 0; i < N; i++) {
        ck_assert_uint_eq(fake_stats(b).shm_bytes, SLOT(1u << 20));
        fshm_done(s[i], x[i].seg, x[i].off);
    }
    ck_assert_uint_eq(fake_stats(b).shm_bytes, 0);
    for (int i = 0; i < N; i++)
        fake_free(s[i]);
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* Not confirmed yet, or refused: inline; three refusals: no more announces. A client without
 * shm is served inline next to shm clients. */
START_TEST(unconfirmed_and_refused_inline)
{
    fshm *fs;
    aipc_broker *b = shm_broker(0, 256u << 20, &fs);
    fake *s = sub_client(b, &id_alice, "s", true);
    fake *plain = sub_client(b, &id_alice, "plain", false);
    fake *p = pub_client(b);
    publish(p, THR, 0);
    /* s does not answer yet: the next one is inline too, and no second announce */
    rx_frame *a = fake_expect(s, "shm_seg");
    expect_pub(fs, plain, THR, 0, false);
    rx_frame *m = fake_expect(s, "msg");
    ck_assert_uint_eq(m->plen, THR);
    publish(p, THR, 1);
    m = fake_expect(s, "msg");
    ck_assert(!rx_has(m, "shm"));
    ck_assert_uint_eq(fake_pending(s), 0);
    expect_pub(fs, plain, THR, 1, false);
    ck_assert_uint_eq(fake_stats(b).shm_inline_fallbacks, 2);
    fshm_answer(fs, s, a, false);               /* refused: inline for good on that segment */
    publish(p, THR, 2);
    expect_pub(fs, s, THR, 2, false);
    expect_pub(fs, plain, THR, 2, false);
    ck_assert_uint_eq(fake_stats(b).shm_inline_fallbacks, 3);
    ck_assert_uint_eq(fake_stats(b).shm_deliveries, 0);
    ck_assert_uint_eq(fake_stats(b).shm_bytes, 0);
    /* a second answer to the same announce is a protocol error */
    fake *d = sub_client(b, &id_alice, "d", true);
    publish(p, THR, 3);
    rx_frame *a2 = fake_expect(d, "shm_seg");
    fshm_answer(fs, d, a2, true);
    fshm_answer(fs, d, a2, true);
    fake_skip_all(d);
    ck_assert_int_eq(d->close_calls, 1);
    fake_free(d);
    fake_free(s);
    fake_free(plain);
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* Three refused segments: the client is offered no more. */
START_TEST(three_refusals_stop_offers)
{
    fshm *fs;
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.shm_segment_bytes = 1u << 20;
    cfg.max_queue_bytes = 64u << 20;            /* h may hold all 40 */
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    fs = fshm_install(b);
    fake *s = sub_client(b, &id_alice, "s", true);
    fake *h = sub_client(b, &id_alice, "h", true);   /* holds slots: new segments are made */
    fake *p = pub_client(b);
    int refused = 0;
    for (unsigned i = 0; i < 40; i++) {
        publish(p, 600000, i);
        for (;;) {
            rx_frame *r = fake_next(s);
            ck_assert_ptr_nonnull(r);
            if (strcmp(rx_str(r, "op"), "shm_seg") == 0) {
                fshm_answer(fs, s, r, false);
                refused++;
                continue;
            }
            ck_assert(!rx_has(r, "shm"));
            break;
        }
        shm_rx x = fshm_next(fs, h, true, NULL);   /* h confirms, holds everything */
        ck_assert_ptr_nonnull(x.r);
    }
    ck_assert_int_eq(refused, 3);
    ck_assert_int_gt(fs->creates, 3);
    fake_free(s);
    fake_free(h);
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* A bogus or repeated shm_done from one subscriber never frees a slot another one holds; nor
 * can a client release a slot whose descriptor it has not been written yet. */
START_TEST(bogus_release_cannot_free_others)
{
    fshm *fs;
    aipc_broker *b = shm_broker(0, 256u << 20, &fs);
    fake *a = sub_client(b, &id_alice, "a", true);
    fake *c = sub_client(b, &id_alice, "c", true);
    fake *p = pub_client(b);
    publish(p, THR, 0);
    expect_pub(fs, a, THR, 0, false);
    expect_pub(fs, c, THR, 0, false);
    publish(p, THR, 1);
    shm_rx xa = expect_pub(fs, a, THR, 1, true);
    shm_rx xc = expect_pub(fs, c, THR, 1, true);
    fshm_done(a, xa.seg, xa.off);
    fshm_done(a, xa.seg, xa.off);               /* again */
    fshm_done(a, xa.seg, xa.off + 4096);        /* never held */
    fshm_done(a, xa.seg + 100, 0);              /* no such segment */
    ck_assert_uint_eq(fake_stats(b).shm_bad_releases, 3);
    ck_assert_uint_eq(fake_stats(b).shm_bytes, SLOT(THR));   /* c still holds it */
    /* the slot is not reused while c holds it */
    publish(p, THR, 2);
    shm_rx ya = expect_pub(fs, a, THR, 2, true);
    shm_rx yc = expect_pub(fs, c, THR, 2, true);
    ck_assert(ya.off != xc.off || ya.seg != xc.seg);
    uint8_t *want = pattern(THR, 1);
    ck_assert(memcmp(xc.data, want, THR) == 0);   /* c's payload intact */
    free(want);
    /* a stalled client cannot release what was not written to it */
    c->stalled = true;
    publish(p, THR, 3);
    shm_rx za = expect_pub(fs, a, THR, 3, true);
    fshm_done(c, za.seg, za.off);               /* c's copy is queued, not written */
    ck_assert_uint_eq(fake_stats(b).shm_bad_releases, 4);
    c->stalled = false;
    shm_rx zc = expect_pub(fs, c, THR, 3, true);
    fshm_done(a, ya.seg, ya.off);
    fshm_done(a, za.seg, za.off);
    fshm_done(c, xc.seg, xc.off);
    fshm_done(c, yc.seg, yc.off);
    fshm_done(c, zc.seg, zc.off);
    aipc_broker_stats st = fake_stats(b);
    ck_assert_uint_eq(st.shm_bytes, 0);
    ck_assert_uint_eq(st.shm_bad_releases, 4);
    ck_assert_uint_eq(st.queue_bytes, 0);
    fake_free(a);
    fake_free(c);
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* A subscriber that reads but never releases, and one that does not read: both are dropped
 * at their max_queue_bytes (held slots count) and hold no more than it; the fast one gets all. */
START_TEST(slow_subscriber_bounded)
{
    const uint64_t maxq = 1u << 20;
    fshm *fs;
    aipc_broker *b = shm_broker(maxq, 256u << 20, &fs);
    fake *fast = sub_client(b, &id_alice, "fast", true);
    fake *keep = sub_client(b, &id_alice, "keep", true);
    fake *stall = sub_client(b, &id_alice, "stall", true);
    fake *p = pub_client(b);
    publish(p, THR, 0);                         /* announce round */
    expect_pub(fs, fast, THR, 0, false);
    expect_pub(fs, keep, THR, 0, false);
    expect_pub(fs, stall, THR, 0, false);
    stall->stalled = true;
    unsigned kept = 0;
    for (unsigned i = 1; i <= 64; i++) {
        publish(p, THR, i);
        shm_rx x = expect_pub(fs, fast, THR, i, true);
        fshm_done(fast, x.seg, x.off);
        for (;;) {                              /* keep reads (never releases) */
            shm_rx k = fshm_next(fs, keep, true, NULL);
            if (!k.r)
                break;
            if (strcmp(rx_str(k.r, "op"), "msg") == 0)
                kept++;
        }
        ck_assert_uint_le(keep->cl->q.shm_bytes, maxq);
        ck_assert_uint_le(aipc_outq_data_cost(&stall->cl->q, 0), maxq);
    }
    ck_assert_uint_lt(kept, 20);
    ck_assert_uint_gt(kept, 10);
    aipc_broker_stats st = fake_stats(b);
    ck_assert_uint_gt(st.drops, 80);
    ck_assert_uint_le(st.shm_bytes, 2 * maxq);
    stall->stalled = false;
    rx_frame *r = fake_expect(stall, "dropped");
    ck_assert(rx_num(r, "count") > 40);
    fake_free(keep);
    fake_free(stall);
    st = fake_stats(b);
    ck_assert_uint_eq(st.shm_bytes, 0);
    ck_assert_uint_eq(st.queue_bytes, 0);
    fake_free(fast);
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* max_total_queue_bytes evicts a stalled subscriber's queued descriptors: each eviction
 * releases the slot it held (the last holder: the slot is freed). */
START_TEST(eviction_releases_slots)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.max_total_queue_bytes = 1u << 20;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    fshm *fs = fshm_install(b);
    fake *v = sub_client(b, &id_alice, "v", true);
    fake *w = fake_new(b, 11);
    fake_hello(w, "w");
    fake_sendt(w, "{\"op\":\"sub\",\"topic\":\"w/#\"}", NULL);
    fake *p = pub_client(b);
    publish(p, THR, 0);
    expect_pub(fs, v, THR, 0, false);           /* v confirms the segment */
    v->stalled = true;
    for (unsigned i = 1; i <= 14; i++)
        publish(p, THR, i);
    aipc_broker_stats st = fake_stats(b);
    ck_assert_uint_eq(st.shm_deliveries, 14);
    ck_assert_uint_eq(st.shm_bytes, 14 * SLOT(THR));
    uint8_t *pl = pattern(200000, 1);
    ck_assert_int_eq(fake_send(p, "{\"op\":\"pub\",\"topic\":\"w/x\"}", pl, 200000), 0);
    free(pl);
    fake_expect(w, "msg");
    st = fake_stats(b);
    ck_assert_uint_gt(st.queue_total_drops, 0);
    ck_assert_uint_eq(st.shm_bytes, (14 - st.queue_total_drops) * SLOT(THR));
    ck_assert_uint_eq(v->cl->q.shm_bytes, (14 - st.queue_total_drops) * (THR + AIPC_QUEUED_FRAME_OVERHEAD));
    fake_free(v);
    ck_assert_uint_eq(fake_stats(b).shm_bytes, 0);
    fake_free(w);
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* Detach returns every slot a subscriber held, queued or written. */
START_TEST(detach_returns_slots)
{
    fshm *fs;
    aipc_broker *b = shm_broker(0, 256u << 20, &fs);
    fake *a = sub_client(b, &id_alice, "a", true);
    fake *c = sub_client(b, &id_alice, "c", true);
    fake *p = pub_client(b);
    publish(p, THR, 0);
    fake_skip_all(a);
    fshm_next(fs, c, true, NULL);
    fshm_next(fs, a, true, NULL);
    /* a answered late: the first publication's announce; answer via the fake above */
    for (unsigned i = 1; i <= 6; i++)
        publish(p, 200000, i);
    c->stalled = true;
    for (unsigned i = 7; i <= 9; i++)
        publish(p, 200000, i);
    ck_assert_uint_gt(fake_stats(b).shm_bytes, 0);
    fake_free(a);
    fake_free(c);
    aipc_broker_stats st = fake_stats(b);
    ck_assert_uint_eq(st.shm_bytes, 0);
    ck_assert_uint_eq(st.queue_bytes, 0);
    ck_assert_uint_eq(st.shm_segments, 1);     /* segments stay for reuse */
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* Beyond max_shm_bytes: inline; an idle segment of another pool is retired to make room. */
START_TEST(max_shm_bytes_inline)
{
    fshm *fs;
    aipc_broker *b = shm_broker(0, 8u << 20, &fs);   /* room for one 8 MiB segment */
    fake *a = sub_client(b, &id_alice, "a", true);
    fake *p = pub_client(b);
    publish(p, THR, 0);
    expect_pub(fs, a, THR, 0, false);
    publish(p, THR, 1);
    shm_rx x = expect_pub(fs, a, THR, 1, true);       /* a holds a slot of pool {alice} */
    ck_assert_int_eq(fake_sendt(a, "{\"op\":\"unsub\",\"topic\":\"t/#\"}", NULL), 0);
    fake *o = sub_client(b, &id_bob, "o", true);      /* pool {bob}: no room */
    publish(p, THR, 2);
    expect_pub(fs, o, THR, 2, false);
    ck_assert_int_eq(fs->creates, 1);
    ck_assert_uint_eq(fake_stats(b).shm_inline_fallbacks, 2);
    fshm_done(a, x.seg, x.off);                       /* {alice}'s segment is idle now */
    publish(p, THR, 3);                               /* retired, {bob}'s made */
    int ann = 0;
    shm_rx y = fshm_next(fs, o, true, &ann);
    ck_assert_int_eq(ann, 1);
    ck_assert(!y.shared);
    ck_assert_int_eq(fs->creates, 2);
    ck_assert_int_eq(fs->closes, 1);
    shm_rx u = fshm_next(fs, a, true, NULL);         /* a got shm_unseg */
    ck_assert_ptr_null(u.r);
    ck_assert_int_eq(fs->unsegs, 1);
    ck_assert_uint_eq(fake_stats(b).shm_segments, 1);
    fake_free(a);
    fake_free(o);
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);

    /* max_shm_bytes 0: never a segment */
    b = shm_broker(0, 0, &fs);
    a = sub_client(b, &id_alice, "a", true);
    p = pub_client(b);
    publish(p, 1u << 20, 0);
    expect_pub(fs, a, 1u << 20, 0, false);
    ck_assert_int_eq(fs->creates, 0);
    fake_free(a);
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* Pools by principal set and integrity level: {alice, bob} at medium for a publication both
 * match, {alice} for one only she matches, and a low-integrity client of bob gets its own pool
 * {bob} at low (one more copy of the payload): receivers at different levels never share a
 * section, each section is labelled at its readers' level. (Until the review's finding 4 this
 * case asserted ONE section {alice, bob} labelled low: every low process of alice could read
 * what only her medium client was sent.) */
START_TEST(principal_sets_separate_pools)
{
    static const aipc_identity low_bob = {SID_BOB, 2, 0x1000, g_bob, N_OF(g_bob)};
    fshm *fs;
    aipc_broker *b = shm_broker(0, 256u << 20, &fs);
    fake *a = sub_client(b, &id_alice, "a", true);
    fake *m = sub_client(b, &id_bob, "m", true);
    fake *o = sub_client(b, &low_bob, "o", true);
    ck_assert_int_eq(fake_sendt(a, "{\"op\":\"sub\",\"topic\":\"only/a\"}", NULL), 0);
    fake *p = pub_client(b);
    publish(p, THR, 0);
    ck_assert_int_eq(fs->creates, 2);                      /* lowest level first */
    ck_assert_uint_eq(fs->segs[0].nreaders, 1);
    ck_assert_str_eq(fs->segs[0].readers[0], SID_BOB);
    ck_assert_uint_eq(fs->segs[0].min_integrity, 0x1000);
    ck_assert_uint_eq(fs->segs[1].nreaders, 2);
    ck_assert_str_eq(fs->segs[1].readers[0], SID_ALICE);   /* sorted */
    ck_assert_str_eq(fs->segs[1].readers[1], SID_BOB);
    ck_assert_uint_eq(fs->segs[1].min_integrity, 0x2000);
    uint8_t *pl = pattern(THR, 9);
    ck_assert_int_eq(fake_send(p, "{\"op\":\"pub\",\"topic\":\"only/a\"}", pl, THR), 0);
    free(pl);
    ck_assert_int_eq(fs->creates, 3);
    ck_assert_uint_eq(fs->segs[2].nreaders, 1);
    ck_assert_str_eq(fs->segs[2].readers[0], SID_ALICE);
    ck_assert_uint_eq(fs->segs[2].min_integrity, 0x2000);
    /* o hears only of its own level's segment, m only of {alice, bob}'s */
    int ann = 0;
    ck_assert(!fshm_next(fs, o, true, &ann).shared);
    ck_assert_ptr_null(fshm_next(fs, o, true, &ann).r);
    ck_assert_int_eq(ann, 1);
    ck_assert_str_eq(fs->segs[fs->ann[fs->nann - 1].idx].name, fs->segs[0].name);
    ann = 0;
    expect_pub(fs, m, THR, 0, false);
    ck_assert_ptr_null(fshm_next(fs, m, true, &ann).r);
    ck_assert_int_eq(ann, 0);                   /* (answered inside expect_pub) */
    expect_pub(fs, a, THR, 0, false);           /* a answers both announces */
    expect_pub(fs, a, THR, 9, false);
    publish(p, THR, 1);
    shm_rx xo = expect_pub(fs, o, THR, 1, true);
    shm_rx xm = expect_pub(fs, m, THR, 1, true);
    shm_rx xa = expect_pub(fs, a, THR, 1, true);
    ck_assert_uint_eq(xa.seg, xm.seg);          /* same level, two users: one copy */
    ck_assert_uint_ne(xo.seg, xa.seg);          /* another level: its own copy */
    ck_assert_uint_eq(fshm_by_id(fs, xo.seg)->min_integrity, 0x1000);
    ck_assert_uint_eq(fshm_by_id(fs, xa.seg)->min_integrity, 0x2000);
    ck_assert_uint_eq(fake_stats(b).shm_publications, 1);   /* counted once */
    ck_assert_uint_eq(fake_stats(b).shm_deliveries, 3);
    fake_free(a);
    fake_free(m);
    fake_free(o);
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* At most 64 pools: a new principal set retires the least recently used idle pool (its
 * segment closed, shm_unseg to the client it was offered to). */
START_TEST(pool_limit_retires_lru)
{
    enum { N = 65 };
    static char sids[N][48];
    static aipc_identity ids[N];
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.shm_segment_bytes = 1u << 20;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    fshm *fs = fshm_install(b);
    fake *s[N];
    fake *p = pub_client(b);
    for (int i = 0; i < N; i++) {
        snprintf(sids[i], sizeof sids[i], "S-1-5-21-7-8-9-%d", 2000 + i);
        ids[i] = (aipc_identity){sids[i], 1, 0x2000, NULL, 0};
        s[i] = fake_new(b, 10);
        ck_assert_int_eq(aipc_client_set_identity(s[i]->cl, &ids[i]), 0);
        ck_assert_int_eq(fake_sendt(s[i], HELLO_SHM, NULL), 0);
        char meta[64];
        snprintf(meta, sizeof meta, "{\"op\":\"sub\",\"topic\":\"u/%d\"}", i);
        ck_assert_int_eq(fake_sendt(s[i], meta, NULL), 0);
        fake_skip_all(s[i]);
    }
    uint8_t *pl = pattern(THR, 0);
    for (int i = 0; i < N; i++) {
        char meta[64];
        snprintf(meta, sizeof meta, "{\"op\":\"pub\",\"topic\":\"u/%d\"}", i);
        ck_assert_int_eq(fake_send(p, meta, pl, THR), 0);
        ck_assert_int_eq(fs->creates, i + 1);
        ck_assert_int_eq(fs->closes, i < 64 ? 0 : 1);
    }
    free(pl);
    ck_assert_str_eq(fs->segs[0].readers[0], sids[0]);
    ck_assert(fs->segs[0].closed);             /* the oldest pool went */
    ck_assert_uint_eq(fake_stats(b).shm_segments, 64);
    rx_frame *a = fake_expect(s[0], "shm_seg");
    fake_expect(s[0], "msg");
    rx_frame *u = fake_expect(s[0], "shm_unseg");
    ck_assert_int_eq((int)rx_num(u, "seg"), (int)rx_num(a, "seg"));
    for (int i = 0; i < N; i++)
        fake_free(s[i]);
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* send, req and rep to a shm client go through slots of its own pool. */
START_TEST(direct_req_rep_shared)
{
    fshm *fs;
    aipc_broker *b = shm_broker(0, 256u << 20, &fs);
    fake *s = sub_client(b, &id_alice, "srv", true);
    fake *c = sub_client(b, &id_bob, "cli", true);
    uint8_t *pl = pattern(THR, 5);
    ck_assert_int_eq(fake_send(c, "{\"op\":\"send\",\"to\":\"srv\",\"id\":2}", pl, THR), 0);
    fake_expect(c, "ok");
    shm_rx x = fshm_next(fs, s, true, NULL);        /* announce answered; inline */
    ck_assert_str_eq(rx_str(x.r, "op"), "direct");
    ck_assert(!x.shared);
    ck_assert_int_eq(fake_send(c, "{\"op\":\"send\",\"to\":\"srv\"}", pl, THR), 0);
    x = fshm_next(fs, s, true, NULL);
    ck_assert_str_eq(rx_str(x.r, "op"), "direct");
    ck_assert(x.shared);
    ck_assert(memcmp(x.data, pl, THR) == 0);
    fshm_done(s, x.seg, x.off);
    ck_assert_int_eq(fake_send(c, "{\"op\":\"req\",\"to\":\"srv\",\"id\":7}", pl, THR), 0);
    x = fshm_next(fs, s, true, NULL);
    ck_assert_str_eq(rx_str(x.r, "op"), "req");
    ck_assert_int_eq((int)rx_num(x.r, "id"), 7);
    ck_assert(x.shared && memcmp(x.data, pl, THR) == 0);
    fshm_done(s, x.seg, x.off);
    ck_assert_uint_eq(fs->segs[0].nreaders, 1);
    ck_assert_str_eq(fs->segs[0].readers[0], SID_ALICE);
    char meta[96];
    snprintf(meta, sizeof meta, "{\"op\":\"rep\",\"to\":%d,\"re\":7}",
             (int)aipc_client_id(c->cl));
    ck_assert_int_eq(fake_send(s, meta, pl, THR), 0);
    x = fshm_next(fs, c, true, NULL);               /* {bob}'s segment announced: inline */
    ck_assert_str_eq(rx_str(x.r, "op"), "rep");
    ck_assert(!x.shared && memcmp(x.data, pl, THR) == 0);
    ck_assert_int_eq(fs->creates, 2);
    free(pl);
    ck_assert_uint_eq(fake_stats(b).shm_publications, 2);
    ck_assert_uint_eq(fake_stats(b).shm_bytes, 0);
    fake_free(s);
    fake_free(c);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* Inline and shared deliveries keep the publisher's order. */
START_TEST(mixed_order)
{
    static const size_t sizes[] = {10, THR - 1, THR, 1u << 20, 3, THR + 4096};
    fshm *fs;
    aipc_broker *b = shm_broker(0, 256u << 20, &fs);
    fake *s = sub_client(b, &id_alice, "s", true);
    fake *p = pub_client(b);
    unsigned n = 0, shared = 0;
    shm_rx held = {0};                          /* released one delivery late */
    for (unsigned round = 0; round < 20; round++)
        for (size_t i = 0; i < N_OF(sizes); i++) {
            publish(p, sizes[i], n);
            shm_rx x = fshm_next(fs, s, true, NULL);
            ck_assert_ptr_nonnull(x.r);
            ck_assert_uint_eq(x.len, sizes[i]);
            uint8_t *want = pattern(sizes[i], n);
            ck_assert(memcmp(x.data, want, sizes[i]) == 0);
            free(want);
            if (x.shared) {
                shared++;
                if (held.shared)
                    fshm_done(s, held.seg, held.off);
                held = x;
            }
            n++;
        }
    ck_assert_uint_gt(shared, 40);
    fake_free(s);
    ck_assert_uint_eq(fake_stats(b).shm_bytes, 0);
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_shm_fanout");
    TCase *tc = tcase_create("shm_fanout");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sizes_at_threshold);
    tcase_add_test(tc, one_copy_shared);
    tcase_add_test(tc, unconfirmed_and_refused_inline);
    tcase_add_test(tc, three_refusals_stop_offers);
    tcase_add_test(tc, bogus_release_cannot_free_others);
    tcase_add_test(tc, slow_subscriber_bounded);
    tcase_add_test(tc, detach_returns_slots);
    tcase_add_test(tc, eviction_releases_slots);
    tcase_add_test(tc, max_shm_bytes_inline);
    tcase_add_test(tc, principal_sets_separate_pools);
    tcase_add_test(tc, pool_limit_retires_lru);
    tcase_add_test(tc, direct_req_rep_shared);
    tcase_add_test(tc, mixed_order);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
