/*
 * exit_dllmain.c - helper DLL of test_gui_procexit.c (see exit_dll.h): a pipe or bus client with
 * a live connection, released with aipc_pipe_free / aipc_bus_close inside
 * DllMain(DLL_PROCESS_DETACH) at process exit, when the SDK's I/O thread is already gone.
 */
#include "exit_dll.h"

#include <stdio.h>

#include "asyncipc/asyncipc.h"

static aipc_named_pipe *g_pipe;
static aipc_bus *g_bus;
static aipc_pipe_delegate g_delegate;
static HANDLE g_live, g_blocked, g_never;
static volatile LONG g_block;

/* A callback of the I/O thread: with --block the first one that may block, blocks forever. */
static void maybe_block(void)
{
    if (InterlockedExchange(&g_block, 0)) {
        SetEvent(g_blocked);
        WaitForSingleObject(g_never, INFINITE);
    }
}

static void on_connected(aipc_pipe_delegate *d, bool ok)
{
    if (ok)
        SetEvent(g_live);
}

static void on_recv(aipc_pipe_delegate *d, void *data, int size)
{
    maybe_block();
}

static void on_state(aipc_bus *bus, void *user, aipc_bus_state st, int err)
{
    if (st == AIPC_BUS_CONNECTED)
        SetEvent(g_live);
}

static void on_pong(aipc_bus *bus, void *user, int status, const aipc_bus_peer *from,
                    const void *data, size_t len)
{
    if (status == 0)
        SetEvent((HANDLE)user);
}

static void on_message(aipc_bus *bus, void *user, const char *topic, const aipc_bus_peer *from,
                       bool retained, const void *data, size_t len)
{
    maybe_block();
}

static int wait_for(HANDLE h, DWORD ms, const char *what)
{
    if (WaitForSingleObject(h, ms) == WAIT_OBJECT_0)
        return 0;
    fprintf(stderr, "exit_dllmain: no %s within %lu ms\n", what, (unsigned long)ms);
    return 1;
}

__declspec(dllexport) int exit_start(const exit_args *a)
{
    exit_marker_open(a->marker);
    g_live = CreateEventW(NULL, TRUE, FALSE, NULL);
    g_blocked = CreateEventW(NULL, TRUE, FALSE, NULL);
    g_never = CreateEventW(NULL, TRUE, FALSE, NULL);
    g_block = a->block;
    wchar_t wpipe[256];
    MultiByteToWideChar(CP_UTF8, 0, a->pipe, -1, wpipe, 256);
    if (!a->bus) {
        g_delegate.OnConnected = on_connected;
        g_delegate.OnRecv = on_recv;
        if (aipc_pipe_new(a->overlapped ? PIPE_OVERLAPPED : PIPE_ASYNC, &g_pipe) != AIPC_OK ||
            !aipc_pipe_create(g_pipe, wpipe, PIPE_SERVER, &g_delegate))
            return 1;
        if (wait_for(g_live, a->timeout_ms, "connection"))
            return 1;
    } else {
        aipc_bus_options o;
        aipc_bus_options_init(&o);
        o.pipe_name = wpipe;
        o.name = "exit-dllmain";
        o.engine = a->overlapped ? PIPE_OVERLAPPED : PIPE_ASYNC;
        o.on_state = on_state;
        o.on_message = on_message;
        if (aipc_bus_connect(&o, &g_bus) != AIPC_OK || aipc_bus_subscribe(g_bus, "gui/exit") != AIPC_OK)
            return 1;
        if (wait_for(g_live, a->timeout_ms, "broker welcome"))
            return 1;
        HANDLE pong = CreateEventW(NULL, TRUE, FALSE, NULL);
        if (aipc_bus_ping(g_bus, a->timeout_ms, on_pong, pong) <= 0 ||
            wait_for(pong, a->timeout_ms, "pong"))
            return 1;
    }
    if (a->ready) {
        HANDLE ev = OpenEventA(EVENT_MODIFY_STATE, FALSE, a->ready);
        if (ev) {
            SetEvent(ev);
            CloseHandle(ev);
        }
    }
    if (a->block && wait_for(g_blocked, a->timeout_ms, "blocked callback"))
        return 1;
    exit_marker("started\n");
    return 0;
}

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
    if (reason == DLL_PROCESS_DETACH && (g_pipe || g_bus)) {
        /* reserved != NULL: the process is ending (not FreeLibrary) */
        exit_marker(reserved ? "detach\n" : "detach (FreeLibrary)\n");
        if (g_pipe)
            aipc_pipe_free(g_pipe);
        if (g_bus)
            aipc_bus_close(g_bus);
        exit_marker("returned\n");
    }
    return TRUE;
}
