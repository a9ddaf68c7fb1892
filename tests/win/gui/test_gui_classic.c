/*
 * test_gui_classic.c - the classic AsyncIPC sample pattern with a real window and a real
 * message loop, for every engine/role pair, against a peer in another process (gui_peer.exe).
 *
 * The UI thread (the test's thread) owns a hidden top-level window with a listbox. Its window
 * procedure calls CreateInstance/Create (on a posted WM_APP_START), Send (when connected) and
 * Exit/Release (in WM_DESTROY). The delegate's callbacks run on the SDK's I/O thread (no
 * dispatcher) and, as the classic samples do, SendMessage every event to the window, which adds
 * a line to the listbox. So:
 *   - Create must not wait for the I/O thread (OnCreate's SendMessage needs the UI thread);
 *   - Exit in WM_DESTROY runs while the peer is still streaming, i.e. while a callback may be
 *     blocked in SendMessage to this very window: Exit must serve it and return.
 * The peer streams "seq:<n>" forever and echoes our "ui:<i>"; the window closes itself
 * (PostMessage WM_CLOSE) once every echo and at least STREAM_MIN streamed messages arrived.
 * A hang at any point is caught by the watchdog (gui_step) and fails the suite.
 */
#include "gui_test.h"

#define UI_MSGS 20      /* messages the window sends ("ui:0".."ui:19"), echoed by the peer */
#define STREAM_MIN 100  /* streamed messages to see before closing */

enum {
    WM_APP_START = WM_APP + 1,
    WM_APP_CREATED,
    WM_APP_CONNECTED,
    WM_APP_RECV,
    WM_APP_SENT,
    WM_APP_DISCONNECTED
};

typedef struct classic {
    IPipeDelegate d;             /* first member: `self` of the callbacks */
    HWND hwnd, list;
    INamedPipe *pipe;
    PipeImplType engine;
    PipeType role;
    wchar_t name[128];
    DWORD ui_thread;

    /* UI thread only */
    int start_handled, create_result;
    int created, create_ok, connected, connect_failed, disconnected;
    int echoes, echo_errors, seq_count, seq_errors, other_msgs, sent;
    long next_seq;
    int close_posted, destroyed, list_lines;
    int in_exit, served_in_exit;   /* messages from callbacks handled while Exit ran */
    int exit_returned_ui;

    /* written by callbacks (I/O thread) */
    volatile LONG inside, max_inside, callbacks, on_ui_thread, thread_changes, late;
    volatile DWORD cb_thread;
    volatile LONG exit_returned;   /* set right after Exit returned */
} classic;

/* Every callback: no overlap, not on the UI thread (no dispatcher), one thread, none after Exit. */
static void cb_enter(classic *c)
{
    LONG in = InterlockedIncrement(&c->inside);
    if (in > c->max_inside)
        InterlockedExchange(&c->max_inside, in);
    InterlockedIncrement(&c->callbacks);
    DWORD t = GetCurrentThreadId();
    if (t == c->ui_thread)
        InterlockedIncrement(&c->on_ui_thread);
    if (!c->cb_thread)
        c->cb_thread = t;
    else if (c->cb_thread != t)
        InterlockedIncrement(&c->thread_changes);
    if (c->exit_returned)
        InterlockedIncrement(&c->late);
}

static void cb_leave(classic *c)
{
    InterlockedDecrement(&c->inside);
}

/* The delegate, as the classic samples write it: forward to the window with SendMessage. */
static void on_create(IPipeDelegate *d, bool ok)
{
    classic *c = (classic *)d;
    cb_enter(c);
    SendMessageW(c->hwnd, WM_APP_CREATED, ok, 0);
    cb_leave(c);
}

static void on_connected(IPipeDelegate *d, bool ok)
{
    classic *c = (classic *)d;
    cb_enter(c);
    SendMessageW(c->hwnd, WM_APP_CONNECTED, ok, 0);
    cb_leave(c);
}

static void on_send(IPipeDelegate *d, int size)
{
    classic *c = (classic *)d;
    cb_enter(c);
    SendMessageW(c->hwnd, WM_APP_SENT, (WPARAM)size, 0);
    cb_leave(c);
}

static void on_recv(IPipeDelegate *d, void *data, int size)
{
    classic *c = (classic *)d;
    cb_enter(c);
    SendMessageW(c->hwnd, WM_APP_RECV, (WPARAM)size, (LPARAM)data);
    cb_leave(c);
}

static void on_disconnected(IPipeDelegate *d)
{
    classic *c = (classic *)d;
    cb_enter(c);
    SendMessageW(c->hwnd, WM_APP_DISCONNECTED, 0, 0);
    cb_leave(c);
}

/* UI thread: one received message (NUL-terminated text). */
static void ui_recv(classic *c, const char *text)
{
    long n;
    char tail;
    gui_list_add(c->list, "recv %s", text);
    if (sscanf(text, "echo:ui:%ld%c", &n, &tail) == 1) {
        if (n != c->echoes)
            c->echo_errors++;
        c->echoes++;
    } else if (sscanf(text, "seq:%ld%c", &n, &tail) == 1) {
        if (n != c->next_seq)
            c->seq_errors++;
        c->next_seq = n + 1;
        c->seq_count++;
    } else {
        c->other_msgs++;
    }
    if (c->echoes >= UI_MSGS && c->seq_count >= STREAM_MIN && !c->close_posted) {
        c->close_posted = 1;
        gui_step("WM_CLOSE -> WM_DESTROY -> Exit/Release while the peer streams");
        PostMessageW(c->hwnd, WM_CLOSE, 0, 0);
    }
}

static LRESULT CALLBACK classic_proc(HWND hwnd, UINT msg, WPARAM wp, LPARAM lp)
{
    classic *c = gui_window_user(hwnd);
    if (!c)
        return DefWindowProcW(hwnd, msg, wp, lp);
    if (c->in_exit && msg >= WM_APP_CREATED && msg <= WM_APP_DISCONNECTED)
        c->served_in_exit++;
    switch (msg) {
    case WM_APP_START:
        c->start_handled = 1;
        gui_step("CreateInstance + Create on the UI thread (must not wait for the I/O thread)");
        if (CreateInstance(c->engine, &c->pipe) != AIPC_OK) {
            gui_list_add(c->list, "CreateInstance failed");
            PostMessageW(hwnd, WM_CLOSE, 0, 0);
            return 0;
        }
        c->create_result = c->pipe->Create(c->pipe, c->name, c->role, &c->d) ? 1 : -1;
        gui_list_add(c->list, "Create returned %d", c->create_result);
        gui_step("OnCreate/OnConnected");
        return 0;
    case WM_APP_CREATED:
        c->created++;
        c->create_ok += wp != 0;
        gui_list_add(c->list, "OnCreate(%d)", (int)wp);
        if (!wp)
            PostMessageW(hwnd, WM_CLOSE, 0, 0);
        return 0;
    case WM_APP_CONNECTED:
        gui_list_add(c->list, "OnConnected(%d)", (int)wp);
        if (!wp) {
            c->connect_failed++;
            PostMessageW(hwnd, WM_CLOSE, 0, 0);
            return 0;
        }
        c->connected++;
        gui_step("exchange: %d echoes and %d streamed messages", UI_MSGS, STREAM_MIN);
        for (int i = 0; i < UI_MSGS; i++) {
            char m[32];
            snprintf(m, sizeof m, "ui:%d", i);
            c->pipe->Send(c->pipe, m);
        }
        return 0;
    case WM_APP_RECV:
        ui_recv(c, (const char *)lp);
        return 0;
    case WM_APP_SENT:
        c->sent++;
        return 0;
    case WM_APP_DISCONNECTED:
        c->disconnected++;
        gui_list_add(c->list, "OnDisconnected");
        return 0;
    case WM_DESTROY:
        c->list_lines = gui_list_count(c->list);
        if (c->pipe) {
            c->in_exit = 1;
            c->pipe->Exit(c->pipe);
            c->in_exit = 0;
            InterlockedExchange(&c->exit_returned, 1);
            c->exit_returned_ui = 1;
            gui_step("Release in WM_DESTROY");
            c->pipe->Release(c->pipe);
            c->pipe = NULL;
        }
        c->destroyed = 1;
        PostQuitMessage(0);
        return 0;
    }
    return DefWindowProcW(hwnd, msg, wp, lp);
}

static int started(void *arg)
{
    return ((classic *)arg)->start_handled;
}

/* _i: bit 1 = engine (ASYNC, OVERLAPPED), bit 0 = our role (SERVER, CLIENT). The peer takes the
 * other role and the other engine. */
START_TEST(classic_pattern)
{
    static classic c;   /* outlives a failed test: a late callback must not touch a dead stack */
    memset(&c, 0, sizeof c);
    c.engine = (_i & 2) ? PIPE_OVERLAPPED : PIPE_ASYNC;
    c.role = (_i & 1) ? PIPE_CLIENT : PIPE_SERVER;
    c.ui_thread = GetCurrentThreadId();
    c.next_seq = 1;   /* gui_peer numbers its stream from 1 */
    c.d.OnCreate = on_create;
    c.d.OnConnected = on_connected;
    c.d.OnSend = on_send;
    c.d.OnRecv = on_recv;
    c.d.OnDisconnected = on_disconnected;
    char name[96];
    aipc_test_name(name, sizeof name, "classic");
    aipc_test_wname(c.name, 128, name);
    const char *peer_engine = gui_engine_arg(c.engine == PIPE_ASYNC ? PIPE_OVERLAPPED : PIPE_ASYNC);
    fprintf(stdout, "classic_pattern: engine %s, role %s\n", gui_engine_arg(c.engine),
            gui_role_arg(c.role));

    aipc_proc peer;
    if (c.role == PIPE_CLIENT) {   /* the peer is the server: wait until it listens */
        char ev_name[96];
        aipc_test_name(ev_name, sizeof ev_name, "classic-ready");
        HANDLE ready = CreateEventA(NULL, TRUE, FALSE, ev_name);
        ck_assert_ptr_nonnull(ready);
        ck_assert_int_eq(aipc_proc_spawn(&peer, "gui_peer.exe", "--pipe %s --role server --engine %s --ready %s",
                                         name, peer_engine, ev_name), AIPC_OK);
        gui_step("peer server ready");
        HANDLE hs[2] = {ready, peer.process};
        DWORD w = WaitForMultipleObjects(2, hs, FALSE, WAIT_MS);
        CloseHandle(ready);
        ck_assert_msg(w == WAIT_OBJECT_0, "the peer server did not become ready (%lu)", (unsigned long)w);
    }

    static gui_window win;
    ck_assert_msg(gui_window_open(&win, classic_proc, &c) == 0, "no window (see stderr)");
    gui_left.pipe = &c.pipe;
    gui_left.win = &win;
    c.hwnd = win.hwnd;
    c.list = win.list;
    PostMessageW(c.hwnd, WM_APP_START, 0, 0);
    gui_step("WM_APP_START dispatched");
    ck_assert_msg(gui_pump(started, &c, NULL, WAIT_MS, NULL), "WM_APP_START not handled");
    if (c.role == PIPE_SERVER)
        ck_assert_int_eq(aipc_proc_spawn(&peer, "gui_peer.exe", "--pipe %s --role client --engine %s",
                                         name, peer_engine), AIPC_OK);

    /* The message loop of the sample, bounded: runs until WM_DESTROY posts WM_QUIT. */
    gui_step_ms(5 * WAIT_MS, "message loop until WM_QUIT");
    int quit = gui_pump_until_quit(4 * WAIT_MS);
    gui_step("checks");
    ck_assert_msg(quit, "no WM_QUIT within %u ms: created %d/%d connected %d echoes %d streamed %d",
                  4 * WAIT_MS, c.created, c.create_ok, c.connected, c.echoes, c.seq_count);
    ck_assert_int_eq(c.create_result, 1);
    ck_assert_int_eq(c.created, 1);
    ck_assert_int_eq(c.create_ok, 1);
    ck_assert_int_eq(c.connected, 1);
    ck_assert_int_eq(c.connect_failed, 0);
    ck_assert_int_eq(c.echoes, UI_MSGS);
    ck_assert_int_eq(c.echo_errors, 0);
    ck_assert_int_ge(c.seq_count, STREAM_MIN);
    ck_assert_int_eq(c.seq_errors, 0);
    ck_assert_int_eq(c.other_msgs, 0);
    ck_assert_int_ge(c.sent, UI_MSGS);   /* every "ui:<i>" was reported written */
    ck_assert(c.destroyed && c.exit_returned_ui);
    /* each line of the listbox is one event the callbacks sent to the window */
    ck_assert_int_ge(c.list_lines, 3 + UI_MSGS + STREAM_MIN);   /* Create, OnCreate, OnConnected */

    /* the peer saw the disconnect and checked our messages: it exits 0 */
    gui_step("peer exits after the disconnect");
    ck_assert_msg(aipc_proc_wait(&peer, WAIT_MS) == AIPC_OK, "peer still running %u ms after Exit", WAIT_MS);
    ck_assert_msg(peer.exit_code == 0, "peer exit code %lu", (unsigned long)peer.exit_code);
    aipc_proc_close(&peer);
    /* messages still queued for the (destroyed) window: none may come from a callback */
    gui_pump(NULL, NULL, NULL, 0, NULL);

    ck_assert_int_eq(c.max_inside, 1);
    ck_assert_int_eq(c.on_ui_thread, 0);      /* no dispatcher: callbacks on the I/O thread */
    ck_assert_int_eq(c.thread_changes, 0);
    ck_assert_int_eq(c.late, 0);              /* nothing after Exit returned */
    fprintf(stdout, "  %ld callbacks, %d streamed, %d sent messages served during Exit\n",
            (long)c.callbacks, c.seq_count, c.served_in_exit);
    gui_step_done();
}
END_TEST


static Suite *make_suite(void)
{
    Suite *s = suite_create("gui_classic");
    TCase *t = tcase_create("classic");
    tcase_add_checked_fixture(t, NULL, gui_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_loop_test(t, classic_pattern, 0, 4);
    suite_add_tcase(s, t);
    return s;
}

GUI_CHECK_MAIN(make_suite);
