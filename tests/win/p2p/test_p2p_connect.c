/*
 * test_p2p_connect.c - point-to-point SDK connection set-up: ConnectNamedPipe's outcomes at the
 * first listen (the client came first and stayed, or came and left), more than 64 PIPE_ASYNC
 * listeners (the thread-pool wait path), and a client giving up on a busy server.
 *
 * The far end is a plain Win32 pipe client in this process (raw_*, p2p_harness.h), for exact
 * control over when a client comes and goes; otherwise two SDK pipes of different engines.
 */
#include "p2p_common.h"
#include "p2p_harness.h"

/* ---- ConnectNamedPipe outcomes ------------------------------------------------------------ */

/* I/O thread, inside OnCreate (before the first ConnectNamedPipe): a client opens the new
 * instance, and either stays (ERROR_PIPE_CONNECTED) or leaves at once (ERROR_NO_DATA). */
static void client_before_listen(rv *r)
{
    r->raw = CreateFileW(r->full, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                         FILE_FLAG_OVERLAPPED, NULL);
    if (r->raw != INVALID_HANDLE_VALUE && !r->raw_keep) {
        CloseHandle(r->raw);
        r->raw = INVALID_HANDLE_VALUE;
    }
}

/* _i bit 0: engine; bit 1: the early client stays (1) or has left (0). Either way that client
 * (if it stayed) and the next one are served. */
START_TEST(connect_outcomes_first_listen)
{
    char name[96];
    aipc_test_name(name, sizeof name, "outcome");
    rv *r = rv_new();
    r->on_create_hook = client_before_listen;
    r->raw_keep = (_i & 2) != 0;
    rv_start(r, (_i & 1) ? PIPE_OVERLAPPED : PIPE_ASYNC, PIPE_SERVER, name, 0, 0, -1);
    ck_assert(rv_wait(r, &r->created, 1));
    ck_assert_int_eq(rv_get(r, &r->create_ok), 1);
    long long want = 0;
    if (r->raw_keep) {
        ck_assert_msg(r->raw != INVALID_HANDLE_VALUE, "early client could not open (%lu)",
                      GetLastError());
        ck_assert(rv_wait(r, &r->connected, 1));
        ck_assert(raw_send_frame(r->raw, "early", 5));
        ck_assert(rv_wait(r, &r->recv, ++want));
        CloseHandle(r->raw);
        r->raw = INVALID_HANDLE_VALUE;
        ck_assert(rv_wait(r, &r->disconnected, 1));
    }
    HANDLE h = raw_open(r->full);
    ck_assert(h != INVALID_HANDLE_VALUE);
    ck_assert(raw_send_frame(h, "next", 4));
    ck_assert_msg(rv_wait(r, &r->recv, ++want), "the next client was not served");
    ck_assert_int_eq(rv_get(r, &r->connect_failed), 0);
    ck_assert_int_eq(rv_get(r, &r->last_recv_size), 4);
    CloseHandle(h);
    rv_free(r);
}
END_TEST

/* ---- more than 64 PIPE_ASYNC listeners -------------------------------------------------------- */

/* 70 PIPE_ASYNC servers listen at once (64 on the I/O thread's own wait, the rest through
 * thread-pool waits); clients of both kinds of slot are served, and listeners of both kinds are
 * released while their ConnectNamedPipe is pending. */
START_TEST(apc_listeners_beyond_64)
{
    enum { N = 70 };
    rv *r[N];
    char name[96];
    for (int i = 0; i < N; i++) {
        aipc_test_name(name, sizeof name, "many-listen");
        r[i] = rv_new();
        rv_start(r[i], PIPE_ASYNC, PIPE_SERVER, name, 0, 0, -1);
    }
    for (int i = 0; i < N; i++)
        ck_assert(rv_wait(r[i], &r[i]->created, 1));
    static const int pick[] = {0, 63, 64, 66, 69, 0, 66};
    for (size_t k = 0; k < sizeof pick / sizeof pick[0]; k++) {
        rv *s = r[pick[k]];
        long long before = rv_get(s, &s->recv);
        HANDLE h = raw_open(s->full);
        ck_assert_msg(h != INVALID_HANDLE_VALUE, "server %d: cannot connect", pick[k]);
        ck_assert(raw_send_frame(h, "hi", 2));
        ck_assert_msg(rv_wait(s, &s->recv, before + 1), "server %d did not receive", pick[k]);
        ck_assert(aipc_pipe_send(s->pipe, "yo", 2) == AIPC_OK);
        uint8_t *f;
        ck_assert_int_eq(raw_read_frame(h, &f), 2);
        free(f);
        long long disc = rv_get(s, &s->disconnected);
        CloseHandle(h);
        ck_assert(rv_wait(s, &s->disconnected, disc + 1));
    }
    for (int i = N - 1; i >= 0; i--)
        rv_free(r[i]);
}
END_TEST

/* ---- client: busy server ---------------------------------------------------------------------- */

/* The server's only instance is taken: a client gives up after its connect timeout with
 * OnConnected(false), and Send then says AIPC_ECLOSED. _i: client engine. */
START_TEST(client_busy_server_times_out)
{
    char name[96];
    aipc_test_name(name, sizeof name, "busy-srv");
    rv *s = rv_new();
    rv_start(s, _i ? PIPE_ASYNC : PIPE_OVERLAPPED, PIPE_SERVER, name, 0, 0, -1);
    ck_assert(rv_wait(s, &s->created, 1));
    HANDLE h = raw_open(s->full);
    ck_assert(h != INVALID_HANDLE_VALUE);
    ck_assert(rv_wait(s, &s->connected, 1));
    rv *c = rv_new();
    uint64_t t0 = aipc_test_now_ms();
    rv_start(c, _i ? PIPE_OVERLAPPED : PIPE_ASYNC, PIPE_CLIENT, name, 300, 0, -1);
    ck_assert(rv_wait(c, &c->connect_failed, 1));
    uint64_t took = aipc_test_now_ms() - t0;
    ck_assert_msg(took >= 250 && took < 5000, "gave up after %llu ms", (unsigned long long)took);
    ck_assert_int_eq(rv_get(c, &c->connected), 0);
    ck_assert_int_eq(aipc_pipe_send(c->pipe, "x", 1), AIPC_ECLOSED);
    rv_free(c);
    CloseHandle(h);
    rv_free(s);
}
END_TEST

static Suite *p2p_connect_suite(void)
{
    Suite *s = suite_create("p2p_connect");
    TCase *t;
    t = tcase_create("setup");
    tcase_add_checked_fixture(t, p2p_setup, p2p_teardown);
    tcase_set_timeout(t, 300);
    tcase_add_loop_test(t, connect_outcomes_first_listen, 0, 4);
    tcase_add_test(t, apc_listeners_beyond_64);
    tcase_add_loop_test(t, client_busy_server_times_out, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(p2p_connect_suite, NULL, NULL, CHECK_MAIN_VERBOSE); /* a line per test, unbuffered */
