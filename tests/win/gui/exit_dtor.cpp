/*
 * exit_dtor.cpp - helper DLL of test_gui_procexit.c (see exit_dll.h): the C++ classes
 * (asyncipc.hpp INamedPipe, bus.hpp asyncipc::BusClient) held in static objects of a DLL, so
 * Release() and ~BusClient() run from the DLL's static destructors at process exit, when the
 * SDK's I/O thread is already gone.
 *
 * Static objects are destroyed in reverse order of definition: g_begin ("detach"), g_bus
 * (~BusClient closes), g_pipe (Release), g_delegate, g_end ("returned").
 */
#include "exit_dll.h"

#include <cstdio>
#include <string>

#include "asyncipc/asyncipc.hpp"
#include "asyncipc/bus.hpp"

namespace {

HANDLE g_live, g_blocked, g_never;
volatile LONG g_block;

void maybe_block()
{
    if (InterlockedExchange(&g_block, 0)) {
        SetEvent(g_blocked);
        WaitForSingleObject(g_never, INFINITE);
    }
}

struct EndMarker {
    bool armed = false;
    ~EndMarker()
    {
        if (armed)
            exit_marker("returned\n");
    }
};
EndMarker g_end;

class Delegate : public IPipeDelegate {
public:
    void OnConnected(bool ok) override
    {
        if (ok)
            SetEvent(g_live);
    }
    void OnRecv(void *, int) override { maybe_block(); }
};
Delegate g_delegate;

struct PipeHolder {
    INamedPipe *pipe = nullptr;
    ~PipeHolder()
    {
        if (pipe)
            pipe->Release();
    }
};
PipeHolder g_pipe;

asyncipc::BusClient g_bus;

struct BeginMarker {
    bool armed = false;
    ~BeginMarker()
    {
        if (armed)
            exit_marker("detach\n");
    }
};
BeginMarker g_begin;

int wait_for(HANDLE h, DWORD ms, const char *what)
{
    if (WaitForSingleObject(h, ms) == WAIT_OBJECT_0)
        return 0;
    std::fprintf(stderr, "exit_dtor: no %s within %lu ms\n", what, (unsigned long)ms);
    return 1;
}

} // namespace

extern "C" __declspec(dllexport) int exit_start(const exit_args *a)
{
    exit_marker_open(a->marker);
    g_live = CreateEventW(nullptr, TRUE, FALSE, nullptr);
    g_blocked = CreateEventW(nullptr, TRUE, FALSE, nullptr);
    g_never = CreateEventW(nullptr, TRUE, FALSE, nullptr);
    g_block = a->block;
    wchar_t wpipe[256];
    MultiByteToWideChar(CP_UTF8, 0, a->pipe, -1, wpipe, 256);
    if (!a->bus) {
        if (CreateInstance(a->overlapped ? PIPE_OVERLAPPED : PIPE_ASYNC, &g_pipe.pipe) != AIPC_OK ||
            !g_pipe.pipe->Create(wpipe, PIPE_SERVER, &g_delegate))
            return 1;
        if (wait_for(g_live, a->timeout_ms, "connection"))
            return 1;
    } else {
        g_bus.onState([](aipc_bus_state st, int) {
            if (st == AIPC_BUS_CONNECTED)
                SetEvent(g_live);
        });
        g_bus.onMessage([](const std::string &, const asyncipc::BusPeer &, bool, std::string_view) {
            maybe_block();
        });
        asyncipc::BusClient::Options o;
        o.pipe = wpipe;
        o.name = "exit-dtor";
        o.engine = a->overlapped ? PIPE_OVERLAPPED : PIPE_ASYNC;
        if (g_bus.connect(o) != AIPC_OK || g_bus.subscribe("gui/exit") != AIPC_OK)
            return 1;
        if (wait_for(g_live, a->timeout_ms, "broker welcome"))
            return 1;
        HANDLE pong = CreateEventW(nullptr, TRUE, FALSE, nullptr);
        if (g_bus.ping(a->timeout_ms, [pong](int status, const asyncipc::BusPeer &, std::string_view) {
                if (status == 0)
                    SetEvent(pong);
            }) <= 0 ||
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
    g_begin.armed = true;
    g_end.armed = true;
    exit_marker("started\n");
    return 0;
}
