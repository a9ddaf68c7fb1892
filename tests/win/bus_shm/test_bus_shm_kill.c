/*
 * test_bus_shm_kill.c - bus clients killed with TerminateProcess while the broker's shared
 * memory is in use (bus_shm_peer.exe, its own process, the other engine than this one's
 * clients):
 *   subscriber  its callback of a shared 1 MiB publication never returns, so it holds that slot
 *               and the ones queued behind it; a subscriber in this process keeps receiving
 *               everything byte-exact meanwhile; after the kill the broker's shm_bytes,
 *               shm_segments, shm_client_segments and client count return to what they were
 *               before the peer came, and the broker's next handle value is back (measured
 *               from outside, bus_shm_kit.h);
 *   publisher   publishes 1 MiB shared as fast as it can and is killed mid-stream: the
 *               subscriber here got only whole, byte-exact publications in order; the broker
 *               unmaps the dead publisher's segments (shm_client_segments, its mapped bytes),
 *               holds no slot, and the next publisher's publications arrive shared.
 */
#include "check_main.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "bus_shm_kit.h"

/* Fan-out segments of 32 MiB: every slot of a case fits in the first one, so the broker's
 * segment count can be compared before and after (a segment, once made, stays until its
 * room is needed). */
#define SEGMENT_BYTES (32u * BS_MIB)
#define BROKER_CONFIG "\"shm_segment_bytes\":33554432"

static const char *engine_arg(PipeImplType e)
{
    return e == PIPE_OVERLAPPED ? "iocp" : "apc";
}

/* Asks the broker through `via` until `ok(st, want)` holds (bounded); returns the last stats. */
static bsk_stats stats_until(const bs_broker *b, aipc_bus *via,
                             int (*ok)(const bsk_stats *, const bsk_stats *),
                             const bsk_stats *want, const char *what)
{
    bsk_stats st;
    memset(&st, 0, sizeof st);
    ck_assert_msg(bsk_stats_until(via, ok, want, &st),
                  "%s%s: clients %lld (want %lld), shm_bytes %lld (%lld), shm_segments %lld "
                  "(%lld), shm_client_segments %lld (%lld)", what, bsk_broker_gone(b),
                  st.clients, want->clients,
                  st.shm_bytes, want->shm_bytes, st.shm_segments, want->shm_segments,
                  st.shm_client_segments, want->shm_client_segments);
    return st;
}

static int back_to(const bsk_stats *st, const bsk_stats *want)
{
    return st->clients == want->clients && st->shm_bytes == want->shm_bytes &&
           st->shm_segments <= want->shm_segments &&
           st->shm_client_segments == want->shm_client_segments;
}

static int settled(const bsk_stats *st, const bsk_stats *want)
{
    return st->clients == want->clients && st->shm_bytes == 0;
}

/* After a kill: the broker's counters come back to `want`, its next handle value to what it
 * was (out0) and its mapped bytes too, but for fan-out segments created since st0. */
static void broker_back(const bs_broker *b, aipc_bus *via, const bsk_stats *want,
                        const bsk_stats *st0, const bsk_outside *out0, const char *what)
{
    bsk_stats st = stats_until(b, via, back_to, want, what);
    bsk_outside out;
    ck_assert_int_eq(bsk_outside_take(b->rb.process, &out), 0);
    ck_assert_msg(out.next_handle <= out0->next_handle + 8,
                  "%s: the broker's next handle value went from %lld to %lld", what,
                  out0->next_handle, out.next_handle);
    long long more = st.shm_segments - st0->shm_segments;
    ck_assert_msg(out.mapped_bytes <= out0->mapped_bytes + more * (long long)SEGMENT_BYTES,
                  "%s: the broker maps %lld bytes (%lld before, %lld fan-out segments more)",
                  what, out.mapped_bytes, out0->mapped_bytes, more);
}

/* Publishes 1 MiB publications seq.. until `sub` received each, byte-exact, none dropped;
 * returns the next seq. */
static uint32_t publish_checked(aipc_bus *pub, const char *topic, bsk_sub *sub, uint8_t *buf,
                                uint32_t seq, int n)
{
    long long dropped = sub->dropped;
    for (int k = 0; k < n; k++, seq++) {
        long long before = sub->got;
        ck_assert_int_eq(bsk_publish(pub, topic, buf, BS_MIB, seq), AIPC_OK);
        ck_assert_msg(bsk_wait64(&sub->got, before + 1), "publication %u not received", seq);
    }
    ck_assert_msg(sub->bad == 0 && sub->dropped == dropped, "subscriber: %s, %lld dropped",
                  sub->error, (long long)(sub->dropped - dropped));
    return seq;
}

/* _i: this process's engine (the peer runs the other one). */
START_TEST(subscriber_killed_holding_slots)
{
    PipeImplType mine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    bs_broker b;
    bs_broker_start(&b, "bshmkills", BROKER_CONFIG);
    char topic[64];
    bt_unique_topic(topic, sizeof topic, "kill");
    static bsk_sub sub, pubc;
    ck_assert_int_eq(bsk_open(&sub, &b, mine, topic), 0);
    ck_assert_int_eq(bsk_open(&pubc, &b, mine, NULL), 0);
    uint8_t *buf = malloc(BS_MIB);
    ck_assert_ptr_nonnull(buf);
    uint32_t seq = 0;
    while (bsk_counters(sub.bus).shm_recv == 0) {
        ck_assert_msg(seq < 20, "no shared delivery after 20 publications");
        seq = publish_checked(pubc.bus, topic, &sub, buf, seq, 1);
    }
    /* before the peer: our two clients, every slot released (our publisher's segments stay
     * mapped by the broker: shm_client_segments is what it is) */
    bsk_stats st0 = stats_until(&b, pubc.bus, settled, &(bsk_stats){.clients = 2},
                                "before the peer");
    bsk_outside out0;
    ck_assert_int_eq(bsk_outside_take(b.rb.process, &out0), 0);

    /* the peer: subscribed, then stalled inside a shared delivery */
    char ready[96], stalled[96];
    aipc_test_name(ready, sizeof ready, "bshm-ready");
    aipc_test_name(stalled, sizeof stalled, "bshm-stalled");
    HANDLE ready_ev = CreateEventA(NULL, TRUE, FALSE, ready);
    HANDLE stalled_ev = CreateEventA(NULL, TRUE, FALSE, stalled);
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "bus_shm_peer.exe", "sub --pipe %s --topic %s "
                                     "--engine %s --ready %s --stalled %s", b.rb.pipe, topic,
                                     engine_arg(mine == PIPE_ASYNC ? PIPE_OVERLAPPED : PIPE_ASYNC),
                                     ready, stalled), AIPC_OK);
    HANDLE w[2] = {ready_ev, peer.process};
    ck_assert_msg(WaitForMultipleObjects(2, w, FALSE, aipc_test_wait_ms()) == WAIT_OBJECT_0,
                  "the peer did not subscribe");
    for (int k = 0; WaitForSingleObject(stalled_ev, 0) != WAIT_OBJECT_0; k++) {
        ck_assert_msg(k < 20, "the peer never got a shared publication");
        seq = publish_checked(pubc.bus, topic, &sub, buf, seq, 1);
    }
    /* three more: queued behind the stalled callback, so held for the peer too; our own
     * subscriber gets them meanwhile */
    seq = publish_checked(pubc.bus, topic, &sub, buf, seq, 3);
    bsk_stats st;
    ck_assert_int_eq(bsk_stats_get(pubc.bus, &st), 0);
    ck_assert_msg(st.shm_bytes >= 4ll * BS_MIB, "the stalled peer pins %lld bytes, not 4 MiB",
                  st.shm_bytes);

    aipc_proc_kill(&peer);
    aipc_proc_close(&peer);
    broker_back(&b, pubc.bus, &st0, &st0, &out0, "after the subscriber's kill");
    /* the others carry on, shared */
    uint64_t shared0 = bsk_counters(sub.bus).shm_recv;
    seq = publish_checked(pubc.bus, topic, &sub, buf, seq, 4);
    ck_assert_msg(bsk_counters(sub.bus).shm_recv >= shared0 + 3, "after the kill: %llu shared",
                  (unsigned long long)(bsk_counters(sub.bus).shm_recv - shared0));
    CloseHandle(ready_ev);
    CloseHandle(stalled_ev);
    free(buf);
    bsk_sub_close(&pubc);
    bsk_sub_close(&sub);
    bs_broker_stop(&b);
}
END_TEST

/* _i: this process's engine (the publisher runs the other one). */
START_TEST(publisher_killed_mid_stream)
{
    PipeImplType mine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    bs_broker b;
    bs_broker_start(&b, "bshmkillp", BROKER_CONFIG);
    char topic[64];
    bt_unique_topic(topic, sizeof topic, "killp");
    static bsk_sub sub, pubc;
    ck_assert_int_eq(bsk_open(&sub, &b, mine, topic), 0);
    sub.allow_gaps = 1;   /* the broker may drop for us while the publisher floods */
    bsk_stats st0, st;   /* (our subscriber's own segment is mapped by the broker already) */
    ck_assert_int_eq(bsk_stats_get(sub.bus, &st0), 0);
    bsk_outside out0;
    ck_assert_int_eq(bsk_outside_take(b.rb.process, &out0), 0);

    char ready[96];
    aipc_test_name(ready, sizeof ready, "bshm-ready");
    HANDLE ready_ev = CreateEventA(NULL, TRUE, FALSE, ready);
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "bus_shm_peer.exe", "pub --pipe %s --topic %s "
                                     "--engine %s --size %u --ready %s", b.rb.pipe, topic,
                                     engine_arg(mine == PIPE_ASYNC ? PIPE_OVERLAPPED : PIPE_ASYNC),
                                     BS_MIB, ready), AIPC_OK);
    HANDLE w[2] = {ready_ev, peer.process};
    ck_assert_msg(WaitForMultipleObjects(2, w, FALSE, aipc_test_wait_ms()) == WAIT_OBJECT_0,
                  "the publisher did not connect");
    /* mid-stream: we have received a good part, shared both ways (the broker reads the
     * publisher's segments: shm_in; we read the broker's: shm_recv) */
    for (int i = 0;; i++) {
        ck_assert_msg(bsk_wait64(&sub.got, i + 1), "received %lld", (long long)sub.got);
        if (sub.got >= 16 && bsk_counters(sub.bus).shm_recv >= 4) {
            ck_assert_int_eq(bsk_stats_get(sub.bus, &st), 0);
            if (st.shm_in >= 4 && st.shm_client_segments > st0.shm_client_segments)
                break;
        }
        ck_assert_msg(i < 400, "no shared stream: got %lld, shm_recv %llu", (long long)sub.got,
                      (unsigned long long)bsk_counters(sub.bus).shm_recv);
    }
    aipc_proc_kill(&peer);
    aipc_proc_close(&peer);
    broker_back(&b, sub.bus, &(bsk_stats){.clients = st0.clients, .shm_bytes = 0,
                .shm_segments = LLONG_MAX, .shm_client_segments = st0.shm_client_segments},
                &st0, &out0, "after the publisher's kill");
    ck_assert_msg(sub.bad == 0, "subscriber: %s", sub.error);
    /* the next publisher is served shared; we receive its publications in order */
    ck_assert_int_eq(bsk_open(&pubc, &b, mine, NULL), 0);
    uint8_t *buf = malloc(BS_MIB);
    ck_assert_ptr_nonnull(buf);
    /* whatever the broker still had for us from the dead publisher arrives before this pong */
    ck_assert_int_eq(bsk_sync(sub.bus, NULL), 0);
    uint32_t seq = (uint32_t)sub.next_seq;
    sub.allow_gaps = 0;
    uint64_t sent0 = bsk_counters(pubc.bus).shm_sent;
    seq = publish_checked(pubc.bus, topic, &sub, buf, seq, 6);
    ck_assert_msg(bsk_counters(pubc.bus).shm_sent >= sent0 + 4, "the next publisher shared %llu",
                  (unsigned long long)(bsk_counters(pubc.bus).shm_sent - sent0));
    CloseHandle(ready_ev);
    free(buf);
    bsk_sub_close(&pubc);
    bsk_sub_close(&sub);
    bs_broker_stop(&b);
}
END_TEST

static Suite *bus_shm_kill_suite(void)
{
    Suite *s = suite_create("bus_shm_kill");
    TCase *t = bt_tcase_create("kill");
    tcase_add_checked_fixture(t, NULL, aipc_proc_kill_all);
    tcase_set_timeout(t, 0);
    tcase_add_loop_test(t, subscriber_killed_holding_slots, 0, 2);
    tcase_add_loop_test(t, publisher_killed_mid_stream, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(bus_shm_kill_suite, NULL, NULL, CHECK_MAIN_VERBOSE);
