// consumer_cpp.cpp - the C++ headers from the INSTALLED package (asyncipc.hpp, bus.hpp) and the
// installed asyncipc.dll, built twice by CMakeLists.txt: as C++11 (bus.hpp's own BytesView) and
// as C++17 (BytesView is std::string_view). It checks:
//   1. the classic classes: a server and a client pipe exchange one message each way;
//   2. asyncipc::BusClient through the installed broker: a client subscribes, pings (so the
//      subscription is in place), publishes to itself and gets the message back intact.
// Usage: consumer_cpp.exe [BROKER_PIPE]. Exit code 0 only when everything arrived within the
// bounded waits. Threads: handlers run on the SDK's I/O thread and only record data and set events.
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

// Server (APC engine) and client (overlapped engine) exchange one message each way.
bool classic()
{
    wchar_t name[64];
    swprintf(name, 64, L"asyncipc.consumer.cpp.%lu", GetCurrentProcessId());
    Peer srv(true), cli(false);
    if (CreateInstance(PIPE_ASYNC, &srv.pipe) != 0 || CreateInstance(PIPE_OVERLAPPED, &cli.pipe) != 0)
        return false;
    bool ok = srv.pipe->Create(name, PIPE_SERVER, &srv) && cli.pipe->Create(name, PIPE_CLIENT, &cli);
    cli.pipe->Send("ping from the C++ client");
    ok = ok && srv.wait() && srv.text == "ping from the C++ client";
    ok = ok && cli.wait() && cli.text == "pong from the C++ server";
    cli.pipe->Release();
    srv.pipe->Release();
    std::printf("%s: classic classes exchanged messages\n", ok ? "ok" : "FAIL");
    return ok;
}

// A BusClient publishes to its own subscription through the broker; the payload arrives as a
// BytesView and is compared with ==, copied with data()/size() and iterated.
bool bus(const char *pipe)
{
    HANDLE ponged = CreateEventW(nullptr, TRUE, FALSE, nullptr);
    HANDLE got = CreateEventW(nullptr, TRUE, FALSE, nullptr);
    std::string topic, copy;
    bool equal = false;
    size_t counted = 0;
    asyncipc::BusClient client;
    client.onMessage([&](const std::string &t, const asyncipc::BusPeer &, bool,
                         asyncipc::BytesView data) {
        topic = t;
        copy.assign(data.data(), data.size());
        equal = data == "hello from C++";
        for (char c : data)
            counted += c != 0;
        SetEvent(got);
    });
    asyncipc::BusClient::Options o;
    if (pipe)
        o.pipe.assign(pipe, pipe + std::strlen(pipe));
    char name[64];
    std::snprintf(name, sizeof name, "consumer-cpp-%lu", GetCurrentProcessId());
    o.name = name;
    const std::string filter = std::string("installer/cpp/") + name;
    bool ok = client.connect(o) == 0 && client.subscribe(filter) == 0
              && client.ping(0, [&](int, const asyncipc::BusPeer &, asyncipc::BytesView) {
                     SetEvent(ponged);
                 }) > 0
              && WaitForSingleObject(ponged, 15000) == WAIT_OBJECT_0;
    const std::string payload = "hello from C++";
    ok = ok && client.publish(filter, payload) == 0 && WaitForSingleObject(got, 15000) == WAIT_OBJECT_0;
    client.close();
    ok = ok && topic == filter && copy == payload && equal && counted == payload.size();
    std::printf("%s: BusClient round trip through the broker (topic '%s', payload '%s')\n",
                ok ? "ok" : "FAIL", topic.c_str(), copy.c_str());
    CloseHandle(ponged);
    CloseHandle(got);
    return ok;
}

}  // namespace

int main(int argc, char **argv)
{
    std::setvbuf(stdout, nullptr, _IONBF, 0);
    std::printf("C++ %ld, string_view %s\n", static_cast<long>(__cplusplus),
                ASYNCIPC_HAS_STRING_VIEW ? "yes" : "no");
    bool ok = classic();
    ok = bus(argc > 1 ? argv[1] : nullptr) && ok;
    std::printf("%s: C++ headers and the installed DLL\n", ok ? "PASSED" : "FAILED");
    return ok ? 0 : 1;
}
