/*
 * test_p2p_teardown.c - point-to-point SDK teardown: Exit/Release inside every kind of callback
 * (it returns there, nothing follows it, the handle is closed, a final Release returns) and
 * Send racing Exit from three threads.
 *
 * The far end is a plain Win32 pipe client in this process (raw_*, p2p_harness.h); it sees the
 * end of the pipe.
 */
#include "p2p_common.h"
#include "p2p_harness.h"

static void do_exit_pipe(void *arg)
{
    aipc_pipe_exit((aipc_named_pipe *)arg);
}

/* ---- Exit / Release inside each callback ----------------------------------------------------- */

/* _i: bit 0 engine, bit 1 Release (else Exit), bits 2-3 the callback: OnCreate, OnConnected,
 * OnSend, OnDisconnected. The call returns inside the callback, nothing follows it, the handle
 * is closed (the raw client sees the end of the pipe), and a final Release returns. */
START_TEST(exit_or_release_in_each_callback)
{
    static const char kinds[] = {'C', 'O', 'S', 'D'};
    char name[96];
    aipc_test_name(name, sizeof name, "act");
    rv *r = rv_new();
    r->act_on = kinds[(_i >> 2) & 3];
    r->act_release = (_i & 2) != 0;
    ck_assert_int_eq(aipc_pipe_new((_i & 1) ? PIPE_OVERLAPPED : PIPE_ASYNC, &r->pipe), AIPC_OK);
    ck_assert_int_eq(aipc_pipe_send(r->pipe, "queued", 6), AIPC_OK);   /* OnSend after connect */
    wchar_t w[256];
    aipc_test_wname(w, 256, name);
    _snwprintf(r->full, 300, L"\\\\.\\pipe\\%ls", w);
    aipc_named_pipe *pipe = r->pipe;
    aipc_pipe_create(pipe, w, PIPE_SERVER, &r->d);
    if (r->act_on == 'C') {
        ck_assert(rv_wait(r, &r->acted, 1));
        HANDLE h = CreateFileW(r->full, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                               FILE_FLAG_OVERLAPPED, NULL);
        ck_assert_msg(h == INVALID_HANDLE_VALUE, "the pipe is still open after Exit in OnCreate");
        rv_free(r);
        return;
    }
    HANDLE h = raw_open(r->full);
    ck_assert(h != INVALID_HANDLE_VALUE);
    if (r->act_on == 'O') {
        ck_assert(rv_wait(r, &r->acted, 1));
        raw_send_frame(h, "after", 5);      /* must not reach OnRecv */
        ck_assert(raw_sees_close(h));
    } else if (r->act_on == 'S') {
        uint8_t *f;
        ck_assert_int_eq(raw_read_frame(h, &f), 6);
        free(f);
        ck_assert(rv_wait(r, &r->acted, 1));
        raw_send_frame(h, "after", 5);
        ck_assert(raw_sees_close(h));
    } else {
        uint8_t *f;
        ck_assert_int_eq(raw_read_frame(h, &f), 6);
        free(f);
        CloseHandle(h);
        h = INVALID_HANDLE_VALUE;
        ck_assert(rv_wait(r, &r->acted, 1));
        /* No relisten after Exit/Release in OnDisconnected: the pipe name is gone. */
        HANDLE h2 = CreateFileW(r->full, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                                FILE_FLAG_OVERLAPPED, NULL);
        ck_assert_msg(h2 == INVALID_HANDLE_VALUE, "still listening after Exit in OnDisconnected");
    }
    if (h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
    ck_assert_int_eq(rv_get(r, &r->recv), 0);
    if (!r->act_release)
        ck_assert_int_eq(aipc_pipe_send(r->pipe, "x", 1), AIPC_ECLOSED);
    rv_free(r);
}
END_TEST

/* ---- Send racing Exit ------------------------------------------------------------------------ */

typedef struct racer {
    aipc_named_pipe *pipe;
    HANDLE go;
    volatile LONG bad;
} racer;

static DWORD WINAPI race_sender(void *arg)
{
    racer *x = arg;
    WaitForSingleObject(x->go, WAIT_MS);
    uint8_t m[512];
    memset(m, 3, sizeof m);
    for (int i = 0; i < 3000; i++) {
        int rc = aipc_pipe_send(x->pipe, m, 1 + (size_t)(i % 512));
        if (rc == AIPC_ECLOSED)
            break;
        if (rc != AIPC_OK && rc != AIPC_EQUEUEFULL)
            InterlockedIncrement(&x->bad);
    }
    return 0;
}

/* Three threads Send while the test thread calls Exit: Exit returns, Sends only ever answer
 * 0 / AIPC_EQUEUEFULL / AIPC_ECLOSED, no callback after Exit. 10 rounds. _i: engine. */
START_TEST(send_races_exit)
{
    for (int round = 0; round < 10; round++) {
        char name[96];
        aipc_test_name(name, sizeof name, "race");
        rv *s = rv_new();
        rv_start(s, _i ? PIPE_OVERLAPPED : PIPE_ASYNC, PIPE_SERVER, name, 0, 0, -1);
        ck_assert(rv_wait(s, &s->created, 1));
        HANDLE h = raw_open(s->full);
        ck_assert(h != INVALID_HANDLE_VALUE);
        ck_assert(rv_wait(s, &s->connected, 1));
        racer x = {s->pipe, CreateEventW(NULL, TRUE, FALSE, NULL), 0};
        HANDLE th[3];
        for (int i = 0; i < 3; i++)
            th[i] = CreateThread(NULL, 0, race_sender, &x, 0, NULL);
        SetEvent(x.go);
        ck_assert(aipc_test_call_bounded(do_exit_pipe, s->pipe, WAIT_MS));
        InterlockedExchange(&s->gone, 1);
        ck_assert(WaitForMultipleObjects(3, th, TRUE, WAIT_MS) == WAIT_OBJECT_0);
        for (int i = 0; i < 3; i++)
            CloseHandle(th[i]);
        CloseHandle(x.go);
        ck_assert_int_eq(x.bad, 0);
        ck_assert(raw_sees_close(h));
        CloseHandle(h);
        rv_free(s);
    }
}
END_TEST

static Suite *p2p_teardown_suite(void)
{
    Suite *s = suite_create("p2p_teardown");
    TCase *t;
    t = tcase_create("lifetime");
    tcase_add_checked_fixture(t, p2p_setup, p2p_teardown);
    tcase_set_timeout(t, 300);
    tcase_add_loop_test(t, exit_or_release_in_each_callback, 0, 16);
    tcase_add_loop_test(t, send_races_exit, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(p2p_teardown_suite, NULL, NULL, CHECK_MAIN_VERBOSE); /* a line per test, unbuffered */
