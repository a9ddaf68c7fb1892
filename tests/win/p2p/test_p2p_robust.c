/*
 * test_p2p_robust.c - an SDK server facing a raw peer (plain Win32 pipe code in p2p_peer.exe,
 * no SDK): valid frames written in odd ways are understood (wire protocol v1), an oversize
 * frame (payload or meta over the limit) or a truncated frame makes the SDK close the
 * connection with an ERROR line in its log, nothing crashes, and the next client is served.
 */
#include "p2p_common.h"

/* True if the log file has an ERROR line. */
static int log_has_error(const char *path)
{
    size_t len = 0;
    char *text = aipc_test_read_file(path, &len);
    int found = text && strstr(text, " ERROR ") != NULL;
    free(text);
    return found;
}

/* After a bad client, a well-behaved SDK client (the other engine) gets an echo. */
static void next_client_is_served(aipc_probe *p, const char *name, PipeImplType mine)
{
    long long connects = aipc_probe_get(p, &p->connected);
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe", "--mode echo --role client --engine %s --pipe %s",
                                     engine_arg(mine == PIPE_ASYNC ? PIPE_OVERLAPPED : PIPE_ASYNC), name),
                     AIPC_OK);
    WAIT_FOR(p, connected, connects + 1, "the next client");
    long long got = aipc_probe_get(p, &p->recv_count);
    ck_assert_int_eq(aipc_probe_send(p, "still serving", 13), AIPC_OK);
    WAIT_FOR(p, recv_count, got + 1, "echo from the next client");
    ck_assert_msg(aipc_probe_exit(p, WAIT_MS), "Exit did not return");
    PEER_DONE(&peer, 0);
}

/* Frames coalesced in one write and a frame split over three writes, from raw Win32 code,
 * are echoed back as proper v1 frames (meta_len 0). _i: server engine. */
START_TEST(raw_valid_frames_are_understood)
{
    PipeImplType mine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    char name[96];
    aipc_test_name(name, sizeof name, "raw-ok");
    aipc_probe *p = new_probe();
    p->echo = 1;
    start_probe(p, mine, PIPE_SERVER, name, 0, 0);
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe", "--mode raw-frames --pipe %s --timeout 20000", name),
                     AIPC_OK);
    PEER_DONE(&peer, 0);   /* 7 = wrong echo frames; see stderr */
    ck_assert_int_eq(aipc_probe_get(p, &p->recv_count), 5);   /* with an empty one split */
    WAIT_FOR(p, disconnected, 1, "the raw client left");
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
}
END_TEST

/* _i bit 0: server engine; _i / 2: 0 = payload over the default 16 MiB limit, 1 = payload over
 * a configured 1 MiB limit, 2 = meta over 64 KiB. The SDK closes the connection (the raw peer
 * sees the pipe end and exits 0), logs an ERROR, and serves the next client. */
START_TEST(oversize_frame_closes_connection)
{
    PipeImplType mine = (_i & 1) ? PIPE_OVERLAPPED : PIPE_ASYNC;
    int kind = _i / 2;
    uint64_t max = kind == 1 ? (1u << 20) : 0;
    char name[96], log[MAX_PATH];
    aipc_test_name(name, sizeof name, "oversize");
    open_test_log(log, sizeof log, "oversize");
    aipc_probe *p = new_probe();
    start_probe(p, mine, PIPE_SERVER, name, 0, max);
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe", "--mode %s --max %llu --pipe %s --timeout 20000",
                                     kind == 2 ? "raw-oversize-meta" : "raw-oversize",
                                     (unsigned long long)(max ? max : AIPC_DEFAULT_MAX_PAYLOAD), name),
                     AIPC_OK);
    PEER_DONE(&peer, 0);   /* 7 = the SDK kept the connection open */
    WAIT_FOR(p, disconnected, 1, "OnDisconnected for the bad client");
    ck_assert_int_eq(aipc_probe_get(p, &p->recv_count), 0);
    next_client_is_served(p, name, mine);   /* also flushes any log line of the bad client */
    ck_assert_msg(log_has_error(log), "no ERROR line in %s", log);
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
}
END_TEST

/* A frame cut short by the client leaving: OnDisconnected, an ERROR line, no OnRecv, and the
 * next client is served. _i: server engine. */
START_TEST(truncated_frame_is_an_error)
{
    PipeImplType mine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    char name[96], log[MAX_PATH];
    aipc_test_name(name, sizeof name, "trunc");
    open_test_log(log, sizeof log, "trunc");
    aipc_probe *p = new_probe();
    start_probe(p, mine, PIPE_SERVER, name, 0, 0);
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe", "--mode raw-truncated --pipe %s --timeout 20000", name),
                     AIPC_OK);
    PEER_DONE(&peer, 0);
    WAIT_FOR(p, disconnected, 1, "OnDisconnected for the truncated frame");
    ck_assert_int_eq(aipc_probe_get(p, &p->recv_count), 0);
    next_client_is_served(p, name, mine);
    ck_assert_msg(log_has_error(log), "no ERROR line in %s", log);
    ASSERT_PROBE_CLEAN(p);
    free_probe(p);
}
END_TEST

static Suite *p2p_robust_suite(void)
{
    Suite *s = suite_create("p2p_robust");
    TCase *t = tcase_create("raw");
    tcase_add_checked_fixture(t, p2p_setup, p2p_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_loop_test(t, raw_valid_frames_are_understood, 0, 2);
    tcase_add_loop_test(t, oversize_frame_closes_connection, 0, 6);
    tcase_add_loop_test(t, truncated_frame_is_an_error, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(p2p_robust_suite, NULL, NULL, CHECK_MAIN_VERBOSE); /* a line per test, unbuffered */
