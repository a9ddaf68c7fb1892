/*
 * test_p2p_lifecycle.c - connection life cycle between real processes: a peer killed
 * mid-stream (OnDisconnected, no handle leak, the server takes the next client), a client
 * started before its server, a server that never appears (OnConnected(false) within the
 * connect timeout), and Exit/Release during heavy traffic and from inside OnRecv (no deadlock,
 * no callback afterwards).
 */
#include "p2p_common.h"

/* Handle-count slack. At rest (pipe released) none is allowed. While a connection streams, the
 * count moves by up to 2 with no trend (measured under Wine 8 over 8 kill/reconnect rounds:
 * 21..23 for APC and 22..23 for overlapped: operations in flight hold a handle or two), so a
 * leak is caught as growth beyond that over KILL_ROUNDS rounds (one leaked handle per
 * connection gives +4). */
#define HANDLE_SLACK_AT_REST   0
#define HANDLE_SLACK_STREAMING 2
#define KILL_ROUNDS 5

/* One whole server life (create, a peer connects, one echo, exit, release) so that the
 * resources made once per process - the SDK's I/O thread and completion port for `engine`,
 * the test utilities' job object - exist before a handle baseline is taken. */
static void warm_up(PipeImplType engine)
{
    char name[96];
    aipc_test_name(name, sizeof name, "warm");
    aipc_probe *p = new_probe();
    start_probe(p, engine, PIPE_SERVER, name, 0, 0);
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe", "--mode echo --role client --engine %s --pipe %s",
                                     engine_arg(engine), name), AIPC_OK);
    WAIT_FOR(p, connected, 1, "warm-up connect");
    ck_assert_int_eq(aipc_probe_send(p, "warm", 4), AIPC_OK);
    WAIT_FOR(p, recv_count, 1, "warm-up echo");
    ck_assert_msg(aipc_probe_exit(p, WAIT_MS), "Exit did not return");
    PEER_DONE(&peer, 0);
    free_probe(p);
}

/* ---- peer killed mid-stream --------------------------------------------------------------- */

/* A streaming client is killed KILL_ROUNDS times in a row; each time the server sees OnDisconnected,
 * its handle count is back where it was with the first client, and it accepts the next client
 * (finally an echo client answers), and once released the process has exactly the handles it
 * had before the server was created. _i: server engine here (the peers use the other one). */
START_TEST(killed_client_server_recovers)
{
    PipeImplType mine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    const char *theirs = engine_arg(_i ? PIPE_ASYNC : PIPE_OVERLAPPED);
    warm_up(mine);
    char name[96];
    aipc_test_name(name, sizeof name, "kill");
    DWORD at_rest = aipc_test_handle_count();
    aipc_probe *p = new_probe();
    start_probe(p, mine, PIPE_SERVER, name, 0, 0);

    DWORD counts[KILL_ROUNDS];
    for (int round = 0; round < KILL_ROUNDS; round++) {
        aipc_proc peer;
        ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe",
                                         "--mode stream --size 4096 --role client --engine %s --pipe %s",
                                         theirs, name), AIPC_OK);
        WAIT_FOR(p, connected, round + 1, "connect");
        long long seen = aipc_probe_get(p, &p->recv_count);
        WAIT_FOR(p, recv_count, seen + 50, "streamed messages");
        counts[round] = aipc_test_handle_count();
        aipc_proc_kill(&peer);
        aipc_proc_close(&peer);
        WAIT_FOR(p, disconnected, round + 1, "OnDisconnected after TerminateProcess");
    }
    ck_assert_msg(counts[0] > 0, "cannot count handles");
    for (int round = 1; round < KILL_ROUNDS; round++)
        ck_assert_msg(counts[round] <= counts[0] + HANDLE_SLACK_STREAMING,
                      "handle count while connected grew: %lu in round 0, %lu in round %d",
                      (unsigned long)counts[0], (unsigned long)counts[round], round);

    p->keep = 1;
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe", "--mode echo --role client --engine %s --pipe %s",
                                     theirs, name), AIPC_OK);
    WAIT_FOR(p, connected, KILL_ROUNDS + 1, "the next client");
    aipc_probe_clear_msgs(p);
    long long before = aipc_probe_get(p, &p->recv_count);
    ck_assert_int_eq(aipc_probe_send(p, "after the kills", 15), AIPC_OK);
    WAIT_FOR(p, recv_count, before + 1, "echo from the next client");
    EnterCriticalSection(&p->lock);
    int found = 0;
    for (size_t i = 0; i < p->nmsgs; i++)
        found |= p->msgs[i].size == 15 && !memcmp(p->msgs[i].data, "after the kills", 15);
    LeaveCriticalSection(&p->lock);
    ck_assert_msg(found, "the echo did not come back");
    ck_assert_msg(aipc_probe_exit(p, WAIT_MS), "Exit did not return");
    PEER_DONE(&peer, 0);
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
    DWORD after = aipc_test_handle_count();
    ck_assert_msg(after <= at_rest + HANDLE_SLACK_AT_REST,
                  "handles: %lu before the server, %lu after it was released", (unsigned long)at_rest,
                  (unsigned long)after);
}
END_TEST

/* A client whose server process is killed mid-stream sees OnDisconnected, and releasing it
 * gives back every handle it took. _i: client engine here. */
START_TEST(killed_server_client_recovers)
{
    PipeImplType mine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    warm_up(mine);
    char name[96];
    aipc_test_name(name, sizeof name, "kill-srv");
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe",
                                     "--mode stream --size 4096 --role server --engine %s --pipe %s",
                                     engine_arg(_i ? PIPE_ASYNC : PIPE_OVERLAPPED), name), AIPC_OK);
    DWORD baseline = aipc_test_handle_count();
    ck_assert_msg(baseline > 0, "cannot count handles");
    aipc_probe *p = new_probe();
    start_probe(p, mine, PIPE_CLIENT, name, 20000, 0);
    WAIT_FOR(p, connected, 1, "connect");
    WAIT_FOR(p, recv_count, 50, "streamed messages");
    aipc_proc_kill(&peer);
    WAIT_FOR(p, disconnected, 1, "OnDisconnected after TerminateProcess");
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
    aipc_proc_close(&peer);
    DWORD after = aipc_test_handle_count();
    /* The peer's process and thread handles were open at the baseline and are closed now. */
    ck_assert_msg(after + 2 <= baseline + HANDLE_SLACK_AT_REST, "handles: %lu before, %lu after", (unsigned long)baseline,
                  (unsigned long)after);
}
END_TEST

/* ---- who starts first --------------------------------------------------------------------- */

/* A client started before its server connects once the server appears, in both directions
 * (peer client first / this client first). _i: engine here. */
START_TEST(client_started_before_server)
{
    PipeImplType mine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    const char *theirs = engine_arg(_i ? PIPE_ASYNC : PIPE_OVERLAPPED);

    /* 1. the peer's client is trying before this server exists */
    char name[96], ev_name[96];
    aipc_test_name(name, sizeof name, "late-srv");
    aipc_test_name(ev_name, sizeof ev_name, "ready");
    wchar_t wev[96];
    aipc_test_wname(wev, 96, ev_name);
    HANDLE ready = CreateEventW(NULL, TRUE, FALSE, wev);
    ck_assert_ptr_nonnull(ready);
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe",
                                     "--mode echo --role client --engine %s --pipe %s --connect-timeout 20000 --ready %s",
                                     theirs, name, ev_name), AIPC_OK);
    ck_assert_msg(aipc_test_wait(ready, WAIT_MS), "the peer client never started connecting");
    CloseHandle(ready);
    aipc_probe *p = new_probe();
    p->keep = 1;
    start_probe(p, mine, PIPE_SERVER, name, 0, 0);
    WAIT_FOR(p, connected, 1, "the waiting client");
    ck_assert_int_eq(aipc_probe_send(p, "ping", 4), AIPC_OK);
    WAIT_FOR(p, recv_count, 1, "echo");
    ck_assert_mem_eq(p->msgs[0].data, "ping", 4);
    ck_assert_msg(aipc_probe_exit(p, WAIT_MS), "Exit did not return");
    PEER_DONE(&peer, 0);
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);

    /* 2. this client is trying before the peer's server exists */
    aipc_test_name(name, sizeof name, "late-srv2");
    p = new_probe();
    p->keep = 1;
    start_probe(p, mine, PIPE_CLIENT, name, 20000, 0);   /* waits for OnCreate: attempt started */
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe", "--mode echo --once --role server --engine %s --pipe %s",
                                     theirs, name), AIPC_OK);
    WAIT_FOR(p, connected, 1, "the late server");
    ck_assert_int_eq(aipc_probe_send(p, "pong", 4), AIPC_OK);
    WAIT_FOR(p, recv_count, 1, "echo");
    ck_assert_mem_eq(p->msgs[0].data, "pong", 4);
    ck_assert_msg(aipc_probe_exit(p, WAIT_MS), "Exit did not return");
    PEER_DONE(&peer, 0);
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
}
END_TEST

/* With no server at all, the client reports OnConnected(false) after about its connect timeout
 * (1.5 s here: not much earlier, not much later), and nothing else. _i: engine. */
START_TEST(server_absent_connect_times_out)
{
    enum { TIMEOUT = 1500 };
    char name[96];
    aipc_test_name(name, sizeof name, "absent");
    aipc_probe *p = new_probe();
    uint64_t t0 = aipc_test_now_ms();
    ck_assert_int_eq(aipc_probe_start(p, _i ? PIPE_OVERLAPPED : PIPE_ASYNC, PIPE_CLIENT, name, TIMEOUT, 0),
                     AIPC_OK);
    WAIT_FOR(p, connect_failed, 1, "OnConnected(false)");
    uint64_t elapsed = aipc_test_now_ms() - t0;
    ck_assert_msg(elapsed >= TIMEOUT * 2 / 3 && elapsed <= TIMEOUT + 10000,
                  "OnConnected(false) after %llu ms for a %d ms timeout", (unsigned long long)elapsed, TIMEOUT);
    ck_assert_int_eq(aipc_probe_get(p, &p->connected), 0);
    ck_assert_int_eq(aipc_probe_get(p, &p->disconnected), 0);
    ck_assert_int_lt(aipc_probe_event_pos(p, 'C'), aipc_probe_event_pos(p, 'o'));
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
}
END_TEST

/* ---- Exit / Release under traffic --------------------------------------------------------- */

/* Both directions are busy (the peer streams 16 KiB messages, this side has 8 MiB queued)
 * when this side calls Exit (even _i) or Release (odd _i) from the test thread: the call
 * returns in bounded time, no callback follows, the peer sees the disconnect.
 * _i / 2: engine here. */
START_TEST(exit_or_release_during_traffic)
{
    PipeImplType mine = (_i / 2) ? PIPE_OVERLAPPED : PIPE_ASYNC;
    int release = _i & 1;
    char name[96];
    aipc_test_name(name, sizeof name, "busy");
    aipc_probe *p = new_probe();
    start_probe(p, mine, PIPE_SERVER, name, 0, 0);
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe",
                                     "--mode stream --size 16384 --role client --engine %s --pipe %s",
                                     engine_arg((_i / 2) ? PIPE_ASYNC : PIPE_OVERLAPPED), name), AIPC_OK);
    WAIT_FOR(p, connected, 1, "connect");
    uint8_t *chunk = malloc(65536);
    ck_assert_ptr_nonnull(chunk);
    aipc_pattern_fill(chunk, 65536, 7);
    for (int i = 0; i < 128; i++)
        ck_assert_int_eq(aipc_probe_send(p, chunk, 65536), AIPC_OK);
    free(chunk);
    WAIT_FOR(p, recv_count, 100, "streamed messages");
    if (release) {
        free_probe(p);   /* fails the test if Release does not return in time */
    } else {
        ck_assert_msg(aipc_probe_exit(p, WAIT_MS), "Exit during traffic did not return");
        long long n = aipc_probe_get(p, &p->recv_count);
        PEER_DONE(&peer, 0);   /* the peer saw the disconnect */
        ck_assert_int_eq(aipc_probe_get(p, &p->recv_count), n);
        ASSERT_PROBE_CLEAN(p);
        free_probe(p);
        return;
    }
    PEER_DONE(&peer, 0);
}
END_TEST

typedef struct in_callback {
    int release;
    long long at;
} in_callback;

/* I/O thread: on the at-th message, Exit or Release the pipe from inside OnRecv. */
static void exit_in_callback_hook(aipc_probe *p, const uint8_t *data, int size)
{
    in_callback *c = p->user;
    if (!p->pipe || p->recv_count != c->at)
        return;
    if (c->release) {
        aipc_pipe_free(p->pipe);
        p->pipe = NULL;
    } else {
        aipc_pipe_exit(p->pipe);
    }
    InterlockedExchange(&p->exited, 1);   /* any callback after this one is late */
    EnterCriticalSection(&p->lock);
    p->hook_done = 1;
    WakeAllConditionVariable(&p->changed);
    LeaveCriticalSection(&p->lock);
}

/* Exit (even _i) or Release (odd _i) called inside OnRecv while the peer streams: the call
 * returns, no further callback runs, the peer sees the disconnect. _i / 2: engine here. */
START_TEST(exit_or_release_inside_onrecv)
{
    PipeImplType mine = (_i / 2) ? PIPE_OVERLAPPED : PIPE_ASYNC;
    in_callback c = {_i & 1, 20};
    char name[96];
    aipc_test_name(name, sizeof name, "in-cb");
    aipc_probe *p = new_probe();
    p->hook = exit_in_callback_hook;
    p->user = &c;
    start_probe(p, mine, PIPE_SERVER, name, 0, 0);
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe",
                                     "--mode stream --size 1000 --role client --engine %s --pipe %s",
                                     engine_arg((_i / 2) ? PIPE_ASYNC : PIPE_OVERLAPPED), name), AIPC_OK);
    WAIT_FOR(p, hook_done, 1, "Exit/Release inside OnRecv returned");
    PEER_DONE(&peer, 0);   /* the peer saw the disconnect */
    ck_assert_int_eq(aipc_probe_get(p, &p->recv_count), c.at);
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
}
END_TEST

static Suite *p2p_lifecycle_suite(void)
{
    Suite *s = suite_create("p2p_lifecycle");
    TCase *t = tcase_create("kill");
    tcase_add_checked_fixture(t, p2p_setup, p2p_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_loop_test(t, killed_client_server_recovers, 0, 2);
    tcase_add_loop_test(t, killed_server_client_recovers, 0, 2);
    suite_add_tcase(s, t);

    t = tcase_create("connect");
    tcase_add_checked_fixture(t, p2p_setup, p2p_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_loop_test(t, client_started_before_server, 0, 2);
    tcase_add_loop_test(t, server_absent_connect_times_out, 0, 2);
    suite_add_tcase(s, t);

    t = tcase_create("teardown");
    tcase_add_checked_fixture(t, p2p_setup, p2p_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_loop_test(t, exit_or_release_during_traffic, 0, 4);
    tcase_add_loop_test(t, exit_or_release_inside_onrecv, 0, 4);
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(p2p_lifecycle_suite, NULL, NULL, CHECK_MAIN_VERBOSE); /* a line per test, unbuffered */
