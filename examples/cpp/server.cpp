// server.cpp - console port of the classic AsyncIPCServer sample, written against the classic
// C++ classes of asyncipc.hpp (IPipeDelegate / INamedPipe / CreateInstance).
//
// Listens on a pipe, prints every message it receives and echoes it back.
//   aipc-example-server-cpp [--engine async|overlapped] [--pipe NAME] [--count N] [--once]
// --once: exit after the first client leaves (otherwise serve clients until Ctrl+C).
// --count N: also exit after echoing N messages (0 = no limit).
#include <windows.h>

#include "async_ipc.h"   /* the classic header name (asyncipc/asyncipc.hpp) */

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace {

std::mutex g_mutex;
std::condition_variable g_cv;
bool g_stop = false;

// Wakes main() (any thread).
void request_stop()
{
    std::lock_guard<std::mutex> lock(g_mutex);
    g_stop = true;
    g_cv.notify_all();
}

// Console control thread: Ctrl+C / Ctrl+Break / close stop the server cleanly.
BOOL WINAPI on_ctrl(DWORD)
{
    request_stop();
    return TRUE;
}

// Up to 120 bytes of a message, printable.
std::string printable(const void *data, int size)
{
    std::string s;
    const unsigned char *p = static_cast<const unsigned char *>(data);
    for (int i = 0; i < size && i < 120; i++)
        s += (p[i] >= 32 && p[i] < 127) ? static_cast<char>(p[i]) : '.';
    if (size > 120)
        s += "...";
    return s;
}

// The server's delegate. Every method runs on the SDK's I/O thread.
class EchoServer : public IPipeDelegate {
public:
    EchoServer(bool once, long limit) : once_(once), limit_(limit) {}
    void Attach(INamedPipe *pipe) { pipe_ = pipe; }
    long Echoed() const { return echoed_; }
    bool Failed() const { return failed_; }

    void OnCreate(bool ok) override
    {
        std::printf("server++: listening: %s\n", ok ? "yes" : "FAILED");
        std::fflush(stdout);
        if (!ok) {
            failed_ = true;
            request_stop();
        }
    }
    void OnConnected(bool ok) override
    {
        std::printf("server++: client connected: %s\n", ok ? "yes" : "no");
        std::fflush(stdout);
    }
    void OnRecv(void *data, int size) override
    {
        std::printf("server++: recv %d bytes: %s\n", size, printable(data, size).c_str());
        int rc = pipe_->SendData(data, static_cast<size_t>(size));
        if (rc != AIPC_OK)
            std::printf("server++: echo failed: %s\n", aipc_strerror(rc));
        else
            std::printf("server++: send %d bytes: %s\n", size, printable(data, size).c_str());
        std::fflush(stdout);
        if (++echoed_ >= limit_ && limit_ > 0 && !once_)
            request_stop();
    }
    void OnDisconnected() override
    {
        std::printf("server++: client disconnected (%ld messages echoed)\n", echoed_.load());
        std::fflush(stdout);
        if (once_)
            request_stop();
    }

private:
    INamedPipe *pipe_ = nullptr;
    bool once_;
    long limit_;
    std::atomic<long> echoed_{0};
    std::atomic<bool> failed_{false};
};

} // namespace

int main(int argc, char **argv)
{
    std::string pipe_name = "asyncipc.example";
    PipeImplType engine = PIPE_ASYNC;
    bool once = false;
    long limit = 0;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--engine" && i + 1 < argc) {
            std::string e = argv[++i];
            if (e == "async" || e == "apc")
                engine = PIPE_ASYNC;
            else if (e == "overlapped")
                engine = PIPE_OVERLAPPED;
            else {
                std::fprintf(stderr, "server++: unknown engine %s (async|overlapped)\n", e.c_str());
                return 2;
            }
        } else if (a == "--pipe" && i + 1 < argc) {
            pipe_name = argv[++i];
        } else if (a == "--count" && i + 1 < argc) {
            limit = std::strtol(argv[++i], nullptr, 10);
        } else if (a == "--once") {
            once = true;
        } else {
            std::fprintf(stderr, "usage: %s [--engine async|overlapped] [--pipe NAME] [--count N] [--once]\n",
                         argv[0]);
            return 2;
        }
    }

    InitEasyLog("example-server-cpp");
    SetConsoleCtrlHandler(on_ctrl, TRUE);
    EchoServer delegate(once, limit);
    INamedPipe *pipe = nullptr;
    int rc = CreateInstance(engine, &pipe);
    if (rc != AIPC_OK) {
        std::fprintf(stderr, "server++: CreateInstance: %s\n", aipc_strerror(rc));
        return 1;
    }
    delegate.Attach(pipe);
    std::wstring wname(pipe_name.begin(), pipe_name.end());
    std::printf("server++: %s engine, pipe %s\n", engine == PIPE_ASYNC ? "APC" : "overlapped",
                pipe_name.c_str());
    std::fflush(stdout);
    if (!pipe->Create(wname.c_str(), PIPE_SERVER, &delegate)) {
        std::fprintf(stderr, "server++: Create failed\n");
        pipe->Release();
        return 1;
    }
    {
        std::unique_lock<std::mutex> lock(g_mutex);
        g_cv.wait(lock, [] { return g_stop; });
    }
    pipe->Release();   // no callback runs after this returns
    std::printf("server++: exit (%ld messages echoed)\n", delegate.Echoed());
    return delegate.Failed() ? 1 : 0;
}
