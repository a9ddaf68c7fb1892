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
 * Threads: see the threading contract below. In short - delegate methods run on the SDK's I/O
 * thread, or on your UI thread when the pipe has a dispatcher (SetDispatcher, asyncipc::
 * Dispatcher); INamedPipe methods may be called from any thread, including inside a delegate
 * method; Send/SendData copy the data and never block; Create never waits; Exit/Release wait
 * only for a delegate method of this pipe running on another thread, serving sent messages.
 * An exception escaping a delegate method cannot cross the C SDK: it is caught, logged at
 * ERROR level through aipc_log, and otherwise ignored.
 *
 * Lifetime: the delegate must stay valid until Exit() or Release() returns. Release() (or
 * `delete`) closes the pipe if needed and frees the object.
 */
/*
 * Threading contract (the same text is in asyncipc.h, asyncipc.hpp, bus.hpp and docs/sdk.md)
 *
 * Where callbacks run
 *   - Default: on the SDK's I/O thread of the object's engine - one process-wide thread per
 *     engine: PIPE_ASYNC pipes and bus clients (aipc_bus_options.engine, default PIPE_ASYNC)
 *     on the APC thread, PIPE_OVERLAPPED pipes and bus clients on the completion-port thread.
 *   - With a dispatcher (aipc_pipe_set_dispatcher, aipc_bus_options.dispatcher, C++
 *     SetDispatcher / BusOptions::dispatcher): on the application's thread.
 *     AIPC_DISPATCH_WINDOW: inside the message loop of the thread that created the dispatcher
 *     (a hidden message-only window; the loop must pump: GetMessage/DispatchMessage, a dialog's
 *     or a modal loop). AIPC_DISPATCH_MANUAL: inside aipc_dispatcher_run(), on the thread that
 *     calls it, typically when aipc_dispatcher_event() is signalled.
 *   - Always: callbacks of one object run one at a time, in the order the events happened.
 *     Pointers a callback receives are valid during the call only. A callback never runs nested
 *     inside another callback of the same thread: a modal loop, a message box or an alertable
 *     wait inside a callback does not deliver further callbacks; they follow when it returns.
 *   - The bus client's final callbacks (pending requests completing with AIPC_ECLOSED,
 *     on_state(AIPC_BUS_CLOSED)) run on the thread that calls aipc_bus_close, before it returns.
 *
 * Which calls wait, and for what
 *   - Never wait: CreateInstance/aipc_pipe_new, Create/aipc_pipe_create/aipc_pipe_create_ex (a
 *     server creates its pipe instance, a client starts connecting; OnCreate/OnConnected or
 *     on_create/on_connected follow as callbacks), Send/SendData/aipc_pipe_send,
 *     aipc_pipe_set_option, and every aipc_bus_* call except aipc_bus_close.
 *   - Exit/Release/aipc_pipe_exit/aipc_pipe_free/aipc_bus_close and the C++ destructors wait
 *     only for a callback of the same object that is running at that moment on another thread:
 *     never for queued callbacks, I/O, or the I/O thread. While they wait they serve messages
 *     sent to the calling thread's windows, as COM's modal loop does (a callback blocked in
 *     SendMessage to a window of the calling thread completes). Called on the thread that runs
 *     the object's callbacks (inside a callback, or on its dispatcher's thread) they never wait.
 *   - After they return no callback of the object starts; called inside one of its callbacks,
 *     none starts after that callback returns. The I/O itself (cancel, close the handle) is
 *     finished by the I/O thread afterwards; the SDK keeps its buffers alive until then.
 *   - Still a deadlock: a callback running on the I/O thread that waits for the thread calling
 *     Exit/close by other means than a sent message (an event that thread sets, a message
 *     posted to it, a COM call into its apartment). Code like that belongs on a dispatcher:
 *     its callbacks then run on that thread itself, and Exit/close there never waits.
 *   - At process exit, when the thread running a callback is already gone (a static destructor
 *     in a DLL, an atexit handler after ExitProcess), they return without waiting.
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
#include "buffer.hpp"

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
    /* Runs every delegate method through dispatcher `d` (e.g. on the UI thread), before
     * Create (0 or AIPC_E*). See asyncipc::Dispatcher. */
    virtual int SetDispatcher(aipc_dispatcher *d) = 0;
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
    int SetDispatcher(aipc_dispatcher *d) override { return aipc_pipe_set_dispatcher(pipe_, d); }

private:
    aipc_named_pipe *pipe_;
    DelegateBridge bridge_;
};

} // namespace detail

/* Zero-copy buffers: asyncipc::Buffer is in <asyncipc/buffer.hpp> (included above), shared
 * with bus.hpp. */

/* aipc_pipe_alloc: on success `out` holds the new buffer (its previous one is released). */
inline int Alloc(INamedPipe *pipe, size_t size, Buffer &out)
{
    aipc_buf *b = nullptr;
    int rc = aipc_pipe_alloc(pipe->Handle(), size, &b);
    if (rc == AIPC_OK)
        out = Buffer(b);
    return rc;
}

/* aipc_pipe_send_buf: on success the buffer belongs to the SDK and `buf` is empty; on an error
 * `buf` still holds it. */
inline int SendBuf(INamedPipe *pipe, Buffer &buf, size_t len)
{
    int rc = aipc_pipe_send_buf(pipe->Handle(), buf.get(), len);
    if (rc == AIPC_OK)
        buf.release();
    return rc;
}

/* aipc_pipe_set_recv_ref: before Create; fn replaces OnRecv for every message. */
inline int SetRecvRef(INamedPipe *pipe, aipc_pipe_recv_ref_fn fn, void *user)
{
    return aipc_pipe_set_recv_ref(pipe->Handle(), fn, user);
}

/*
 * Callbacks on your own thread (see "Dispatchers" in asyncipc.h). Create it on the UI thread:
 *     asyncipc::Dispatcher ui;                       // AIPC_DISPATCH_WINDOW, this thread's loop
 *     pipe->SetDispatcher(ui.get());
 *     pipe->Create(L"demo", PIPE_CLIENT, &delegate); // delegate methods now run on this thread
 * or, for a program with its own loop, Dispatcher d(AIPC_DISPATCH_MANUAL) and call d.run()
 * whenever d.event() is signalled. Destroy it after the pipes and bus clients that use it.
 */
class Dispatcher {
public:
    explicit Dispatcher(int mode = AIPC_DISPATCH_WINDOW) { rc_ = aipc_dispatcher_new(mode, &d_); }
    ~Dispatcher() { aipc_dispatcher_free(d_); }
    Dispatcher(const Dispatcher &) = delete;
    Dispatcher &operator=(const Dispatcher &) = delete;
    /* 0, or the AIPC_E* code of the creation. */
    int status() const { return rc_; }
    aipc_dispatcher *get() const { return d_; }
    /* AIPC_DISPATCH_MANUAL: the event (HANDLE) signalled while callbacks are queued. */
    void *event() const { return aipc_dispatcher_event(d_); }
    /* Runs queued callbacks on this thread (max 0 = those queued now); returns how many ran. */
    int run(uint32_t max = 0) { return aipc_dispatcher_run(d_, max); }

private:
    aipc_dispatcher *d_ = nullptr;
    int rc_ = 0;
};

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
