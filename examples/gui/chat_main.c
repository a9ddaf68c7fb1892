/*
 * chat_main.c - gui_chat: a Win32 chat window over an AsyncIPC pipe and the AsyncIPC bus,
 * with every SDK callback on the UI thread (see chat.h).
 *
 *   gui_chat [--role server|client] [--pipe NAME] [--engine async|overlapped]
 *            [--broker PIPE] [--room ROOM] [--name NAME] [--no-bus]
 *            [--auto N] [--timeout MS]
 *
 * Interactive: type a line and press Enter (pipe and bus), or one of the Send buttons.
 * --auto N (scripted, for the demo and for automation): send N messages over the pipe and N
 * over the bus, wait for the peer's N of each, print the transcript to stdout, close the
 * window and exit 0; exit 3 when that takes longer than --timeout (default 60000 ms).
 * A console program (not -mwindows) so that the transcript reaches stdout; Ctrl+C closes the
 * window like its [x] button.
 *
 * Thread: main() is the UI thread: it creates the dispatcher and the window, runs the message
 * loop and frees the dispatcher. The console control handler runs on a thread of its own and
 * only posts WM_CLOSE.
 */
#include "chat.h"

#include <shellapi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

static chat_app g_app;          /* UI thread (the control handler reads g_wnd only) */
static volatile HWND g_wnd;     /* the main window while it exists */

bool chat_on_ui_thread(chat_app *app, const char *where)
{
    InterlockedIncrement(&app->callbacks);
    DWORD tid = GetCurrentThreadId();
    if (tid == app->ui_thread)
        return true;
    InterlockedIncrement(&app->wrong_thread);
    aipc_log(AIPC_LOG_ERROR, "gui_chat: callback %s ran on thread %lu, not on the UI thread %lu",
             where, (unsigned long)tid, (unsigned long)app->ui_thread);
    fprintf(stderr, "gui_chat %s: callback %s ran on thread %lu, not on the UI thread %lu\n",
            app->opt.name, where, (unsigned long)tid, (unsigned long)app->ui_thread);
    return false;
}

/* Console control thread: Ctrl+C, Ctrl+Break, console closed - close the window. */
static BOOL WINAPI on_console_ctrl(DWORD type)
{
    (void)type;
    HWND wnd = g_wnd;
    if (wnd)
        PostMessageW(wnd, WM_CLOSE, 0, 0);
    return TRUE;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: gui_chat [--role server|client] [--pipe NAME] [--engine async|overlapped]\n"
            "                [--broker PIPE] [--room ROOM] [--name NAME] [--no-bus]\n"
            "                [--auto N] [--timeout MS]\n"
            "  NAME, ROOM: [A-Za-z0-9._-]; --auto N: scripted exchange of N messages per link\n");
}

/* Copies an argument into a UTF-8 identifier field; false if it is not a valid one. */
static bool arg_ident(const wchar_t *arg, char *out, size_t cap, size_t max)
{
    char *s = chat_narrow(arg);
    bool ok = s && chat_valid_name(s, max) && strlen(s) < cap;
    if (ok)
        memcpy(out, s, strlen(s) + 1);
    free(s);
    return ok;
}

/* Copies a non-empty wide argument that fits `cap` units (NUL included). */
static bool arg_copy(const wchar_t *arg, wchar_t *out, size_t cap)
{
    size_t n = wcslen(arg);
    if (n == 0 || n >= cap)
        return false;
    memcpy(out, arg, (n + 1) * sizeof *out);
    return true;
}

static bool arg_number(const wchar_t *arg, unsigned long max, unsigned long *out)
{
    wchar_t *end = NULL;
    unsigned long v = wcstoul(arg, &end, 10);
    if (!arg[0] || (end && *end) || v > max || arg[0] == L'-')
        return false;
    *out = v;
    return true;
}

static bool parse_args(chat_options *o)
{
    int argc = 0;
    wchar_t **argv = CommandLineToArgvW(GetCommandLineW(), &argc);
    if (!argv)
        return false;
    o->server = true;
    o->engine = PIPE_ASYNC;
    wcscpy(o->pipe_name, L"asyncipc.gui_chat");
    o->broker[0] = 0;
    o->name[0] = 0;
    strcpy(o->room, "lobby");
    o->use_bus = true;
    o->auto_count = 0;
    o->timeout_ms = 60000;
    bool ok = true;
    for (int i = 1; ok && i < argc; i++) {
        const wchar_t *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long num = 0;
        if (!wcscmp(a, L"--no-bus")) {
            o->use_bus = false;
            continue;
        }
        if (!v) {
            ok = false;
            break;
        }
        i++;
        if (!wcscmp(a, L"--role")) {
            ok = !wcscmp(v, L"server") || !wcscmp(v, L"client");
            o->server = !wcscmp(v, L"server");
        } else if (!wcscmp(a, L"--engine")) {
            ok = !wcscmp(v, L"async") || !wcscmp(v, L"apc") || !wcscmp(v, L"overlapped");
            o->engine = wcscmp(v, L"overlapped") ? PIPE_ASYNC : PIPE_OVERLAPPED;
        } else if (!wcscmp(a, L"--pipe")) {
            ok = arg_copy(v, o->pipe_name, sizeof o->pipe_name / sizeof o->pipe_name[0]);
        } else if (!wcscmp(a, L"--broker")) {
            ok = arg_copy(v, o->broker, sizeof o->broker / sizeof o->broker[0]);
        } else if (!wcscmp(a, L"--name")) {
            ok = arg_ident(v, o->name, sizeof o->name, CHAT_NAME_MAX);
        } else if (!wcscmp(a, L"--room")) {
            ok = arg_ident(v, o->room, sizeof o->room, CHAT_ROOM_MAX);
        } else if (!wcscmp(a, L"--auto")) {
            ok = arg_number(v, 100000, &num);
            o->auto_count = (long)num;
        } else if (!wcscmp(a, L"--timeout")) {
            ok = arg_number(v, 24ul * 3600 * 1000, &num) && num > 0;
            o->timeout_ms = (DWORD)num;
        } else {
            ok = false;
        }
    }
    LocalFree(argv);
    if (ok && !o->name[0])   /* unique on the broker by default */
        snprintf(o->name, sizeof o->name, "%s-%lu", o->server ? "server" : "client",
                 (unsigned long)GetCurrentProcessId());
    return ok;
}

/* The message loop; IsDialogMessage gives Tab between controls and Enter = Send. */
static int run_loop(chat_app *app)
{
    MSG msg;
    BOOL r;
    while ((r = GetMessageW(&msg, NULL, 0, 0)) != 0) {
        if (r == -1) {
            fprintf(stderr, "gui_chat: GetMessage failed (%lu)\n", (unsigned long)GetLastError());
            return CHAT_EXIT_SETUP;
        }
        if (app->wnd && IsDialogMessageW(app->wnd, &msg))
            continue;
        TranslateMessage(&msg);
        DispatchMessageW(&msg);   /* SDK callbacks run in here (the dispatcher's window) */
    }
    return (int)msg.wParam;
}

int main(void)
{
    chat_app *app = &g_app;
    if (!parse_args(&app->opt)) {
        usage();
        return CHAT_EXIT_USAGE;
    }
    app->ui_thread = GetCurrentThreadId();
    app->exit_code = app->opt.auto_count > 0 ? CHAT_EXIT_FAILED : CHAT_EXIT_OK;
    InitEasyLog("gui_chat");

    /* The dispatcher belongs to this thread: callbacks run in this thread's message loop. */
    int rc = aipc_dispatcher_new(AIPC_DISPATCH_WINDOW, &app->dispatcher);
    if (rc != AIPC_OK) {
        fprintf(stderr, "gui_chat: aipc_dispatcher_new: %s\n", aipc_strerror(rc));
        return CHAT_EXIT_SETUP;
    }
    if (!chat_window_create(app, GetModuleHandleW(NULL))) {
        fprintf(stderr, "gui_chat: cannot create the window (error %lu; is there a display?)\n",
                (unsigned long)GetLastError());
        aipc_dispatcher_free(app->dispatcher);
        return CHAT_EXIT_SETUP;
    }
    g_wnd = app->wnd;
    SetConsoleCtrlHandler(on_console_ctrl, TRUE);
    chat_say(app, "gui_chat %s: UI thread %lu runs the window and every pipe and bus callback",
             app->opt.name, (unsigned long)app->ui_thread);

    bool started = chat_pipe_start(app);
    if (app->opt.use_bus)
        started = chat_bus_start(app) && started;
    if (!started && app->opt.auto_count > 0)
        chat_auto_finish(app, CHAT_EXIT_SETUP, "the pipe or the bus client could not start");
    else
        chat_auto_start(app);

    int code = run_loop(app);
    g_wnd = NULL;
    /* WM_CLOSE has closed the pipe and the bus client; the dispatcher goes last, on the thread
     * that created it. */
    chat_pipe_stop(app);
    chat_bus_stop(app);
    aipc_dispatcher_free(app->dispatcher);
    app->dispatcher = NULL;
    return code;
}
