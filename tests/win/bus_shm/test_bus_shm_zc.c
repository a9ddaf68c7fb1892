/*
 * test_bus_shm_zc.c - the bus client's zero-copy buffers through a real broker process
 * (asyncipc.h "Bus zero-copy buffers"): aipc_bus_alloc / aipc_bus_publish_buf /
 * aipc_bus_send_buf and on_message_buf / on_direct_buf. Publisher and subscriber run on
 * different engines (swapped by the loop index). What each case proves:
 *   sizes_order_hold   payloads around the threshold allocated, published and received as
 *                      buffers, byte-exact with the NUL after them; from the threshold the
 *                      allocation is a slot of our segments (buf_shm_bytes) and the delivery
 *                      is the broker's shared slot (shm_recv moves, no copy); a send_buf
 *                      reaches on_direct_buf; 120 publications alternating aipc_bus_publish
 *                      and aipc_bus_publish_buf arrive in order; 8 held 1 MiB buffers keep
 *                      the broker's slots of the shared ones in use (shm_bytes) until another
 *                      thread releases them, then 0; misuse (another client's buffer, len > size,
 *                      a received buffer) is refused and leaves the buffer usable.
 *   release_after_close  buffers held across aipc_bus_close (a dispatcher left undelivered
 *                      items too) stay readable and byte-exact and are released afterwards;
 *                      an allocated one unsent too.
 *   reconnect_publish_held  a slot allocated before the broker was killed and restarted is
 *                      published after the reconnect: delivered byte-exact (copied into the
 *                      new connection's slot or inline; the broker never gets a descriptor of
 *                      the ended connection's segment, which it could not resolve).
 *   killed_holding     a subscriber process (bus_shm_peer hold) that keeps its buffers is
 *                      killed: the broker's slots in use return to 0 and the others carry on.
 *   cycles_flat        200 rounds of alloc / publish_buf / hold / release: this process's and
 *                      the broker's handles flat, nothing held anywhere afterwards.
 */
#include "check_main.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_shm_kit.h"

#define ZC_MAX 64

/* A subscriber receiving buffers: bsk_sub first (the kit's state/dropped callbacks). */
typedef struct zc_sub {
    bsk_sub s;
    CRITICAL_SECTION lock;
    aipc_buf *held[ZC_MAX];
    volatile LONG nheld;
    volatile LONG hold;          /* keep buffers (else released in the callback) */
    volatile LONG64 got, directs, bad, next_seq;
    char error[160];
} zc_sub;

static void zc_check(zc_sub *z, aipc_buf *buf)
{
    const uint8_t *d = buf->data;
    uint32_t seq = 0;
    if (buf->size >= 4)
        memcpy(&seq, d, 4);
    long long at = buf->size >= 4 ? aipc_pattern_check(d, buf->size, seq) : -1;
    if (buf->size < 4 || seq != (uint32_t)z->next_seq || at >= 0 || d[buf->size] != 0) {
        if (!z->error[0])
            snprintf(z->error, sizeof z->error, "payload %u (%llu bytes, %lld expected): "
                     "differs at %lld, NUL %d", seq, (unsigned long long)buf->size,
                     (long long)z->next_seq, at, d[buf->size]);
        InterlockedIncrement64(&z->bad);
    }
    InterlockedExchange64(&z->next_seq, (LONG64)seq + 1);
    EnterCriticalSection(&z->lock);
    if (z->hold && z->nheld < ZC_MAX)
        z->held[z->nheld++] = buf;
    else
        aipc_buf_release(buf);
    LeaveCriticalSection(&z->lock);
}

static void zc_on_message_buf(aipc_bus *bus, void *user, const char *topic,
                              const aipc_bus_peer *from, bool retained, aipc_buf *buf)
{
    (void)bus, (void)topic, (void)from, (void)retained;
    zc_sub *z = user;
    zc_check(z, buf);
    InterlockedIncrement64(&z->got);
    SetEvent(bsk_progress);
}

static void zc_on_direct_buf(aipc_bus *bus, void *user, const aipc_bus_peer *from, aipc_buf *buf)
{
    (void)bus, (void)from;
    zc_sub *z = user;
    zc_check(z, buf);
    InterlockedIncrement64(&z->directs);
    SetEvent(bsk_progress);
}

static void zc_open(zc_sub *z, const bs_broker *b, PipeImplType e, const char *name,
                    const char *topic, aipc_dispatcher *d)
{
    memset(z, 0, sizeof *z);
    InitializeCriticalSection(&z->lock);
    aipc_bus_options o;
    bsk_sub_options(&z->s, &o, b->wpipe, e);
    o.name = name;
    o.dispatcher = d;
    o.on_message_buf = zc_on_message_buf;
    o.on_direct_buf = zc_on_direct_buf;
    ck_assert_int_eq(bsk_sub_open(&z->s, &o, topic), 0);
}

static DWORD WINAPI release_all(void *arg)
{
    zc_sub *z = arg;
    EnterCriticalSection(&z->lock);
    for (LONG i = 0; i < z->nheld; i++)
        aipc_buf_release(z->held[i]);
    z->nheld = 0;
    LeaveCriticalSection(&z->lock);
    return 0;
}

/* Releases every held buffer on a thread of its own. */
static void release_on_thread(zc_sub *z)
{
    bsk_on_thread(release_all, z);
}

static void zc_close(zc_sub *z)
{
    bsk_sub_close(&z->s);
    release_all(z);
    DeleteCriticalSection(&z->lock);
}

/* Allocates `size`, fills it with pattern `seq` and publishes it (retrying while full). */
static void pub_buf(aipc_bus *pub, const char *topic, size_t size, uint32_t seq, int want_slot)
{
    aipc_buf *buf = NULL;
    uint64_t until = aipc_test_now_ms() + aipc_test_wait_ms();
    int rc;
    while ((rc = aipc_bus_alloc(pub, size, &buf)) == AIPC_EQUEUEFULL && aipc_test_now_ms() < until)
        Sleep(1);   /* the broker's releases tell us through nothing we can wait on */
    ck_assert_msg(rc == 0, "alloc %u: %s", (unsigned)size, aipc_strerror(rc));
    ck_assert_uint_eq(buf->size, size);
    aipc_bus_counters c = bsk_counters(pub);
    ck_assert_uint_ge(c.buf_bytes, size);
    if (want_slot >= 0)
        ck_assert_msg((c.buf_shm_bytes >= size) == (want_slot != 0), "alloc %u: buf_shm_bytes "
                      "%llu (a slot wanted: %d)", (unsigned)size,
                      (unsigned long long)c.buf_shm_bytes, want_slot);
    aipc_pattern_fill(buf->data, size, seq);
    ck_assert_int_eq(aipc_bus_publish_buf(pub, topic, buf, size), 0);
}

static int held_zero(const bsk_stats *st, const bsk_stats *want)
{
    (void)want;
    return st->shm_bytes == 0;
}

static void broker_slots_free(aipc_bus *via, const char *what)
{
    bsk_stats st;
    ck_assert_msg(bsk_stats_until(via, held_zero, NULL, &st), "%s: broker shm_bytes %lld", what,
                  st.shm_bytes);
}

/* Publishes copies until a 1 MiB publication went shared both hops (our slot, the broker's). */
static uint32_t warm_up(aipc_bus *pub, const char *topic, zc_sub *z, uint32_t seq)
{
    uint8_t *buf = malloc(BS_MIB);
    ck_assert_ptr_nonnull(buf);
    for (int k = 0;; k++) {
        ck_assert_msg(k < 20, "no shared 1 MiB publication after 20");
        uint64_t s0 = bsk_counters(pub).shm_sent, r0 = bsk_counters(z->s.bus).shm_recv;
        ck_assert_int_eq(bsk_publish(pub, topic, buf, BS_MIB, seq++), 0);
        ck_assert(bsk_wait64(&z->got, seq));
        if (bsk_counters(pub).shm_sent > s0 && bsk_counters(z->s.bus).shm_recv > r0)
            break;
    }
    free(buf);
    ck_assert_int_eq(bsk_sync(pub, NULL), 0);
    return seq;
}

#define BROKER_CFG "\"max_queue_bytes\":67108864"

/* A case's broker, its unique topic (cap 64), a buffer subscriber z (name may be NULL) on es
 * and a publisher on ep, warmed up: returns the next sequence number. */
static uint32_t zc_start(bs_broker *b, const char *tag, char *topic, zc_sub *z, const char *name,
                         PipeImplType es, bsk_sub *pub, PipeImplType ep)
{
    bs_broker_start(b, tag, BROKER_CFG);
    bt_unique_topic(topic, 64, tag);
    zc_open(z, b, es, name, topic, NULL);
    ck_assert_int_eq(bsk_open(pub, b, ep, NULL), 0);
    return warm_up(pub->bus, topic, z, 0);
}

static void zc_stop(bs_broker *b, zc_sub *z, bsk_sub *pub)
{
    bsk_sub_close(pub);
    zc_close(z);
    bs_broker_stop(b);
}

START_TEST(sizes_order_hold)
{
    PipeImplType ep = _i ? PIPE_OVERLAPPED : PIPE_ASYNC, es = _i ? PIPE_ASYNC : PIPE_OVERLAPPED;
    bs_broker b;
    char topic[64], name[32];
    snprintf(name, sizeof name, "zcsub%d", _i);
    static zc_sub z;
    static bsk_sub pub;
    uint32_t seq = zc_start(&b, "bshm-zc", topic, &z, name, es, &pub, ep);

    /* sizes around the threshold, held by the subscriber */
    static const uint32_t sizes[] = {BS_THR - 1, BS_THR, BS_THR + 1, BS_MIB};
    z.hold = 1;
    uint64_t held = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        uint32_t n = sizes[k];
        aipc_bus_counters p0 = bsk_counters(pub.bus), s0 = bsk_counters(z.s.bus);
        pub_buf(pub.bus, topic, n, seq++, n >= BS_THR);
        ck_assert(bsk_wait64(&z.got, seq));
        ck_assert_msg(!z.bad, "%s", z.error);
        aipc_bus_counters p1 = bsk_counters(pub.bus), s1 = bsk_counters(z.s.bus);
        ck_assert_uint_eq(p1.buf_bytes, 0);
        ck_assert_uint_eq(p1.shm_sent - p0.shm_sent, n >= BS_THR);
        ck_assert_uint_eq(s1.shm_recv - s0.shm_recv, n >= BS_THR);
        held += n;
        ck_assert_uint_eq(s1.recv_buf_bytes, held);
    }
    /* a direct message as a buffer */
    aipc_buf *d = NULL;
    ck_assert_int_eq(aipc_bus_alloc(pub.bus, BS_MIB, &d), 0);
    aipc_pattern_fill(d->data, BS_MIB, seq++);
    ck_assert_int_eq(aipc_bus_send_buf(pub.bus, name, d, BS_MIB), 0);
    ck_assert(bsk_wait64(&z.directs, 1));
    ck_assert_msg(!z.bad, "%s", z.error);
    release_on_thread(&z);
    ck_assert_uint_eq(bsk_counters(z.s.bus).recv_buf_bytes, 0);

    /* misuse: refused, the buffer stays the caller's */
    static bsk_sub other;
    ck_assert_int_eq(bsk_open(&other, &b, es, NULL), 0);
    aipc_buf *x = NULL;
    ck_assert_int_eq(aipc_bus_alloc(other.bus, 100, &x), 0);
    ck_assert_int_eq(aipc_bus_publish_buf(pub.bus, topic, x, 100), AIPC_EINVAL);
    ck_assert_int_eq(aipc_bus_publish_buf(other.bus, topic, x, 101), AIPC_EINVAL);
    ck_assert_int_eq(aipc_bus_publish_buf(other.bus, "bad/#", x, 100), AIPC_EINVAL);
    ck_assert_uint_eq(bsk_counters(other.bus).buf_bytes, 100);
    aipc_buf_release(x);
    ck_assert_uint_eq(bsk_counters(other.bus).buf_bytes, 0);
    bsk_sub_close(&other);

    /* order: copies and buffers alternating, sizes on both sides of the threshold */
    z.hold = 0;
    uint8_t *copy = malloc(BS_MIB);
    ck_assert_ptr_nonnull(copy);
    static const uint32_t mix[] = {100, BS_THR, 300000, BS_MIB, BS_THR - 1};
    for (int k = 0; k < 120; k++) {
        uint32_t n = mix[k % 5];
        if (k % 2)
            pub_buf(pub.bus, topic, n, seq++, -1);
        else
            ck_assert_int_eq(bsk_publish(pub.bus, topic, copy, n, seq++), 0);
    }
    ck_assert_msg(bsk_wait64(&z.got, seq - 1), "got %lld of %u", (long long)z.got, seq - 1);
    ck_assert_msg(!z.bad, "%s", z.error);

    /* 8 x 1 MiB held: the broker's slots stay in use until another thread releases them */
    broker_slots_free(pub.bus, "before holding");
    z.hold = 1;
    long long got0 = z.got;
    uint64_t r0 = bsk_counters(z.s.bus).shm_recv;
    for (int k = 0; k < 8; k++)
        pub_buf(pub.bus, topic, BS_MIB, seq++, 1);
    ck_assert(bsk_wait64(&z.got, got0 + 8));
    ck_assert_msg(!z.bad, "%s", z.error);
    ck_assert_int_eq(bsk_sync(z.s.bus, NULL), 0);
    /* (the broker's segment for us fills up with held slots: a delivery that needs a new one
     * goes inline until we confirmed it, so not every one of the 8 is shared) */
    long long shared = (long long)(bsk_counters(z.s.bus).shm_recv - r0);
    ck_assert_msg(shared >= 4, "only %lld of 8 held deliveries were shared", shared);
    bsk_stats st;
    ck_assert_int_eq(bsk_stats_get(pub.bus, &st), 0);
    ck_assert_msg(st.shm_bytes >= shared * BS_MIB, "%lld held shared buffers keep %lld bytes of "
                  "the broker's slots", shared, st.shm_bytes);
    ck_assert_uint_eq(bsk_counters(z.s.bus).recv_buf_bytes, 8ull * BS_MIB);
    release_on_thread(&z);
    broker_slots_free(pub.bus, "after the release");
    ck_assert_uint_eq(bsk_counters(pub.bus).shm_held_bytes, 0);
    free(copy);
    zc_stop(&b, &z, &pub);
}
END_TEST

START_TEST(release_after_close)
{
    PipeImplType ep = _i ? PIPE_OVERLAPPED : PIPE_ASYNC, es = _i ? PIPE_ASYNC : PIPE_OVERLAPPED;
    bs_broker b;
    bs_broker_start(&b, "bshm-zcclose", BROKER_CFG);
    char topic[64];
    bt_unique_topic(topic, sizeof topic, "zcc");
    aipc_dispatcher *disp = NULL;
    ck_assert_int_eq(aipc_dispatcher_new(AIPC_DISPATCH_MANUAL, &disp), 0);
    static zc_sub z;
    static bsk_sub pub;
    zc_open(&z, &b, es, NULL, topic, disp);
    ck_assert_int_eq(bsk_open(&pub, &b, ep, NULL), 0);
    /* warm-up through the dispatcher */
    uint8_t *buf = malloc(BS_MIB);
    ck_assert_ptr_nonnull(buf);
    uint32_t seq = 0;
    while (bsk_counters(z.s.bus).shm_recv == 0) {
        ck_assert_msg(seq < 20, "no shared delivery after 20 publications");
        ck_assert_int_eq(bsk_publish(pub.bus, topic, buf, BS_MIB, seq++), 0);
        ck_assert(bsk_wait_pump(disp, NULL, &z.got, seq));
    }
    /* 2 shared + 2 inline delivered and held, 2 more left queued in the dispatcher */
    z.hold = 1;
    long long got0 = z.got;
    static const uint32_t sizes[] = {BS_MIB, 1000, BS_MIB, 77};
    for (int k = 0; k < 4; k++)
        pub_buf(pub.bus, topic, sizes[k], seq++, -1);
    ck_assert(bsk_wait_pump(disp, NULL, &z.got, got0 + 4));
    uint64_t r0 = bsk_counters(z.s.bus).shm_recv;
    pub_buf(pub.bus, topic, BS_MIB, seq++, -1);
    pub_buf(pub.bus, topic, BS_MIB, seq++, -1);
    /* both read and queued as items (the dispatcher is not run): nothing to wait on but the
     * counter, asked again after a short pause */
    for (uint64_t until = aipc_test_now_ms() + aipc_test_wait_ms();
         bsk_counters(z.s.bus).shm_recv < r0 + 2;)
        ck_assert_msg(WaitForSingleObject(bsk_progress, 10) != WAIT_FAILED &&
                      aipc_test_now_ms() < until, "the last 2 never reached the subscriber");
    aipc_buf *unsent = NULL;
    ck_assert_int_eq(aipc_bus_alloc(pub.bus, BS_MIB, &unsent), 0);
    memset(unsent->data, 0x5a, BS_MIB);
    aipc_bus_close(z.s.bus);                          /* undelivered items: released by the SDK */
    z.s.bus = NULL;
    aipc_bus_close(pub.bus);
    pub.bus = NULL;
    aipc_dispatcher_run(disp, 0);                     /* nothing is delivered after close */
    ck_assert_int_eq(z.nheld, 4);
    ck_assert_int_eq(z.got, got0 + 4);
    for (LONG k = 0; k < z.nheld; k++) {
        aipc_buf *h = z.held[k];
        ck_assert_uint_eq(h->size, sizes[k]);
        ck_assert_msg(aipc_pattern_check(h->data, h->size, (uint32_t)(seq - 6 + k)) == -1,
                      "held buffer %d changed after close", (int)k);
    }
    ck_assert_msg(!z.bad, "%s", z.error);
    ck_assert_int_eq(((uint8_t *)unsent->data)[BS_MIB - 1], 0x5a);
    aipc_buf_release(unsent);
    zc_close(&z);
    aipc_dispatcher_free(disp);
    free(buf);
    bs_broker_stop(&b);
}
END_TEST

static bt_broker zc_bt;

static void zc_teardown(void)
{
    bs_teardown();
    if (zc_bt.process)
        bt_broker_kill(&zc_bt);
    memset(&zc_bt, 0, sizeof zc_bt);
}

static int connected_again(zc_sub *z, bsk_sub *pub, long long n)
{
    return bsk_wait64(&z->s.connected, n) && bsk_wait64(&pub->connected, n);
}

START_TEST(reconnect_publish_held)
{
    PipeImplType ep = _i ? PIPE_OVERLAPPED : PIPE_ASYNC, es = _i ? PIPE_ASYNC : PIPE_OVERLAPPED;
    ck_assert_int_eq(bt_broker_start(&zc_bt, "bshm-zcrec"), 0);
    char topic[64];
    bt_unique_topic(topic, sizeof topic, "zcr");
    static zc_sub z;
    static bsk_sub pub;
    memset(&z, 0, sizeof z);
    InitializeCriticalSection(&z.lock);
    aipc_bus_options o;
    bsk_sub_options(&z.s, &o, zc_bt.wpipe, es);
    o.reconnect = 1;
    o.backoff_min_ms = 10;
    o.backoff_max_ms = 50;
    o.on_message_buf = zc_on_message_buf;
    ck_assert_int_eq(bsk_sub_open(&z.s, &o, topic), 0);
    aipc_bus_options po;
    memset(&pub, 0, sizeof pub);
    bsk_sub_options(&pub, &po, zc_bt.wpipe, ep);
    po.reconnect = 1;
    po.backoff_min_ms = 10;
    po.backoff_max_ms = 50;
    ck_assert_int_eq(bsk_sub_open(&pub, &po, NULL), 0);
    uint32_t seq = warm_up(pub.bus, topic, &z, 0);
    aipc_buf *held = NULL;
    ck_assert_int_eq(aipc_bus_alloc(pub.bus, BS_MIB, &held), 0);
    ck_assert_uint_eq(bsk_counters(pub.bus).buf_shm_bytes, BS_MIB);   /* a lent slot */
    aipc_pattern_fill(held->data, BS_MIB, seq);

    bt_broker_kill(&zc_bt);
    ck_assert_int_eq(bt_broker_restart(&zc_bt), 0);
    ck_assert_msg(connected_again(&z, &pub, 2), "no reconnect");
    ck_assert_int_eq(bsk_sync(z.s.bus, NULL), 0);    /* resubscribed */
    ck_assert_int_eq(bsk_sync(pub.bus, NULL), 0);
    ck_assert_int_eq(aipc_bus_publish_buf(pub.bus, topic, held, BS_MIB), 0);
    seq++;
    ck_assert_msg(bsk_wait64(&z.got, seq), "the held buffer was not delivered");
    ck_assert_msg(!z.bad, "%s", z.error);
    ck_assert_uint_eq(bsk_counters(pub.bus).buf_bytes, 0);
    ck_assert_uint_eq(bsk_counters(pub.bus).buf_shm_bytes, 0);
    /* and the new connection's slots serve the next ones */
    seq = warm_up(pub.bus, topic, &z, seq);
    pub_buf(pub.bus, topic, BS_MIB, seq++, 1);
    ck_assert(bsk_wait64(&z.got, seq));
    ck_assert_msg(!z.bad, "%s", z.error);
    bsk_sub_close(&pub);
    zc_close(&z);
    bt_broker_stop(&zc_bt);
    memset(&zc_bt, 0, sizeof zc_bt);
}
END_TEST

START_TEST(killed_holding)
{
    PipeImplType mine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    bs_broker b;
    char topic[64];
    static zc_sub z;
    static bsk_sub pub;
    uint32_t seq = zc_start(&b, "bshm-zckill", topic, &z, NULL, mine, &pub, mine);
    broker_slots_free(pub.bus, "before the peer");
    char ready[96], stalled[96];
    aipc_test_name(ready, sizeof ready, "bshm-zready");
    aipc_test_name(stalled, sizeof stalled, "bshm-zheld");
    HANDLE ready_ev = CreateEventA(NULL, TRUE, FALSE, ready);
    HANDLE held_ev = CreateEventA(NULL, TRUE, FALSE, stalled);
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "bus_shm_peer.exe", "hold --pipe %s --topic %s "
                                     "--engine %s --ready %s --stalled %s", b.rb.pipe, topic,
                                     mine == PIPE_ASYNC ? "iocp" : "apc", ready, stalled), AIPC_OK);
    HANDLE w[2] = {ready_ev, peer.process};
    ck_assert_msg(WaitForMultipleObjects(2, w, FALSE, aipc_test_wait_ms()) == WAIT_OBJECT_0,
                  "the peer did not subscribe");
    for (int k = 0; WaitForSingleObject(held_ev, 0) != WAIT_OBJECT_0; k++) {
        ck_assert_msg(k < 30, "the peer never held 4 shared buffers");
        pub_buf(pub.bus, topic, BS_MIB, seq++, -1);
        ck_assert(bsk_wait64(&z.got, seq));
        ck_assert_int_eq(bsk_sync(pub.bus, NULL), 0);
    }
    ck_assert_msg(!z.bad, "%s", z.error);
    bsk_stats st;
    ck_assert_int_eq(bsk_stats_get(pub.bus, &st), 0);
    ck_assert_msg(st.shm_bytes >= 4ll * BS_MIB, "the holding peer pins %lld bytes, not 4 MiB",
                  st.shm_bytes);
    aipc_proc_kill(&peer);
    aipc_proc_close(&peer);
    broker_slots_free(pub.bus, "after the kill");
    for (int k = 0; k < 4; k++)
        pub_buf(pub.bus, topic, BS_MIB, seq++, 1);
    ck_assert(bsk_wait64(&z.got, seq));
    ck_assert_msg(!z.bad, "%s", z.error);
    CloseHandle(ready_ev);
    CloseHandle(held_ev);
    zc_stop(&b, &z, &pub);
}
END_TEST

START_TEST(cycles_flat)
{
    PipeImplType ep = _i ? PIPE_OVERLAPPED : PIPE_ASYNC, es = _i ? PIPE_ASYNC : PIPE_OVERLAPPED;
    bs_broker b;
    char topic[64];
    static zc_sub z;
    static bsk_sub pub;
    uint32_t seq = zc_start(&b, "bshm-zccyc", topic, &z, NULL, es, &pub, ep);
    long long mine0 = bsk_outside_handles(GetCurrentProcess());
    long long broker0 = bsk_outside_handles(b.rb.process);
    ck_assert(mine0 > 0 && broker0 > 0);
    z.hold = 1;
    for (int k = 0; k < 200; k++) {
        pub_buf(pub.bus, topic, k % 4 ? BS_MIB : 4096, seq++, -1);
        ck_assert_msg(bsk_wait64(&z.got, seq), "cycle %d: not delivered", k);
        ck_assert_int_eq(z.nheld, 1);
        release_all(&z);
    }
    ck_assert_msg(!z.bad, "%s", z.error);
    broker_slots_free(pub.bus, "after 200 cycles");
    long long mine1 = bsk_outside_handles(GetCurrentProcess());
    long long broker1 = bsk_outside_handles(b.rb.process);
    ck_assert_msg(mine1 <= mine0 + 4, "our handles went from %lld to %lld", mine0, mine1);
    ck_assert_msg(broker1 <= broker0 + 4, "the broker's handles went from %lld to %lld",
                  broker0, broker1);
    aipc_bus_counters p = bsk_counters(pub.bus), s = bsk_counters(z.s.bus);
    ck_assert_uint_eq(p.buf_bytes, 0);
    ck_assert_uint_eq(s.recv_buf_bytes, 0);
    ck_assert_uint_ge(s.shm_recv, 150);
    zc_stop(&b, &z, &pub);
}
END_TEST

static Suite *bus_shm_zc_suite(void)
{
    Suite *s = suite_create("bus_shm_zc");
    TCase *t = bt_tcase_create("zc");
    tcase_add_checked_fixture(t, NULL, aipc_proc_kill_all);
    tcase_add_checked_fixture(t, NULL, zc_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_loop_test(t, sizes_order_hold, 0, 2);
    tcase_add_loop_test(t, release_after_close, 0, 2);
    tcase_add_loop_test(t, reconnect_publish_held, 0, 2);
    tcase_add_loop_test(t, killed_holding, 0, 2);
    tcase_add_loop_test(t, cycles_flat, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(bus_shm_zc_suite, NULL, NULL, CHECK_MAIN_VERBOSE);
