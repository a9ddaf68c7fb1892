// client.cpp - console port of the classic AsyncIPCClient sample, written against the classic
// C++ classes of asyncipc.hpp (IPipeDelegate / INamedPipe / CreateInstance).
//
// Connects, sends N text messages, prints what it sends and receives, waits until every
// message came back as an echo (checked byte for byte) and exits 0.
//   aipc-example-client-cpp [--engine async|overlapped] [--pipe NAME] [--count N] [--timeout MS]
#include <windows.h>

#include "async_ipc.h"   /* the classic header name (asyncipc/asyncipc.hpp) */

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

namespace {

// The i-th message the client sends.
std::string make_msg(long i)
{
    return "message " + std::to_string(i) + " of pid " + std::to_string(GetCurrentProcessId()) +
           ": hello from the AsyncIPC C++ client";
}

// The client's delegate. Every method runs on the SDK's I/O thread; main() waits on cv_.
class EchoClient : public IPipeDelegate {
public:
    explicit EchoClient(long count) : count_(count) {}

    void OnCreate(bool ok) override
    {
        std::printf("client++: connecting: %s\n", ok ? "yes" : "FAILED");
        std::fflush(stdout);
        if (!ok) {
            std::lock_guard<std::mutex> lock(mutex_);
            connect_done_ = true;
            cv_.notify_all();
        }
    }
    void OnConnected(bool ok) override
    {
        std::printf("client++: connected: %s\n", ok ? "yes" : "no (server not found)");
        std::fflush(stdout);
        std::lock_guard<std::mutex> lock(mutex_);
        connect_done_ = true;
        connected_ = ok;
        cv_.notify_all();
    }
    void OnRecv(void *data, int size) override
    {
        std::string got(static_cast<const char *>(data), static_cast<size_t>(size));
        std::lock_guard<std::mutex> lock(mutex_);
        bool same = got == make_msg(received_);
        std::printf("client++: recv %d bytes: %.200s%s\n", size, got.c_str(),
                    same ? "" : "   <-- MISMATCH");
        std::fflush(stdout);
        if (!same)
            mismatches_++;
        received_++;
        cv_.notify_all();
    }
    void OnDisconnected() override
    {
        std::printf("client++: disconnected\n");
        std::fflush(stdout);
        std::lock_guard<std::mutex> lock(mutex_);
        disconnected_ = true;
        cv_.notify_all();
    }

    // main thread: waits for OnConnected; true if connected.
    bool WaitConnected(unsigned long ms)
    {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return connect_done_; });
        return connected_;
    }
    // main thread: waits for every echo (or a disconnect); 0 when all arrived intact.
    int WaitEchoes(unsigned long ms)
    {
        std::unique_lock<std::mutex> lock(mutex_);
        bool done = cv_.wait_for(lock, std::chrono::milliseconds(ms),
                                 [this] { return received_ >= count_ || disconnected_; });
        if (!done)
            std::fprintf(stderr, "client++: timed out waiting for the echoes\n");
        else if (received_ != count_ || mismatches_)
            std::fprintf(stderr, "client++: %ld of %ld echoes, %ld wrong\n", received_, count_,
                         mismatches_);
        return done && received_ == count_ && mismatches_ == 0 ? 0 : 1;
    }
    long Received()
    {
        std::lock_guard<std::mutex> lock(mutex_);
        return received_;
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    long count_;
    long received_ = 0, mismatches_ = 0;
    bool connect_done_ = false, connected_ = false, disconnected_ = false;
};

} // namespace

int main(int argc, char **argv)
{
    std::string pipe_name = "asyncipc.example";
    PipeImplType engine = PIPE_ASYNC;
    long count = 5;
    unsigned long timeout = 20000;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--engine" && i + 1 < argc) {
            std::string e = argv[++i];
            if (e == "async" || e == "apc")
                engine = PIPE_ASYNC;
            else if (e == "overlapped")
                engine = PIPE_OVERLAPPED;
            else {
                std::fprintf(stderr, "client++: unknown engine %s (async|overlapped)\n", e.c_str());
                return 2;
            }
        } else if (a == "--pipe" && i + 1 < argc) {
            pipe_name = argv[++i];
        } else if (a == "--count" && i + 1 < argc) {
            count = std::strtol(argv[++i], nullptr, 10);
        } else if (a == "--timeout" && i + 1 < argc) {
            timeout = std::strtoul(argv[++i], nullptr, 10);
        } else {
            std::fprintf(stderr, "usage: %s [--engine async|overlapped] [--pipe NAME] [--count N] [--timeout MS]\n",
                         argv[0]);
            return 2;
        }
    }
    if (count < 0)
        count = 0;

    InitEasyLog("example-client-cpp");
    EchoClient delegate(count);
    INamedPipe *pipe = nullptr;
    int rc = CreateInstance(engine, &pipe);
    if (rc != AIPC_OK) {
        std::fprintf(stderr, "client++: CreateInstance: %s\n", aipc_strerror(rc));
        return 1;
    }
    pipe->SetOption(AIPC_PIPE_OPT_CONNECT_TIMEOUT_MS, timeout);
    std::wstring wname(pipe_name.begin(), pipe_name.end());
    std::printf("client++: %s engine, pipe %s, %ld messages\n",
                engine == PIPE_ASYNC ? "APC" : "overlapped", pipe_name.c_str(), count);
    std::fflush(stdout);
    int status = 1;
    if (!pipe->Create(wname.c_str(), PIPE_CLIENT, &delegate)) {
        std::fprintf(stderr, "client++: Create failed\n");
    } else if (!delegate.WaitConnected(timeout + 10000)) {
        std::fprintf(stderr, "client++: could not connect to %s\n", pipe_name.c_str());
    } else {
        for (long i = 0; i < count; i++) {
            std::string msg = make_msg(i);
            std::printf("client++: send %s\n", msg.c_str());
            std::fflush(stdout);
            pipe->Send(msg.c_str());
        }
        status = delegate.WaitEchoes(timeout);
    }
    pipe->Release();   // closes the connection; no callback runs after this returns
    std::printf("client++: exit %d (%ld/%ld echoes)\n", status, delegate.Received(), count);
    return status;
}
