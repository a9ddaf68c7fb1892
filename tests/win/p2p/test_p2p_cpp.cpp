// test_p2p_cpp.cpp - asyncipc.hpp against a real peer process: classic C++ code (IPipeDelegate
// subclass, INamedPipe, CreateInstance) exchanges messages with both engines, Release() from
// inside OnRecv ends the callbacks, and an exception thrown by a delegate is caught and logged
// instead of unwinding into the C SDK; zero-copy buffers through the C++ helpers.
#include <asyncipc/asyncipc.hpp>

#include "check_main.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "aipc_testutil.h"

#if defined(__MINGW32__) && defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wformat"   // check.h's printf attribute: see p2p_common.h
#pragma GCC diagnostic ignored "-Wformat-extra-args"
#endif

namespace {

const char *engine_arg(PipeImplType e) { return e == PIPE_OVERLAPPED ? "overlapped" : "async"; }

// Records callbacks; every method runs on the SDK's I/O thread. Tests allocate it with new and
// delete it only after Release: a failed ck_assert jumps out without running destructors (no-fork
// mode), and a still-open pipe must then find its delegate alive (it is leaked on purpose).
class Recorder : public IPipeDelegate {
public:
    INamedPipe *pipe = nullptr;
    int release_at = 0;          // Release() inside the OnRecv of this message number (1-based)
    int throw_at = 0;            // throw from the OnRecv of this message number
    bool released = false;       // set after the Release inside OnRecv returned
    int late = 0;                // callbacks after that
    std::string order;
    std::vector<std::string> msgs;

    void OnCreate(bool ok) override { note(ok ? 'C' : 'c'); }
    void OnConnected(bool ok) override { note(ok ? 'O' : 'o'); }
    void OnDisconnected() override { note('D'); }
    void OnRecv(void *data, int size) override
    {
        int n;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (released)
                late++;
            msgs.emplace_back(static_cast<const char *>(data), static_cast<size_t>(size));
            n = static_cast<int>(msgs.size());
            cv_.notify_all();
        }
        if (n == throw_at)
            throw std::runtime_error("thrown on purpose by the test");
        if (n == release_at) {
            pipe->Release();
            std::lock_guard<std::mutex> lock(mutex_);
            released = true;
            cv_.notify_all();
        }
    }

    // Test thread: waits (bounded) until pred() holds under the lock.
    template <class Pred> bool Wait(Pred pred)
    {
        std::unique_lock<std::mutex> lock(mutex_);
        return cv_.wait_for(lock, std::chrono::milliseconds(aipc_test_wait_ms()), pred);
    }
    size_t Count()
    {
        std::lock_guard<std::mutex> lock(mutex_);
        return msgs.size();
    }

private:
    void note(char c)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (released)
            late++;
        order += c;
        cv_.notify_all();
    }
    std::mutex mutex_;
    std::condition_variable cv_;
};

// Starts a C++ server on a fresh name and an echo peer client with the other engine.
INamedPipe *start_server(Recorder &r, PipeImplType engine, char *name, size_t cap, aipc_proc *peer,
                         const char *mode = "echo")
{
    aipc_test_name(name, cap, "cpp");
    INamedPipe *pipe = nullptr;
    ck_assert_int_eq(CreateInstance(engine, &pipe), AIPC_OK);
    ck_assert_ptr_nonnull(pipe);
    r.pipe = pipe;
    wchar_t wname[128];
    aipc_test_wname(wname, 128, name);
    ck_assert(pipe->Create(wname, PIPE_SERVER, &r));
    ck_assert_int_eq(aipc_proc_spawn(peer, "p2p_peer.exe", "--mode %s --size 256 --role client --engine %s --pipe %s",
                                     mode, engine_arg(engine == PIPE_ASYNC ? PIPE_OVERLAPPED : PIPE_ASYNC), name),
                     AIPC_OK);
    ck_assert_msg(r.Wait([&] { return r.order.find('O') != std::string::npos; }), "no OnConnected");
    return pipe;
}

void peer_done(aipc_proc *peer)
{
    ck_assert_int_eq(aipc_proc_wait(peer, aipc_test_wait_ms()), AIPC_OK);
    ck_assert_uint_eq(peer->exit_code, 0);
    aipc_proc_close(peer);
}

} // namespace

START_TEST(cpp_classic_echo)
{
    PipeImplType engine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    Recorder &r = *new Recorder;
    char name[96];
    aipc_proc peer;
    INamedPipe *pipe = start_server(r, engine, name, sizeof name, &peer);
    pipe->Send("classic text");
    const char bin[] = {'b', 0, 'i', 0, 'n'};
    ck_assert_int_eq(pipe->SendData(bin, sizeof bin), AIPC_OK);
    ck_assert_int_eq(pipe->SendData("", 0), AIPC_OK);
    ck_assert_msg(r.Wait([&] { return r.msgs.size() >= 3; }), "echoes: %zu of 3", r.Count());
    ck_assert(r.msgs[0] == "classic text");
    ck_assert(r.msgs[1] == std::string(bin, sizeof bin));
    ck_assert(r.msgs[2].empty());
    ck_assert_str_eq(r.order.substr(0, 2).c_str(), "CO");
    pipe->Release();
    peer_done(&peer);
    delete &r;
}
END_TEST

START_TEST(cpp_release_inside_onrecv)
{
    PipeImplType engine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    Recorder &r = *new Recorder;
    r.release_at = 5;
    char name[96];
    aipc_proc peer;
    start_server(r, engine, name, sizeof name, &peer, "stream");
    ck_assert_msg(r.Wait([&] { return r.released; }), "Release inside OnRecv did not return");
    peer_done(&peer);   // the streaming peer saw the disconnect
    ck_assert_int_eq(r.late, 0);
    ck_assert_uint_eq(r.Count(), 5);
    delete &r;
}
END_TEST

START_TEST(cpp_exception_is_caught_and_logged)
{
    PipeImplType engine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    char log[MAX_PATH];
    aipc_test_temp_path(log, sizeof log, "cpp-throw", ".log");
    ck_assert_int_eq(aipc_log_open_file(log), AIPC_OK);
    Recorder &r = *new Recorder;
    r.throw_at = 1;
    char name[96];
    aipc_proc peer;
    INamedPipe *pipe = start_server(r, engine, name, sizeof name, &peer);
    pipe->Send("first");
    pipe->Send("second");
    ck_assert_msg(r.Wait([&] { return r.msgs.size() >= 2; }), "the pipe stopped after the exception");
    pipe->Release();
    peer_done(&peer);
    delete &r;
    aipc_log_open_file(nullptr);
    char *text = aipc_test_read_file(log, nullptr);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(std::strstr(text, " ERROR ") && std::strstr(text, "thrown on purpose"), "log: %s", text);
    free(text);
    DeleteFileA(log);
}
END_TEST

// Buffers from C++: asyncipc::Alloc / SendBuf / SetRecvRef / Buffer against p2p_zc_peer.exe
// (echoes each message from a buffer of its own): 1 MiB and 16 bytes come back exact, a
// Buffer's destructor releases (buf_bytes and recv_buf_bytes back to 0).
namespace {
struct ZcRecorder {
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<asyncipc::Buffer> got;
};
void zc_on_buf(aipc_named_pipe *, void *user, aipc_buf *buf)
{
    ZcRecorder *z = static_cast<ZcRecorder *>(user);
    std::lock_guard<std::mutex> lock(z->mutex);
    z->got.emplace_back(buf);
    z->cv.notify_all();
}
} // namespace

START_TEST(cpp_zero_copy_buffers)
{
    PipeImplType engine = _i ? PIPE_OVERLAPPED : PIPE_ASYNC;
    Recorder &r = *new Recorder;
    ZcRecorder &z = *new ZcRecorder;
    char name[96];
    aipc_test_name(name, sizeof name, "cppzc");
    INamedPipe *pipe = nullptr;
    ck_assert_int_eq(CreateInstance(engine, &pipe), AIPC_OK);
    r.pipe = pipe;
    ck_assert_int_eq(asyncipc::SetRecvRef(pipe, zc_on_buf, &z), AIPC_OK);
    wchar_t wname[128];
    aipc_test_wname(wname, 128, name);
    ck_assert(pipe->Create(wname, PIPE_SERVER, &r));
    aipc_proc peer;
    ck_assert_int_eq(aipc_proc_spawn(&peer, "p2p_zc_peer.exe", "--mode echo --role client --engine %s --pipe %s",
                                     engine_arg(engine == PIPE_ASYNC ? PIPE_OVERLAPPED : PIPE_ASYNC), name),
                     AIPC_OK);
    ck_assert_msg(r.Wait([&] { return r.order.find('O') != std::string::npos; }), "no OnConnected");
    const size_t sizes[2] = {1024 * 1024, 16};
    for (size_t i = 0; i < 2; i++) {
        asyncipc::Buffer b;
        ck_assert_int_eq(asyncipc::Alloc(pipe, sizes[i], b), AIPC_OK);
        ck_assert(static_cast<bool>(b));
        ck_assert_uint_eq(b.size(), sizes[i]);
        aipc_pattern_fill(static_cast<uint8_t *>(b.data()), sizes[i], 7u + (uint32_t)i);
        ck_assert_int_eq(asyncipc::SendBuf(pipe, b, sizes[i]), AIPC_OK);
        ck_assert(!b);
    }
    {
        std::unique_lock<std::mutex> lock(z.mutex);
        ck_assert_msg(z.cv.wait_for(lock, std::chrono::milliseconds(aipc_test_wait_ms()),
                                    [&] { return z.got.size() >= 2; }), "echoes: %zu of 2", z.got.size());
        for (size_t i = 0; i < 2; i++) {
            ck_assert_uint_eq(z.got[i].size(), sizes[i]);
            ck_assert(aipc_pattern_check(static_cast<const uint8_t *>(z.got[i].data()), sizes[i], 7u + (uint32_t)i) < 0);
        }
        z.got.clear();   // the destructors release them
    }
    asyncipc::Buffer unsent;
    ck_assert_int_eq(asyncipc::Alloc(pipe, 4096, unsent), AIPC_OK);
    unsent = asyncipc::Buffer();   // released unsent
    aipc_pipe_stats st;
    std::memset(&st, 0, sizeof st);
    st.size = sizeof st;
    ck_assert_int_eq(aipc_pipe_get_stats(pipe->Handle(), &st), AIPC_OK);
    ck_assert_uint_eq(st.buf_bytes, 0);
    ck_assert_uint_eq(st.recv_buf_bytes, 0);
    pipe->Release();
    peer_done(&peer);
    delete &z;
    delete &r;
}
END_TEST

static void cpp_teardown(void)
{
    aipc_proc_kill_all();
    aipc_log_open_file(nullptr);
}

static Suite *make_suite(void)
{
    Suite *s = suite_create("p2p_cpp");
    TCase *t = tcase_create("hpp");
    tcase_add_checked_fixture(t, nullptr, cpp_teardown);
    tcase_set_timeout(t, 0);
    tcase_add_loop_test(t, cpp_classic_echo, 0, 2);
    tcase_add_loop_test(t, cpp_release_inside_onrecv, 0, 2);
    tcase_add_loop_test(t, cpp_exception_is_caught_and_logged, 0, 2);
    tcase_add_loop_test(t, cpp_zero_copy_buffers, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

CHECK_MAIN_EX(make_suite, nullptr, nullptr, CHECK_MAIN_VERBOSE);  // a line per test, unbuffered
