/*
 * test_gui_bus_close.c - aipc_bus_close while callbacks of the client are running or queued,
 * against the real broker (asyncipc-broker.exe, its own process; bt_broker from bus_test).
 *
 *   close_from_wndproc_while_on_message_sends  aipc_bus_close called on the UI thread inside
 *       the window procedure while on_message (I/O thread, no dispatcher) is blocked in
 *       SendMessage to that window (deterministic: the callback signals first, the window
 *       procedure waits for the signal without pumping, then closes). Close must serve the sent
 *       message, wait for that callback only, then run on_state(CLOSED) on the closing thread
 *       before returning; no callback after it returns.
 *   close_with_slow_backlog  on_message takes 100 ms (deliberately) and dozens of messages are
 *       waiting: close returns after at most the callback that was running - counted, not timed:
 *       callbacks started grew by at most 1 from the moment close was called, none started
 *       after it returned. _i = 0: callbacks on the I/O thread; _i = 1: on an
 *       AIPC_DISPATCH_MANUAL dispatcher run by a worker thread (the backlog then sits in the
 *       dispatcher's queue), close from a third thread.
 */
#include "gui_test.h"

enum { WM_APP_DO_CLOSE = WM_APP + 1, WM_APP_FROM_CB };
#define FROM_CB_RESULT 0x5A5A

/* The MANUAL dispatcher's worker of close_with_slow_backlog, stopped by the teardown after a
 * failure (before gui_teardown frees the dispatcher). */
static HANDLE g_runner, g_runner_stop;

static void teardown(void)
{
    if (g_runner) {
        SetEvent(g_runner_stop);
        WaitForSingleObject(g_runner, WAIT_MS);
        CloseHandle(g_runner);
        g_runner = NULL;
    }
    gui_teardown();
}

/* ---- close from a window procedure --------------------------------------------------------- */
typedef struct closer {
    HWND hwnd;
    aipc_bus *bus;
    aipc_bus *pub;               /* the publisher (another client, same process) */
    char topic[64];
    HANDLE connected, cb_blocked, pong;
    DWORD ui_thread;
    /* callbacks */
    volatile LONG armed, msgs, inside, max_inside, callbacks, late, cb_done;
    volatile LONG closed_states, closed_on_ui, closed_before_return, closed_in_close;
    volatile LONG close_returned;
    volatile LRESULT cb_result;
    /* UI thread */
    int in_close, served, served_in_close, done, blocked_seen;
    LONG cb_done_at_return, callbacks_at_return, closed_at_return;
} closer;

static void c_enter(closer *c)
{
    LONG in = InterlockedIncrement(&c->inside);
    if (in > c->max_inside)
        InterlockedExchange(&c->max_inside, in);
    InterlockedIncrement(&c->callbacks);
    if (c->close_returned)
        InterlockedIncrement(&c->late);
}

static void c_leave(closer *c)
{
    InterlockedDecrement(&c->inside);
}

static void c_message(aipc_bus *bus, void *user, const char *topic, const aipc_bus_peer *from,
                      bool retained, const void *data, size_t len)
{
    closer *c = user;
    c_enter(c);
    InterlockedIncrement(&c->msgs);
    if (InterlockedExchange(&c->armed, 0)) {
        SetEvent(c->cb_blocked);
        c->cb_result = SendMessageW(c->hwnd, WM_APP_FROM_CB, 0, 0);
        InterlockedExchange(&c->cb_done, 1);
    }
    c_leave(c);
}

static void c_state(aipc_bus *bus, void *user, aipc_bus_state st, int err)
{
    closer *c = user;
    c_enter(c);
    if (st == AIPC_BUS_CONNECTED)
        SetEvent(c->connected);
    if (st == AIPC_BUS_CLOSED) {
        InterlockedIncrement(&c->closed_states);
        if (GetCurrentThreadId() == c->ui_thread)
            InterlockedIncrement(&c->closed_on_ui);
        if (!c->close_returned)
            InterlockedIncrement(&c->closed_before_return);
    }
    c_leave(c);
}

static void c_pong(aipc_bus *bus, void *user, int status, const aipc_bus_peer *from,
                   const void *data, size_t len)
{
    closer *c = user;
    c_enter(c);
    if (status == 0)
        SetEvent(c->pong);
    c_leave(c);
}

static LRESULT CALLBACK closer_proc(HWND hwnd, UINT msg, WPARAM wp, LPARAM lp)
{
    closer *c = gui_window_user(hwnd);
    if (!c)
        return DefWindowProcW(hwnd, msg, wp, lp);
    switch (msg) {
    case WM_APP_DO_CLOSE:
        InterlockedExchange(&c->armed, 1);
        gui_step("the armed on_message signals that it is about to SendMessage");
        aipc_bus_publish(c->pub, c->topic, "block", 5, false);
        c->blocked_seen = WaitForSingleObject(c->cb_blocked, WAIT_MS) == WAIT_OBJECT_0;
        gui_step("aipc_bus_close inside the window procedure while on_message waits in SendMessage to it");
        c->in_close = 1;
        aipc_bus_close(c->bus);
        c->in_close = 0;
        InterlockedExchange(&c->close_returned, 1);
        c->bus = NULL;
        c->cb_done_at_return = c->cb_done;
        c->callbacks_at_return = c->callbacks;
        c->closed_at_return = c->closed_states;
        c->done = 1;
        gui_step("after aipc_bus_close");
        return 0;
    case WM_APP_FROM_CB:
        c->served++;
        if (c->in_close)
            c->served_in_close++;
        return FROM_CB_RESULT;
    }
    return DefWindowProcW(hwnd, msg, wp, lp);
}

static int closer_done(void *arg)
{
    return ((closer *)arg)->done;
}

START_TEST(close_from_wndproc_while_on_message_sends)
{
    static closer c;   /* static: outlives a failed test's stray callbacks */
    memset(&c, 0, sizeof c);
    c.ui_thread = GetCurrentThreadId();
    c.connected = CreateEventW(NULL, TRUE, FALSE, NULL);
    c.cb_blocked = CreateEventW(NULL, TRUE, FALSE, NULL);
    c.pong = CreateEventW(NULL, TRUE, FALSE, NULL);
    snprintf(c.topic, sizeof c.topic, "gui/close/%lu", (unsigned long)GetCurrentProcessId());

    gui_bus_start("gui-close", "gui-close-pub", 0);
    c.pub = gui_pub.bus;

    static gui_window win;
    ck_assert_msg(gui_window_open(&win, closer_proc, &c) == 0, "no window (see stderr)");
    c.hwnd = win.hwnd;
    gui_left.win = &win;
    gui_left.bus = &c.bus;

    aipc_bus_options o;
    aipc_bus_options_init(&o);
    o.engine = aipc_test_bus_engine();
    o.pipe_name = gui_broker.wpipe;
    o.name = "gui-close-sub";
    o.user = &c;
    o.on_message = c_message;
    o.on_state = c_state;
    gui_step("subscriber connects and subscribes");
    ck_assert_int_eq(aipc_bus_connect(&o, &c.bus), AIPC_OK);
    ck_assert_int_eq(aipc_bus_subscribe(c.bus, c.topic), AIPC_OK);
    ck_assert(gui_pump(NULL, NULL, c.connected, WAIT_MS, NULL));
    ck_assert_int_gt(aipc_bus_ping(c.bus, WAIT_MS, c_pong, &c), 0);   /* subscription in place */
    ck_assert(gui_pump(NULL, NULL, c.pong, WAIT_MS, NULL));
    /* a few ordinary deliveries first */
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(aipc_bus_publish(gui_pub.bus, c.topic, "x", 1, false), 0);
    ck_assert(bt_sync(&gui_pub, WAIT_MS));

    PostMessageW(c.hwnd, WM_APP_DO_CLOSE, 0, 0);
    gui_step_ms(4 * WAIT_MS, "WM_APP_DO_CLOSE handled");
    ck_assert(gui_pump(closer_done, &c, NULL, 3 * WAIT_MS, NULL));
    ck_assert_msg(c.blocked_seen, "the armed on_message never ran");
    ck_assert_msg(c.served == 1 && c.served_in_close == 1,
                  "the callback's SendMessage was served %d times, %d during aipc_bus_close",
                  c.served, c.served_in_close);
    ck_assert_int_eq(c.cb_result, FROM_CB_RESULT);
    ck_assert_msg(c.cb_done_at_return == 1, "aipc_bus_close returned before the running on_message finished");
    ck_assert_msg(c.closed_at_return == 1 && c.closed_before_return == 1,
                  "on_state(CLOSED) ran %ld times before aipc_bus_close returned (want 1)",
                  (long)c.closed_before_return);
    ck_assert_msg(c.closed_on_ui == 1, "on_state(CLOSED) did not run on the closing (UI) thread");

    /* More traffic for the closed client's topic, then a round trip through the same I/O
     * thread: a callback of the closed client would have run by then. */
    gui_step("no callback after close returned");
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(aipc_bus_publish(gui_pub.bus, c.topic, "y", 1, false), 0);
    ck_assert(bt_sync(&gui_pub, WAIT_MS));
    gui_pump(NULL, NULL, NULL, 0, NULL);
    ck_assert_msg(c.late == 0, "%ld callbacks after aipc_bus_close returned", (long)c.late);
    ck_assert_int_eq(c.callbacks, c.callbacks_at_return);
    ck_assert_int_eq(c.closed_states, 1);
    ck_assert_int_eq(c.max_inside, 1);

    gui_window_close(&win);
    CloseHandle(c.connected);
    CloseHandle(c.cb_blocked);
    CloseHandle(c.pong);
    gui_step_done();
}
END_TEST

/* ---- close with a slow backlog ------------------------------------------------------------- */
#define BACKLOG 30
#define SLOW_MS 100   /* deliberate: each on_message takes this long */

typedef struct slow {
    aipc_bus *bus;
    aipc_dispatcher *d;
    HANDLE connected, pong, two_started, stop;
    volatile LONG started, finished, late, closed_returned, inside, max_inside;
} slow;

static void s_message(aipc_bus *bus, void *user, const char *topic, const aipc_bus_peer *from,
                      bool retained, const void *data, size_t len)
{
    slow *s = user;
    LONG in = InterlockedIncrement(&s->inside);
    if (in > s->max_inside)
        InterlockedExchange(&s->max_inside, in);
    if (s->closed_returned)
        InterlockedIncrement(&s->late);
    if (InterlockedIncrement(&s->started) == 2)
        SetEvent(s->two_started);
    Sleep(SLOW_MS);
    InterlockedIncrement(&s->finished);
    InterlockedDecrement(&s->inside);
}

static void s_state(aipc_bus *bus, void *user, aipc_bus_state st, int err)
{
    slow *s = user;
    if (st == AIPC_BUS_CONNECTED)
        SetEvent(s->connected);
}

static void s_pong(aipc_bus *bus, void *user, int status, const aipc_bus_peer *from,
                   const void *data, size_t len)
{
    if (status == 0)
        SetEvent(((slow *)user)->pong);
}

/* The worker running the MANUAL dispatcher until `stop`. */
static DWORD WINAPI s_runner(void *arg)
{
    slow *s = arg;
    HANDLE hs[2] = {s->stop, (HANDLE)aipc_dispatcher_event(s->d)};
    while (WaitForMultipleObjects(2, hs, FALSE, INFINITE) == WAIT_OBJECT_0 + 1)
        aipc_dispatcher_run(s->d, 0);
    return 0;
}

typedef struct close_call {
    slow *s;
    LONG started_before, started_after, finished_after;
} close_call;

/* Runs on a thread of its own (aipc_test_call_bounded): counts around aipc_bus_close. */
static void close_counted(void *arg)
{
    close_call *cc = arg;
    cc->started_before = cc->s->started;
    aipc_bus_close(cc->s->bus);
    cc->started_after = cc->s->started;
    cc->finished_after = cc->s->finished;
    InterlockedExchange(&cc->s->closed_returned, 1);
}

START_TEST(close_with_slow_backlog)
{
    static slow s;
    memset(&s, 0, sizeof s);
    s.connected = CreateEventW(NULL, TRUE, FALSE, NULL);
    s.pong = CreateEventW(NULL, TRUE, FALSE, NULL);
    s.two_started = CreateEventW(NULL, TRUE, FALSE, NULL);
    s.stop = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (_i) {
        ck_assert_int_eq(aipc_dispatcher_new(AIPC_DISPATCH_MANUAL, &s.d), AIPC_OK);
        gui_left.disp = &s.d;
        g_runner_stop = s.stop;
        g_runner = CreateThread(NULL, 0, s_runner, &s, 0, NULL);
        ck_assert_ptr_nonnull(g_runner);
    }
    fprintf(stdout, "close_with_slow_backlog: %s\n", _i ? "MANUAL dispatcher on a worker" : "I/O thread");
    gui_bus_start("gui-slow", "gui-slow-pub", 0);

    aipc_bus_options o;
    aipc_bus_options_init(&o);
    o.engine = aipc_test_bus_engine();
    o.pipe_name = gui_broker.wpipe;
    o.name = "gui-slow-sub";
    o.user = &s;
    o.on_message = s_message;
    o.on_state = s_state;
    o.dispatcher = s.d;
    gui_step("subscriber connects");
    ck_assert_int_eq(aipc_bus_connect(&o, &s.bus), AIPC_OK);
    gui_left.bus = &s.bus;
    ck_assert_int_eq(aipc_bus_subscribe(s.bus, "gui/slow"), AIPC_OK);
    ck_assert(aipc_test_wait(s.connected, WAIT_MS));
    ck_assert_int_gt(aipc_bus_ping(s.bus, WAIT_MS, s_pong, &s), 0);
    ck_assert(aipc_test_wait(s.pong, WAIT_MS));

    gui_step("backlog of %d slow messages", BACKLOG);
    for (int i = 0; i < BACKLOG; i++)
        ck_assert_int_eq(aipc_bus_publish(gui_pub.bus, "gui/slow", "m", 1, false), 0);
    /* (no ping round trip here: without a dispatcher the publisher's pong would wait on the
     * shared I/O thread behind the whole slow backlog) */
    ck_assert(aipc_test_wait(s.two_started, WAIT_MS));
    if (s.d) {
        uint64_t count = 0;
        ck_assert_int_eq(aipc_dispatcher_queued(s.d, &count, NULL), AIPC_OK);
        fprintf(stdout, "  %llu callbacks queued in the dispatcher when close starts\n",
                (unsigned long long)count);
    }

    gui_step_ms(3 * WAIT_MS, "aipc_bus_close with a slow callback running and a backlog queued");
    close_call cc = {&s, 0, 0, 0};
    gui_left.bus = NULL;   /* closed below, returned or not: the teardown must not close it again */
    ck_assert_msg(aipc_test_call_bounded(close_counted, &cc, 2 * WAIT_MS), "aipc_bus_close did not return");
    s.bus = NULL;
    fprintf(stdout, "  callbacks started: %ld when close began, %ld when it returned\n",
            (long)cc.started_before, (long)cc.started_after);
    ck_assert_msg(cc.started_before < BACKLOG, "the backlog was drained before close (%ld started)",
                  (long)cc.started_before);
    ck_assert_msg(cc.started_after - cc.started_before <= 1,
                  "%ld callbacks started while aipc_bus_close ran (allowed: the one running)",
                  (long)(cc.started_after - cc.started_before));
    ck_assert_msg(cc.finished_after == cc.started_after,
                  "aipc_bus_close returned while a callback was still running (%ld started, %ld finished)",
                  (long)cc.started_after, (long)cc.finished_after);

    /* Round trips through the broker and the I/O thread (and, with the dispatcher, a run of its
     * queue): a queued callback of the closed client would have started by then. */
    gui_step("no callback after close returned");
    ck_assert(bt_sync(&gui_pub, WAIT_MS));
    if (s.d) {
        SetEvent(s.stop);
        ck_assert(aipc_test_wait(g_runner, WAIT_MS));
        CloseHandle(g_runner);
        g_runner = NULL;
        int ran = aipc_dispatcher_run(s.d, 0);
        ck_assert_msg(ran == 0, "%d callbacks of the closed client ran from the dispatcher queue", ran);
        aipc_dispatcher_free(s.d);
        s.d = NULL;
    }
    ck_assert(bt_sync(&gui_pub, WAIT_MS));
    ck_assert_msg(s.late == 0, "%ld callbacks started after aipc_bus_close returned", (long)s.late);
    ck_assert_int_eq(s.started, cc.started_after);
    ck_assert_int_eq(s.max_inside, 1);

    CloseHandle(s.connected);
    CloseHandle(s.pong);
    CloseHandle(s.two_started);
    CloseHandle(s.stop);
    gui_step_done();
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("gui_bus_close");
    TCase *t = tcase_create("bus_close");
    tcase_add_checked_fixture(t, NULL, teardown);
    tcase_set_timeout(t, 0);
    tcase_add_test(t, close_from_wndproc_while_on_message_sends);
    tcase_add_loop_test(t, close_with_slow_backlog, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

GUI_CHECK_MAIN(make_suite);
