/*
 * test_bus_shm_page.c - the release page (docs/protocol.md section 11, docs/sdk.md "Shared
 * memory"): bus clients release the broker's slots by a counter in a page of theirs that the
 * broker maps, instead of shm_done frames. A real broker process, clients of this process on
 * both engines. What each case proves:
 *   stream_page       1 publisher, 4 subscribers (2 per engine), 200 x 1 MiB byte-exact and in
 *                     order: every shared delivery is released through the page (the broker's
 *                     shm_page_releases moves by its shm_deliveries: all 800 go shared),
 *                     no shm_done frame is read (shm_release_frames does not move), and the
 *                     broker holds no slot afterwards (shm_bytes 0); each subscriber says
 *                     shm_page 1. Fails if a client releases by frames or not at all.
 *   stream_frames     the same stream against a broker with "shm_release_page": false: the
 *                     same client code releases by frames (shm_release_frames moves,
 *                     shm_page_releases does not, shm_page 0), everything delivered and freed.
 *   page_refused      the broker cannot map a subscriber's page (granted to another
 *                     principal: test hook): ok:false, that subscriber releases by frames
 *                     (shm_page 0, shm_release_frames moves), everything delivered and freed.
 *   held_prefix       a subscriber with on_message_buf holds 3 shared 1 MiB buffers and
 *                     releases #3, then #2 (on another thread): the broker still holds all 3
 *                     slots (the prefix stops at #1; with frames 2 would be free: fails then)
 *                     and the client counts 2 waiting; then #1: the broker holds none. No
 *                     frame is read. Both engines (the loop index).
 * Callbacks run on the SDK's I/O threads and only count, check or keep buffers; the test
 * thread asserts. Waits are bounded and event- or round-trip-based.
 */
#include "check_main.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_shm_kit.h"

#define NSUB    4
#define COUNT   200
#define WINDOW  2                        /* publications ahead of the slowest subscriber */
#define NOPAGE  "\"shm_release_page\":false"

static long long slowest(const bsk_sub *subs)
{
    long long m = subs[0].got;
    for (int i = 1; i < NSUB; i++)
        if (subs[i].got < m)
            m = subs[i].got;
    return m;
}

static int no_slot(const bsk_stats *st, const bsk_stats *ref)
{
    (void)ref;
    return st->shm_bytes == 0;
}

/* page: 1 the broker offers the page (its default), 0 "shm_release_page": false. */
static void stream(int page)
{
    bs_broker b;
    bs_broker_start(&b, page ? "bshmpage" : "bshmpagef", page ? NULL : NOPAGE);
    char topic[64];
    bt_unique_topic(topic, sizeof topic, "page");
    static bsk_sub subs[NSUB];
    memset(subs, 0, sizeof subs);
    for (int i = 0; i < NSUB; i++)
        ck_assert_msg(bsk_open(&subs[i], &b, i % 2 ? PIPE_OVERLAPPED : PIPE_ASYNC, topic) == 0,
                      "subscriber %d did not connect", i);
    bsk_sub pubc;
    ck_assert_int_eq(bsk_open(&pubc, &b, PIPE_OVERLAPPED, NULL), 0);
    uint8_t *buf = malloc(BS_MIB);
    ck_assert_ptr_nonnull(buf);

    /* warm-up: until every subscriber receives through the broker's segments */
    uint32_t seq = 0;
    for (;;) {
        ck_assert_msg(seq < 20, "shared memory not in use after 20 publications");
        ck_assert_int_eq(bsk_publish(pubc.bus, topic, buf, BS_MIB, seq), AIPC_OK);
        seq++;
        int all = 1;
        for (int i = 0; i < NSUB; i++) {
            ck_assert_msg(bsk_wait64(&subs[i].got, seq), "warm-up: subscriber %d got %lld of %u",
                          i, (long long)subs[i].got, seq);
            all &= bsk_counters(subs[i].bus).shm_recv >= 1;
        }
        if (all)
            break;
    }
    for (int i = 0; i < NSUB; i++)
        ck_assert_msg(bsk_counters(subs[i].bus).shm_page == (uint32_t)page,
                      "subscriber %d: shm_page %u", i, bsk_counters(subs[i].bus).shm_page);
    /* the warm-up's releases counted before the reference (the stats op reads every page) */
    bsk_stats st0, st;
    ck_assert_msg(bsk_stats_until(pubc.bus, no_slot, NULL, &st0), "shm_bytes %lld after the "
                  "warm-up", st0.shm_bytes);
    ck_assert_msg(st0.shm_page_releases >= 0 && st0.shm_pages >= 0,
                  "the broker's stats have no shm_page_releases / shm_pages");
    ck_assert_msg(st0.shm_pages == (page ? NSUB + 1 : 0), "the broker maps %lld pages (the "
                  "publisher has one too)", st0.shm_pages);
    uint64_t recv0[NSUB];
    for (int i = 0; i < NSUB; i++)
        recv0[i] = bsk_counters(subs[i].bus).shm_recv;

    uint32_t end = seq + COUNT;
    for (; seq < end; seq++) {
        while ((long long)seq - slowest(subs) > WINDOW)
            ck_assert_msg(WaitForSingleObject(bsk_progress, aipc_test_wait_ms()) == WAIT_OBJECT_0,
                          "no progress at publication %u (the slowest has %lld)", seq,
                          slowest(subs));
        ck_assert_int_eq(bsk_publish(pubc.bus, topic, buf, BS_MIB, seq), AIPC_OK);
    }
    long long shared = 0;
    for (int i = 0; i < NSUB; i++) {
        ck_assert_msg(bsk_wait64(&subs[i].got, end), "subscriber %d got %lld of %u", i,
                      (long long)subs[i].got, end);
        ck_assert_msg(subs[i].bad == 0 && subs[i].dropped == 0, "subscriber %d: %lld bad (%s), "
                      "%lld dropped", i, (long long)subs[i].bad, subs[i].error,
                      (long long)subs[i].dropped);
        shared += (long long)(bsk_counters(subs[i].bus).shm_recv - recv0[i]);
    }
    ck_assert_msg(bsk_stats_until(pubc.bus, no_slot, NULL, &st), "shm_bytes stays at %lld%s",
                  st.shm_bytes, bsk_broker_gone(&b));
    long long deliveries = st.shm_deliveries - st0.shm_deliveries;
    long long by_page = st.shm_page_releases - st0.shm_page_releases;
    long long frames = st.shm_release_frames - st0.shm_release_frames;
    ck_assert_msg(deliveries == shared, "the broker delivered %lld shared, the clients got %lld",
                  deliveries, shared);
    ck_assert_msg(shared == NSUB * COUNT, "only %lld of %d deliveries were shared",
                  shared, NSUB * COUNT);
    ck_assert_int_eq(st.shm_bad_releases, st0.shm_bad_releases);
    if (page) {
        ck_assert_msg(by_page == deliveries && frames == 0, "%lld shared deliveries: %lld "
                      "released through pages, %lld shm_done frames", deliveries, by_page, frames);
    } else {
        ck_assert_msg(by_page == 0 && frames > 0, "%lld shared deliveries without pages: %lld "
                      "released through pages, %lld shm_done frames", deliveries, by_page, frames);
    }
    free(buf);
    bsk_sub_close(&pubc);
    for (int i = 0; i < NSUB; i++)
        bsk_sub_close(&subs[i]);
    bs_broker_stop(&b);
}

START_TEST(stream_page)
{
    stream(1);
}
END_TEST

START_TEST(stream_frames)
{
    stream(0);
}
END_TEST

/* The subscriber's segments (its page included) are granted to SYSTEM instead of the broker's
 * user (test hook AIPC_TEST_SHM_GRANT_SID, read when a segment is created): the broker cannot
 * map the page and answers ok:false; the subscriber releases by frames on that connection and
 * everything still arrives and is freed. _i: the subscriber's engine. */
START_TEST(page_refused)
{
    bs_broker b;
    bs_broker_start(&b, "bshmpager", NULL);
    char topic[64];
    bt_unique_topic(topic, sizeof topic, "pager");
    bsk_sub sub, pubc;
    ck_assert(SetEnvironmentVariableA("AIPC_TEST_SHM_GRANT_SID", "S-1-5-18"));
    int rc = bsk_open(&sub, &b, _i ? PIPE_OVERLAPPED : PIPE_ASYNC, topic);
    if (rc == 0)
        rc = bsk_sync(sub.bus, NULL);                  /* its page's answer is in */
    SetEnvironmentVariableA("AIPC_TEST_SHM_GRANT_SID", NULL);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(bsk_open(&pubc, &b, _i ? PIPE_ASYNC : PIPE_OVERLAPPED, NULL), 0);
    uint8_t *buf = malloc(BS_MIB);
    ck_assert_ptr_nonnull(buf);
    bsk_stats st0, st;
    ck_assert_int_eq(bsk_stats_get(pubc.bus, &st0), 0);
    uint32_t seq = 0;
    for (; seq < 20; seq++) {
        ck_assert_int_eq(bsk_publish(pubc.bus, topic, buf, BS_MIB, seq), AIPC_OK);
        ck_assert(bsk_wait64(&sub.got, seq + 1));
    }
    aipc_bus_counters k = bsk_counters(sub.bus);
    ck_assert_msg(k.shm_page == 0 && k.shm_recv >= 10, "shm_page %u, shm_recv %llu", k.shm_page,
                  (unsigned long long)k.shm_recv);
    ck_assert_msg(sub.bad == 0 && sub.dropped == 0, "%s", sub.error);
    ck_assert_msg(bsk_stats_until(pubc.bus, no_slot, NULL, &st), "shm_bytes stays at %lld",
                  st.shm_bytes);
    ck_assert_msg(st.shm_pages == 1, "the broker maps %lld pages (the publisher's only)",
                  st.shm_pages);
    ck_assert_msg(st.shm_release_frames > st0.shm_release_frames &&
                  st.shm_page_releases == st0.shm_page_releases, "%lld frames, %lld through "
                  "pages", st.shm_release_frames - st0.shm_release_frames,
                  st.shm_page_releases - st0.shm_page_releases);
    ck_assert_int_eq(st.shm_bad_releases, st0.shm_bad_releases);
    free(buf);
    bsk_sub_close(&pubc);
    bsk_sub_close(&sub);
    bs_broker_stop(&b);
}
END_TEST

/* ---- held buffers ------------------------------------------------------------------------- */

#define HOLD_N 3

/* A subscriber receiving buffers: bsk_sub first (the kit's state/dropped callbacks); keeps
 * every 1 MiB buffer, releases the others at once. */
typedef struct holder {
    bsk_sub s;
    CRITICAL_SECTION lock;
    aipc_buf *held[HOLD_N];
    volatile LONG nheld;
    volatile LONG64 got, bad;
} holder;

static void holder_on_buf(aipc_bus *bus, void *user, const char *topic, const aipc_bus_peer *from,
                          bool retained, aipc_buf *buf)
{
    (void)bus, (void)topic, (void)from, (void)retained;
    holder *h = user;
    uint32_t seq = 0;
    if (buf->size >= 4)
        memcpy(&seq, buf->data, 4);
    if (buf->size < 4 || aipc_pattern_check(buf->data, buf->size, seq) >= 0)
        InterlockedIncrement64(&h->bad);
    EnterCriticalSection(&h->lock);
    if (buf->size == BS_MIB && h->nheld < HOLD_N)
        h->held[h->nheld++] = buf;
    else
        aipc_buf_release(buf);
    LeaveCriticalSection(&h->lock);
    InterlockedIncrement64(&h->got);
    SetEvent(bsk_progress);
}

static DWORD WINAPI release_one(void *arg)
{
    aipc_buf_release(arg);
    return 0;
}

/* Releases buf on a thread of its own (as a UI or worker thread would). */
static void release_on_thread(aipc_buf *buf)
{
    bsk_on_thread(release_one, buf);
}

static long long want_bytes;
static int at_most(const bsk_stats *st, const bsk_stats *ref)
{
    (void)ref;
    return st->shm_bytes <= want_bytes;
}

START_TEST(held_prefix)
{
    PipeImplType es = _i ? PIPE_OVERLAPPED : PIPE_ASYNC, ep = _i ? PIPE_ASYNC : PIPE_OVERLAPPED;
    bs_broker b;
    bs_broker_start(&b, "bshmpageh", "\"max_queue_bytes\":67108864");
    char topic[64];
    bt_unique_topic(topic, sizeof topic, "pageh");
    static holder h;
    memset(&h, 0, sizeof h);
    InitializeCriticalSection(&h.lock);
    aipc_bus_options o;
    bsk_sub_options(&h.s, &o, b.wpipe, es);
    o.on_message_buf = holder_on_buf;
    o.user = &h;
    ck_assert_int_eq(bsk_sub_open(&h.s, &o, topic), 0);
    bsk_sub pubc;
    ck_assert_int_eq(bsk_open(&pubc, &b, ep, NULL), 0);
    uint8_t *buf = malloc(BS_MIB);
    ck_assert_ptr_nonnull(buf);
    /* warm-up with threshold-sized publications (released at once) until they go shared */
    uint32_t seq = 0;
    while (bsk_counters(h.s.bus).shm_recv < 1) {
        ck_assert_msg(seq < 20, "shared memory not in use after 20 publications");
        ck_assert_int_eq(bsk_publish(pubc.bus, topic, buf, BS_THR, seq), AIPC_OK);
        seq++;
        ck_assert(bsk_wait64(&h.got, seq));
    }
    ck_assert_uint_eq(bsk_counters(h.s.bus).shm_page, 1);
    bsk_stats st0, st;
    ck_assert_msg(bsk_stats_until(pubc.bus, no_slot, NULL, &st0), "shm_bytes %lld before",
                  st0.shm_bytes);
    uint64_t r0 = bsk_counters(h.s.bus).shm_recv;
    for (int k = 0; k < HOLD_N; k++, seq++)
        ck_assert_int_eq(bsk_publish(pubc.bus, topic, buf, BS_MIB, seq), AIPC_OK);
    ck_assert(bsk_wait64(&h.got, seq));
    ck_assert_msg(h.nheld == HOLD_N && h.bad == 0, "%ld held, %lld bad", (long)h.nheld,
                  (long long)h.bad);
    ck_assert_msg(bsk_counters(h.s.bus).shm_recv - r0 == HOLD_N, "%llu of %d held buffers are "
                  "shared", (unsigned long long)(bsk_counters(h.s.bus).shm_recv - r0), HOLD_N);

    /* #3 then #2: the prefix stays before #1, the broker keeps all three */
    release_on_thread(h.held[2]);
    release_on_thread(h.held[1]);
    ck_assert_uint_eq(bsk_counters(h.s.bus).shm_page_waiting, 2);
    ck_assert_int_eq(bsk_sync(h.s.bus, NULL), 0);     /* an input turn of the subscriber */
    ck_assert_int_eq(bsk_stats_get(pubc.bus, &st), 0);
    ck_assert_msg(st.shm_bytes >= (long long)HOLD_N * BS_MIB, "after releasing #3 and #2 the "
                  "broker holds %lld bytes, not the 3 slots", st.shm_bytes);

    /* #1: all three go */
    release_on_thread(h.held[0]);
    h.nheld = 0;
    ck_assert_uint_eq(bsk_counters(h.s.bus).shm_page_waiting, 0);
    want_bytes = 0;
    ck_assert_msg(bsk_stats_until(pubc.bus, at_most, NULL, &st), "after releasing #1 the broker "
                  "holds %lld bytes", st.shm_bytes);
    ck_assert_int_eq(st.shm_release_frames, st0.shm_release_frames);
    ck_assert_msg(st.shm_page_releases - st0.shm_page_releases == HOLD_N, "%lld released "
                  "through the page", st.shm_page_releases - st0.shm_page_releases);
    free(buf);
    bsk_sub_close(&pubc);
    bsk_sub_close(&h.s);
    DeleteCriticalSection(&h.lock);
    bs_broker_stop(&b);
}
END_TEST

/* The fixture's teardown: the test hook never outlives its test. */
static void page_teardown(void)
{
    SetEnvironmentVariableA("AIPC_TEST_SHM_GRANT_SID", NULL);
    bs_teardown();
}

static Suite *bus_shm_page_suite(void)
{
    Suite *s = suite_create("bus_shm_page");
    TCase *t = bt_tcase_create("page");
    tcase_set_timeout(t, 0);
    tcase_add_checked_fixture(t, NULL, page_teardown);
    tcase_add_test(t, stream_page);
    tcase_add_test(t, stream_frames);
    tcase_add_loop_test(t, page_refused, 0, 2);
    tcase_add_loop_test(t, held_prefix, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(bus_shm_page_suite, NULL, NULL, CHECK_MAIN_VERBOSE);
