/*
 * test_p2p_shm.c - point-to-point messages through shared memory (shm_link.c), between this
 * process (a probe) and p2p_peer.exe (a real process, the other engine):
 *   sizes      threshold - 1, threshold, + 1, 1 MiB and the maximum message, byte-exact both
 *              ways (the peer echoes), both engines and roles; shared counters move both ways;
 *   kill       the peer is killed (TerminateProcess) while it holds our slots (its OnRecv of
 *              the first large message never returns, so nothing after it is read): our shared
 *              bytes and segments go back to 0;
 *   denied     our segments are granted to another principal (test hook
 *              AIPC_TEST_SHM_GRANT_SID): the peer really gets error 5, answers ok:false, and the
 *              stream goes on inline, byte-exact.
 * (Order: test_p2p_shm_order.c; connect/disconnect cycles: test_p2p_shm_cycles.c; helpers:
 * p2p_shm_common.h.)
 */
#include "p2p_shm_common.h"

/* _i bit 0: this end's engine; bit 1: this end is the client. */
START_TEST(sizes_around_threshold_byte_exact)
{
    PipeImplType mine = (_i & 1) ? PIPE_OVERLAPPED : PIPE_ASYNC;
    aipc_probe *p = new_probe();
    p->keep = 1;
    p->scribble = 1;   /* our OnRecv writes into every payload: shared ones must not fault, and
                        * the next payload in a written page must still arrive byte-exact */
    aipc_proc peer;
    pair_up(p, &peer, mine, (_i & 2) != 0, "shmsz", "");
    warm_up(p);
    static const size_t sizes[] = {THR - 1, THR, THR + 1, MIB, AIPC_DEFAULT_MAX_PAYLOAD, THR,
                                   MIB};
    uint8_t *buf = malloc(AIPC_DEFAULT_MAX_PAYLOAD);
    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        echo_exact(p, buf, sizes[i], (uint32_t)(i * 7 + 1));
    free(buf);
    aipc_pipe_stats st = stats_of(p);
    /* thr, thr+1, 1 MiB, thr, 1 MiB at least (the maximum may need a segment of its own) */
    ck_assert_msg(st.shm_sent >= 5 && st.shm_received >= 5, "shared: sent %llu, received %llu",
                  (unsigned long long)st.shm_sent, (unsigned long long)st.shm_received);
    ck_assert_int_eq(st.shm, 1);
    ck_assert_msg(aipc_probe_exit(p, WAIT_MS), "Exit did not return");
    PEER_DONE(&peer, 0);
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
}
END_TEST

/* ---- the peer dies holding our slots ---------------------------------------------------------- */

/* _i: this end's engine (server). The peer's OnRecv of the first large message never returns
 * (--stall 1), so it releases nothing and reads nothing more; we send 4 x 1 MiB shared and
 * kill it. Nothing is released by it, yet our shared bytes and segments go back to 0, and the
 * next client is served shared again. */
START_TEST(peer_killed_holding_slots)
{
    PipeImplType mine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    aipc_probe *p = new_probe();
    p->keep = 1;
    aipc_proc peer;
    char name[96];
    aipc_test_name(name, sizeof name, "shmkill");
    start_probe(p, mine, PIPE_SERVER, name, 0, 0);
    const char *other = engine_arg(mine == PIPE_ASYNC ? PIPE_OVERLAPPED : PIPE_ASYNC);
    /* --stall 1: the peer's OnRecv of the first large message never returns (its I/O thread
     * sleeps until killed), so that slot is never released and the next ones are never read */
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe", "--mode echo --role client --stall 1 "
                                     "--engine %s --pipe %s", other, name), AIPC_OK);
    WAIT_FOR(p, connected, 1, "the peer connected");
    warm_up(p);
    uint8_t *buf = malloc(MIB);
    ck_assert_ptr_nonnull(buf);
    aipc_pattern_fill(buf, MIB, 5);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(aipc_probe_send(p, buf, MIB), AIPC_OK);
    aipc_pipe_stats st = stats_of(p);
    ck_assert_msg(st.shm_sent >= 4 && st.shm_bytes == 4u * MIB,
                  "shared sent %llu, held bytes %llu (want 4 MiB)",
                  (unsigned long long)st.shm_sent, (unsigned long long)st.shm_bytes);
    ck_assert_uint_ge(st.shm_segments, 1);
    aipc_proc_kill(&peer);
    aipc_proc_close(&peer);
    WAIT_FOR(p, disconnected, 1, "the killed peer's disconnect");
    st = stats_of(p);
    ck_assert_msg(st.shm_bytes == 0 && st.shm_segments == 0 && st.shm == 0,
                  "after the kill: bytes %llu, segments %u, shm %u",
                  (unsigned long long)st.shm_bytes, st.shm_segments, st.shm);
    /* the next client is served shared again */
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe", "--mode echo --role client "
                                     "--engine %s --pipe %s", other, name), AIPC_OK);
    WAIT_FOR(p, connected, 2, "the next client");
    warm_up(p);
    echo_exact(p, buf, MIB, 9);
    free(buf);
    ck_assert_msg(aipc_probe_exit(p, WAIT_MS), "Exit did not return");
    PEER_DONE(&peer, 0);
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
}
END_TEST

/* ---- the peer cannot map our segments ------------------------------------------------------ */

/* _i bit 0: this end's engine; bit 1: this end is the client. Our segments are granted to
 * SYSTEM instead of the peer (test hook): the peer's OpenFileMappingW gets error 5 (Wine
 * enforces section DACLs), it answers ok:false, we count map failures and send everything
 * inline, byte-exact; its own segments still carry its messages to us. */
START_TEST(map_denied_goes_inline)
{
    PipeImplType mine = (_i & 1) ? PIPE_OVERLAPPED : PIPE_ASYNC;
    ck_assert(SetEnvironmentVariableA("AIPC_TEST_SHM_GRANT_SID", "S-1-5-18"));
    aipc_probe *p = new_probe();
    p->keep = 1;
    aipc_proc peer;
    pair_up(p, &peer, mine, (_i & 2) != 0, "shmdeny", "");
    long long n = 0;
    for (int i = 0; i < 100 && stats_of(p).shm_map_failures == 0; i++) {
        ck_assert_int_eq(aipc_probe_send(p, "warm", 4), AIPC_OK);
        WAIT_FOR(p, recv_count, ++n, "a warm-up echo");
    }
    aipc_probe_clear_msgs(p);
    uint8_t *buf = malloc(MIB);
    ck_assert_ptr_nonnull(buf);
    for (uint32_t i = 0; i < 8; i++)
        echo_exact(p, buf, i & 1 ? MIB : THR, i + 100);
    free(buf);
    aipc_pipe_stats st = stats_of(p);
    ck_assert_msg(st.shm_map_failures >= 1, "no map failure counted");
    ck_assert_msg(st.shm_sent == 0, "%llu messages went shared to a peer that cannot map",
                  (unsigned long long)st.shm_sent);
    ck_assert_msg(st.shm_inline_fallbacks >= 8, "inline fallbacks %llu",
                  (unsigned long long)st.shm_inline_fallbacks);
    ck_assert_msg(aipc_probe_exit(p, WAIT_MS), "Exit did not return");
    SetEnvironmentVariableA("AIPC_TEST_SHM_GRANT_SID", NULL);
    PEER_DONE(&peer, 0);
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
}
END_TEST

/* The fixture's teardown, and the test hook never outlives its test. */
static void shm_teardown(void)
{
    SetEnvironmentVariableA("AIPC_TEST_SHM_GRANT_SID", NULL);
    p2p_teardown();
}

static Suite *p2p_shm_suite(void)
{
    Suite *s = suite_create("p2p_shm");
    TCase *t = tcase_create("shm");
    tcase_add_checked_fixture(t, p2p_setup, shm_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_loop_test(t, sizes_around_threshold_byte_exact, 0, 4);
    tcase_add_loop_test(t, peer_killed_holding_slots, 0, 2);
    tcase_add_loop_test(t, map_denied_goes_inline, 0, 4);
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(p2p_shm_suite, NULL, NULL, CHECK_MAIN_VERBOSE);
