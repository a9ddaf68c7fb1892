/* test_broker_shm_in.c - clients -> broker through the clients' segments, with the fake
 * backend's table of client segments: announce answered ok (opened as the connection's
 * identity) or refused with a code (too large, too many, the backend's), descriptors in pub,
 * send, req and rep routed with the exact bytes, every pair released in coalesced shm_done
 * frames of at most 128 pairs, queued ahead of queued data; bad descriptors close the
 * connection; a retained pub through shared memory is refused; shm_unseg and detach close. */
#include "check_main.h"
#include "test_broker_fake.h"
#include "test_broker_idents.h"
#include "test_broker_shm_fake.h"
#include "test_count_alloc.h"

#define SEG_NAME "aipc-42-00112233445566778899aabbccddeeff-1"
#define SEG_SIZE (8u << 20)

static aipc_broker *shm_broker(fshm **fs)
{
    aipc_broker *b = test_broker(0, 0, 0);
    *fs = fshm_install(b);
    return b;
}

/* A client with identity, welcomed with shm (or not). */
static fake *client(aipc_broker *b, const char *name, bool shm)
{
    fake *f = fake_new(b, 10);
    ck_assert_int_eq(aipc_client_set_identity(f->cl, &id_alice), 0);
    char meta[160];
    snprintf(meta, sizeof meta, "{\"op\":\"hello\",\"proto\":1,\"name\":\"%s\"%s}", name,
             shm ? ",\"shm\":{\"v\":1}" : "");
    ck_assert_int_eq(fake_sendt(f, meta, NULL), 0);
    fake_expect(f, "welcome");
    return f;
}

/* A client subscribed to t/#. */
static fake *subscriber(aipc_broker *b, const char *name, bool shm)
{
    fake *f = client(b, name, shm);
    ck_assert_int_eq(fake_sendt(f, "{\"op\":\"sub\",\"topic\":\"t/#\",\"id\":1}", NULL), 0);
    fake_expect(f, "ok");
    return f;
}

/* The next frame is bad_request and f's close was asked for; f is freed. */
static void expect_closed(fake *f)
{
    fake_expect_error(f, "bad_request");
    ck_assert_int_eq(f->close_calls, 1);
    fake_free(f);
}

/* Frees the broker, then checks and frees the fake backend. */
static void broker_done(aipc_broker *b, fshm *fs)
{
    aipc_broker_free(b);
    fshm_free(fs);
}

/* Announces segment seg (name, size) and returns the answer. */
static rx_frame *announce(fake *f, uint32_t seg, const char *name, uint32_t size)
{
    char meta[256];
    snprintf(meta, sizeof meta,
             "{\"op\":\"shm_seg\",\"seg\":%u,\"name\":\"%s\",\"size\":%u,\"session\":99,\"id\":%u}",
             seg, name, size, seg);
    ck_assert_int_eq(fake_sendt(f, meta, NULL), 0);
    rx_frame *r = fake_expect(f, "shm_seg");
    ck_assert_int_eq((int)rx_num(r, "re"), (int)seg);
    ck_assert_int_eq((int)rx_num(r, "seg"), (int)seg);
    return r;
}

static bool answer_ok(const rx_frame *r)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r->meta, "ok"));
}

/* A publisher with one mapped segment of SEG_SIZE bytes (returns its memory). */
static uint8_t *mapped(fshm *fs, fake *f)
{
    fshm_client_seg *cs = fshm_client_segment(fs, SEG_NAME, SEG_SIZE);
    ck_assert(answer_ok(announce(f, 1, SEG_NAME, SEG_SIZE)));
    return cs->mem;
}

/* Fills mem[off..off+n) with a pattern of seed. */
static void fill(uint8_t *mem, uint32_t off, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        mem[off + i] = (uint8_t)(i * 13u + seed);
}

static bool same(const uint8_t *a, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != (uint8_t)(i * 13u + seed))
            return false;
    return true;
}

/* The pairs of the next frame, a shm_done, into r (returns how many). */
static size_t expect_done(fake *f, uint32_t (*r)[2], size_t cap)
{
    rx_frame *d = fake_expect(f, "shm_done");
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(d->meta, "r");
    size_t n = (size_t)cJSON_GetArraySize(arr);
    ck_assert_uint_le(n, cap);
    for (size_t i = 0; i < n; i++) {
        const cJSON *p = cJSON_GetArrayItem(arr, (int)i);
        r[i][0] = (uint32_t)cJSON_GetArrayItem(p, 0)->valuedouble;
        r[i][1] = (uint32_t)cJSON_GetArrayItem(p, 1)->valuedouble;
    }
    return n;
}

START_TEST(announce_and_publish)
{
    fshm *fs;
    aipc_broker *b = shm_broker(&fs);
    fake *s = subscriber(b, "sub", false);
    fake *p = client(b, "pub", true);
    uint8_t *mem = mapped(fs, p);
    ck_assert_int_eq(fs->opens, 1);
    ck_assert_ptr_eq(fs->segs[0].conn, &p->conn);   /* opened as this connection */
    ck_assert_uint_eq(fake_stats(b).shm_client_segments, 1);
    fill(mem, 4096, 100000, 3);
    ck_assert_int_eq(fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"t/a\",\"id\":5,"
                                   "\"shm\":[1,4096,100000]}", NULL), 0);
    rx_frame *m = fake_expect(s, "msg");
    ck_assert_uint_eq(m->plen, 100000);
    ck_assert(same(m->payload, 100000, 3));
    fake_expect(p, "ok");                       /* written at once: the release comes after */
    uint32_t r[4][2];
    ck_assert_uint_eq(expect_done(p, r, 4), 1);
    ck_assert_uint_eq(r[0][0], 1);
    ck_assert_uint_eq(r[0][1], 4096);
    ck_assert_uint_eq(fake_stats(b).shm_in, 1);
    /* a small payload through shared memory is fine too (the sender decides) */
    fill(mem, 0, 10, 4);
    ck_assert_int_eq(fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"t/a\",\"shm\":[1,0,10]}", NULL), 0);
    m = fake_expect(s, "msg");
    ck_assert(m->plen == 10 && same(m->payload, 10, 4));
    expect_done(p, r, 4);
    fake_free(s);
    fake_free(p);
    ck_assert_uint_eq(fake_stats(b).shm_client_segments, 0);
    ck_assert_int_eq(fs->closes, 1);
    broker_done(b, fs);
}
END_TEST

/* An input turn that copied shared payloads asks the engine to serve the others before the
 * client's next read (aipc_client_take_yield: once); an inline turn does not. */
START_TEST(shared_turn_yields)
{
    fshm *fs;
    aipc_broker *b = shm_broker(&fs);
    fake *s = subscriber(b, "sub", false);
    fake *p = client(b, "pub", true);
    uint8_t *mem = mapped(fs, p);
    ck_assert(!aipc_client_take_yield(p->cl));
    fill(mem, 0, 100000, 5);
    ck_assert_int_eq(fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"t/a\",\"shm\":[1,0,100000]}", NULL), 0);
    ck_assert(aipc_client_take_yield(p->cl));
    ck_assert(!aipc_client_take_yield(p->cl));      /* taken */
    ck_assert(!aipc_client_take_yield(s->cl));
    fake_expect(s, "msg");
    ck_assert_int_eq(fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"t/a\"}", "inline"), 0);
    ck_assert(!aipc_client_take_yield(p->cl));
    fake_expect(s, "msg");
    fake_free(s);
    fake_free(p);
    broker_done(b, fs);
}
END_TEST

/* Pairs of one input turn go back in shm_done frames of at most 128 pairs. */
START_TEST(releases_coalesced)
{
    enum { N = 300 };
    fshm *fs;
    aipc_broker *b = shm_broker(&fs);
    fake *s = subscriber(b, "sub", false);
    fake *p = client(b, "pub", true);
    uint8_t *mem = mapped(fs, p);
    uint8_t *buf = malloc((size_t)N * 128), *w = buf;
    for (unsigned i = 0; i < N; i++) {
        fill(mem, i * 4096u, 100, i);
        char meta[96];
        int ml = snprintf(meta, sizeof meta, "{\"op\":\"pub\",\"topic\":\"t/a\",\"shm\":[1,%u,100]}",
                          i * 4096u);
        aipc_frame_put_header(w, (uint32_t)ml, 0);
        memcpy(w + 8, meta, (size_t)ml);
        w += 8 + ml;
    }
    ck_assert_int_eq(aipc_broker_input(b, p->cl, buf, (size_t)(w - buf)), 0);
    free(buf);
    uint32_t r[128][2];
    unsigned next = 0;
    size_t got[3];
    for (int k = 0; k < 3; k++) {
        got[k] = expect_done(p, r, 128);
        for (size_t i = 0; i < got[k]; i++, next++) {
            ck_assert_uint_eq(r[i][0], 1);
            ck_assert_uint_eq(r[i][1], next * 4096u);
        }
    }
    ck_assert_uint_eq(got[0], 128);
    ck_assert_uint_eq(got[1], 128);
    ck_assert_uint_eq(got[2], N - 256);
    ck_assert_uint_eq(fake_pending(p), 0);
    for (unsigned i = 0; i < N; i++) {
        rx_frame *m = fake_expect(s, "msg");
        ck_assert(m->plen == 100 && same(m->payload, 100, i));
    }
    fake_free(s);
    fake_free(p);
    broker_done(b, fs);
}
END_TEST

/* The release goes ahead of what is already queued to the publisher. */
START_TEST(release_ahead_of_queued_data)
{
    fshm *fs;
    aipc_broker *b = shm_broker(&fs);
    fake *p = subscriber(b, "pub", true);
    uint8_t *mem = mapped(fs, p);
    fake *o = client(b, "other", false);
    p->stalled = true;
    for (int i = 0; i < 3; i++)
        fake_sendt(o, "{\"op\":\"pub\",\"topic\":\"t/o\"}", "queued");
    fill(mem, 0, 5000, 1);
    ck_assert_int_eq(fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"x\",\"shm\":[1,0,5000]}", NULL), 0);
    p->stalled = false;
    uint32_t r[4][2];
    ck_assert_uint_eq(expect_done(p, r, 4), 1);
    for (int i = 0; i < 3; i++)
        fake_expect(p, "msg");
    fake_free(o);
    fake_free(p);
    broker_done(b, fs);
}
END_TEST

/* With a write in flight (one frame of the backlog in it, half written), the release goes
 * right behind it, not behind the whole backlog (review 2, finding 2: it came as frame 10).
 * As the Windows engine does it (win_conn.c pump): out_next offers up to 512 pieces, a large
 * head frame is written alone in place and the engine reports so (out_issued: 1 piece); before
 * that report the release went behind every frame offered (review bperf M1). */
START_TEST(release_ahead_of_backlog_while_writing)
{
    enum { K = 10 };
    fshm *fs;
    aipc_broker *b = shm_broker(&fs);
    fake *p = subscriber(b, "pub", true);
    uint8_t *mem = mapped(fs, p);
    fake *o = client(b, "other", false);
    p->stalled = true;
    static uint8_t big[100000];                                  /* >= the engine's in-place size */
    for (int i = 0; i < K; i++)
        ck_assert_int_eq(fake_send(o, "{\"op\":\"pub\",\"topic\":\"t/o\"}", big, sizeof big), 0);
    aipc_iov iov[512];
    ck_assert_int_ge(aipc_client_out_next(p->cl, iov, 512), K);   /* the engine's ask */
    aipc_client_out_issued(p->cl, 1);                             /* its write: the head alone */
    aipc_client_out_consume(p->cl, iov[0].len / 2);              /* half of it written */
    fill(mem, 0, 10, 1);
    ck_assert_int_eq(fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"x\",\"shm\":[1,0,10]}", NULL), 0);
    aipc_client_out_consume(p->cl, iov[0].len - iov[0].len / 2);
    p->stalled = false;
    uint32_t r[4][2];
    ck_assert_uint_eq(expect_done(p, r, 4), 1);                  /* the next frame it reads */
    for (int i = 1; i < K; i++)
        fake_expect(p, "msg");
    fake_free(o);
    fake_free(p);
    broker_done(b, fs);
}
END_TEST

START_TEST(send_req_rep_through_client_segments)
{
    fshm *fs;
    aipc_broker *b = shm_broker(&fs);
    fake *srv = client(b, "srv", false);
    fake *c = client(b, "cli", true);
    uint8_t *mem = mapped(fs, c);
    fill(mem, 0, 70000, 7);
    uint32_t r[4][2];
    ck_assert_int_eq(fake_sendt(c, "{\"op\":\"send\",\"to\":\"srv\",\"shm\":[1,0,70000]}", NULL), 0);
    rx_frame *d = fake_expect(srv, "direct");
    ck_assert(d->plen == 70000 && same(d->payload, 70000, 7));
    expect_done(c, r, 4);
    ck_assert_int_eq(fake_sendt(c, "{\"op\":\"req\",\"to\":\"srv\",\"id\":3,\"shm\":[1,0,70000]}",
                                NULL), 0);
    d = fake_expect(srv, "req");
    ck_assert(d->plen == 70000 && same(d->payload, 70000, 7));
    expect_done(c, r, 4);
    /* a shm server answers through its own segment */
    fake *s2 = client(b, "srv2", true);
    fshm_client_seg *cs = fshm_client_segment(fs, "aipc-43-00112233445566778899aabbccddeeff-0",
                                              1u << 20);
    ck_assert(answer_ok(announce(s2, 0, cs->name, 1u << 20)));
    ck_assert_int_eq(fake_sendt(c, "{\"op\":\"req\",\"to\":\"srv2\",\"id\":4,\"shm\":[1,0,70000]}",
                                NULL), 0);
    shm_rx q = fshm_next(fs, s2, true, NULL);   /* s2 takes shm: the broker's segment offered */
    ck_assert_str_eq(rx_str(q.r, "op"), "req");
    ck_assert(q.len == 70000 && same(q.data, 70000, 7));
    expect_done(c, r, 4);
    fill(cs->mem, 8192, 3000, 9);
    char meta[128];
    snprintf(meta, sizeof meta, "{\"op\":\"rep\",\"to\":%d,\"re\":4,\"shm\":[0,8192,3000]}",
             (int)aipc_client_id(c->cl));
    ck_assert_int_eq(fake_sendt(s2, meta, NULL), 0);
    d = fake_expect(c, "rep");
    ck_assert(d->plen == 3000 && same(d->payload, 3000, 9));
    ck_assert_uint_eq(expect_done(s2, r, 4), 1);
    ck_assert(r[0][0] == 0 && r[0][1] == 8192);
    ck_assert_uint_eq(fake_stats(b).shm_in, 4);
    fake_free(srv);
    fake_free(s2);
    fake_free(c);
    broker_done(b, fs);
}
END_TEST

/* A bad descriptor is a protocol error: bad_request, then the connection is closed. */
START_TEST(bad_descriptors_close)
{
    static const char *const bad[] = {
        "{\"op\":\"pub\",\"topic\":\"t\",\"shm\":[2,0,10]}",           /* unknown segment */
        "{\"op\":\"pub\",\"topic\":\"t\",\"shm\":[1,8384512,4097]}",   /* past the end */
        "{\"op\":\"pub\",\"topic\":\"t\",\"shm\":[1,4294967295,2]}",   /* offset overflow */
        "{\"op\":\"pub\",\"topic\":\"t\",\"shm\":[1,0]}",              /* malformed */
        "{\"op\":\"pub\",\"topic\":\"t\",\"shm\":[1,0,-1]}",
        "{\"op\":\"send\",\"to\":\"x\",\"shm\":\"1,0,1\"}",
        "{\"op\":\"pub\",\"topic\":\"t\",\"shm\":[1,0,16777217]}",     /* over max_payload */
    };
    fshm *fs;
    aipc_broker *b = shm_broker(&fs);
    fake *x = client(b, "x", false);
    fshm_client_segment(fs, SEG_NAME, SEG_SIZE);
    for (size_t i = 0; i < N_OF(bad); i++) {
        fake *p = client(b, "pub", true);
        ck_assert(answer_ok(announce(p, 1, SEG_NAME, SEG_SIZE)));
        ck_assert_int_eq(fake_sendt(p, bad[i], NULL), 0);
        fake_expect_error(p, "bad_request");
        ck_assert_msg(p->close_calls == 1, "%s did not close", bad[i]);
        ck_assert_uint_eq(fake_pending(x), 0);
        fake_free(p);
    }
    /* a payload next to a descriptor */
    fake *p = client(b, "pub", true);
    announce(p, 1, SEG_NAME, SEG_SIZE);
    ck_assert_int_eq(fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"t\",\"shm\":[1,0,1]}", "x"), 0);
    expect_closed(p);
    /* a descriptor from a client not welcomed with shm */
    p = client(b, "plain", false);
    ck_assert_int_eq(fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"t\",\"shm\":[1,0,1]}", NULL), 0);
    expect_closed(p);
    ck_assert_uint_eq(fake_stats(b).shm_in, 0);
    fake_free(x);
    broker_done(b, fs);
}
END_TEST

/* A retained publication cannot come through shared memory: bad_request, the connection
 * stays, the pair is still released. */
START_TEST(retained_pub_refused)
{
    fshm *fs;
    aipc_broker *b = shm_broker(&fs);
    fake *s = subscriber(b, "sub", false);
    fake *p = client(b, "pub", true);
    mapped(fs, p);
    ck_assert_int_eq(fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"t/r\",\"retain\":true,"
                                   "\"shm\":[1,0,10]}", NULL), 0);
    uint32_t r[4][2];
    rx_frame *e = fake_next(p);
    ck_assert_ptr_nonnull(e);
    /* order: the release may go first (ahead of queued frames) */
    if (strcmp(rx_str(e, "op"), "shm_done") == 0) {
        fake_expect_error(p, "bad_request");
    } else {
        ck_assert_str_eq(rx_str(e, "code"), "bad_request");
        expect_done(p, r, 4);
    }
    ck_assert_int_eq(p->close_calls, 0);
    ck_assert_uint_eq(fake_pending(s), 0);
    ck_assert_uint_eq(fake_stats(b).retained_topics, 0);
    fake_free(s);
    fake_free(p);
    broker_done(b, fs);
}
END_TEST

/* Announces the broker refuses: too large, too many, the backend's code; a second announce of
 * the same segment closes. */
START_TEST(announce_refusals)
{
    fshm *fs;
    aipc_broker *b = shm_broker(&fs);
    fake *p = client(b, "pub", true);
    fshm_client_segment(fs, SEG_NAME, 128u << 20);
    rx_frame *r = announce(p, 1, SEG_NAME, (64u << 20) + 4096);   /* max_payload 16 MiB */
    ck_assert(!answer_ok(r));
    ck_assert_str_eq(rx_str(r, "code"), "too_large");
    ck_assert(answer_ok(announce(p, 2, SEG_NAME, 64u << 20)));
    fs->fail_open = "access_denied";
    r = announce(p, 3, SEG_NAME, 4096);
    ck_assert(!answer_ok(r));
    ck_assert_str_eq(rx_str(r, "code"), "access_denied");
    fs->fail_open = NULL;
    r = announce(p, 4, "aipc-42-00112233445566778899aabbccddeeff-9", 4096);
    ck_assert_str_eq(rx_str(r, "code"), "not_found");
    for (uint32_t i = 10; i < 25; i++)
        ck_assert(answer_ok(announce(p, i, SEG_NAME, 4096)));
    r = announce(p, 25, SEG_NAME, 4096);                           /* the 17th */
    ck_assert_str_eq(rx_str(r, "code"), "too_many_segments");
    aipc_broker_stats st = fake_stats(b);
    ck_assert_uint_eq(st.shm_client_segments, 16);
    ck_assert_uint_eq(st.shm_map_failures, 4);
    /* shm_unseg closes one: room for another */
    ck_assert_int_eq(fake_sendt(p, "{\"op\":\"shm_unseg\",\"seg\":10}", NULL), 0);
    ck_assert_int_eq(fake_sendt(p, "{\"op\":\"shm_unseg\",\"seg\":777}", NULL), 0);   /* unknown */
    ck_assert_uint_eq(fake_stats(b).shm_client_segments, 15);
    ck_assert_int_eq(fs->closes, 1);
    ck_assert(answer_ok(announce(p, 26, SEG_NAME, 4096)));
    /* a second announce of a mapped segment is a protocol error */
    char meta[256];
    snprintf(meta, sizeof meta, "{\"op\":\"shm_seg\",\"seg\":2,\"name\":\"%s\",\"size\":4096,"
             "\"session\":1,\"id\":2}", SEG_NAME);
    ck_assert_int_eq(fake_sendt(p, meta, NULL), 0);
    expect_closed(p);
    ck_assert_uint_eq(fake_stats(b).shm_client_segments, 0);
    broker_done(b, fs);
}
END_TEST

/* Publisher and subscriber both through shared memory: the payload is copied once from the
 * publisher's segment into the fan-out slot, and the publisher's slot is released at once
 * although the subscriber still holds the broker's. */
START_TEST(shm_to_shm)
{
    fshm *fs;
    aipc_broker *b = shm_broker(&fs);
    fake *s = subscriber(b, "sub", true);
    fake *p = client(b, "pub", true);
    uint8_t *mem = mapped(fs, p);
    uint32_t r[4][2];
    for (unsigned i = 0; i < 3; i++) {
        fill(mem, 0, 1u << 20, i);
        ck_assert_int_eq(fake_sendt(p, "{\"op\":\"pub\",\"topic\":\"t/a\",\"shm\":[1,0,1048576]}",
                                    NULL), 0);
        ck_assert_uint_eq(expect_done(p, r, 4), 1);
        shm_rx x = fshm_next(fs, s, true, NULL);
        ck_assert_uint_eq(x.len, 1u << 20);
        ck_assert_msg(same(x.data, x.len, i), "round %u", i);
        ck_assert(x.shared == (i > 0));        /* the first one announced the segment */
    }
    aipc_broker_stats st = fake_stats(b);
    ck_assert_uint_eq(st.shm_in, 3);
    ck_assert_uint_eq(st.shm_publications, 2);
    ck_assert_uint_gt(st.shm_bytes, 0);         /* s has not released */
    fake_free(s);
    fake_free(p);
    broker_done(b, fs);
}
END_TEST

/* One input turn of small frames naming 8 MiB ranges (distinct pairs) for a subscriber whose
 * queue is full after the first: the broker builds the 8 MiB frame once, not once per frame
 * (each later one is dropped before any frame is built or any byte copied). */
START_TEST(full_queue_drops_before_building)
{
    enum { N = 400 };
    static count_alloc ca;
    count_alloc_init(&ca);
    fshm *fs;
    aipc_broker *b = shm_broker(&fs);
    ck_assert_int_eq(aipc_broker_set_frame_allocator(b, &ca.a), 0);
    fake *s = subscriber(b, "sub", false);
    s->stalled = true;                          /* never reads: its queue fills at once */
    fake *p = client(b, "pub", true);
    (void)mapped(fs, p);
    uint8_t *buf = malloc((size_t)N * 128), *w = buf;
    for (unsigned i = 0; i < N; i++) {
        char meta[96];
        int ml = snprintf(meta, sizeof meta, "{\"op\":\"pub\",\"topic\":\"t/a\",\"shm\":[1,%u,%u]}",
                          i, SEG_SIZE - N);
        aipc_frame_put_header(w, (uint32_t)ml, 0);
        memcpy(w + 8, meta, (size_t)ml);
        w += 8 + ml;
    }
    size_t allocs0 = ca.allocs + ca.reallocs;
    ca.max_alloc = 0;
    ck_assert_int_eq(aipc_broker_input(b, p->cl, buf, (size_t)(w - buf)), 0);
    free(buf);
    ck_assert_uint_eq(fake_stats(b).shm_in, N);
    ck_assert_uint_eq(fake_stats(b).deliveries, 1);
    ck_assert_uint_eq(fake_stats(b).drops, N - 1);  /* counted as the queue would count them */
    ck_assert_uint_ge(ca.max_alloc, SEG_SIZE - N);  /* the one frame built */
    ck_assert_uint_lt(ca.allocs + ca.reallocs - allocs0, 16);   /* was N + releases */
    ck_assert_uint_lt(ca.live_bytes, 2u * SEG_SIZE);
    s->stalled = false;
    fake_pump(s);
    ck_assert_int_eq((int)rx_num(fake_expect(s, "dropped"), "count"), N - 1);
    ck_assert_uint_eq(fake_expect(s, "msg")->plen, SEG_SIZE - N);
    fake_free(s);
    fake_free(p);
    broker_done(b, fs);
    ck_assert_uint_eq(ca.nblk, 0);
}
END_TEST

/* A pair already owed in this turn (not released yet) named again: bad_request + close. The
 * same pair after its shm_done is fine. */
START_TEST(owed_pair_named_again_closes)
{
    fshm *fs;
    aipc_broker *b = shm_broker(&fs);
    fake *s = subscriber(b, "sub", false);
    fake *p = client(b, "pub", true);
    uint8_t *mem = mapped(fs, p);
    fill(mem, 64, 10, 1);
    const char *meta = "{\"op\":\"pub\",\"topic\":\"t/a\",\"shm\":[1,64,10]}";
    uint32_t r[4][2];
    for (int turn = 0; turn < 2; turn++) {      /* released between turns: named again, fine */
        ck_assert_int_eq(fake_sendt(p, meta, NULL), 0);
        ck_assert(same(fake_expect(s, "msg")->payload, 10, 1));
        ck_assert_uint_eq(expect_done(p, r, 4), 1);
    }
    uint8_t buf[256], *w = buf;
    size_t ml = strlen(meta);
    for (int i = 0; i < 2; i++) {               /* twice in one write: the second is refused */
        aipc_frame_put_header(w, (uint32_t)ml, 0);
        memcpy(w + 8, meta, ml);
        w += 8 + ml;
    }
    aipc_broker_input(b, p->cl, buf, (size_t)(w - buf));
    ck_assert_uint_eq(fake_stats(b).shm_in, 3);
    ck_assert(same(fake_expect(s, "msg")->payload, 10, 1));
    ck_assert_ptr_null(fake_next(s));
    expect_closed(p);
    fake_free(s);
    broker_done(b, fs);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("broker_shm_in");
    TCase *tc = tcase_create("shm_in");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, announce_and_publish);
    tcase_add_test(tc, shared_turn_yields);
    tcase_add_test(tc, releases_coalesced);
    tcase_add_test(tc, release_ahead_of_queued_data);
    tcase_add_test(tc, release_ahead_of_backlog_while_writing);
    tcase_add_test(tc, send_req_rep_through_client_segments);
    tcase_add_test(tc, bad_descriptors_close);
    tcase_add_test(tc, retained_pub_refused);
    tcase_add_test(tc, announce_refusals);
    tcase_add_test(tc, shm_to_shm);
    tcase_add_test(tc, full_queue_drops_before_building);
    tcase_add_test(tc, owed_pair_named_again_closes);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(make_suite);
