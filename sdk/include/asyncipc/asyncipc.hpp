/*
 * asyncipc.hpp - header-only C++ wrapper: the classic AsyncIPC classes over the C API.
 *
 * Classic AsyncIPC code compiles unchanged against it:
 *
 *     class MyDelegate : public IPipeDelegate {
 *         void OnRecv(void *data, int size) override { ... }
 *     };
 *     INamedPipe *pipe = nullptr;
 *     if (CreateInstance(PIPE_ASYNC, &pipe) == 0) {
 *         pipe->Create(L"\\\\.\\pipe\\demo", PIPE_SERVER, &myDelegate);
 *         pipe->Send("hello");
 *         ...
 *         pipe->Release();
 *     }
 *
 * Include this header instead of (or before) asyncipc.h: it defines ASYNCIPC_NO_CLASSIC_C_NAMES
 * so that the C typedefs IPipeDelegate / INamedPipe and the C CreateInstance are not declared
 * and the names are free for the classes below. Everything else in asyncipc.h (aipc_* functions,
 * AIPC_E* codes, InitEasyLog, aipc_log, PipeImplType, PipeType) is available as in C.
 *
 * Threads
 *   - Every IPipeDelegate method is called on the SDK's I/O thread (for PIPE_ASYNC one thread
 *     per process shared by all pipes; for PIPE_OVERLAPPED the engine's completion thread),
 *     never concurrently for one pipe, and never after Exit()/Release() has returned (when
 *     called from inside a callback: never after that callback returns).
 *   - The INamedPipe methods may be called from any thread, including from inside a delegate
 *     method (Exit() and Release() too). Send/SendData copy the data and never block.
 *   - An exception escaping a delegate method cannot cross the C SDK: it is caught, logged at
 *     ERROR level through aipc_log, and otherwise ignored.
 *
 * Lifetime: the delegate must stay valid until Exit() or Release() returns. Release() (or
 * `delete`) closes the pipe if needed and frees the object.
 */
#ifndef ASYNCIPC_ASYNCIPC_HPP
#define ASYNCIPC_ASYNCIPC_HPP

#if defined(ASYNCIPC_ASYNCIPC_H) && !defined(ASYNCIPC_NO_CLASSIC_C_NAMES)
#error "include <asyncipc/asyncipc.hpp> before <asyncipc/asyncipc.h> (or define ASYNCIPC_NO_CLASSIC_C_NAMES)"
#endif
#ifndef ASYNCIPC_NO_CLASSIC_C_NAMES
#define ASYNCIPC_NO_CLASSIC_C_NAMES 1
#endif
#include "asyncipc.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <new>

/* Receives a pipe's events. Override the ones you need; the defaults do nothing.
 * Thread: all of them run on the SDK's I/O thread (see the header comment). */
class IPipeDelegate {
public:
    virtual ~IPipeDelegate() {}
    /* Create() finished: server listening / client connect attempt started (ok=false: failed). */
    virtual void OnCreate(bool ok) { (void)ok; }
    /* A peer connected (ok=true), or a client gave up after its connect timeout (ok=false). */
    virtual void OnConnected(bool ok) { (void)ok; }
    /* One message of `size` bytes was fully written. */
    virtual void OnSend(int size) { (void)size; }
    /* One whole message; `data` is valid only during the call (data[size] == 0). */
    virtual void OnRecv(void *data, int size) { (void)data; (void)size; }
    /* The peer went away (a server then listens again for the next peer). */
    virtual void OnDisconnected() {}
};

/* A point-to-point pipe (server or client). Create it with CreateInstance(). */
class INamedPipe {
public:
    virtual ~INamedPipe() {}
    /* Starts the pipe as PIPE_SERVER or PIPE_CLIENT on "\\.\pipe\NAME" or "NAME". True if the
     * setup started; OnCreate/OnConnected follow on the I/O thread. */
    virtual bool Create(const wchar_t *pipe_name, PipeType type, IPipeDelegate *delegate) = 0;
    /* Closes the connection and stops listening. Any thread, also inside a callback. */
    virtual void Exit() = 0;
    /* Queues a NUL-terminated text message (the text without its NUL). */
    virtual void Send(const char *msg) = 0;
    /* Queues a binary message (copied). Returns 0 or AIPC_E* (< 0). */
    virtual int SendData(const void *data, size_t size) = 0;
    /* Exit if needed, then frees this object. Any thread, also inside a callback. */
    virtual void Release() = 0;

    /* Extensions beyond the classic interface. */
    /* Sets an AIPC_PIPE_OPT_* option before Create (0 or AIPC_E*). */
    virtual int SetOption(int option, uint64_t value) = 0;
    /* The underlying C object, for the aipc_pipe_* functions. */
    virtual aipc_named_pipe *Handle() = 0;
};

namespace asyncipc {
namespace detail {

/* The C delegate handed to the SDK; `c` is the first member so the SDK's `self` pointer is the
 * bridge itself. Each member forwards to the C++ delegate on the I/O thread. */
struct DelegateBridge {
    aipc_pipe_delegate c;
    IPipeDelegate *target;
};

inline DelegateBridge *bridge_of(aipc_pipe_delegate *self)
{
    return reinterpret_cast<DelegateBridge *>(self);
}

/* Logs an exception that a delegate method let escape (it must not unwind into C). */
inline void report_exception(const char *where)
{
    try {
        throw;
    } catch (const std::exception &e) {
        aipc_log(AIPC_LOG_ERROR, "asyncipc.hpp: exception in IPipeDelegate::%s: %s", where, e.what());
    } catch (...) {
        aipc_log(AIPC_LOG_ERROR, "asyncipc.hpp: unknown exception in IPipeDelegate::%s", where);
    }
}

/* C callbacks (I/O thread). They must not touch the bridge after the C++ call returns: the
 * C++ code may have released the pipe (and with it the bridge) inside the call. */
inline void on_create(aipc_pipe_delegate *self, bool ok)
{
    IPipeDelegate *t = bridge_of(self)->target;
    if (t) {
        try { t->OnCreate(ok); } catch (...) { report_exception("OnCreate"); }
    }
}
inline void on_connected(aipc_pipe_delegate *self, bool ok)
{
    IPipeDelegate *t = bridge_of(self)->target;
    if (t) {
        try { t->OnConnected(ok); } catch (...) { report_exception("OnConnected"); }
    }
}
inline void on_send(aipc_pipe_delegate *self, int size)
{
    IPipeDelegate *t = bridge_of(self)->target;
    if (t) {
        try { t->OnSend(size); } catch (...) { report_exception("OnSend"); }
    }
}
inline void on_recv(aipc_pipe_delegate *self, void *data, int size)
{
    IPipeDelegate *t = bridge_of(self)->target;
    if (t) {
        try { t->OnRecv(data, size); } catch (...) { report_exception("OnRecv"); }
    }
}
inline void on_disconnected(aipc_pipe_delegate *self)
{
    IPipeDelegate *t = bridge_of(self)->target;
    if (t) {
        try { t->OnDisconnected(); } catch (...) { report_exception("OnDisconnected"); }
    }
}

/* INamedPipe over one aipc_named_pipe. */
class NamedPipe final : public INamedPipe {
public:
    explicit NamedPipe(aipc_named_pipe *pipe) : pipe_(pipe)
    {
        bridge_.c.OnCreate = on_create;
        bridge_.c.OnConnected = on_connected;
        bridge_.c.OnSend = on_send;
        bridge_.c.OnRecv = on_recv;
        bridge_.c.OnDisconnected = on_disconnected;
        bridge_.target = nullptr;
    }
    ~NamedPipe() override
    {
        if (pipe_)
            aipc_pipe_free(pipe_);
    }
    NamedPipe(const NamedPipe &) = delete;
    NamedPipe &operator=(const NamedPipe &) = delete;

    bool Create(const wchar_t *pipe_name, PipeType type, IPipeDelegate *delegate) override
    {
        bridge_.target = delegate;
        return aipc_pipe_create(pipe_, pipe_name, type, &bridge_.c);
    }
    void Exit() override { aipc_pipe_exit(pipe_); }
    void Send(const char *msg) override
    {
        if (msg)
            aipc_pipe_send(pipe_, msg, std::strlen(msg));
    }
    int SendData(const void *data, size_t size) override
    {
        return aipc_pipe_send(pipe_, data, size);
    }
    void Release() override { delete this; }
    int SetOption(int option, uint64_t value) override
    {
        return aipc_pipe_set_option(pipe_, option, value);
    }
    aipc_named_pipe *Handle() override { return pipe_; }

private:
    aipc_named_pipe *pipe_;
    DelegateBridge bridge_;
};

} // namespace detail
} // namespace asyncipc

/* Creates a pipe object using `engine` (PIPE_ASYNC or PIPE_OVERLAPPED). Returns 0 and sets
 * *pipe, or AIPC_E* (< 0). Free it with (*pipe)->Release(). */
inline int CreateInstance(PipeImplType engine, INamedPipe **pipe)
{
    if (!pipe)
        return AIPC_EINVAL;
    *pipe = nullptr;
    aipc_named_pipe *c = nullptr;
    int rc = aipc_pipe_new(engine, &c);
    if (rc != AIPC_OK)
        return rc;
    INamedPipe *p = new (std::nothrow) asyncipc::detail::NamedPipe(c);
    if (!p) {
        aipc_pipe_free(c);
        return AIPC_ENOMEM;
    }
    *pipe = p;
    return AIPC_OK;
}

#endif /* ASYNCIPC_ASYNCIPC_HPP */
