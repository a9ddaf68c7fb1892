/*
 * test_p2p_bounds.c - point-to-point SDK bounds: the send-queue bound (the option, and the
 * 64 MiB default) against a reader that does not read, and 32 MiB messages with the maximum
 * raised (and a 0-byte one after them).
 *
 * The far end is a plain Win32 pipe client in this process (raw_*, p2p_harness.h) where a test
 * needs a peer that does not read; otherwise two SDK pipes of different engines.
 */
#include "p2p_common.h"
#include "p2p_harness.h"

/* ---- send-queue bound --------------------------------------------------------------------- */

/* A reader that does not read: Send stops with AIPC_EQUEUEFULL near the configured bound
 * (1 MiB), nothing accepted is lost, and once the reader drains the pipe Send works again.
 * _i: engine. */
START_TEST(queue_bound_option)
{
    enum { MSG = 65536, QUEUE = 1 << 20 };
    char name[96];
    aipc_test_name(name, sizeof name, "qbound");
    rv *r = rv_new();
    rv_start(r, _i ? PIPE_OVERLAPPED : PIPE_ASYNC, PIPE_SERVER, name, 0, 0, QUEUE);
    ck_assert_int_eq(aipc_pipe_set_option(r->pipe, AIPC_PIPE_OPT_MAX_QUEUE, 0), AIPC_ESTATE);
    ck_assert(rv_wait(r, &r->created, 1));
    HANDLE h = raw_open(r->full);
    ck_assert(h != INVALID_HANDLE_VALUE);
    ck_assert(rv_wait(r, &r->connected, 1));

    uint8_t *m = malloc(MSG);
    int accepted = 0, rc = 0;
    while (accepted < 200) {
        aipc_pattern_fill(m, MSG, (uint32_t)accepted);
        rc = aipc_pipe_send(r->pipe, m, MSG);
        if (rc != AIPC_OK)
            break;
        accepted++;
    }
    ck_assert_msg(rc == AIPC_EQUEUEFULL, "Send never refused (%d accepted, rc %d)", accepted, rc);
    /* 1 MiB queued plus what the kernel pipe (256 KiB) and one batch in flight absorbed. */
    ck_assert_msg(accepted >= QUEUE / (MSG + 8) && accepted <= 40, "accepted %d", accepted);

    for (int i = 0; i < accepted; i++) {
        uint8_t *f;
        long long n = raw_read_frame(h, &f);
        ck_assert_msg(n == MSG, "frame %d: %lld bytes", i, n);
        ck_assert_msg(aipc_pattern_check(f, MSG, (uint32_t)i) < 0, "frame %d damaged", i);
        free(f);
    }
    ck_assert(rv_wait(r, &r->sent, accepted));
    ck_assert_int_eq(aipc_pipe_send(r->pipe, m, MSG), AIPC_OK);   /* room again */
    uint8_t *f;
    ck_assert_int_eq(raw_read_frame(h, &f), MSG);
    free(f);
    free(m);
    CloseHandle(h);
    rv_free(r);
}
END_TEST

/* Without the option the queue is still bounded (64 MiB by default): a sender of 1 MiB
 * messages to a reader that never reads is refused after about 64 of them, and Release with
 * the big write pending returns. _i: engine. */
START_TEST(queue_bound_default)
{
    enum { MSG = 1 << 20 };
    char name[96];
    aipc_test_name(name, sizeof name, "qdefault");
    rv *r = rv_new();
    rv_start(r, _i ? PIPE_OVERLAPPED : PIPE_ASYNC, PIPE_SERVER, name, 0, 0, -1);
    ck_assert(rv_wait(r, &r->created, 1));
    HANDLE h = raw_open(r->full);
    ck_assert(h != INVALID_HANDLE_VALUE);
    ck_assert(rv_wait(r, &r->connected, 1));
    uint8_t *m = calloc(1, MSG);
    int accepted = 0, rc = 0;
    while (accepted < 160) {
        rc = aipc_pipe_send(r->pipe, m, MSG);
        if (rc != AIPC_OK)
            break;
        accepted++;
    }
    free(m);
    ck_assert_msg(rc == AIPC_EQUEUEFULL, "Send never refused (%d accepted, rc %d)", accepted, rc);
    ck_assert_msg(accepted >= 63 && accepted <= 70, "accepted %d", accepted);
    rv_free(r);
    ck_assert(raw_sees_close(h));
    CloseHandle(h);
}
END_TEST

/* ---- 32 MiB messages ------------------------------------------------------------------------- */

/* With the maximum raised to 40 MiB, a 32 MiB message (and a 0-byte one) crosses whole and
 * OnSend/OnRecv report the exact sizes. _i: server engine (the client uses the other). */
START_TEST(message_32mib)
{
    enum { BIG = 32 << 20 };
    char name[96];
    aipc_test_name(name, sizeof name, "big");
    rv *s = rv_new();
    s->keep = 1;
    rv_start(s, _i ? PIPE_OVERLAPPED : PIPE_ASYNC, PIPE_SERVER, name, 0, 40u << 20, -1);
    ck_assert(rv_wait(s, &s->created, 1));
    rv *c = rv_new();
    rv_start(c, _i ? PIPE_ASYNC : PIPE_OVERLAPPED, PIPE_CLIENT, name, 20000, 40u << 20, -1);
    ck_assert(rv_wait(c, &c->connected, 1));
    uint8_t *m = malloc(BIG);
    aipc_pattern_fill(m, BIG, 32);
    ck_assert_int_eq(aipc_pipe_send(c->pipe, m, BIG), AIPC_OK);
    ck_assert(rv_wait(s, &s->recv, 1));
    EnterCriticalSection(&s->lock);
    ck_assert_int_eq(s->last_recv_size, BIG);
    ck_assert_msg(aipc_pattern_check(s->keep_data, BIG, 32) < 0, "32 MiB message damaged");
    LeaveCriticalSection(&s->lock);
    /* Only now the 0-byte one: sent together, both could arrive before the check above and
     * the kept copy would be the empty message's. */
    ck_assert_int_eq(aipc_pipe_send(c->pipe, m, 0), AIPC_OK);
    ck_assert(rv_wait(c, &c->sent, 2));
    ck_assert(rv_wait(s, &s->recv, 2));
    ck_assert_int_eq(rv_get(s, &s->last_recv_size), 0);
    ck_assert_int_eq(rv_get(c, &c->last_sent_size), 0);
    free(m);
    rv_free(c);
    rv_free(s);
}
END_TEST

static Suite *p2p_bounds_suite(void)
{
    Suite *s = suite_create("p2p_bounds");
    TCase *t;
    t = tcase_create("queue");
    tcase_add_checked_fixture(t, p2p_setup, p2p_teardown);
    tcase_set_timeout(t, 300);
    tcase_add_loop_test(t, queue_bound_option, 0, 2);
    tcase_add_loop_test(t, queue_bound_default, 0, 2);
    suite_add_tcase(s, t);
    t = tcase_create("size");
    tcase_add_checked_fixture(t, p2p_setup, p2p_teardown);
    tcase_set_timeout(t, 300);
    tcase_add_loop_test(t, message_32mib, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(p2p_bounds_suite, NULL, NULL, CHECK_MAIN_VERBOSE); /* a line per test, unbuffered */
