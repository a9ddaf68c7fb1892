/*
 * main.c - asyncipc-broker.exe command line.
 *
 *   asyncipc-broker run [--config F] [--pipe NAME]     console; Ctrl+C / Ctrl+Break stop cleanly
 *       [--ready-event NAME] [--stop-event NAME]        set NAME when listening / stop when NAME is set
 *   asyncipc-broker install [--config F] [--start auto|demand]
 *   asyncipc-broker uninstall | start | stop | status
 *   asyncipc-broker service [--config F] [--pipe NAME]  (what `install` registers)
 *   asyncipc-broker                                     started by the SCM (plain sc create)
 *   asyncipc-broker --version | --help                  print the version / the usage, exit 0
 *
 * Threads: in `run`, the main thread is the broker's I/O thread; the console control handler
 * (a thread Windows creates) and the end-session window's thread request the stop. When the
 * process is about to be ended (console closed, logoff, shutdown) they also wait, bounded, until
 * the stop has finished - the clients have their "bye" - because Windows ends the process as
 * soon as they return.
 */
#include "broker_app.h"
#include "service.h"

#include "asyncipc/asyncipc.h"

#include <shellapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* The running console broker. Read (shared) by the stop requesters on their own threads and
 * cleared (exclusive) by cmd_run before it frees the app, so a late Ctrl+C or stop event never
 * posts to a freed engine or a closed port handle. */
static aipc__broker_app *g_console_app;
static SRWLOCK g_console_lock = SRWLOCK_INIT;
/* Set by cmd_run once the broker has stopped (every client got its "bye") and been freed. */
static HANDLE g_console_stopped;
/* How long a handler whose return ends the process waits for the stop: Windows allows about
 * 5 s after a console close (and for logoff/shutdown) before it ends the process anyway; the
 * engine's stop waits at most 3 s for the goodbyes to be written. */
#define CONSOLE_END_WAIT_MS 4500

/* Requests a stop of the console broker if one is running (any thread). */
static void console_request_stop(void)
{
    AcquireSRWLockShared(&g_console_lock);
    if (g_console_app)
        aipc__broker_app_stop(g_console_app);
    ReleaseSRWLockShared(&g_console_lock);
}

/* Publishes (or, with NULL, withdraws) the console broker for the stop requesters. */
static void console_set_app(aipc__broker_app *a)
{
    AcquireSRWLockExclusive(&g_console_lock);
    g_console_app = a;
    ReleaseSRWLockExclusive(&g_console_lock);
}

/* The usage text: on stdout for --help (exit 0), on stderr for a usage error (exit 1). */
static void usage_to(FILE *to)
{
    fprintf(to,
            "usage: asyncipc-broker run [--config FILE] [--pipe NAME]\n"
            "       asyncipc-broker install [--config FILE] [--start auto|demand]\n"
            "       asyncipc-broker uninstall | start | stop | status\n"
            "       asyncipc-broker --version | --help\n"
            "Without a command the program expects to be started by the service manager.\n"
            "Exit codes: 0 success, 1 usage, 2 configuration, 3 pipe name in use, 4 system error,\n"
            "5 service control.\n");
}

static void usage(void)
{
    usage_to(stderr);
}

/* Requests the stop and waits (bounded) until it has finished: for the handlers whose return
 * lets Windows end the process. */
static void console_stop_and_wait(void)
{
    console_request_stop();
    if (g_console_stopped)
        WaitForSingleObject(g_console_stopped, CONSOLE_END_WAIT_MS);
}

/* Console control handler (its own thread). Ctrl+C, Ctrl+Break: clean stop. Console closed,
 * shutdown: clean stop, finished before returning (Windows ends the process on return).
 * CTRL_LOGOFF_EVENT reaches only processes outside the interactive session (under a service
 * wrapper, say) and names no user: not ours to stop for; the user's own logoff reaches the
 * end-session window below. */
static BOOL WINAPI console_ctrl(DWORD type)
{
    if (type == CTRL_LOGOFF_EVENT)
        return TRUE;
    if (type == CTRL_CLOSE_EVENT || type == CTRL_SHUTDOWN_EVENT)
        console_stop_and_wait();
    else
        console_request_stop();
    return TRUE;
}

/* The end-session window: the broker loads user32, so Windows treats it as a GUI process and
 * tells it about logoff and shutdown with WM_QUERYENDSESSION/WM_ENDSESSION to its top-level
 * windows instead of console control events, and ends it when WM_ENDSESSION returns. A hidden
 * top-level window (a message-only one gets no broadcasts) finishes the stop first. */
static LRESULT CALLBACK end_session_proc(HWND w, UINT msg, WPARAM wp, LPARAM lp)
{
    if (msg == WM_QUERYENDSESSION)
        return TRUE;
    if (msg == WM_ENDSESSION) {
        if (wp)
            console_stop_and_wait();
        return 0;
    }
    return DefWindowProcW(w, msg, wp, lp);
}

/* Whether to make that window. Not under Wine unless AIPC_BROKER_END_SESSION_WINDOW=1 (the
 * test that simulates a logoff sets it): Wine has no logoff, and the first top-level window of
 * a prefix starts its desktop process, which - started without a display - makes the top-level
 * windows of other programs in the prefix fail while it lives. */
static int want_end_session_window(void)
{
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    if (!ntdll || !GetProcAddress(ntdll, "wine_get_version"))
        return 1;
    wchar_t v[8];
    DWORD n = GetEnvironmentVariableW(L"AIPC_BROKER_END_SESSION_WINDOW", v, 8);
    return n == 1 && v[0] == L'1';
}

/* Its thread: creates the window and pumps its messages until the process ends. Without a
 * desktop there is no window and nothing to do. */
static DWORD WINAPI end_session_thread(LPVOID unused)
{
    (void)unused;
    WNDCLASSW wc = { 0 };
    wc.lpfnWndProc = end_session_proc;
    wc.hInstance = GetModuleHandleW(NULL);
    wc.lpszClassName = L"AsyncIPCBrokerEndSession";
    if (!RegisterClassW(&wc))
        return 0;
    HWND w = CreateWindowExW(0, wc.lpszClassName, L"asyncipc-broker", WS_OVERLAPPED, 0, 0, 0, 0,
                             NULL, NULL, wc.hInstance, NULL);
    if (!w)
        return 0;
    MSG m;
    while (GetMessageW(&m, NULL, 0, 0) > 0)
        DispatchMessageW(&m);
    return 0;
}

/* Parses --config/--pipe/--ready-event/--stop-event/--start into o (and *start, *stop).
 * Returns 0 or -1. */
static int parse_opts(int argc, wchar_t **argv, int from, aipc__broker_opts *o,
                      const wchar_t **start, const wchar_t **stop)
{
    for (int i = from; i < argc; i++) {
        const wchar_t *a = argv[i];
        if (i + 1 >= argc) {
            fprintf(stderr, "asyncipc-broker: unknown or incomplete option %ls\n", a);
            return -1;
        }
        if (wcscmp(a, L"--config") == 0)
            o->config = argv[++i];
        else if (wcscmp(a, L"--pipe") == 0)
            o->pipe = argv[++i];
        else if (wcscmp(a, L"--ready-event") == 0)
            o->ready_event = argv[++i];
        else if (stop && wcscmp(a, L"--stop-event") == 0)
            *stop = argv[++i];
        else if (start && wcscmp(a, L"--start") == 0)
            *start = argv[++i];
        else {
            fprintf(stderr, "asyncipc-broker: unknown option %ls\n", a);
            return -1;
        }
    }
    return 0;
}

/* --stop-event watcher (its own thread): the event being set requests a clean stop, like
 * Ctrl+C. For supervisors and test drivers that have no console to send Ctrl+C through. */
static DWORD WINAPI stop_event_thread(LPVOID ev)
{
    if (WaitForSingleObject((HANDLE)ev, INFINITE) == WAIT_OBJECT_0)
        console_request_stop();
    return 0;
}

/* `run`: console mode. */
static int cmd_run(const aipc__broker_opts *o, const wchar_t *stop_event)
{
    char err[1024];
    aipc__broker_app *a = NULL;
    int rc = aipc__broker_app_start(&a, o, err, sizeof err);
    if (rc != 0)
        return rc;
    console_set_app(a);
    g_console_stopped = CreateEventW(NULL, TRUE, FALSE, NULL);
    SetConsoleCtrlHandler(console_ctrl, TRUE);
    HANDLE es = want_end_session_window() ? CreateThread(NULL, 0, end_session_thread, NULL, 0, NULL)
                                          : NULL;
    if (es)
        CloseHandle(es);   /* it ends with the process */
    if (stop_event) {
        HANDLE ev = OpenEventW(SYNCHRONIZE, FALSE, stop_event);
        HANDLE th = ev ? CreateThread(NULL, 0, stop_event_thread, ev, 0, NULL) : NULL;
        if (!th) {
            fprintf(stderr, "asyncipc-broker: cannot watch the stop event (error %lu)\n",
                    (unsigned long)GetLastError());
            console_set_app(NULL);
            aipc__broker_app_free(a);
            return AIPC_BROKER_EXIT_USAGE;
        }
        CloseHandle(th);    /* the thread keeps ev; both end with the process */
    }
    fprintf(stderr, "asyncipc-broker: running (Ctrl+C stops)\n");
    aipc__broker_app_run(a);
    console_set_app(NULL);
    aipc__broker_app_free(a);
    fprintf(stderr, "asyncipc-broker: stopped\n");
    if (g_console_stopped)
        SetEvent(g_console_stopped);   /* a handler waiting for the stop may return now */
    return 0;
}

/* `service` or no command: run under the SCM. */
static int cmd_service(const aipc__broker_opts *o, int explicit_cmd)
{
    DWORD er = 0;
    if (aipc__service_dispatch(o, &er) == 0)
        return 0;
    if (er == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT && !explicit_cmd) {
        usage();
        return AIPC_BROKER_EXIT_USAGE;
    }
    fprintf(stderr, "asyncipc-broker: StartServiceCtrlDispatcher failed: error %lu%s\n",
            (unsigned long)er,
            er == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT ? " (not started by the service manager)" : "");
    return AIPC_BROKER_EXIT_SERVICE;
}

int main(void)
{
    int argc = 0;
    wchar_t **argv = CommandLineToArgvW(GetCommandLineW(), &argc);
    if (!argv)
        return AIPC_BROKER_EXIT_SYSTEM;
    aipc__broker_opts o = { 0 };
    const wchar_t *start = NULL, *stop = NULL;
    int rc;
    const wchar_t *cmd = argc > 1 ? argv[1] : NULL;
    /* --help / --version anywhere answer at once (exit 0) */
    for (int i = 1; i < argc; i++) {
        if (wcscmp(argv[i], L"--help") == 0 || wcscmp(argv[i], L"-h") == 0 ||
            wcscmp(argv[i], L"/?") == 0) {
            usage_to(stdout);
            LocalFree(argv);
            return 0;
        }
        if (wcscmp(argv[i], L"--version") == 0) {
            printf("asyncipc-broker %s\n", aipc_version_string());
            LocalFree(argv);
            return 0;
        }
    }
    if (!cmd) {
        rc = cmd_service(&o, 0);
    } else if (wcscmp(cmd, L"run") == 0) {
        o.console = 1;
        rc = parse_opts(argc, argv, 2, &o, NULL, &stop) ? AIPC_BROKER_EXIT_USAGE : cmd_run(&o, stop);
    } else if (wcscmp(cmd, L"service") == 0) {
        rc = parse_opts(argc, argv, 2, &o, NULL, NULL) ? AIPC_BROKER_EXIT_USAGE : cmd_service(&o, 1);
    } else if (wcscmp(cmd, L"install") == 0) {
        rc = parse_opts(argc, argv, 2, &o, &start, NULL) ? AIPC_BROKER_EXIT_USAGE
                                                   : aipc__service_install(o.config, start);
    } else if (argc == 2 && wcscmp(cmd, L"uninstall") == 0) {
        rc = aipc__service_uninstall();
    } else if (argc == 2 && wcscmp(cmd, L"start") == 0) {
        rc = aipc__service_start();
    } else if (argc == 2 && wcscmp(cmd, L"stop") == 0) {
        rc = aipc__service_stop();
    } else if (argc == 2 && wcscmp(cmd, L"status") == 0) {
        rc = aipc__service_status();
    } else {
        usage();
        rc = AIPC_BROKER_EXIT_USAGE;
    }
    LocalFree(argv);
    return rc;
}
