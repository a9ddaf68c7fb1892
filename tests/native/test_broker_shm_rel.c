/* test_broker_shm_rel.c - release pages (service/core/shm_rel.c, notes relpage-design): a shm
 * client announces a page of its own ("rel":1) and releases the broker's fan-out slots by a
 * counter in it. Fake engine and fake backend (the page is the test's memory, the counter a
 * store into it). Each case names the mechanism it depends on; every one was checked to fail
 * with that mechanism taken out. */
#include "check_main.h"
#include "test_broker_fake.h"
#include "test_broker_idents.h"
#include "test_broker_shm_fake.h"
#include "internal.h"

#define HELLO_SHM "{\"op\":\"hello\",\"proto\":1,\"shm\":{\"v\":1}}"
#define THR 65536u
#define SLOT(n) (((n) + 4096u) / 4096u * 4096u)   /* ring bytes of an n-byte payload */
#define PAGE_NAME "aipc-10-0123456789abcdef0123456789abcdef-1"

static aipc_broker *rel_broker(uint64_t max_queue, uint32_t seg_bytes, fshm **fs)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    if (max_queue)
        cfg.max_queue_bytes = max_queue;
    if (seg_bytes)
        cfg.shm_segment_bytes = seg_bytes;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    ck_assert_ptr_nonnull(b);
    *fs = fshm_install(b);
    return b;
}

/* Announces a page of `size` bytes as segment `seg` (its memory must be known to the fake). */
static void announce_page(fake *f, uint32_t seg, const char *name, uint32_t size)
{
    char meta[256];
    snprintf(meta, sizeof meta, "{\"op\":\"shm_seg\",\"seg\":%u,\"name\":\"%s\",\"size\":%u,"
             "\"session\":1,\"id\":%u,\"rel\":1}", seg, name, size, seg + 100);
    ck_assert_int_eq(fake_sendt(f, meta, NULL), 0);
}

/* A shm client welcomed with "rel":1, subscribed to t/# (topic NULL: none); with a page (the
 * counter starts at `start`) unless page is NULL. */
static fake *rel_client(aipc_broker *b, fshm *fs, const char *name, const char *topic,
                        uint32_t start, volatile uint32_t **page)
{
    fake *f = fake_new(b, 10);
    ck_assert_int_eq(aipc_client_set_identity(f->cl, &id_alice), 0);
    char meta[200];
    snprintf(meta, sizeof meta, "{\"op\":\"hello\",\"proto\":1,\"name\":\"%s\",\"shm\":{\"v\":1}}",
             name);
    ck_assert_int_eq(fake_sendt(f, meta, NULL), 0);
    rx_frame *w = fake_expect(f, "welcome");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(w->meta, "shm");
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(s, "rel")->valueint, 1);
    if (page) {
        char pname[AIPC_SHM_NAME_BUF];
        snprintf(pname, sizeof pname, "aipc-10-0123456789abcdef0123456789abcdef-%u",
                 (unsigned)fs->ncsegs + 1);
        fshm_client_seg *cs = fshm_client_segment(fs, pname, 4096);
        *page = (volatile uint32_t *)cs->mem;
        **page = start;
        announce_page(f, 1, pname, 4096);
        rx_frame *a = fake_expect(f, "shm_seg");
        ck_assert_int_eq((int)rx_num(a, "re"), 101);
        ck_assert_int_eq((int)rx_num(a, "seg"), 1);
        ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a->meta, "ok")));
    }
    if (topic) {
        snprintf(meta, sizeof meta, "{\"op\":\"sub\",\"topic\":\"%s\",\"id\":1}", topic);
        ck_assert_int_eq(fake_sendt(f, meta, NULL), 0);
        fake_expect(f, "ok");
    }
    return f;
}

static fake *pub_client(aipc_broker *b)
{
    fake *p = fake_new(b, 20);
    ck_assert_int_eq(aipc_client_set_identity(p->cl, &id_bob), 0);
    fake_hello(p, "pub");
    return p;
}

static void publish(fake *p, size_t n)
{
    uint8_t *pl = calloc(1, n);
    for (size_t i = 0; i < n; i += 4096)
        pl[i] = (uint8_t)(i >> 12);
    ck_assert_int_eq(fake_send(p, "{\"op\":\"pub\",\"topic\":\"t/x\"}", pl, n), 0);
    free(pl);
}

/* The next delivery, shared or not as expected. */
static shm_rx next_pub(fshm *fs, fake *c, bool shared)
{
    shm_rx x = fshm_next(fs, c, true, NULL);
    ck_assert_ptr_nonnull(x.r);
    ck_assert_str_eq(rx_str(x.r, "op"), "msg");
    ck_assert_msg(x.shared == shared, "expected %s", shared ? "shared" : "inline");
    return x;
}

/* The client's release store. */
static void set_counter(volatile uint32_t *page, uint32_t v)
{
    __atomic_store_n(page, v, __ATOMIC_RELEASE);
}

/* The broker's stats answer to client c (op stats), parsed. */
static double stats_op(fake *c, const char *key)
{
    ck_assert_int_eq(fake_sendt(c, "{\"op\":\"stats\",\"id\":9}", NULL), 0);
    rx_frame *r = fake_expect(c, "stats");
    cJSON *j = cJSON_Parse((const char *)r->payload);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    ck_assert_msg(cJSON_IsNumber(v), "stats without %s", key);
    double d = v->valuedouble;
    cJSON_Delete(j);
    return d;
}

/* A broker, a subscriber "s" of t/# with a page (counter at start), a publisher, and the
 * announce round done (s confirmed the fan-out segment: the next deliveries are shared). */
typedef struct rig {
    fshm *fs;
    aipc_broker *b;
    fake *s, *p;
    volatile uint32_t *page;
} rig;

static void rig_open(rig *r, uint64_t max_queue, uint32_t start)
{
    r->b = rel_broker(max_queue, 0, &r->fs);
    r->s = rel_client(r->b, r->fs, "s", "t/#", start, &r->page);
    r->p = pub_client(r->b);
    publish(r->p, THR);
    next_pub(r->fs, r->s, false);
}

/* Declares r and its parts as locals of the test. */
#define RIG(max_queue, start)                                                                  \
    rig r;                                                                                     \
    rig_open(&r, max_queue, start);                                                            \
    fshm *fs = r.fs;                                                                           \
    aipc_broker *b = r.b;                                                                      \
    fake *s = r.s, *p = r.p;                                                                   \
    volatile uint32_t *page = r.page;                                                          \
    (void)b

/* n publications of THR bytes from p, each delivered to s shared. */
static void shared_pubs(fshm *fs, fake *p, fake *s, int n)
{
    for (int i = 0; i < n; i++) {
        publish(p, THR);
        next_pub(fs, s, true);
    }
}

static void rig_close(rig *r)
{
    fake_free(r->s);
    fake_free(r->p);
    aipc_broker_free(r->b);
    fshm_free(r->fs);
}

/* Offered by default ("rel":1 next to v and threshold), not with shm_release_page false (see
 * test_broker_shm_hello.c rel_page_not_offered), never to a plain client. The page is mapped
 * (shm_pages), counts as one of the client's segments but not in shm_client_segments, and is
 * closed at detach. */
START_TEST(page_offered_mapped_closed)
{
    fshm *fs;
    aipc_broker *b = rel_broker(0, 0, &fs);
    volatile uint32_t *page;
    fake *s = rel_client(b, fs, "s", NULL, 0, &page);
    aipc_broker_stats st = fake_stats(b);
    ck_assert_uint_eq(st.shm_pages, 1);
    ck_assert_uint_eq(st.shm_client_segments, 0);
    ck_assert_uint_eq(s->cl->shm_nin, 1);
    ck_assert_int_eq(fs->opens, 1);
    fake *p = fake_new(b, 11);
    ck_assert_int_eq(aipc_client_set_identity(p->cl, &id_alice), 0);
    fake_hello(p, "plain");
    ck_assert(!rx_has(&p->rx[0], "shm"));
    /* a payload segment may not take the page's id */
    fshm_client_segment(fs, "aipc-10-0123456789abcdef0123456789abcdef-9", 1u << 20);
    ck_assert_int_eq(fake_sendt(s, "{\"op\":\"shm_seg\",\"seg\":1,\"name\":"
                                   "\"aipc-10-0123456789abcdef0123456789abcdef-9\",\"size\":1048576,"
                                   "\"session\":1,\"id\":5}", NULL), 0);
    fake_expect_error(s, "bad_request");
    ck_assert_int_eq(s->close_calls, 1);
    fake_free(s);
    ck_assert_uint_eq(fake_stats(b).shm_pages, 0);
    ck_assert_int_eq(fs->closes, 1);
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* The backend cannot open the page, or its size is outside 64..65536: ok:false with a code,
 * and the client releases by shm_done frames as before. */
START_TEST(page_refused_frames_work)
{
    fshm *fs;
    aipc_broker *b = rel_broker(0, 0, &fs);
    fake *s = rel_client(b, fs, "s", "t/#", 0, NULL);
    fs->fail_open = "access_denied";
    announce_page(s, 1, PAGE_NAME, 4096);
    rx_frame *a = fake_expect(s, "shm_seg");
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(a->meta, "ok")));
    ck_assert_str_eq(rx_str(a, "code"), "access_denied");
    fs->fail_open = NULL;
    fake *t = rel_client(b, fs, "t", NULL, 0, NULL);
    fshm_client_segment(fs, PAGE_NAME, 4096);
    announce_page(t, 1, PAGE_NAME, 32);
    ck_assert_str_eq(rx_str(fake_expect(t, "shm_seg"), "code"), "bad_size");
    announce_page(t, 1, PAGE_NAME, 65540);      /* a second one: refused or not, one page */
    fake_expect_error(t, "bad_request");
    aipc_broker_stats st = fake_stats(b);
    ck_assert_uint_eq(st.shm_pages, 0);
    ck_assert_uint_eq(st.shm_map_failures, 2);
    fake *p = pub_client(b);
    publish(p, THR);
    next_pub(fs, s, false);                     /* announce round */
    publish(p, THR);
    shm_rx x = next_pub(fs, s, true);
    ck_assert_uint_eq(fake_stats(b).shm_bytes, SLOT(THR));
    fshm_done(s, x.seg, x.off);
    st = fake_stats(b);
    ck_assert_uint_eq(st.shm_bytes, 0);
    ck_assert_uint_eq(st.shm_release_frames, 1);
    ck_assert_uint_eq(st.shm_bad_releases, 0);
    fake_free(s);
    fake_free(t);
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* Drain point: the end of the client's input turn. Three descriptors, the counter says 2: a
 * ping from the client (whose pong drains nothing) releases exactly the first two slots. */
START_TEST(drain_at_input_turn)
{
    RIG(0, 0);
    shm_rx x[3];
    for (int i = 0; i < 3; i++) {
        publish(p, THR);
        x[i] = next_pub(fs, s, true);
    }
    ck_assert_uint_eq(fake_stats(b).shm_bytes, 3 * SLOT(THR));
    set_counter(page, 2);
    ck_assert_uint_eq(fake_stats(b).shm_bytes, 3 * SLOT(THR));   /* nobody looked yet */
    ck_assert_int_eq(fake_sendt(s, "{\"op\":\"ping\",\"id\":1}", NULL), 0);
    fake_expect(s, "pong");
    aipc_broker_stats st = fake_stats(b);
    ck_assert_uint_eq(st.shm_bytes, SLOT(THR));
    ck_assert_uint_eq(st.shm_page_releases, 2);
    ck_assert_uint_eq(st.shm_release_frames, 0);
    ck_assert_ptr_null(aipc_pmap_get(&s->cl->shm_holds, x[0].seg, x[0].off));
    ck_assert_ptr_null(aipc_pmap_get(&s->cl->shm_holds, x[1].seg, x[1].off));
    ck_assert_ptr_nonnull(aipc_pmap_get(&s->cl->shm_holds, x[2].seg, x[2].off));
    ck_assert_uint_eq(s->cl->q.shm_bytes, THR + AIPC_QUEUED_FRAME_OVERHEAD);
    rig_close(&r);
}
END_TEST

/* Drain point: before a delivery is checked against the bound. A subscriber at its
 * max_queue_bytes in held slots has released them all in its page but sent nothing since:
 * the next publications still reach it (no drop). */
START_TEST(drain_before_delivery_no_drop)
{
    const uint64_t maxq = 1u << 20;
    RIG(maxq, 0);
    uint32_t got = 0;
    for (;;) {                                   /* until the bound drops one */
        publish(p, THR);
        shm_rx x = fshm_next(fs, s, true, NULL);
        ck_assert_ptr_nonnull(x.r);
        if (strcmp(rx_str(x.r, "op"), "dropped") == 0)
            break;                               /* (reported at once: nothing queued) */
        ck_assert(x.shared);
        got++;
    }
    ck_assert_uint_gt(got, 8);
    ck_assert_uint_eq(fake_stats(b).drops, 1);
    set_counter(page, got);                      /* everything released; s says nothing */
    for (int i = 0; i < 40; i++) {               /* ~2.5 x max_queue_bytes more */
        publish(p, THR);
        shm_rx x = fshm_next(fs, s, true, NULL);
        ck_assert_msg(x.r && strcmp(rx_str(x.r, "op"), "msg") == 0 && x.shared,
                      "publication %d not delivered", i);
        set_counter(page, ++got);
    }
    aipc_broker_stats st = fake_stats(b);
    ck_assert_uint_eq(st.drops, 1);
    ck_assert_uint_eq(st.shm_page_releases, got - 1);
    ck_assert_uint_eq(st.shm_bytes, SLOT(THR));
    rig_close(&r);
}
END_TEST

/* Drain point: the stats op drains every client with a page, so its shm_bytes is exact. */
START_TEST(drain_at_stats)
{
    RIG(0, 0);
    shared_pubs(fs, p, s, 4);
    set_counter(page, 4);
    ck_assert_double_eq(stats_op(p, "shm_bytes"), 0);
    ck_assert_double_eq(stats_op(p, "shm_page_releases"), 4);
    ck_assert_double_eq(stats_op(p, "shm_pages"), 1);
    rig_close(&r);
}
END_TEST

/* The tick drains every page when the idle-segment sweep is due (idle segments can then
 * retire), and only then: the engine ticks after every completion, and a drain of every
 * client there made each completion cost O(clients) (review rprv MAJOR-1). */
START_TEST(drain_at_tick)
{
    RIG(0, 0);
    shared_pubs(fs, p, s, 1);
    set_counter(page, 1);
    aipc_broker_tick(b);
    ck_assert_uint_eq(fake_stats(b).shm_bytes, 0);
    shared_pubs(fs, p, s, 1);
    set_counter(page, 2);
    aipc_broker_tick(b);                /* the sweep ran just now: not due, no drain */
    ck_assert_uint_eq(fake_stats(b).shm_bytes, SLOT(THR));   /* still held */
    fake_clock_ms += AIPC_SHM_SWEEP_MS;
    aipc_broker_tick(b);
    ck_assert_uint_eq(fake_stats(b).shm_bytes, 0);
    rig_close(&r);
}
END_TEST

/* Drain point: a retained delivery's room decision drains the subscriber's page first (review
 * rprv MINOR-3d): s fills max_queue_bytes with held slots, releases them all in its page, then
 * subscribes to a filter with a retained message: the message comes right after the "ok",
 * without waiting for a tick. */
START_TEST(retained_room_drains)
{
    const uint64_t maxq = 1u << 20;
    RIG(maxq, 0);
    static uint8_t small[THR];
    ck_assert_int_eq(fake_send(p, "{\"op\":\"pub\",\"topic\":\"u/x\",\"retain\":true}", small,
                               sizeof small), 0);
    uint32_t got = 0;
    for (;;) {
        publish(p, THR);
        shm_rx x = fshm_next(fs, s, true, NULL);
        ck_assert_ptr_nonnull(x.r);
        if (strcmp(rx_str(x.r, "op"), "dropped") == 0)
            break;
        got++;
    }
    ck_assert_uint_gt(got, 4);
    set_counter(page, got);                      /* everything released */
    ck_assert_int_eq(fake_sendt(s, "{\"op\":\"sub\",\"topic\":\"u/#\",\"id\":2}", NULL), 0);
    fake_expect(s, "ok");
    rx_frame *m = fake_next(s);
    ck_assert_msg(m != NULL, "the retained message waits for a tick");
    ck_assert_str_eq(rx_str(m, "op"), "msg");
    ck_assert_str_eq(rx_str(m, "topic"), "u/x");
    rig_close(&r);
}
END_TEST

/* The client read a descriptor and released it before the broker processed the write's
 * completion: the drain notes the counter (no violation: the descriptor was handed), and the
 * completion applies it. */
START_TEST(early_release_applied_at_completion)
{
    RIG(0, 0);
    s->stalled = true;                           /* a write in flight */
    publish(p, THR);
    aipc_iov iov[8];
    int n = aipc_client_out_next(s->cl, iov, 8);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(aipc_decoder_feed(&s->dec, iov[0].base, iov[0].len, fake_on_frame, s, NULL),
                     0);
    next_pub(fs, s, true);
    set_counter(page, 1);
    ck_assert_int_eq(fake_sendt(s, "{\"op\":\"ping\",\"id\":1}", NULL), 0);   /* a drain */
    aipc_broker_stats st = fake_stats(b);
    ck_assert_uint_eq(st.shm_bad_releases, 0);
    ck_assert_uint_eq(s->close_calls, 0);
    ck_assert_uint_eq(st.shm_bytes, SLOT(THR));  /* the queued frame still names it */
    aipc_client_out_consume(s->cl, iov[0].len);  /* the completion */
    st = fake_stats(b);
    ck_assert_uint_eq(st.shm_bytes, 0);
    ck_assert_uint_eq(st.shm_page_releases, 1);
    ck_assert_uint_eq(s->cl->q.shm_bytes, 0);
    s->stalled = false;
    fake_expect(s, "pong");
    /* the next one is counted after it: released at the next drain as usual */
    shared_pubs(fs, p, s, 1);
    set_counter(page, 2);
    ck_assert_double_eq(stats_op(p, "shm_bytes"), 0);
    rig_close(&r);
}
END_TEST

/* A counter beyond the descriptors written + handed, or going back: bad_request + close. */
START_TEST(counter_beyond_closes)
{
    RIG(0, 0);
    shared_pubs(fs, p, s, 1);
    set_counter(page, 2);                        /* one descriptor only */
    ck_assert_int_eq(fake_sendt(s, "{\"op\":\"ping\",\"id\":1}", NULL), 0);
    fake_expect(s, "pong");
    fake_expect_error(s, "bad_request");
    ck_assert_int_eq(s->close_calls, 1);
    aipc_broker_stats st = fake_stats(b);
    ck_assert_uint_eq(st.shm_bad_releases, 1);
    ck_assert_uint_eq(st.shm_bytes, SLOT(THR));  /* nothing released by it */
    fake_free(s);
    ck_assert_uint_eq(fake_stats(b).shm_bytes, 0);

    fake *t = r.s = rel_client(b, fs, "t", "t/#", 0, &page);
    publish(p, THR);
    next_pub(fs, t, false);                      /* its announce round */
    shared_pubs(fs, p, t, 2);
    set_counter(page, 1);
    fake_sendt(t, "{\"op\":\"ping\",\"id\":1}", NULL);
    set_counter(page, 0);                        /* back */
    fake_sendt(t, "{\"op\":\"ping\",\"id\":2}", NULL);
    fake_expect(t, "pong");
    fake_expect(t, "pong");
    fake_expect_error(t, "bad_request");
    ck_assert_int_eq(t->close_calls, 1);
    rig_close(&r);
}
END_TEST

/* After the page was answered ok, a shm_done is bad_request + close; a rel announce after the
 * broker queued a descriptor to the client too. */
START_TEST(frames_after_page_and_page_after_descriptor)
{
    fshm *fs;
    aipc_broker *b = rel_broker(0, 0, &fs);
    volatile uint32_t *page;
    fake *s = rel_client(b, fs, "s", "t/#", 0, &page);
    fake *n = rel_client(b, fs, "n", "t/#", 0, NULL);
    fake *p = pub_client(b);
    publish(p, THR);
    next_pub(fs, s, false);
    next_pub(fs, n, false);
    publish(p, THR);
    shm_rx x = next_pub(fs, s, true);
    next_pub(fs, n, true);
    fshm_done(s, x.seg, x.off);
    fake_expect_error(s, "bad_request");
    ck_assert_int_eq(s->close_calls, 1);
    ck_assert_uint_eq(fake_stats(b).shm_release_frames, 0);
    fshm_client_segment(fs, PAGE_NAME, 4096);
    announce_page(n, 7, PAGE_NAME, 4096);
    fake_expect_error(n, "bad_request");
    ck_assert_int_eq(n->close_calls, 1);
    ck_assert_int_eq(fs->opens, 1);              /* s's page only */
    fake_free(s);
    fake_free(n);
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* Drain point: a pool without room drains every client with a page and retries once. 400000
 * bytes take 401408 of a 1 MiB segment: two fit. The holder released both in its page but sent
 * nothing; the other subscriber comes first in the fan-out, so nothing else drains the holder:
 * the third publication reuses the slot (no second segment). */
START_TEST(pool_full_drains_all)
{
    enum { BIG = 400000 };
    fshm *fs;
    aipc_broker *b = rel_broker(0, 1u << 20, &fs);
    volatile uint32_t *fpage, *hpage;
    fake *f = rel_client(b, fs, "f", "t/#", 0, &fpage);
    fake *h = rel_client(b, fs, "h", "t/#", 0, &hpage);
    fake *p = pub_client(b);
    publish(p, BIG);
    next_pub(fs, f, false);
    next_pub(fs, h, false);
    uint32_t fcount = 0;
    for (int i = 0; i < 2; i++) {
        publish(p, BIG);
        next_pub(fs, f, true);
        set_counter(fpage, ++fcount);
        next_pub(fs, h, true);
        ck_assert_int_eq(fake_sendt(f, "{\"op\":\"ping\"}", NULL), 0);   /* f drained */
        fake_expect(f, "pong");
    }
    ck_assert_int_eq(fs->creates, 1);
    set_counter(hpage, 2);
    publish(p, BIG);
    next_pub(fs, f, true);
    next_pub(fs, h, true);
    ck_assert_int_eq(fs->creates, 1);
    aipc_broker_stats st = fake_stats(b);
    ck_assert_uint_eq(st.shm_segments, 1);
    ck_assert_uint_eq(st.shm_inline_fallbacks, 2);   /* the announce round only */
    fake_free(f);
    fake_free(h);
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* Drain point: max_total_queue_bytes would refuse. The holder's written slots take most of
 * the 1 MiB total (no queued frame of its own could be evicted); it released them in its page
 * and sent nothing: another client's 200000-byte publication is delivered, not dropped. */
START_TEST(drain_all_before_total_refuses)
{
    aipc_broker_config cfg;
    aipc_broker_config_defaults(&cfg);
    cfg.max_total_queue_bytes = 1u << 20;
    aipc_broker *b = aipc_broker_new(&cfg, fake_now);
    fshm *fs = fshm_install(b);
    volatile uint32_t *page;
    fake *h = rel_client(b, fs, "h", "t/#", 0, &page);
    fake *w = fake_new(b, 11);
    fake_hello(w, "w");
    ck_assert_int_eq(fake_sendt(w, "{\"op\":\"sub\",\"topic\":\"w/#\",\"id\":1}", NULL), 0);
    fake_expect(w, "ok");
    fake *p = pub_client(b);
    publish(p, THR);
    next_pub(fs, h, false);
    shared_pubs(fs, p, h, 14);
    ck_assert_uint_eq(fake_stats(b).queue_bytes, 14u * (THR + AIPC_QUEUED_FRAME_OVERHEAD));
    set_counter(page, 14);
    uint8_t *pl = calloc(1, 200000);
    ck_assert_int_eq(fake_send(p, "{\"op\":\"pub\",\"topic\":\"w/x\"}", pl, 200000), 0);
    free(pl);
    ck_assert_uint_eq(fake_expect(w, "msg")->plen, 200000);
    aipc_broker_stats st = fake_stats(b);
    ck_assert_uint_eq(st.drops, 0);
    ck_assert_uint_eq(st.shm_bytes, 0);
    ck_assert_uint_eq(st.shm_page_releases, 14);
    fake_free(h);
    fake_free(w);
    fake_free(p);
    aipc_broker_free(b);
    fshm_free(fs);
}
END_TEST

/* The counter wraps modulo 2^32: a page that starts 16 below the wrap releases 40 deliveries
 * one by one across it. */
START_TEST(counter_wraps)
{
    RIG(0, 0xFFFFFFF0u);
    uint32_t v = 0xFFFFFFF0u;
    for (int i = 0; i < 40; i++) {
        publish(p, THR);
        next_pub(fs, s, true);
        set_counter(page, ++v);
        ck_assert_int_eq(fake_sendt(s, "{\"op\":\"ping\"}", NULL), 0);
        fake_expect(s, "pong");
        ck_assert_uint_eq(fake_stats(b).shm_bytes, 0);
    }
    aipc_broker_stats st = fake_stats(b);
    ck_assert_uint_eq(st.shm_page_releases, 40);
    ck_assert_uint_eq(st.shm_bad_releases, 0);
    ck_assert_int_eq(s->close_calls, 0);
    rig_close(&r);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_shm_rel");
    TCase *tc = tcase_create("shm_rel");
    tcase_add_test(tc, page_offered_mapped_closed);
    tcase_add_test(tc, page_refused_frames_work);
    tcase_add_test(tc, drain_at_input_turn);
    tcase_add_test(tc, drain_before_delivery_no_drop);
    tcase_add_test(tc, drain_at_stats);
    tcase_add_test(tc, drain_at_tick);
    tcase_add_test(tc, retained_room_drains);
    tcase_add_test(tc, early_release_applied_at_completion);
    tcase_add_test(tc, counter_beyond_closes);
    tcase_add_test(tc, frames_after_page_and_page_after_descriptor);
    tcase_add_test(tc, pool_full_drains_all);
    tcase_add_test(tc, drain_all_before_total_refuses);
    tcase_add_test(tc, counter_wraps);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
