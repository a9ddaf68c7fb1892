// consumer_cpp.cpp - the classic C++ classes from the INSTALLED headers (asyncipc.hpp, bus.hpp)
// and the installed asyncipc.dll: a server and a client pipe exchange one message each way.
// Exit code 0 only when both messages arrived intact within the bounded waits.
// Threads: delegate methods run on the SDK's I/O thread and only record data and set events.
#include <asyncipc/asyncipc.hpp>
#include <asyncipc/bus.hpp>

#include <windows.h>
#include <cstdio>
#include <string>

namespace {

// One end of the pipe: records what arrives; the server also answers.
class Peer : public IPipeDelegate {
public:
    Peer(bool server) : server_(server), got_(CreateEventW(nullptr, FALSE, FALSE, nullptr)) {}
    ~Peer() override { CloseHandle(got_); }
    INamedPipe *pipe = nullptr;
    std::string text;
    // Server: answer; client: record the answer. (I/O thread.)
    void OnRecv(void *data, int size) override
    {
        text.assign(static_cast<const char *>(data), static_cast<size_t>(size));
        if (server_)
            pipe->Send("pong from the C++ server");
        SetEvent(got_);
    }
    bool wait() { return WaitForSingleObject(got_, 15000) == WAIT_OBJECT_0; }

private:
    bool server_;
    HANDLE got_;
};

}  // namespace

// Server (APC engine) and client (overlapped engine) exchange one message each way.
int main()
{
    wchar_t name[64];
    swprintf(name, 64, L"asyncipc.consumer.cpp.%lu", GetCurrentProcessId());
    Peer srv(true), cli(false);
    if (CreateInstance(PIPE_ASYNC, &srv.pipe) != 0 || CreateInstance(PIPE_OVERLAPPED, &cli.pipe) != 0) {
        std::puts("FAIL: CreateInstance");
        return 1;
    }
    bool ok = srv.pipe->Create(name, PIPE_SERVER, &srv) && cli.pipe->Create(name, PIPE_CLIENT, &cli);
    cli.pipe->Send("ping from the C++ client");
    ok = ok && srv.wait() && srv.text == "ping from the C++ client";
    ok = ok && cli.wait() && cli.text == "pong from the C++ server";
    cli.pipe->Release();
    srv.pipe->Release();
    std::printf("%s: C++ classic classes exchanged messages through the installed DLL\n",
                ok ? "PASSED" : "FAILED");
    return ok ? 0 : 1;
}
