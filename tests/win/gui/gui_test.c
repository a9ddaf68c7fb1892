/* gui_test.c - watchdog, test windows, bounded message loops, a recording bus client and the
 * suite runner of the GUI / dispatcher suites (see gui_test.h). */
#include "gui_test.h"

#include <stdarg.h>

/* ---- watchdog ----------------------------------------------------------------------------- */
static CRITICAL_SECTION g_wd_lock;
static HANDLE g_wd_changed;          /* auto-reset: the step or its deadline changed */
static char g_wd_step[256];
static uint64_t g_wd_deadline;       /* 0 = no step running */
static DWORD g_wd_bound;

/* A step overran its bound: say which, then end the process (children die with their job). */
static void wd_hang(void)
{
    fprintf(stdout, "HANG: step \"%s\" did not finish within %lu ms\n", g_wd_step,
            (unsigned long)g_wd_bound);
    fprintf(stderr, "HANG: step \"%s\" did not finish within %lu ms\n", g_wd_step,
            (unsigned long)g_wd_bound);
    fflush(stdout);
    fflush(stderr);
    /* TerminateProcess, not ExitProcess: a thread stuck inside the SDK or the loader lock must
     * not stop us from ending. */
    TerminateProcess(GetCurrentProcess(), 1);
}

static DWORD WINAPI wd_thread(void *arg)
{
    for (;;) {
        EnterCriticalSection(&g_wd_lock);
        uint64_t deadline = g_wd_deadline;
        LeaveCriticalSection(&g_wd_lock);
        DWORD wait = INFINITE;
        if (deadline) {
            uint64_t now = aipc_test_now_ms();
            if (now >= deadline) {
                EnterCriticalSection(&g_wd_lock);
                int still = g_wd_deadline == deadline;
                LeaveCriticalSection(&g_wd_lock);
                if (still)
                    wd_hang();
                continue;
            }
            wait = (DWORD)(deadline - now);
        }
        WaitForSingleObject(g_wd_changed, wait);
    }
    return 0;
}

static void wd_start(void)
{
    InitializeCriticalSection(&g_wd_lock);
    g_wd_changed = CreateEventW(NULL, FALSE, FALSE, NULL);
    HANDLE t = CreateThread(NULL, 0, wd_thread, NULL, 0, NULL);
    if (!g_wd_changed || !t) {
        fprintf(stderr, "gui_test: cannot start the watchdog\n");
        ExitProcess(1);
    }
    CloseHandle(t);
}

void gui_step_ms(DWORD ms, const char *fmt, ...)
{
    char step[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(step, sizeof step, fmt, ap);
    va_end(ap);
    if (!ms)
        ms = 2 * WAIT_MS;   /* longer than the step's own bounded waits: they report first */
    EnterCriticalSection(&g_wd_lock);
    snprintf(g_wd_step, sizeof g_wd_step, "%s", step);
    g_wd_bound = ms;
    g_wd_deadline = aipc_test_now_ms() + ms;
    LeaveCriticalSection(&g_wd_lock);
    SetEvent(g_wd_changed);
}

void gui_step_done(void)
{
    EnterCriticalSection(&g_wd_lock);
    g_wd_deadline = 0;
    LeaveCriticalSection(&g_wd_lock);
    SetEvent(g_wd_changed);
}

/* ---- windows ------------------------------------------------------------------------------ */
#define MAX_CLASSES 16
static struct {
    WNDPROC proc;
    wchar_t name[64];
} g_classes[MAX_CLASSES];

/* A window class per window procedure (registered once). NULL if the table is full. */
static const wchar_t *class_for(WNDPROC proc)
{
    for (int i = 0; i < MAX_CLASSES; i++) {
        if (g_classes[i].proc == proc)
            return g_classes[i].name;
        if (!g_classes[i].proc) {
            WNDCLASSW wc;
            memset(&wc, 0, sizeof wc);
            wc.lpfnWndProc = proc;
            wc.hInstance = GetModuleHandleW(NULL);
            wc.hCursor = LoadCursorW(NULL, (LPCWSTR)IDC_ARROW);
            wc.hbrBackground = (HBRUSH)(COLOR_WINDOW + 1);
            _snwprintf(g_classes[i].name, 64, L"aipc-gui-test-%d", i);
            wc.lpszClassName = g_classes[i].name;
            if (!RegisterClassW(&wc))
                return NULL;
            g_classes[i].proc = proc;
            return g_classes[i].name;
        }
    }
    return NULL;
}

int gui_window_open(gui_window *w, WNDPROC proc, void *user)
{
    memset(w, 0, sizeof *w);
    const wchar_t *cls = class_for(proc);
    if (!cls) {
        fprintf(stderr, "gui_window_open: RegisterClass failed: %lu\n", (unsigned long)GetLastError());
        return -1;
    }
    HINSTANCE inst = GetModuleHandleW(NULL);
    SetLastError(0);
    w->hwnd = CreateWindowExW(0, cls, L"AsyncIPC GUI test", WS_OVERLAPPEDWINDOW, CW_USEDEFAULT,
                              CW_USEDEFAULT, 480, 320, NULL, NULL, inst, NULL);
    if (!w->hwnd) {
        char display[64];
        DWORD n = GetEnvironmentVariableA("DISPLAY", display, sizeof display);
        fprintf(stderr,
                "gui_window_open: CreateWindowEx failed (error %lu, DISPLAY=%s): Wine creates "
                "top-level windows only with an X display (the suites' ctest command, "
                "tests/win/gui/with_display.sh, starts Xvfb when DISPLAY is unset)\n",
                (unsigned long)GetLastError(), n ? display : "(unset)");
        return -1;
    }
    SetWindowLongPtrW(w->hwnd, GWLP_USERDATA, (LONG_PTR)user);
    w->list = CreateWindowExW(0, L"LISTBOX", L"", WS_CHILD | WS_VISIBLE | WS_VSCROLL | LBS_NOTIFY,
                              0, 0, 460, 280, w->hwnd, (HMENU)(INT_PTR)1, inst, NULL);
    if (!w->list) {
        fprintf(stderr, "gui_window_open: listbox: %lu\n", (unsigned long)GetLastError());
        DestroyWindow(w->hwnd);
        w->hwnd = NULL;
        return -1;
    }
    return 0;
}

void *gui_window_user(HWND hwnd)
{
    return (void *)GetWindowLongPtrW(hwnd, GWLP_USERDATA);
}

void gui_window_close(gui_window *w)
{
    if (w->hwnd && IsWindow(w->hwnd))
        DestroyWindow(w->hwnd);
    w->hwnd = w->list = NULL;
}

int gui_list_add(HWND list, const char *fmt, ...)
{
    char text[512];
    wchar_t wtext[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (MultiByteToWideChar(CP_UTF8, 0, text, -1, wtext, 512) <= 0)
        wcscpy(wtext, L"?");
    return (int)SendMessageW(list, LB_ADDSTRING, 0, (LPARAM)wtext);
}

int gui_list_count(HWND list)
{
    return (int)SendMessageW(list, LB_GETCOUNT, 0, 0);
}

void gui_cleanup(aipc_named_pipe **pipe, aipc_bus **bus, gui_window *win)
{
    if (win && win->hwnd && IsWindow(win->hwnd))
        SetWindowLongPtrW(win->hwnd, GWLP_USERDATA, 0);
    if (pipe && *pipe) {
        gui_step("teardown: Release of a pipe the test left");
        aipc_pipe_free(*pipe);
        *pipe = NULL;
    }
    if (bus && *bus) {
        gui_step("teardown: aipc_bus_close of a client the test left");
        aipc_bus_close(*bus);
        *bus = NULL;
    }
    if (win)
        gui_window_close(win);
    MSG m;
    while (PeekMessageW(&m, NULL, 0, 0, PM_REMOVE))
        if (m.message != WM_QUIT)
            DispatchMessageW(&m);
    gui_step_done();
}

gui_held gui_left;
bt_broker gui_broker;
bt_client gui_pub;
static int g_have_pub;

void gui_bus_start(const char *tag, const char *pub_name, uint64_t pub_queue)
{
    gui_step("broker start");
    ck_assert_int_eq(bt_broker_start(&gui_broker, tag), 0);
    aipc_bus_options o;
    bt_options(&gui_pub, &o, gui_broker.wpipe, pub_name, 1);
    if (pub_queue)
        o.max_queue_bytes = pub_queue;
    ck_assert_int_eq(bt_connect(&gui_pub, &o), 0);
    g_have_pub = 1;
    ck_assert_msg(bt_wait(&gui_pub, &gui_pub.connected, 1, WAIT_MS), "the publisher did not connect");
}

void gui_teardown(void)
{
    aipc_proc_kill_all();
    gui_cleanup(gui_left.pipe, gui_left.bus, gui_left.win);
    if (gui_left.probe && *gui_left.probe) {
        if (!aipc_probe_free(*gui_left.probe, WAIT_MS))
            fprintf(stderr, "teardown: a probe's Release did not return (leaked)\n");
        *gui_left.probe = NULL;
    }
    if (gui_left.disp && *gui_left.disp) {
        aipc_dispatcher_free(*gui_left.disp);
        *gui_left.disp = NULL;
    }
    if (g_have_pub) {
        if (!bt_close(&gui_pub))
            fprintf(stderr, "teardown: the publisher's aipc_bus_close did not return\n");
        g_have_pub = 0;
    }
    bt_broker_kill(&gui_broker);
    memset(&gui_left, 0, sizeof gui_left);
}

/* ---- message loops ------------------------------------------------------------------------ */
volatile LONG gui_pumping;
volatile LONG gui_in_run;

int gui_pump(int (*done)(void *), void *arg, HANDLE ev, DWORD ms, int *quit)
{
    uint64_t deadline = aipc_test_now_ms() + ms;
    int rc = 0;
    InterlockedIncrement(&gui_pumping);
    for (;;) {
        MSG m;
        int got_quit = 0;
        while (PeekMessageW(&m, NULL, 0, 0, PM_REMOVE)) {
            if (m.message == WM_QUIT) {
                got_quit = 1;
                break;
            }
            TranslateMessage(&m);
            DispatchMessageW(&m);
            if (done && done(arg))
                break;
        }
        if (got_quit) {
            if (quit)
                *quit = 1;
            rc = 1;
            break;
        }
        if (done && done(arg)) {
            rc = 1;
            break;
        }
        uint64_t now = aipc_test_now_ms();
        if (now >= deadline)
            break;
        DWORD w = MsgWaitForMultipleObjectsEx(ev ? 1 : 0, ev ? &ev : NULL, (DWORD)(deadline - now),
                                              QS_ALLINPUT, MWMO_INPUTAVAILABLE);
        if (ev && w == WAIT_OBJECT_0) {
            rc = 1;
            break;
        }
    }
    InterlockedDecrement(&gui_pumping);
    return rc;
}

int gui_pump_until_quit(DWORD ms)
{
    int quit = 0;
    gui_pump(NULL, NULL, NULL, ms, &quit);
    return quit;
}

int gui_manual_run(aipc_dispatcher *d, int (*done)(void *), void *arg, DWORD ms)
{
    HANDLE ev = (HANDLE)aipc_dispatcher_event(d);
    if (!ev)
        return 0;
    uint64_t deadline = aipc_test_now_ms() + ms;
    while (!done(arg)) {
        uint64_t now = aipc_test_now_ms();
        if (now >= deadline)
            return 0;
        if (WaitForSingleObject(ev, (DWORD)(deadline - now)) != WAIT_OBJECT_0)
            return done(arg);
        InterlockedIncrement(&gui_in_run);
        aipc_dispatcher_run(d, 0);
        InterlockedDecrement(&gui_in_run);
    }
    return 1;
}

/* ---- bus recorder ------------------------------------------------------------------------- */
/* Common entry of every recorder callback: nesting, thread, loop and "after close" checks. */
static void rec_enter(gui_busrec *r)
{
    LONG in = InterlockedIncrement(&r->inside);
    if (in > r->max_inside)
        InterlockedExchange(&r->max_inside, in);
    DWORD t = GetCurrentThreadId();
    if (!r->first_thread)
        r->first_thread = t;
    if ((r->want_thread && t != r->want_thread) || (!r->want_thread && t != r->first_thread))
        InterlockedIncrement(&r->thread_errors);
    if ((r->check_loop == 1 && !gui_pumping) || (r->check_loop == 2 && !gui_in_run))
        InterlockedIncrement(&r->outside_loop);
    if (r->closed)
        InterlockedIncrement(&r->late);
    if (r->closed_returned)
        InterlockedIncrement(&r->after_close_return);
}

static void rec_leave(gui_busrec *r)
{
    InterlockedDecrement(&r->inside);
}

static void rec_message(aipc_bus *bus, void *user, const char *topic, const aipc_bus_peer *from,
                        bool retained, const void *data, size_t len)
{
    gui_busrec *r = user;
    rec_enter(r);
    if (len >= 4) {
        const uint8_t *b = data;
        long long seq = (long long)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                                    (uint32_t)b[3] << 24);
        if (seq < r->next_seq)
            InterlockedIncrement(&r->order_errors);
        else
            InterlockedExchangeAdd(&r->gaps, (LONG)(seq - r->next_seq));
        if (aipc_pattern_check(b, len, (uint32_t)seq) != -1)
            InterlockedIncrement(&r->data_errors);
        r->next_seq = seq + 1;
        InterlockedIncrement(&r->msgs);
    } else {
        InterlockedIncrement(&r->data_errors);
    }
    rec_leave(r);
}

static void rec_state(aipc_bus *bus, void *user, aipc_bus_state st, int err)
{
    gui_busrec *r = user;
    rec_enter(r);
    if (st == AIPC_BUS_CONNECTED)
        InterlockedIncrement(&r->connected);
    if (st == AIPC_BUS_CLOSED) {
        r->closed_thread = GetCurrentThreadId();
        InterlockedIncrement(&r->closed);
    }
    rec_leave(r);
}

static void rec_dropped(aipc_bus *bus, void *user, uint64_t count)
{
    gui_busrec *r = user;
    rec_enter(r);
    InterlockedExchangeAdd(&r->dropped, (LONG)count);
    rec_leave(r);
}

static void rec_pong(aipc_bus *bus, void *user, int status, const aipc_bus_peer *from,
                     const void *data, size_t len)
{
    gui_busrec *r = user;
    rec_enter(r);
    if (status == 0)
        InterlockedIncrement(&r->pongs);
    rec_leave(r);
}

int gui_busrec_connect(gui_busrec *r, const wchar_t *wpipe, const char *name, const char *filter,
                       aipc_dispatcher *d, uint64_t max_dispatch)
{
    aipc_bus_options o;
    aipc_bus_options_init(&o);
    o.engine = aipc_test_bus_engine();
    o.pipe_name = wpipe;
    o.name = name;
    o.user = r;
    o.reconnect = 0;
    o.on_message = rec_message;
    o.on_state = rec_state;
    o.on_dropped = rec_dropped;
    o.dispatcher = d;
    o.max_dispatch_bytes = max_dispatch;
    int rc = aipc_bus_connect(&o, &r->bus);
    if (rc == AIPC_OK && filter)
        rc = aipc_bus_subscribe(r->bus, filter);
    return rc;
}

int gui_busrec_ping(gui_busrec *r)
{
    InterlockedIncrement(&r->pings);
    int64_t id = aipc_bus_ping(r->bus, WAIT_MS, rec_pong, r);
    return id > 0 ? AIPC_OK : (int)id;
}

int gui_busrec_connected(void *r)
{
    return ((gui_busrec *)r)->connected > 0;
}

int gui_busrec_has_pong(void *r)
{
    gui_busrec *b = r;
    return b->pongs >= b->pings;
}

int gui_busrec_all_in(void *goal)
{
    gui_busrec_goal *g = goal;
    return (long long)g->r->msgs + g->r->dropped >= g->n;
}

int gui_publish_numbered(aipc_bus *bus, const char *topic, long long first, long long n, size_t size)
{
    uint8_t *buf = malloc(size);
    if (!buf)
        return AIPC_ENOMEM;
    int rc = AIPC_OK;
    for (long long i = first; i < first + n && rc == AIPC_OK; i++) {
        aipc_pattern_fill(buf, size, (uint32_t)i);
        rc = aipc_bus_publish(bus, topic, buf, size, false);
    }
    free(buf);
    return rc;
}

/* ---- runner ------------------------------------------------------------------------------- */
int gui_suite_start(void)
{
    wd_start();
    return 0;
}

void gui_suite_end(void)
{
    gui_step_done();
}
