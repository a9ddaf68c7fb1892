/*
 * test_bus_shm_zc_misuse.c - the bus zero-copy buffers used wrongly, through a real broker
 * process (asyncipc.h "Bus zero-copy buffers"; bzc review m2). Each case on both engines
 * (swapped by the loop index). What each case proves:
 *   received_refused   a received buffer (shared and inline) is refused by aipc_bus_publish_buf
 *                      and aipc_bus_send_buf of its own client and of another (AIPC_EINVAL) and
 *                      stays the holder's, readable and byte-exact; a pipe's buffer is refused
 *                      by the bus and a bus buffer by aipc_pipe_send_buf (the owner kinds of the
 *                      one live set); releasing a received buffer twice takes it off once
 *                      (recv_buf_bytes, and the broker's slots in use back to 0, never below).
 *   stale_release      aipc_buf_release of a buffer already published (the SDK's now) does
 *                      nothing: buf_bytes stays 0 and the client's room is whole (as many
 *                      1 MiB allocations fit max_queue_bytes as before).
 *   send_unknown       aipc_bus_send_buf of a shared slot to a name nobody has: on_error
 *                      no_such_client, and the slot comes back (shm_held_bytes 0, buf_bytes 0).
 *   old_options        an aipc_bus_options of the 0.4 size (before on_message_buf) with garbage
 *                      in the fields after it: the new fields are never read, deliveries come
 *                      to on_message.
 */
#include "check_main.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_shm_kit.h"

#define BROKER_CFG "\"max_queue_bytes\":16777216"

/* A subscriber that keeps the buffers it receives. */
typedef struct keep_sub {
    bsk_sub s;
    aipc_buf *held[8];
    volatile LONG64 n;
} keep_sub;

static void keep_on_message_buf(aipc_bus *bus, void *user, const char *topic,
                                const aipc_bus_peer *from, bool retained, aipc_buf *buf)
{
    (void)bus, (void)topic, (void)from, (void)retained;
    keep_sub *k = user;
    LONG64 i = k->n;
    if (i < 8)
        k->held[i] = buf;
    else
        aipc_buf_release(buf);
    InterlockedIncrement64(&k->n);
    SetEvent(bsk_progress);
}

static void keep_open(keep_sub *k, const bs_broker *b, PipeImplType e, const char *topic)
{
    memset(k, 0, sizeof *k);
    aipc_bus_options o;
    bsk_sub_options(&k->s, &o, b->wpipe, e);
    o.user = k;                         /* (bsk_sub first: the kit's callbacks see k->s) */
    o.on_message_buf = keep_on_message_buf;
    ck_assert_int_eq(bsk_sub_open(&k->s, &o, topic), 0);
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

/* Waits until the client's own slots and buffers are all back (nothing of ours in use). */
static void own_free(aipc_bus *bus, const char *what)
{
    uint64_t until = aipc_test_now_ms() + aipc_test_wait_ms();
    aipc_bus_counters c;
    while ((c = bsk_counters(bus)).shm_held_bytes || c.buf_bytes) {
        ck_assert_msg(aipc_test_now_ms() < until, "%s: shm_held_bytes %llu, buf_bytes %llu", what,
                      (unsigned long long)c.shm_held_bytes, (unsigned long long)c.buf_bytes);
        Sleep(1);   /* the broker's shm_done tells us through nothing we can wait on */
    }
}

static void check_pattern(const aipc_buf *buf, size_t size, uint32_t seq)
{
    ck_assert_uint_eq(buf->size, size);
    ck_assert_int_eq(aipc_pattern_check(buf->data, size, seq), -1);
    ck_assert_int_eq(((const uint8_t *)buf->data)[size], 0);
}

START_TEST(received_refused)
{
    PipeImplType ep = _i ? PIPE_OVERLAPPED : PIPE_ASYNC, es = _i ? PIPE_ASYNC : PIPE_OVERLAPPED;
    bs_broker b;
    char topic[64];
    bs_broker_start(&b, "bshm-zcm", BROKER_CFG);
    bt_unique_topic(topic, sizeof topic, "zcm");
    static keep_sub k;
    static bsk_sub pub;
    keep_open(&k, &b, es, topic);
    ck_assert_int_eq(bsk_open(&pub, &b, ep, NULL), 0);

    /* one shared (after warm-up: the first ones may go inline) and one inline delivery */
    uint8_t *src = malloc(BS_MIB);
    ck_assert_ptr_nonnull(src);
    uint32_t seq = 0;
    for (;;) {
        ck_assert_msg(seq < 20, "no shared 1 MiB delivery after 20");
        uint64_t r0 = bsk_counters(k.s.bus).shm_recv;
        ck_assert_int_eq(bsk_publish(pub.bus, topic, src, BS_MIB, seq++), 0);
        ck_assert(bsk_wait64(&k.n, seq));
        if (bsk_counters(k.s.bus).shm_recv > r0)
            break;
    }
    ck_assert_int_eq(bsk_publish(pub.bus, topic, src, 100, seq++), 0);
    ck_assert(bsk_wait64(&k.n, seq));
    ck_assert_int_eq(bsk_sync(k.s.bus, NULL), 0);
    aipc_buf *shared = k.held[seq - 2], *inl = k.held[seq - 1];
    for (uint32_t i = 0; i + 2 < seq; i++)   /* the warm-up ones */
        aipc_buf_release(k.held[i]);
    check_pattern(shared, BS_MIB, seq - 2);
    check_pattern(inl, 100, seq - 1);
    ck_assert_uint_eq(bsk_counters(k.s.bus).recv_buf_bytes, BS_MIB + 100);

    /* a received buffer is nobody's to send */
    aipc_buf *rx[2] = {shared, inl};
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(aipc_bus_publish_buf(k.s.bus, topic, rx[i], 10), AIPC_EINVAL);
        ck_assert_int_eq(aipc_bus_publish_buf(pub.bus, topic, rx[i], 10), AIPC_EINVAL);
        ck_assert_int_eq(aipc_bus_send_buf(k.s.bus, "zcm-nobody", rx[i], 10), AIPC_EINVAL);
    }
    check_pattern(shared, BS_MIB, seq - 2);
    check_pattern(inl, 100, seq - 1);

    /* pipe buffers and bus buffers do not mix */
    aipc_named_pipe *np = NULL;
    ck_assert_int_eq(aipc_pipe_new(es, &np), 0);
    aipc_buf *pb = NULL, *bb = NULL;
    ck_assert_int_eq(aipc_pipe_alloc(np, 100, &pb), 0);
    ck_assert_int_eq(aipc_bus_alloc(pub.bus, 100, &bb), 0);
    ck_assert_int_eq(aipc_bus_publish_buf(pub.bus, topic, pb, 10), AIPC_EINVAL);
    ck_assert_int_eq(aipc_bus_send_buf(pub.bus, "zcm-nobody", pb, 10), AIPC_EINVAL);
    ck_assert_int_eq(aipc_pipe_send_buf(np, bb, 10), AIPC_EINVAL);
    ck_assert_int_eq(aipc_pipe_send_buf(np, shared, 10), AIPC_EINVAL);
    ck_assert_uint_eq(bsk_counters(pub.bus).buf_bytes, 100);
    aipc_buf_release(pb);
    aipc_buf_release(bb);
    ck_assert_uint_eq(bsk_counters(pub.bus).buf_bytes, 0);
    aipc_pipe_free(np);

    /* released twice: taken off once */
    aipc_buf_release(shared);
    ck_assert_uint_eq(bsk_counters(k.s.bus).recv_buf_bytes, 100);
    aipc_buf_release(shared);
    ck_assert_uint_eq(bsk_counters(k.s.bus).recv_buf_bytes, 100);
    broker_slots_free(pub.bus, "after the shared buffer's release");
    aipc_buf_release(inl);
    aipc_buf_release(inl);
    ck_assert_uint_eq(bsk_counters(k.s.bus).recv_buf_bytes, 0);
    /* the subscriber still works, and the broker holds nothing for it */
    ck_assert_int_eq(bsk_publish(pub.bus, topic, src, BS_MIB, seq++), 0);
    ck_assert(bsk_wait64(&k.n, seq));
    aipc_buf_release(k.held[seq - 1 < 8 ? seq - 1 : 0]);
    broker_slots_free(pub.bus, "at the end");
    free(src);
    bsk_sub_close(&pub);
    bsk_sub_close(&k.s);
    bs_broker_stop(&b);
}
END_TEST

/* How many 1 MiB buffers fit the client's room now (all released again). */
static int room_in_mib(aipc_bus *bus)
{
    aipc_buf *many[64];
    int n = 0;
    while (n < 64 && aipc_bus_alloc(bus, BS_MIB, &many[n]) == 0)
        n++;
    for (int i = 0; i < n; i++)
        aipc_buf_release(many[i]);
    ck_assert_uint_eq(bsk_counters(bus).buf_bytes, 0);
    return n;
}

START_TEST(stale_release)
{
    PipeImplType ep = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    bs_broker b;
    char topic[64];
    bs_broker_start(&b, "bshm-zcm", BROKER_CFG);
    bt_unique_topic(topic, sizeof topic, "zcm-none");   /* nobody subscribes: nothing received */
    static bsk_sub pub;
    ck_assert_int_eq(bsk_open(&pub, &b, ep, NULL), 0);
    int room = room_in_mib(pub.bus);
    ck_assert_int_ge(room, 2);
    size_t sizes[] = {100, BS_MIB};
    for (int i = 0; i < 2; i++) {
        aipc_buf *x = NULL;
        ck_assert_int_eq(aipc_bus_alloc(pub.bus, sizes[i], &x), 0);
        aipc_pattern_fill(x->data, sizes[i], (uint32_t)i);
        ck_assert_int_eq(aipc_bus_publish_buf(pub.bus, topic, x, sizes[i]), 0);
        ck_assert_int_eq(bsk_sync(pub.bus, NULL), 0);
        own_free(pub.bus, "after publish_buf");
        aipc_buf_release(x);            /* stale: the SDK's since the publish */
        ck_assert_uint_eq(bsk_counters(pub.bus).buf_bytes, 0);
    }
    /* the room is whole: the same number of 1 MiB buffers fits as before */
    ck_assert_int_eq(room_in_mib(pub.bus), room);
    bsk_sub_close(&pub);
    bs_broker_stop(&b);
}
END_TEST

static volatile LONG64 unknown_errors;

static void count_error(aipc_bus *bus, void *user, int error, const char *code, const char *msg)
{
    (void)bus, (void)user, (void)error, (void)msg;
    if (code && strcmp(code, "no_such_client") == 0)
        InterlockedIncrement64(&unknown_errors);
    SetEvent(bsk_progress);
}

START_TEST(send_unknown)
{
    PipeImplType ep = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    bs_broker b;
    bs_broker_start(&b, "bshm-zcm", BROKER_CFG);
    static bsk_sub pub;
    memset(&pub, 0, sizeof pub);
    aipc_bus_options o;
    bsk_sub_options(&pub, &o, b.wpipe, ep);
    o.on_error = count_error;
    ck_assert_int_eq(bsk_sub_open(&pub, &o, NULL), 0);
    unknown_errors = 0;
    int slots = 0;
    for (int i = 0; i < 8; i++) {
        aipc_buf *x = NULL;
        ck_assert_int_eq(aipc_bus_alloc(pub.bus, BS_MIB, &x), 0);
        slots += bsk_counters(pub.bus).buf_shm_bytes >= BS_MIB;
        aipc_pattern_fill(x->data, BS_MIB, (uint32_t)i);
        ck_assert_int_eq(aipc_bus_send_buf(pub.bus, "zcm-nobody-has-this-name", x, BS_MIB), 0);
        ck_assert(bsk_wait64(&unknown_errors, i + 1));
    }
    ck_assert_msg(slots >= 4, "only %d of 8 allocations were slots", slots);
    own_free(pub.bus, "after 8 sends to nobody");
    bsk_sub_close(&pub);
    bs_broker_stop(&b);
}
END_TEST

static volatile LONG poisoned;

static void poison_buf(aipc_bus *bus, void *user, const char *topic, const aipc_bus_peer *from,
                       bool retained, aipc_buf *buf)
{
    (void)bus, (void)user, (void)topic, (void)from, (void)retained, (void)buf;
    InterlockedIncrement(&poisoned);
}

static void poison_direct(aipc_bus *bus, void *user, const aipc_bus_peer *from, aipc_buf *buf)
{
    (void)bus, (void)user, (void)from, (void)buf;
    InterlockedIncrement(&poisoned);
}

START_TEST(old_options)
{
    PipeImplType ep = _i ? PIPE_OVERLAPPED : PIPE_ASYNC, es = _i ? PIPE_ASYNC : PIPE_OVERLAPPED;
    bs_broker b;
    char topic[64];
    bs_broker_start(&b, "bshm-zcm", BROKER_CFG);
    bt_unique_topic(topic, sizeof topic, "zcm-old");
    static bsk_sub sub, pub;
    memset(&sub, 0, sizeof sub);
    aipc_bus_options o;
    bsk_sub_options(&sub, &o, b.wpipe, es);
    o.size = (uint32_t)offsetof(aipc_bus_options, on_message_buf);   /* a 0.4 caller */
    o.on_message_buf = poison_buf;                                    /* not its field */
    o.on_direct_buf = poison_direct;
    poisoned = 0;
    ck_assert_int_eq(bsk_sub_open(&sub, &o, topic), 0);
    ck_assert_int_eq(bsk_open(&pub, &b, ep, NULL), 0);
    uint8_t *src = malloc(BS_MIB);
    ck_assert_ptr_nonnull(src);
    static const size_t sizes[] = {100, BS_THR, BS_MIB, BS_MIB};
    for (uint32_t i = 0; i < 4; i++)
        ck_assert_int_eq(bsk_publish(pub.bus, topic, src, sizes[i], i), 0);
    ck_assert(bsk_wait64(&sub.got, 4));
    ck_assert_msg(!sub.bad, "%s", sub.error);
    ck_assert_int_eq(poisoned, 0);
    free(src);
    bsk_sub_close(&pub);
    bsk_sub_close(&sub);
    bs_broker_stop(&b);
}
END_TEST

static Suite *bus_shm_zc_misuse_suite(void)
{
    Suite *s = suite_create("bus_shm_zc_misuse");
    TCase *t = bt_tcase_create("misuse");
    tcase_add_checked_fixture(t, NULL, aipc_proc_kill_all);
    tcase_add_checked_fixture(t, NULL, bs_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_loop_test(t, received_refused, 0, 2);
    tcase_add_loop_test(t, stale_release, 0, 2);
    tcase_add_loop_test(t, send_unknown, 0, 2);
    tcase_add_loop_test(t, old_options, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(bus_shm_zc_misuse_suite, NULL, NULL, CHECK_MAIN_VERBOSE);
