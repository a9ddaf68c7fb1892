/*
 * test_gui_exit.c - a pipe's Exit/Release on the UI thread, and alertable waits inside
 * callbacks, against a real peer process (p2p_peer.exe) streaming over a real pipe.
 *
 *   exit_while_callback_sends  Exit or Release called from inside the window procedure (or
 *       inside the handler of the very message the callback sent: Exit replies to it first) while
 *       OnRecv (I/O thread, no dispatcher) is blocked in SendMessage to that same window. Made
 *       deterministic: the window procedure arms the callback, waits (without pumping) until the
 *       callback has signalled that it is about to SendMessage, then calls Exit/Release. The
 *       contract: Exit waits only for that running callback and serves sent messages meanwhile,
 *       so the SendMessage completes *during* Exit, the callback finishes before Exit returns,
 *       and no callback starts afterwards.
 *   alertable_wait_no_nesting  OnRecv waits alertably (SleepEx / WaitForSingleObjectEx /
 *       MsgWaitForMultipleObjectsEx with MWMO_ALERTABLE) while reads and writes of the pipe
 *       complete: no callback may run nested in it (for PIPE_ASYNC the completions are APCs of
 *       that very thread), and every message still arrives, in order.
 * Every step is bounded by the watchdog (gui_step): a deadlock fails the suite.
 */
#include "gui_test.h"

enum { WM_APP_DO_EXIT = WM_APP + 1, WM_APP_FROM_CB };
#define FROM_CB_RESULT 0x5A5A   /* what the window answers the callback's SendMessage */
#define PROGRESS_AT 10          /* messages received before the test arms the callback */

typedef struct blocker {
    aipc_pipe_delegate d;          /* first member */
    HWND hwnd;
    aipc_named_pipe *pipe;
    int use_release;
    int exit_in_sent;              /* Exit/Release inside the handler of the callback's message */
    HANDLE cb_blocked;             /* the armed callback is about to SendMessage */
    HANDLE progress;               /* PROGRESS_AT messages received */
    /* callbacks (I/O thread) */
    volatile LONG armed, recv, inside, max_inside, late, callbacks, cb_done;
    volatile LONG exit_returned;
    volatile LRESULT cb_result;
    /* UI thread */
    int in_exit, served, served_in_exit, done, blocked_seen;
    LONG cb_done_at_return, recv_at_return, callbacks_at_return;
} blocker;

static void b_enter(blocker *b)
{
    LONG in = InterlockedIncrement(&b->inside);
    if (in > b->max_inside)
        InterlockedExchange(&b->max_inside, in);
    InterlockedIncrement(&b->callbacks);
    if (b->exit_returned)
        InterlockedIncrement(&b->late);
}

static void b_leave(blocker *b)
{
    InterlockedDecrement(&b->inside);
}

static void b_any(aipc_pipe_delegate *d, bool ok)
{
    b_enter((blocker *)d);
    b_leave((blocker *)d);
}

static void b_send(aipc_pipe_delegate *d, int size)
{
    b_enter((blocker *)d);
    b_leave((blocker *)d);
}

static void b_disc(aipc_pipe_delegate *d)
{
    b_enter((blocker *)d);
    b_leave((blocker *)d);
}

/* I/O thread. When armed: announce, then block in SendMessage to the UI thread's window. */
static void b_recv(aipc_pipe_delegate *d, void *data, int size)
{
    blocker *b = (blocker *)d;
    b_enter(b);
    if (InterlockedIncrement(&b->recv) == PROGRESS_AT)
        SetEvent(b->progress);
    if (InterlockedExchange(&b->armed, 0)) {
        SetEvent(b->cb_blocked);
        b->cb_result = SendMessageW(b->hwnd, WM_APP_FROM_CB, 0, 0);
        InterlockedExchange(&b->cb_done, 1);
    }
    b_leave(b);
}

/* Exit or Release on the UI thread, recording what it saw when it returned. */
static void do_exit(blocker *b)
{
    b->in_exit = 1;
    if (b->use_release) {
        aipc_pipe_free(b->pipe);
        b->pipe = NULL;
    } else {
        aipc_pipe_exit(b->pipe);
    }
    b->in_exit = 0;
    InterlockedExchange(&b->exit_returned, 1);
    b->cb_done_at_return = b->cb_done;
    b->recv_at_return = b->recv;
    b->callbacks_at_return = b->callbacks;
    b->done = 1;
}

static LRESULT CALLBACK blocker_proc(HWND hwnd, UINT msg, WPARAM wp, LPARAM lp)
{
    blocker *b = gui_window_user(hwnd);
    if (!b)
        return DefWindowProcW(hwnd, msg, wp, lp);
    switch (msg) {
    case WM_APP_DO_EXIT:
        InterlockedExchange(&b->armed, 1);
        if (b->exit_in_sent) {
            gui_step("%s inside the handler of the message the running OnRecv sent",
                     b->use_release ? "Release" : "Exit");
            return 0;                       /* the loop delivers the callback's message */
        }
        gui_step("the armed OnRecv signals that it is about to SendMessage");
        /* not pumping: the callback's SendMessage now waits for this thread */
        b->blocked_seen = WaitForSingleObject(b->cb_blocked, WAIT_MS) == WAIT_OBJECT_0;
        gui_step("%s inside the window procedure while OnRecv waits in SendMessage to it",
                 b->use_release ? "Release" : "Exit");
        do_exit(b);
        gui_step("after Exit/Release");
        return 0;
    case WM_APP_FROM_CB:
        b->served++;
        if (b->in_exit)
            b->served_in_exit++;
        if (b->exit_in_sent && !b->done) {
            /* The sender is the callback Exit must wait for: Exit replies to it first. */
            b->blocked_seen = 1;
            do_exit(b);
            return FROM_CB_RESULT;          /* too late: the sender already got 0 */
        }
        return FROM_CB_RESULT;
    }
    return DefWindowProcW(hwnd, msg, wp, lp);
}

static int blocker_done(void *arg)
{
    return ((blocker *)arg)->done;
}

/* Starts p2p_peer streaming as the other end (server peers with --once and a ready event). */
static void spawn_streamer(aipc_proc *peer, PipeType our_role, PipeImplType our_engine,
                           const char *name)
{
    const char *engine = gui_engine_arg(our_engine == PIPE_ASYNC ? PIPE_OVERLAPPED : PIPE_ASYNC);
    if (our_role == PIPE_SERVER) {
        ck_assert_int_eq(aipc_proc_spawn(peer, "p2p_peer.exe", "--mode stream --size 1000 --role client --engine %s --pipe %s",
                                         engine, name), AIPC_OK);
        return;
    }
    char ev_name[96];
    aipc_test_name(ev_name, sizeof ev_name, "exit-ready");
    HANDLE ready = CreateEventA(NULL, TRUE, FALSE, ev_name);
    ck_assert_ptr_nonnull(ready);
    ck_assert_int_eq(aipc_proc_spawn(peer, "p2p_peer.exe", "--mode stream --size 1000 --role server --once --engine %s --pipe %s --ready %s",
                                     engine, name, ev_name), AIPC_OK);
    gui_step("peer server ready");
    HANDLE hs[2] = {ready, peer->process};
    DWORD w = WaitForMultipleObjects(2, hs, FALSE, WAIT_MS);
    CloseHandle(ready);
    ck_assert_msg(w == WAIT_OBJECT_0, "the peer server did not become ready (%lu)", (unsigned long)w);
}

/* _i: bit 3 = Exit inside the handler of the callback's own message, bit 2 = engine (ASYNC,
 * OVERLAPPED), bit 1 = our role (SERVER, CLIENT), bit 0 = Exit or Release. */
START_TEST(exit_while_callback_sends)
{
    static blocker b;   /* static: a callback left running by a failed test finds it alive */
    memset(&b, 0, sizeof b);
    PipeImplType engine = (_i & 4) ? PIPE_OVERLAPPED : PIPE_ASYNC;
    PipeType role = (_i & 2) ? PIPE_CLIENT : PIPE_SERVER;
    b.use_release = _i & 1;
    b.exit_in_sent = (_i & 8) != 0;
    fprintf(stdout, "exit_while_callback_sends: engine %s, role %s, %s\n", gui_engine_arg(engine),
            gui_role_arg(role), b.use_release ? "Release" : "Exit");
    b.d.OnCreate = b_any;
    b.d.OnConnected = b_any;
    b.d.OnSend = b_send;
    b.d.OnRecv = b_recv;
    b.d.OnDisconnected = b_disc;
    b.cb_blocked = CreateEventW(NULL, TRUE, FALSE, NULL);
    b.progress = CreateEventW(NULL, TRUE, FALSE, NULL);
    ck_assert(b.cb_blocked && b.progress);

    static gui_window win;
    ck_assert_msg(gui_window_open(&win, blocker_proc, &b) == 0, "no window (see stderr)");
    gui_left.pipe = &b.pipe;
    gui_left.win = &win;
    b.hwnd = win.hwnd;

    char name[96];
    wchar_t wname[128];
    aipc_test_name(name, sizeof name, "exit-cb");
    aipc_test_wname(wname, 128, name);
    aipc_proc peer;
    if (role == PIPE_CLIENT)
        spawn_streamer(&peer, role, engine, name);
    gui_step("aipc_pipe_new + aipc_pipe_create on the UI thread");
    ck_assert_int_eq(aipc_pipe_new(engine, &b.pipe), AIPC_OK);
    ck_assert(aipc_pipe_create(b.pipe, wname, role, &b.d));
    if (role == PIPE_SERVER)
        spawn_streamer(&peer, role, engine, name);

    gui_step("connect and receive %d streamed messages", PROGRESS_AT);
    ck_assert_msg(gui_pump(NULL, NULL, b.progress, WAIT_MS, NULL), "no %d messages within %u ms (got %ld)",
                  PROGRESS_AT, WAIT_MS, (long)b.recv);

    PostMessageW(b.hwnd, WM_APP_DO_EXIT, 0, 0);
    gui_step_ms(4 * WAIT_MS, "WM_APP_DO_EXIT handled");
    ck_assert(gui_pump(blocker_done, &b, NULL, 3 * WAIT_MS, NULL));
    ck_assert_msg(b.blocked_seen, "the armed callback never ran");
    ck_assert_msg(b.served == 1, "the callback's SendMessage was served %d times", b.served);
    if (b.exit_in_sent) {
        ck_assert_int_eq(b.cb_result, 0);   /* replied to by Exit before it waited */
    } else {
        ck_assert_msg(b.served_in_exit == 1, "the callback's SendMessage was not served during %s",
                      b.use_release ? "Release" : "Exit");
        ck_assert_int_eq(b.cb_result, FROM_CB_RESULT);
    }
    ck_assert_msg(b.cb_done_at_return == 1, "%s returned before the running callback finished",
                  b.use_release ? "Release" : "Exit");

    /* The peer sees the disconnect and ends; meanwhile the loop keeps running, so a callback
     * that still started (and sent to the window) would be seen. */
    gui_step("peer exits after the disconnect");
    ck_assert_msg(gui_pump(NULL, NULL, peer.process, WAIT_MS, NULL), "peer still running");
    ck_assert_int_eq(aipc_proc_wait(&peer, 0), AIPC_OK);
    ck_assert_msg(peer.exit_code == 0, "peer exit code %lu", (unsigned long)peer.exit_code);
    aipc_proc_close(&peer);
    gui_pump(NULL, NULL, NULL, 0, NULL);
    ck_assert_msg(b.late == 0, "%ld callbacks started after %s returned", (long)b.late,
                  b.use_release ? "Release" : "Exit");
    ck_assert_int_eq(b.recv, b.recv_at_return);
    ck_assert_int_eq(b.callbacks, b.callbacks_at_return);
    ck_assert_int_eq(b.served, 1);
    ck_assert_int_eq(b.max_inside, 1);
    if (b.pipe) {
        gui_step("Release after Exit");
        aipc_pipe_free(b.pipe);
        b.pipe = NULL;
    }
    gui_window_close(&win);
    CloseHandle(b.cb_blocked);
    CloseHandle(b.progress);
    gui_step_done();
}
END_TEST

/* ---- alertable waits inside callbacks ------------------------------------------------------ */
#define ALERT_MSGS 200
#define ALERT_SIZE 512

typedef struct alerter {
    aipc_pipe_delegate d;
    HANDLE connected, all_recv, all_sent, never;
    volatile LONG inside, max_inside, nested;
    volatile LONG recv, sent, order_errors, data_errors;
    uint32_t next;
} alerter;

static void a_enter(alerter *a)
{
    LONG in = InterlockedIncrement(&a->inside);
    if (in > 1)
        InterlockedIncrement(&a->nested);
    if (in > a->max_inside)
        InterlockedExchange(&a->max_inside, in);
}

static void a_leave(alerter *a)
{
    InterlockedDecrement(&a->inside);
}

static void a_connected(aipc_pipe_delegate *d, bool ok)
{
    alerter *a = (alerter *)d;
    a_enter(a);
    if (ok)
        SetEvent(a->connected);
    a_leave(a);
}

static void a_create(aipc_pipe_delegate *d, bool ok)
{
    a_enter((alerter *)d);
    a_leave((alerter *)d);
}

/* An alertable wait of ~5 ms, three kinds in turn. */
static void alertable_wait(alerter *a, LONG n)
{
    switch (n % 3) {
    case 0: SleepEx(5, TRUE); break;
    case 1: WaitForSingleObjectEx(a->never, 5, TRUE); break;
    default: MsgWaitForMultipleObjectsEx(1, &a->never, 5, QS_ALLINPUT, MWMO_ALERTABLE); break;
    }
}

static void a_recv(aipc_pipe_delegate *d, void *data, int size)
{
    alerter *a = (alerter *)d;
    a_enter(a);
    if (size != ALERT_SIZE || aipc_pattern_check(data, (size_t)size, a->next) != -1)
        InterlockedIncrement(&a->order_errors);
    a->next++;
    LONG n = InterlockedIncrement(&a->recv);
    alertable_wait(a, n);   /* completions of our reads and writes are due meanwhile */
    if (n == ALERT_MSGS)
        SetEvent(a->all_recv);
    a_leave(a);
}

static void a_send(aipc_pipe_delegate *d, int size)
{
    alerter *a = (alerter *)d;
    a_enter(a);
    LONG n = InterlockedIncrement(&a->sent);
    SleepEx(1, TRUE);
    if (n == ALERT_MSGS)
        SetEvent(a->all_sent);
    a_leave(a);
}

static void a_disc(aipc_pipe_delegate *d)
{
    a_enter((alerter *)d);
    a_leave((alerter *)d);
}

static void exit_fn(void *pipe)
{
    aipc_pipe_free(pipe);
}

/* _i: engine (0 ASYNC - the case that matters: completions are APCs of the callback's own
 * thread -, 1 OVERLAPPED). We are the server; p2p_peer echoes (other engine). */
START_TEST(alertable_wait_no_nesting)
{
    static alerter a;
    memset(&a, 0, sizeof a);
    PipeImplType engine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    a.d.OnCreate = a_create;
    a.d.OnConnected = a_connected;
    a.d.OnSend = a_send;
    a.d.OnRecv = a_recv;
    a.d.OnDisconnected = a_disc;
    a.connected = CreateEventW(NULL, TRUE, FALSE, NULL);
    a.all_recv = CreateEventW(NULL, TRUE, FALSE, NULL);
    a.all_sent = CreateEventW(NULL, TRUE, FALSE, NULL);
    a.never = CreateEventW(NULL, TRUE, FALSE, NULL);
    char name[96];
    wchar_t wname[128];
    aipc_test_name(name, sizeof name, "alert");
    aipc_test_wname(wname, 128, name);
    static aipc_named_pipe *pipe;
    ck_assert_int_eq(aipc_pipe_new(engine, &pipe), AIPC_OK);
    gui_left.pipe = &pipe;
    ck_assert(aipc_pipe_create(pipe, wname, PIPE_SERVER, &a.d));
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_peer.exe", "--mode echo --role client --engine %s --pipe %s",
                                     gui_engine_arg(_i ? PIPE_ASYNC : PIPE_OVERLAPPED), name), AIPC_OK);
    gui_step("connect");
    ck_assert(aipc_test_wait(a.connected, WAIT_MS));
    uint8_t buf[ALERT_SIZE];
    for (uint32_t i = 0; i < ALERT_MSGS; i++) {
        aipc_pattern_fill(buf, sizeof buf, i);
        ck_assert_int_eq(aipc_pipe_send(pipe, buf, sizeof buf), AIPC_OK);
    }
    gui_step_ms(4 * WAIT_MS, "%d echoes, each OnRecv waiting alertably", ALERT_MSGS);
    ck_assert_msg(aipc_test_wait(a.all_recv, 2 * WAIT_MS), "%ld of %d echoes", (long)a.recv, ALERT_MSGS);
    ck_assert_msg(aipc_test_wait(a.all_sent, WAIT_MS), "%ld of %d OnSend", (long)a.sent, ALERT_MSGS);
    ck_assert_msg(a.nested == 0 && a.max_inside == 1,
                  "%ld callbacks ran nested in an alertable wait inside a callback (max depth %ld)",
                  (long)a.nested, (long)a.max_inside);
    ck_assert_int_eq(a.order_errors, 0);
    ck_assert_int_eq(a.recv, ALERT_MSGS);
    ck_assert_int_eq(a.sent, ALERT_MSGS);
    gui_step("Release");
    ck_assert(aipc_test_call_bounded(exit_fn, pipe, WAIT_MS));
    pipe = NULL;
    ck_assert_int_eq(aipc_proc_wait(&peer, WAIT_MS), AIPC_OK);
    ck_assert_int_eq(peer.exit_code, 0);
    aipc_proc_close(&peer);
    CloseHandle(a.connected);
    CloseHandle(a.all_recv);
    CloseHandle(a.all_sent);
    CloseHandle(a.never);
    gui_step_done();
}
END_TEST


static Suite *make_suite(void)
{
    Suite *s = suite_create("gui_exit");
    TCase *t = tcase_create("exit_in_wndproc");
    tcase_add_checked_fixture(t, NULL, gui_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_loop_test(t, exit_while_callback_sends, 0, 16);
    suite_add_tcase(s, t);
    t = tcase_create("alertable");
    tcase_add_checked_fixture(t, NULL, gui_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_loop_test(t, alertable_wait_no_nesting, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

GUI_CHECK_MAIN(make_suite);
