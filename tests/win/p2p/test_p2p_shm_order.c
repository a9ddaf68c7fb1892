/*
 * test_p2p_shm_order.c - one stream mixing inline and shared messages keeps its order: the peer
 * (p2p_peer.exe, the other engine, either role) sends 10 000 messages of 10 B, threshold - 1,
 * threshold and 256 KiB in turn, with sequence numbers and patterns, paced by its OnSend (which
 * for a shared message comes at our release).
 */
#include "p2p_shm_common.h"

/* ---- order: 10 000 mixed messages --------------------------------------------------------- */

#define ORDER_N 10000
static const uint32_t order_sizes[4] = {10, THR - 1, THR, 256 * 1024};

typedef struct order_state {
    long long next;      /* the sequence number expected next */
    long long bad;       /* first wrong message + 1 (0: none) */
} order_state;

/* I/O thread (probe hook): message `next` must come now, with its size and pattern. */
static void order_hook(aipc_probe *p, const uint8_t *data, int size)
{
    order_state *o = p->user;
    if (size == 4 && !memcmp(data, "warm", 4))
        return;                          /* the last warm-up echo may still reach the hook */
    uint32_t i = (uint32_t)o->next;
    if (!o->bad && ((uint32_t)size != order_sizes[i % 4] ||
                    aipc_pattern_check(data, (size_t)size, i) >= 0))
        o->bad = o->next + 1;
    o->next++;
}

/* _i bit 0: this end's engine; bit 1: this end is the client. The peer sends 10 000 messages of
 * 10 B, threshold - 1, threshold and 256 KiB in turn (inline and shared in one stream, paced by
 * its OnSend, which for a shared message comes at our release); each arrives in order and
 * byte-exact. */
START_TEST(mixed_inline_and_shared_in_order)
{
    PipeImplType mine = (_i & 1) ? PIPE_OVERLAPPED : PIPE_ASYNC;
    aipc_probe *p = new_probe();
    order_state o = {0, 0};
    aipc_proc peer;
    char extra[32];
    snprintf(extra, sizeof extra, "--count %d", ORDER_N);
    pair_up(p, &peer, mine, (_i & 2) != 0, "shmord", extra);
    p->keep = 1;
    warm_up(p);
    p->keep = 0;
    long long base = aipc_probe_get(p, &p->recv_count);
    p->user = &o;
    p->hook = order_hook;
    ck_assert_int_eq(aipc_probe_send(p, "go", 2), AIPC_OK);
    WAIT_FOR(p, recv_count, base + ORDER_N, "the whole sequence");
    ck_assert_msg(o.bad == 0, "message %lld came wrong or out of order", o.bad - 1);
    aipc_pipe_stats st = stats_of(p);
    ck_assert_msg(st.shm_received >= ORDER_N * 2 / 5, "received shared: %llu of %d",
                  (unsigned long long)st.shm_received, ORDER_N / 2);
    p->hook = NULL;
    ck_assert_msg(aipc_probe_exit(p, WAIT_MS), "Exit did not return");
    PEER_DONE(&peer, 0);
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
}
END_TEST

static Suite *p2p_shm_order_suite(void)
{
    Suite *s = suite_create("p2p_shm_order");
    TCase *t = tcase_create("order");
    tcase_add_checked_fixture(t, p2p_setup, p2p_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_loop_test(t, mixed_inline_and_shared_in_order, 0, 4);
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(p2p_shm_order_suite, NULL, NULL, CHECK_MAIN_VERBOSE);
